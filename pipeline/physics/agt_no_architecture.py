"""AGT-NO: the neural operator that classifies a vibration window and explains it with physical fields.

signal -> divide by its RMS -> lift -> [FNO block, patch attention] x n_layers -> heads:
  * class logits: the fault location through a variational latent (mean, log_var) of the operator features, times
    the fault size given the location from the window's strike level (the crests of the resonance band's envelope),
    as log-probabilities (plain logits through the latent when output_dim is not the ten CWRU classes),
  * displacement, velocity and force on the time grid, in physical units,
  * resonance frequency, natural frequency (as the Tustin equation states it) and damping ratio,
and the physics residuals of those fields (pipeline.physics.residuals), so the loss can push them to zero.
"""

import math

import torch
from torch import nn

from pipeline.data.classes import CLASS_NAMES, FAULT_LOCATIONS, fault_location
from pipeline.physics.residuals import energy_balance, physics_residuals
from pipeline.physics.spectral import FNOBlock, PatchAttention, pointwise

MIN_LENGTH = 16
# Heads output O(1) numbers; fields are rescaled by w_ref, this resonance pre-warped the way the residuals'
# trapezoidal equation sees it, so that x = -a / w_ref^2 solves their measurement equation exactly at 3 kHz.
REFERENCE_RESONANCE_HZ = 3000.0
RESONANCE_RANGE_HZ = (1500.0, 5000.0)
DAMPING_RANGE = (0.005, 0.2)
# The fields skip is a short FIR on the input: at 12 kHz, 9 taps span ~2 periods of a 3 kHz resonance, enough to
# learn the phase shifts integration needs (v ~ a / jw), which pointwise layers and low Fourier modes cannot.
FIELD_SKIP_TAPS = 9
INITIAL_LOG_VAR = -4.0
# Condition indicators of the raw window (per input channel), in log units, pooled with the operator features for
# the latent and the physical parameters: RMS, peak, and the mean and median of the maxima of short blocks. A block
# (5 ms) is shorter than the fastest impact period (BPFI at 1797 rpm, ~6.2 ms), so most blocks hold at most one
# impact peak and the top quarter of block maxima averages several.
LEVEL_BLOCK_S = 5e-3
N_LEVEL_FEATURES = 4
# Strike level, the size cue: every strike rings the structural mode, so the analytic envelope of the resonance band
# crests once per strike, at a height that grows with the fault size. The band leaves out the shaft harmonics, and
# the envelope does not depend on where the samples fall on a 3-5 samples-per-period ring, as single samples do.
# Blocks of 3.3 ms (about half the fastest impact period) each hold at most one strike's crest; the mean of the
# N_STRIKE_BLOCKS highest block maxima averages several strikes.
STRIKE_BLOCK_S = 40 / 12000
N_STRIKE_BLOCKS = 4
SIZE_HEAD_WIDTH = 32
# Serving (forward with physics=False) runs big batches in chunks this size, which keeps a chunk's
# [chunk, hidden_dim, L] activations in the CPU cache; every op is per window, so the numbers do not change.
INFERENCE_CHUNK = 32
DECIBELS_PER_NEPER = 20 / math.log(10)  # amplitude level: 20 log10(x) = 8.69 ln(x)


class AGTNOArchitecture(nn.Module):
    """Fault classifier and physical-field estimator over windows `[B, L]` or `[B, L, input_dim]`, any L >= 16.

    The first input channel is the measured acceleration the physics residuals check the fields against.
    The operator sees windows normalised by their own RMS; the level it removes returns only through the level
    indicators and the strike level (in the signal's units, g for CWRU), which alone decides the fault size.
    """

    def __init__(
        self,
        input_dim: int = 1,
        hidden_dim: int = 128,
        output_dim: int = 10,
        n_modes: int = 16,
        n_layers: int = 4,
        n_heads: int = 4,
        patch_size: int = 64,
        dropout: float = 0.0,
        sample_rate: float = 12000.0,
        shaft_hz: float = 29.53,
        latent_dim: int = 16,
    ):
        super().__init__()
        self.input_dim, self.output_dim, self.latent_dim = input_dim, output_dim, latent_dim
        self.sample_rate, self.shaft_hz = sample_rate, shaft_hz
        if RESONANCE_RANGE_HZ[1] >= sample_rate / 2:
            top = RESONANCE_RANGE_HZ[1]
            raise ValueError(f"sample_rate must exceed twice the top resonance {top} Hz, got {sample_rate}")
        self.w_ref = float(tustin_omega(REFERENCE_RESONANCE_HZ, sample_rate))

        self.lift = nn.Conv1d(input_dim, hidden_dim, kernel_size=1)
        self.blocks = nn.ModuleList()
        for _ in range(n_layers):
            self.blocks.append(FNOBlock(hidden_dim, n_modes))
            self.blocks.append(PatchAttention(hidden_dim, n_heads, patch_size, dropout))

        self.fields_head = nn.Conv1d(hidden_dim, 3, kernel_size=1)
        self.fields_skip = nn.Conv1d(input_dim, 3, FIELD_SKIP_TAPS, padding=FIELD_SKIP_TAPS // 2, bias=False)
        # pooled: mean, spread, peak of the features (layer-normalised) and the level indicators of the input
        pooled_dim = 3 * hidden_dim + N_LEVEL_FEATURES * input_dim
        self.feature_norm = nn.LayerNorm(3 * hidden_dim)
        self.params_head = nn.Linear(pooled_dim, 2)
        # encoder of the variational latent: one hidden layer, so shape and level features combine nonlinearly
        self.encoder = nn.Sequential(nn.Linear(pooled_dim, hidden_dim), nn.GELU(), nn.Dropout(dropout))
        self.latent_head = nn.Linear(hidden_dim, 2 * latent_dim)
        self.dropout = nn.Dropout(dropout)
        # With the ten CWRU classes the decision is factorised, p(class) = p(location) p(size | location):
        # location (normal/ball/inner/outer) is a shape property, read from the latent of the normalised operator
        # features; size is a level property (impacts grow with the fault), read from the strike level alone,
        # so it cannot be memorised from per-recording cues (resonance, damping) the operator also sees.
        self.factorised = output_dim == len(CLASS_NAMES)
        self.classifier = nn.Linear(latent_dim, len(FAULT_LOCATIONS) if self.factorised else output_dim)
        if self.factorised:
            self.size_head = nn.Sequential(
                nn.Linear(input_dim, SIZE_HEAD_WIDTH), nn.GELU(),
                nn.Linear(SIZE_HEAD_WIDTH, output_dim),
            )
            location = torch.tensor([FAULT_LOCATIONS.index(fault_location(name)) for name in CLASS_NAMES])
            self.register_buffer("class_location", location, persistent=False)  # [classes]
            self.register_buffer(  # [locations, classes]: which classes share a location
                "location_members", location[None, :] == torch.arange(len(FAULT_LOCATIONS))[:, None], persistent=False
            )
        self._init_heads()

    def _init_heads(self) -> None:
        """Start displacement at the resonance-band prior x = -a / w_ref^2 (tap -1 on the measured channel), and
        the latent with a small variance so early training is not drowned in sampling noise."""
        with torch.no_grad():
            self.fields_skip.weight.zero_()
            self.fields_skip.weight[0, 0, FIELD_SKIP_TAPS // 2] = -1.0
            self.latent_head.bias[self.latent_dim :].fill_(INITIAL_LOG_VAR)

    def forward(self, x: torch.Tensor, physics: bool = True) -> dict:
        """x: `[B, L]` or `[B, L, input_dim]`. Returns a dict of
        predictions [B, output_dim] logits; fields {displacement, velocity, force} [B, L] physical units;
        physical_params {natural_freq_hz, damping_ratio, resonance_hz} [B]; mean, log_var [B, latent_dim];
        uncertainties [B]; physics_residuals and coupled_fields as pipeline.physics.residuals returns them
        (the kinematics residual only when output_dim is the 10 CWRU classes it is stated for).

        `physics=False` is the serving path: only predictions, mean, log_var and uncertainties, computed in
        chunks of INFERENCE_CHUNK windows. The fields, parameters and residuals exist for the training losses.
        """
        signal = self._validated(x)  # [B, L, C], physical units
        if not physics:
            parts = [self._decide(self._encode(chunk)[-1], chunk) for chunk in signal.split(INFERENCE_CHUNK)]
            return {key: torch.cat([part[key] for part in parts]) for key in parts[0]}

        h, normalised, scale, pooled = self._encode(signal)
        outputs = self._decide(pooled, signal)
        fields = self._fields(h, normalised, scale[:, 0, 0])
        params = self._physical_params(pooled)
        # kinematics needs the CWRU classes
        class_probs = outputs["predictions"].softmax(dim=-1) if self.output_dim == len(CLASS_NAMES) else None
        with torch.autocast(device_type=signal.device.type, enabled=False):
            residuals = physics_residuals(
                fields,
                signal[..., 0],
                self.sample_rate,
                natural_freq_hz=params["natural_freq_hz"],
                damping_ratio=params["damping_ratio"],
                class_probs=class_probs,
                shaft_hz=self.shaft_hz,
            )
            coupled = energy_balance(fields, self.sample_rate, params["natural_freq_hz"], params["damping_ratio"])

        return {
            "predictions": outputs["predictions"],
            "physics_residuals": residuals,
            "coupled_fields": coupled,
            "fields": fields,
            "physical_params": params,
            "mean": outputs["mean"],
            "log_var": outputs["log_var"],
            "uncertainties": outputs["uncertainties"],
        }

    def _encode(self, signal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Operator features h `[B, hidden, L]`, the normalised input `[B, C, L]`, the window RMS `[B, 1, C]` and
        the pooled features `[B, pooled_dim]` of windows `[B, L, C]`."""
        scale = signal.pow(2).mean(dim=1, keepdim=True).sqrt().clamp_min(1e-12)  # [B, 1, C]
        normalised = (signal / scale).transpose(1, 2)  # [B, C, L]

        h = pointwise(self.lift, normalised)
        for block in self.blocks:
            h = block(h)
        # Mean and spread over time: after RMS normalisation the mean alone is nearly the same for every window;
        # the spread of rectified features is an impulsiveness (kurtosis-like) measure, the classic fault cue.
        # The level indicators of the raw window (LEVEL_BLOCK_S) give back the level the normalisation removed.
        mean = h.mean(dim=-1, keepdim=True)
        # the standard deviation, written out: torch.std was the slowest op of the serving path
        spread = torch.linalg.vector_norm(h - mean, dim=-1) / math.sqrt(max(1, h.shape[-1] - 1))
        features = self.feature_norm(torch.cat([mean[..., 0], spread, h.amax(dim=-1)], dim=-1))
        levels = self._levels(signal, scale[:, 0, :])
        return h, normalised, scale, self.dropout(torch.cat([features, levels], dim=-1))

    def _decide(self, pooled: torch.Tensor, signal: torch.Tensor) -> dict:
        """predictions, mean, log_var and uncertainties from the pooled features and the windows `[B, L, C]`."""
        mean, log_var = self.latent_head(self.encoder(pooled)).to(self.dtype).chunk(2, dim=-1)
        z = mean
        if self.training:  # reparameterised sample; eval uses the mean, so predictions are deterministic
            z = mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)
        logits = self.classifier(z).to(self.dtype)
        if self.factorised:
            # in decibels: one fault size to the next is a few dB, a step the size head's weights can take quickly
            size_logits = self.size_head(self._strike_level(signal) * DECIBELS_PER_NEPER)
            logits = self._factorised_logits(logits, size_logits.to(self.dtype))
        uncertainties = self._uncertainty(logits.softmax(dim=-1), log_var)
        return {"predictions": logits, "mean": mean, "log_var": log_var, "uncertainties": uncertainties}

    @property
    def dtype(self) -> torch.dtype:
        """The parameters' dtype. Inputs are cast to it, and head outputs cast back to it from bf16 autocast,
        because the residuals difference nearby samples and need full precision."""
        return self.lift.weight.dtype

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

    def _factorised_logits(self, location_logits: torch.Tensor, size_logits: torch.Tensor) -> torch.Tensor:
        """Class log-probabilities `[B, classes]`: log p(location) + log p(size | location), the latter a softmax
        of `size_logits` over the classes of each location (0 for `normal`, the only class of its location)."""
        members = self.location_members  # [locations, classes]
        masked = size_logits.unsqueeze(1).masked_fill(~members, float("-inf"))  # [B, locations, classes]
        log_norm = masked.logsumexp(dim=-1)  # [B, locations]
        log_size = size_logits - log_norm[:, self.class_location]
        return location_logits.log_softmax(dim=-1)[:, self.class_location] + log_size

    def _levels(self, signal: torch.Tensor, rms: torch.Tensor) -> torch.Tensor:
        """`[B, N_LEVEL_FEATURES * C]`: log RMS, log peak, log mean of the top quarter of block maxima and log
        median block maximum of the raw window `[B, L, C]` (signal units)."""
        magnitude = signal.abs()
        length = magnitude.shape[1]
        block = max(1, min(length, round(LEVEL_BLOCK_S * self.sample_rate)))
        n_blocks = length // block
        maxima = magnitude[:, : n_blocks * block].unflatten(1, (n_blocks, block)).amax(dim=2)  # [B, n_blocks, C]
        top = maxima.topk(max(1, n_blocks // 4), dim=1).values.mean(dim=1)
        levels = torch.cat([rms, maxima.amax(dim=1), top, maxima.median(dim=1).values], dim=-1)
        return levels.clamp_min(1e-12).log()

    def _strike_level(self, signal: torch.Tensor) -> torch.Tensor:
        """`[B, C]`: log of the mean of the N_STRIKE_BLOCKS highest block maxima of the analytic envelope of the
        windows' `[B, L, C]` resonance band (RESONANCE_RANGE_HZ), in signal units."""
        length = signal.shape[1]
        spectrum = torch.fft.rfft(signal, dim=1)
        freqs = torch.fft.rfftfreq(length, 1.0 / self.sample_rate, device=signal.device)
        band = (freqs >= RESONANCE_RANGE_HZ[0]) & (freqs <= RESONANCE_RANGE_HZ[1])
        # the analytic signal: positive frequencies doubled, negative ones zero
        envelope = torch.fft.ifft(2 * spectrum * band[:, None], n=length, dim=1).abs()  # [B, L, C]
        block = max(1, min(length, round(STRIKE_BLOCK_S * self.sample_rate)))
        n_blocks = length // block
        maxima = envelope[:, : n_blocks * block].unflatten(1, (n_blocks, block)).amax(dim=2)  # [B, n_blocks, C]
        top = maxima.topk(min(N_STRIKE_BLOCKS, n_blocks), dim=1).values.mean(dim=1)
        return top.clamp_min(1e-12).log()

    def _fields(self, h: torch.Tensor, normalised: torch.Tensor, scale: torch.Tensor) -> dict:
        """Displacement, velocity, force `[B, L]` in physical units."""
        out = (pointwise(self.fields_head, h) + self.fields_skip(normalised)).to(self.dtype) * scale[:, None, None]
        return {"displacement": out[:, 0] / self.w_ref**2, "velocity": out[:, 1] / self.w_ref, "force": out[:, 2]}

    def _physical_params(self, pooled: torch.Tensor) -> dict:
        """Resonance (linear in range), the natural frequency the residuals' discrete equation needs to ring
        there, and damping ratio (log-uniform in range), each `[B]`; the simulator reports the same names."""
        freq_raw, damping_raw = self.params_head(pooled).to(self.dtype).sigmoid().unbind(dim=-1)
        f_lo, f_hi = RESONANCE_RANGE_HZ
        z_lo, z_hi = DAMPING_RANGE
        resonance_hz = f_lo + (f_hi - f_lo) * freq_raw
        return {
            "natural_freq_hz": tustin_omega(resonance_hz, self.sample_rate) / (2 * math.pi),
            "damping_ratio": z_lo * (z_hi / z_lo) ** damping_raw,
            "resonance_hz": resonance_hz,
        }

    @staticmethod
    def _uncertainty(probs: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
        """Predictive entropy of the softmax (nats) plus the mean latent variance, `[B]`."""
        entropy = -(probs * probs.clamp_min(1e-12).log()).sum(dim=-1)
        return entropy + log_var.exp().mean(dim=-1)


def tustin_omega(resonance_hz: torch.Tensor | float, sample_rate: float) -> torch.Tensor:
    """The w_n (rad/s) of the trapezoidal equation whose sampled response rings at `resonance_hz` (pre-warping)."""
    return 2 * sample_rate * torch.tan(torch.as_tensor(resonance_hz) * (math.pi / sample_rate))
