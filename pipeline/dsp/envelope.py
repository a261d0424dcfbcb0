"""The envelope analysis of a bearing's vibration: analytic envelope, band choice, envelope spectrum, fault combs.

Every strike of a local fault rings the structure's resonances; demodulating a resonance band (the analytic
signal's squared magnitude) leaves a pulse train at the strike rate, and the spectrum of that envelope shows lines
at the fault's characteristic frequency and its harmonics, with sidebands at the shaft or cage rate where the load
zone modulates the strikes. Those rates are fixed multiples of the shaft speed (pipeline.data.bearing), so reading
the envelope spectrum in shaft orders gives the same picture at every load, and on every bearing of the same
geometry. AGT-NO's envelope view, its kinematics residual, the envelope rule and the notebook statistics all use
the functions here. Everything is torch and differentiable, so the bands to demodulate can be learned.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
from torch import Tensor

from pipeline.data.bearing import SKF_6205_DE, BearingGeometry, characteristic_frequencies

RESONANCE_BANDS_HZ = ((1000, 2500), (1750, 3250), (2500, 4000), (3250, 4750), (4000, 5500))
"""Half-overlapping 1.5 kHz bands; each window is demodulated in the one of largest spectral kurtosis.

Why choose per window rather than one fixed band (2-5.5 kHz): which resonance the strikes ring best depends
on the rig, the sensor mount and the fault, and a wide band lets stationary noise and the other resonances
fill the envelope between strikes. Spectral kurtosis (a coarse kurtogram) is largest where impacts stand out
most above Gaussian noise. The bands are 1.5 kHz wide so their envelopes keep every comb line up to 17 shaft
orders (about 500 Hz at 30 Hz); they start at 1 kHz, above the shaft harmonics, and end at 5.5 kHz, below
the anti-alias roll-off of 12 kHz recordings.
"""

COMB_LOCATIONS = ("ball", "inner", "outer")
ORDER_RANGE = (3.0, 17.0)  # envelope-spectrum band checked, in multiples of the shaft frequency
RELATIVE_HALF_WIDTH = 0.03  # of a line's frequency: +-2 % speed error plus slip broadening
MAIN_LOBE_BINS = 1.0  # a Hann-windowed line spreads over about +-1 FFT bin


def band_masks(
    length: int,
    sample_rate: float,
    bands: Sequence[tuple[float, float]] = RESONANCE_BANDS_HZ,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """`[K, F]` 0/1 weights on the rfft bins of `length`-sample windows, 1 inside each band (ends included).

    A brick wall in the frequency domain: zero phase, so strikes stay where they are, and no skirts through
    which a strong neighbouring resonance leaks into the band, as a low-order IIR band-pass would let it. The
    FFT treats the window as periodic: strong content outside the band whose cycles do not fit the window
    leaks into it as a burst at the window's ends, so bands start well above the shaft harmonics."""
    freqs = torch.fft.rfftfreq(length, 1.0 / sample_rate, dtype=dtype)
    return torch.stack([((freqs >= low) & (freqs <= high)).to(dtype) for low, high in bands])


def squared_envelope(spectrum: Tensor, bands: Tensor, length: int) -> Tensor:
    """|analytic signal|^2 `[..., K, L]` of each band of windows whose rfft is `spectrum` `[..., F]`.

    bands: weights over the F bins, `[K, F]` or one set per window `[..., K, F]` (learned, or `band_masks`).
    The analytic signal is the inverse FFT of the band's positive frequencies, doubled: in the windows' units
    for torch.fft.rfft's default norm (bands clear of DC and Nyquist); any other norm only rescales it.
    """
    analytic = torch.fft.ifft(2 * spectrum.unsqueeze(-2) * bands, n=length, dim=-1)
    return (analytic * analytic.conj()).real  # |analytic|^2 in one complex product


def spectral_kurtosis(energy: Tensor) -> Tensor:
    """E|z|^4 / (E|z|^2)^2 - 2 of squared envelopes `energy` = |z|^2 along the last axis: 0 for Gaussian
    noise, larger the more the band's energy comes in bursts (impacts)."""
    mean = energy.mean(dim=-1).clamp_min(torch.finfo(energy.dtype).tiny)
    return energy.pow(2).mean(dim=-1) / mean.pow(2) - 2


def most_impulsive_band(windows: Tensor, sample_rate: float) -> tuple[Tensor, Tensor]:
    """Squared envelope `[N, L]` of each window `[N, L]` in its band of RESONANCE_BANDS_HZ of largest spectral
    kurtosis, and that band's index `[N]`: the band an analyst would demodulate."""
    length = windows.shape[-1]
    masks = band_masks(length, sample_rate, dtype=windows.dtype).to(windows.device)
    energy = squared_envelope(torch.fft.rfft(windows, dim=-1), masks, length)  # [N, K, L]
    best = spectral_kurtosis(energy).argmax(dim=-1)
    return energy[torch.arange(len(windows), device=windows.device), best], best


def envelope_spectrum(energy: Tensor) -> Tensor:
    """Amplitude spectrum `[..., F]` of squared envelopes `[..., L]`, unit-free: each is divided by its mean
    first, so a line of height 1 means the energy is fully modulated at that rate, whatever the signal's level.
    Hann-tapered, which keeps a line within about +-1 bin (MAIN_LOBE_BINS)."""
    swing = energy / energy.mean(dim=-1, keepdim=True).clamp_min(torch.finfo(energy.dtype).tiny) - 1
    taper, scale = _taper(energy.shape[-1], energy.dtype, energy.device)
    return torch.fft.rfft(swing * taper, dim=-1).abs() * scale


@functools.lru_cache(maxsize=8)
def _taper(length: int, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor]:
    """The Hann taper and the factor that makes a full-scale sinusoid's line 1, built once per shape, outside
    inference mode so that training can save them for backward."""
    with torch.inference_mode(False):
        taper = torch.hann_window(length, dtype=dtype, device=device)
        return taper, 2 / taper.sum()


def comb_contrast(
    energy: Tensor, sample_rate: float, shaft_hz: Tensor | float, bearing: BearingGeometry | Tensor = SKF_6205_DE
) -> tuple[Tensor, Tensor]:
    """Contrast [B, 3] of the ball, inner and outer combs (COMB_LOCATIONS) in the envelope spectrum of squared
    envelopes `energy` [B, L], and whether every comb kept at least one bin of its own ([B] bool).

    The power spectrum is read from 3 to 17 shaft orders, below which sit the shaft- and cage-rate load-zone
    lines that belong to no comb and above which slip smears the harmonics together. Combs: outer = harmonics
    of BPFO (the defect is stationary); inner = harmonics of BPFI with +-1 shaft-order sidebands (load zone);
    ball = harmonics of 2 BSF with +-FTF sidebands. Lines are +-3 % wide plus the window's main lobe.
    Bins claimed by two combs (e.g. 3 BPFO ~ 2 BPFI) carry no evidence about the class and are left out.
    Contrast (F - rho) / (1 - rho): the comb's fraction F of the power against the fraction rho of the bins it
    covers, so 1 for a pure impact train of that location and about 0 for a flat spectrum.
    """
    length = energy.shape[-1]
    power = envelope_spectrum(energy) ** 2
    shaft = torch.as_tensor(shaft_hz, dtype=energy.dtype, device=energy.device).reshape(-1, 1).expand(len(energy), 1)
    orders = torch.fft.rfftfreq(length, 1.0 / sample_rate, device=energy.device) / shaft  # [B, K]
    bin_orders = sample_rate / length / shaft  # [B, 1]
    masks = _comb_masks(orders, bin_orders, bearing)
    in_range = (orders >= ORDER_RANGE[0]) & (orders <= ORDER_RANGE[1])
    valid = (in_range & (masks.sum(dim=1) < 2)).unsqueeze(1).to(power.dtype)  # [B, 1, K]
    masks = masks.to(power.dtype)
    tiny = torch.finfo(power.dtype).tiny
    fraction = (power.unsqueeze(1) * masks * valid).sum(-1) / (power.unsqueeze(1) * valid).sum(-1).clamp_min(tiny)
    own_bins = (masks * valid).sum(-1)
    coverage = own_bins / valid.sum(-1).clamp_min(1)
    return (fraction - coverage) / (1 - coverage).clamp_min(1e-3), (own_bins > 0).all(dim=-1)


def _comb_orders(bearing: BearingGeometry) -> list[list[float]]:
    """Line positions (shaft orders) of the ball, inner and outer combs whose bands can reach ORDER_RANGE."""
    rates = characteristic_frequencies(bearing, 1.0)
    combs = {"ball": (2 * rates["bsf"], rates["ftf"]), "inner": (rates["bpfi"], 1.0), "outer": (rates["bpfo"], 0.0)}
    lines = []
    for location in COMB_LOCATIONS:
        rate, sideband = combs[location]
        n_harmonics = int(ORDER_RANGE[1] / rate) + 1
        centres = {h * rate + s * sideband for h in range(1, n_harmonics + 1) for s in (-1, 0, 1)}
        lines.append(sorted(c for c in centres if ORDER_RANGE[0] - 1 <= c <= ORDER_RANGE[1] + 1))
    return lines


def _comb_masks(orders: Tensor, bin_orders: Tensor, bearing: BearingGeometry | Tensor) -> Tensor:
    """[B, 3, K] bool: the bins of each window's ball, inner and outer combs, for its own bearing's geometry."""
    if isinstance(bearing, BearingGeometry):
        return torch.stack([_comb_mask(orders, bin_orders, centres) for centres in _comb_orders(bearing)], dim=1)
    rows = torch.as_tensor(bearing).reshape(-1, 4)
    if rows.shape[0] != orders.shape[0]:
        raise ValueError(f"bearing has {rows.shape[0]} rows for {orders.shape[0]} windows")
    masks = orders.new_zeros((orders.shape[0], len(COMB_LOCATIONS), orders.shape[1]), dtype=torch.bool)
    geometries, which = torch.unique(rows.cpu(), dim=0, return_inverse=True)
    for k, (n_balls, ball, pitch, angle) in enumerate(geometries.tolist()):
        mine = (which == k).to(orders.device)
        masks[mine] = _comb_masks(orders[mine], bin_orders[mine], BearingGeometry(round(n_balls), ball, pitch, angle))
    return masks


def _comb_mask(orders: Tensor, bin_orders: Tensor, centres: list[float]) -> Tensor:
    """[B, K] bool: bins within a line's half-width (relative + main lobe) of any of `centres`."""
    centres_t = orders.new_tensor(centres).view(1, -1, 1)
    half_width = RELATIVE_HALF_WIDTH * centres_t + MAIN_LOBE_BINS * bin_orders.unsqueeze(-1)
    return ((orders.unsqueeze(1) - centres_t).abs() <= half_width).any(dim=1)
