"""A window read in its bearing's own coordinates: how strongly its squared-envelope spectrum shows each fault
location's comb, on an axis in units of that location's own fault rate.

A local fault is struck at a rate fixed by the bearing's kinematics (pipeline.data.bearing): BPFO for the outer
race, BPFI for the inner race, 2 BSF for a ball (it strikes both races once per spin). Dividing the envelope
spectrum's frequency axis by that rate puts every bearing's comb at harmonics 1, 2, 3, ... of the same axis, so
evidence read there means the same thing on every bearing and at every speed: nothing bearing-specific is left to
learn. Each line is read with the sidebands its load zone puts beside it: the shaft rate for the inner race
(it turns through the load zone once per revolution), the cage rate for a ball, none for the stationary outer race.

Every quantity is level-free: the envelope spectrum is divided by its median over the comb range, so a line
of evidence 0 is background and loudness (which differs 100x between rigs) tells no class apart. Each window is
demodulated in half-overlapping bands up to its own Nyquist frequency, read at its own sampling rate, and each
location's comb is read in the band where it stands out most: the band chosen by periodicity at the bearing's
fault orders, not by kurtosis, which a single strong impact or a noisy band can win.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from pipeline.dsp.envelope import band_masks, envelope_spectrum, squared_envelope

FAULT_LOCATIONS_READ = ("ball", "inner", "outer")
HARMONICS = 4  # comb lines read per location: the fundamental and three harmonics
SIDEBAND_OFFSETS = (-1, 0, 1)  # in units of the location's modulation rate
TOLERANCE = 0.04  # relative half-width of a line: slip (1-2 %) and a nominal speed a few per cent off
BAND_WIDTH_HZ = 2000.0  # wide enough to carry the 4th harmonic of BPFI with its sidebands at 40 Hz shaft speed
BAND_START_HZ = 1000.0  # above the shaft harmonics, whose leakage would swamp the envelope
NYQUIST_MARGIN = 0.9  # bands end below the anti-alias roll-off
EVIDENCE_SHAPE = (len(FAULT_LOCATIONS_READ), HARMONICS, len(SIDEBAND_OFFSETS))


@functools.lru_cache(maxsize=16)
def demodulation_bands(sample_rate: float) -> tuple[tuple[float, float], ...]:
    """Half-overlapping bands of BAND_WIDTH_HZ from BAND_START_HZ up to NYQUIST_MARGIN of Nyquist: the more a
    recording's rate, the more resonances it can be read in."""
    top = NYQUIST_MARGIN * sample_rate / 2
    if top - BAND_START_HZ < BAND_WIDTH_HZ:
        raise ValueError(
            f"sample_rate {sample_rate:g} Hz is too low to demodulate a {BAND_WIDTH_HZ:g} Hz band above "
            f"{BAND_START_HZ:g} Hz (needs at least {2 * (BAND_START_HZ + BAND_WIDTH_HZ) / NYQUIST_MARGIN:g} Hz)"
        )
    bands, low = [], BAND_START_HZ
    while low + BAND_WIDTH_HZ <= top:
        bands.append((low, low + BAND_WIDTH_HZ))
        low += BAND_WIDTH_HZ / 2
    return tuple(bands)


def fault_rates(bearing: Tensor) -> Tensor:
    """`[B, 3, 2]` (rate, modulation) in shaft orders of the ball, inner and outer combs of bearings `[B, 4]`
    (n_balls, ball and pitch diameter, contact angle in degrees): (2 BSF, FTF), (BPFI, 1), (BPFO, 0)."""
    n_balls, ball, pitch, angle = bearing.unbind(-1)
    ratio = ball / pitch * torch.cos(torch.deg2rad(angle))
    ftf = (1 - ratio) / 2
    rates = torch.stack([pitch / ball * (1 - ratio**2), n_balls * (1 + ratio) / 2, n_balls * ftf], dim=-1)
    modulation = torch.stack([ftf, torch.ones_like(ftf), torch.zeros_like(ftf)], dim=-1)
    return torch.stack([rates, modulation], dim=-1)


def line_orders(rates: Tensor) -> Tensor:
    """`[B, 3, HARMONICS, 3]` shaft orders of every line read, from `fault_rates`: harmonic h of each location's
    rate, with its sidebands at SIDEBAND_OFFSETS of its modulation rate."""
    harmonics = torch.arange(1, HARMONICS + 1, dtype=rates.dtype, device=rates.device)
    offsets = torch.tensor(SIDEBAND_OFFSETS, dtype=rates.dtype, device=rates.device)
    rate, modulation = rates[..., 0, None, None], rates[..., 1, None, None]
    return rate * harmonics[:, None] + modulation * offsets


@functools.lru_cache(maxsize=16)
def _demodulation_masks(length: int, sample_rate: float) -> Tensor:
    """`band_masks` of `demodulation_bands`, built once per window length and rate (not once per forward), outside
    inference mode so that training may use them too."""
    with torch.inference_mode(False):
        return band_masks(length, sample_rate, demodulation_bands(sample_rate))


def fault_order_evidence(windows: Tensor, sample_rate: float, shaft_hz: Tensor, bearing: Tensor) -> Tensor:
    """`[B, 3, HARMONICS, 3]` evidence of each window `[B, L]` for each comb line (`line_orders`), in nepers above
    the envelope spectrum's median: the log of the largest line within TOLERANCE of where the line should be,
    read in the band where the location's comb stands out most. shaft_hz: `[B]`; bearing: `[B, 4]`."""
    length = windows.shape[-1]
    windows = windows.float()
    masks = _demodulation_masks(length, float(sample_rate)).to(windows.device)
    spectra = envelope_spectrum(squared_envelope(torch.fft.rfft(windows), masks, length))  # [B, K, F]
    bins_per_order = shaft_hz.float() * length / sample_rate  # [B]
    rates = fault_rates(bearing.float())
    orders = line_orders(rates)  # [B, 3, H, S]
    top_bin = int(min(spectra.shape[-1] - 1, (orders.amax() * (1 + TOLERANCE) * bins_per_order.amax()).ceil()))
    background = spectra[..., 1 : top_bin + 1].median(dim=-1, keepdim=True).values
    level = (spectra / background.clamp_min(torch.finfo(spectra.dtype).tiny)).clamp_min(1e-6).log()
    to_bins = bins_per_order[:, None, None, None]
    half_rate = rates[..., 0, None, None] / 2
    lines = _line_peaks(level, orders * to_bins)  # [B, K, 3, H, S]
    between = (
        _line_peaks(level, (orders - half_rate) * to_bins) + _line_peaks(level, (orders + half_rate) * to_bins)
    ) / 2
    evidence = lines - between
    best = evidence[..., 1].sum(dim=-1).argmax(dim=1)  # [B, 3]: per location, the band of strongest comb
    index = best[:, None, :, None, None].expand(-1, 1, -1, *evidence.shape[-2:])
    return evidence.gather(1, index).squeeze(1)


def _line_peaks(level: Tensor, positions: Tensor) -> Tensor:
    """`[B, K, 3, H, S]`: the largest of `level` `[B, K, F]` within TOLERANCE (and one bin) of each line's bin
    `positions` `[B, 3, H, S]`; a line beyond the last bin reads as background (0)."""
    half_width = (positions * TOLERANCE).clamp_min(1.0)
    reach = int(half_width.amax().ceil())
    offsets = torch.arange(-reach, reach + 1, device=level.device, dtype=positions.dtype)
    candidates = positions.round().unsqueeze(-1) + offsets  # [B, 3, H, S, W]
    inside = ((candidates - positions.unsqueeze(-1)).abs() <= half_width.unsqueeze(-1) + 0.5) & (candidates >= 1)
    in_range = candidates < level.shape[-1]
    flat = candidates.clamp(0, level.shape[-1] - 1).long().flatten(1)  # [B, N]
    values = level.gather(-1, flat.unsqueeze(1).expand(-1, level.shape[1], -1)).view(
        *level.shape[:2], *candidates.shape[1:]
    )
    values = values.masked_fill(~(inside & in_range).unsqueeze(1), float("-inf"))
    peaks = values.amax(dim=-1)
    return torch.where(torch.isfinite(peaks), peaks, torch.zeros_like(peaks))
