"""AGT-NO: a neural operator that reads a vibration window in its bearing's own coordinates, and explains it with
physical fields.

Two views of the window: the evidence of each fault location's comb on an axis in units of that location's own
fault rate (pipeline.dsp.fault_orders), which means the same on every bearing and at every speed because each
window's shaft speed and bearing geometry go in with it; and, optionally, its log power spectrum
through FNO blocks and attention between frequency bands, which tells apart what kinematics cannot (fault sizes,
the machines trained on) but is specific to them. They feed a variational latent and the class logits
(pipeline.models.outputs), and the model returns the fields, parameters and residuals of the physics losses
(pipeline.physics.residuals); docs/how-it-works.md#the-model says more."""

import math
from typing import Optional, Sequence

import torch
from torch import nn

from pipeline.data.bearing import SKF_6205_DE, BearingGeometry
from pipeline.data.config import DataConfig
from pipeline.dsp.fault_orders import fault_order_evidence
from pipeline.models.comb_scorer import CombScorer
from pipeline.models.config import ModelConfig
from pipeline.models.outputs import DEFAULT_CLASSES, VariationalClassifier
from pipeline.physics.residuals import energy_balance, physics_residuals
from pipeline.physics.spectral import FNOBlock, PatchAttention, full_precision, pointwise
from pipeline.physics.views import N_SPECTRUM_BANDS, pooled_spectrum, spectrum_view

MIN_LENGTH = 16
# Heads output O(1) numbers; fields are rescaled by w_ref, this resonance pre-warped the way the residuals'
# trapezoidal equation sees it, so that x = -a / w_ref^2 solves their measurement equation exactly at 3 kHz.
REFERENCE_RESONANCE_HZ = 3000.0
RESONANCE_RANGE_HZ = (1500.0, 5000.0)
DAMPING_RANGE = (0.005, 0.2)
# The fields are a short FIR on the measured acceleration: at 12 kHz, 17 taps span ~4 periods of a 3 kHz resonance,
# enough for the phase shifts integration needs (v ~ a / jw) and for the inverse filter that gives the force.
FIELD_TAPS = 17
NOMINAL_SHAFT_HZ = 29.95  # when no speed is given: CWRU's 1797 rpm
INFERENCE_CHUNK = 64  # physics=False runs big batches in chunks, keeping activations in the CPU cache


class AGTNOArchitecture(VariationalClassifier):
    """Fault classifier and physical-field estimator over windows `[B, L]` or `[B, L, input_dim]`, any L >= 16.

    The first input channel is the measured acceleration the physics residuals check the fields against, and the
    one read in fault orders. `class_locations` (one of normal/ball/inner/outer per class, or None) switches on
    the kinematics residual; `spectrum_view=False` leaves the spectrum view out, so that nothing but the bearing's
    fault orders decides.
    The sizes default to ModelConfig's, so a model built by hand is the one the pipeline trains; the class count
    to the ten CWRU classes.
    """

    def __init__(
        self,
        input_dim: int = ModelConfig.input_dim,
        hidden_dim: int = ModelConfig.hidden_dim,
        output_dim: int = DEFAULT_CLASSES,
        n_modes: int = ModelConfig.n_modes,
        n_layers: int = ModelConfig.n_layers,
        n_heads: int = ModelConfig.n_heads,
        patch_size: int = ModelConfig.patch_size,
        dropout: float = ModelConfig.dropout,
        sample_rate: float = DataConfig.sample_rate,
        latent_dim: int = ModelConfig.latent_dim,
        spectrum_view: bool = ModelConfig.spectrum_view,
        class_locations: Optional[Sequence[Optional[str]]] = None,
        bearing: BearingGeometry = SKF_6205_DE,
    ):
        super().__init__()
        if RESONANCE_RANGE_HZ[1] >= sample_rate / 2:
            top = RESONANCE_RANGE_HZ[1]
            raise ValueError(f"sample_rate must exceed twice the top resonance {top} Hz, got {sample_rate}")
        if class_locations is not None and len(class_locations) != output_dim:
            raise ValueError(f"class_locations has {len(class_locations)} entries for output_dim={output_dim}")
        self.input_dim, self.output_dim, self.latent_dim = input_dim, output_dim, latent_dim
        self.sample_rate, self.spectrum_view = float(sample_rate), spectrum_view
        known = class_locations is not None and all(loc is not None for loc in class_locations)
        self.class_locations = list(class_locations) if known else None
        self.w_ref = float(tustin_omega(REFERENCE_RESONANCE_HZ, sample_rate))
        self.register_buffer("bearing_row", torch.tensor(bearing.row), persistent=False)

        # the fault-order view: one judgement of comb evidence shared by every location, the same for every bearing
        self.comb_scorer = CombScorer(hidden_dim, class_locations, output_dim)
        pooled_dim = self.comb_scorer.out_dim
        # the spectrum view: log power of every input channel over frequency
        if spectrum_view:
            self.lift = nn.Conv1d(input_dim, hidden_dim, kernel_size=1)
            self.blocks = nn.ModuleList()
            for _ in range(n_layers):
                self.blocks.append(FNOBlock(hidden_dim, n_modes))
                self.blocks.append(PatchAttention(hidden_dim, n_heads, patch_size, dropout))
            spectrum_dim = hidden_dim * (N_SPECTRUM_BANDS + 1) + input_dim * N_SPECTRUM_BANDS
            self.spectrum_norm = nn.LayerNorm(spectrum_dim)
            pooled_dim += spectrum_dim
        self.dropout = nn.Dropout(dropout)
        self.encoder = nn.Sequential(nn.Linear(pooled_dim, hidden_dim), nn.GELU(), nn.Dropout(dropout))
        self.build_head(hidden_dim, latent_dim, output_dim)
        self.params_head = nn.Linear(hidden_dim, 2)
        self.fields_filter = nn.Conv1d(input_dim, 3, FIELD_TAPS, padding=FIELD_TAPS // 2, bias=False)
        self._init_fields()

    def _init_fields(self) -> None:
        """Start displacement at the resonance-band prior x = -a / w_ref^2 and force at the measured acceleration."""
        with torch.no_grad():
            self.fields_filter.weight.zero_()
            self.fields_filter.weight[0, 0, FIELD_TAPS // 2] = -1.0
            self.fields_filter.weight[2, 0, FIELD_TAPS // 2] = 1.0

    def forward(
        self,
        x: torch.Tensor,
        physics: bool = True,
        shaft_hz: Optional[torch.Tensor | float] = None,
        bearing: Optional[torch.Tensor] = None,
    ) -> dict:
        """x: `[B, L]` or `[B, L, input_dim]`; shaft_hz: `[B]` shaft speed, or one number for every window, nominal
        when None; bearing: each window's bearing geometry `[B, 4]` or one `[4]` (n_balls, ball and pitch diameter,
        contact angle in degrees), the constructor's when None. Both decide where the fault-order view reads.

        Returns predictions [B, output_dim] logits, mean and log_var [B, latent_dim], uncertainties [B], features
        [B, hidden_dim] (the encoder's hidden vector the head reads) and, unless
        `physics=False` (the serving path, run in chunks of INFERENCE_CHUNK windows), fields {displacement, velocity,
        force} [B, L] in physical units, physical_params {natural_freq_hz, damping_ratio, resonance_hz} [B], and
        physics_residuals and coupled_fields as pipeline.physics.residuals returns them.
        """
        signal = self._validated(x)  # [B, L, C], physical units
        shaft = self._shaft(shaft_hz, signal)
        geometry = self._geometry(bearing, signal)
        if not physics:
            chunks = zip(*(part.split(INFERENCE_CHUNK) for part in (signal, shaft, geometry)))
            parts = [self._decide(*self._encode(*chunk)) for chunk in chunks]
            return {key: torch.cat([part[key] for part in parts]) for key in parts[0]}

        hidden, location_scores = self._encode(signal, shaft, geometry)
        outputs = self._decide(hidden, location_scores)
        fields = self._fields(signal)
        params = self._physical_params(hidden)
        class_probs = outputs["predictions"].softmax(dim=-1) if self.class_locations is not None else None
        with full_precision(signal):
            residuals = physics_residuals(
                fields,
                signal[..., 0],
                self.sample_rate,
                natural_freq_hz=params["natural_freq_hz"],
                damping_ratio=params["damping_ratio"],
                class_probs=class_probs,
                class_locations=self.class_locations,
                shaft_hz=shaft,
                bearing=geometry,
            )
            coupled = energy_balance(fields, self.sample_rate, params["natural_freq_hz"], params["damping_ratio"])
        return {
            **outputs,
            "physics_residuals": residuals,
            "coupled_fields": coupled,
            "fields": fields,
            "physical_params": params,
        }

    def _encode(
        self, signal: torch.Tensor, shaft_hz: torch.Tensor, bearing: torch.Tensor
    ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """The encoder's hidden layer `[B, hidden]` of windows `[B, L, C]` turning at `shaft_hz` `[B]` in bearings
        `[B, 4]` (the views, pooled and encoded), and the comb scorer's class scores `[B, classes]` (or None). The
        fault-order evidence is a fixed transform, so it runs without autograd."""
        with torch.no_grad(), full_precision(signal):
            evidence = fault_order_evidence(signal[..., 0].float(), self.sample_rate, shaft_hz.float(), bearing)
        pooled, location_scores = self.comb_scorer(evidence.to(self.dtype))
        features = [pooled]
        if self.spectrum_view:
            with full_precision(signal):
                log_power = spectrum_view(signal.float())[1]
            log_power = log_power.to(self.dtype)
            h = pointwise(self.lift, log_power)
            for block in self.blocks:
                h = block(h)
            features.append(self.spectrum_norm(pooled_spectrum(log_power, h)))
        return self.encoder(self.dropout(torch.cat(features, dim=-1))), location_scores

    def _decide(self, hidden: torch.Tensor, location_scores: Optional[torch.Tensor]) -> dict:
        """The head's outputs with the comb scorer's say in the logits; without the spectrum view only the combs
        choose between fault locations."""
        return self.decide(hidden, lambda logits: self.comb_scorer.combine(logits, location_scores, self.spectrum_view))

    @property
    def dtype(self) -> torch.dtype:
        """The parameters' dtype. Inputs are cast to it, and head outputs cast back to it from bf16 autocast,
        because the residuals difference nearby samples and need full precision."""
        return self.encoder[0].weight.dtype

    def _validated(self, x: torch.Tensor) -> torch.Tensor:
        """Return `[B, L, input_dim]` in the model's dtype, or raise naming the offending shape."""
        shape = list(x.shape)
        if x.ndim == 2 and self.input_dim == 1:
            x = x.unsqueeze(-1)
        if x.ndim != 3 or x.shape[-1] != self.input_dim:
            expected = "[B, L] or [B, L, 1]" if self.input_dim == 1 else f"[B, L, {self.input_dim}]"
            raise ValueError(f"AGTNOArchitecture expects input of shape {expected}, got {shape}")
        if x.shape[1] < MIN_LENGTH:
            raise ValueError(f"AGTNOArchitecture needs >= {MIN_LENGTH} samples per window, got shape {shape}")
        return x.to(self.dtype)

    def _shaft(self, shaft_hz: Optional[torch.Tensor | float], signal: torch.Tensor) -> torch.Tensor:
        """Shaft speed (Hz) of each window `[B]`, from one number for every window (nominal when not given) or
        one per window; a non-positive speed is an error."""
        value = NOMINAL_SHAFT_HZ if shaft_hz is None else shaft_hz
        shaft = torch.as_tensor(value, dtype=self.dtype, device=signal.device).reshape(-1)
        shaft = shaft.expand(signal.shape[0]) if shaft.numel() == 1 else shaft
        if shaft.shape[0] != signal.shape[0]:
            raise ValueError(f"shaft_hz has {shaft.shape[0]} values for {signal.shape[0]} windows")
        if not bool((shaft > 0).all()):
            raise ValueError("shaft_hz must be positive for every window")
        return shaft

    def _geometry(self, bearing: Optional[torch.Tensor], signal: torch.Tensor) -> torch.Tensor:
        """Bearing geometry of each window `[B, 4]`, from one `[4]`, one per window, or the constructor's."""
        rows = self.bearing_row if bearing is None else torch.as_tensor(bearing, device=signal.device)
        rows = rows.float().reshape(-1, 4)
        if rows.shape[0] == 1:
            rows = rows.expand(signal.shape[0], 4)
        if rows.shape[0] != signal.shape[0]:
            raise ValueError(f"bearing has {rows.shape[0]} rows for {signal.shape[0]} windows")
        return rows

    def _fields(self, signal: torch.Tensor) -> dict:
        """Displacement, velocity, force `[B, L]` in physical units: an inverse filter of the measured signal."""
        out = self.fields_filter(signal.transpose(1, 2)).to(self.dtype)
        return {"displacement": out[:, 0] / self.w_ref**2, "velocity": out[:, 1] / self.w_ref, "force": out[:, 2]}

    def _physical_params(self, hidden: torch.Tensor) -> dict:
        """Resonance (linear in range), the natural frequency the residuals' discrete equation needs to ring
        there, and damping ratio (log-uniform in range), each `[B]`; the simulator reports the same names."""
        freq_raw, damping_raw = self.params_head(hidden).to(self.dtype).sigmoid().unbind(dim=-1)
        f_lo, f_hi = RESONANCE_RANGE_HZ
        z_lo, z_hi = DAMPING_RANGE
        resonance_hz = f_lo + (f_hi - f_lo) * freq_raw
        return {
            "natural_freq_hz": tustin_omega(resonance_hz, self.sample_rate) / (2 * math.pi),
            "damping_ratio": z_lo * (z_hi / z_lo) ** damping_raw,
            "resonance_hz": resonance_hz,
        }


def tustin_omega(resonance_hz: torch.Tensor | float, sample_rate: float) -> torch.Tensor:
    """The w_n (rad/s) of the trapezoidal equation whose sampled response rings at `resonance_hz` (pre-warping)."""
    return 2 * sample_rate * torch.tan(torch.as_tensor(resonance_hz) * (math.pi / sample_rate))
