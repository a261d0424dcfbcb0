"""The squared-envelope spectrum in shaft orders: where a bearing's impacts repeat, independent of speed.

Every strike of a local fault rings the structure's resonances; demodulating a resonance band (the analytic
signal's squared magnitude) leaves a pulse train at the strike rate, and the spectrum of that envelope shows lines
at the fault's characteristic frequency and its harmonics, with sidebands at the shaft or cage rate where the load
zone modulates the strikes. Those rates are fixed multiples of the shaft speed (pipeline.data.bearing), so reading
the envelope spectrum on a grid of shaft orders gives the same picture at every load, and on every bearing of the
same geometry. Everything here is differentiable, so the bands to demodulate can be learned.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor


def envelope_order_spectrum(
    spectrum: Tensor, bands: Tensor, length: int, shaft_hz: Tensor, sample_rate: float, orders: Tensor
) -> Tensor:
    """Magnitude of the squared-envelope spectrum of each band, read at `orders` of the shaft speed.

    spectrum: rfft of the windows `[B, F]` (F = length // 2 + 1); bands: weights in [0, 1] over those bins
    `[B, K, F]`; shaft_hz: `[B]`; orders: `[n]`. Returns `[B, K, n]`, unit-free: each envelope is divided by
    its mean before its spectrum is taken, so a line of height 1 means the band's energy is fully modulated.
    """
    energy, mean = _squared_envelope(spectrum, bands, length)
    energy = energy / mean - 1
    taper, scale = _taper(length, energy.dtype, energy.device)
    lines = torch.fft.rfft(energy * taper, dim=-1).abs() * scale  # [B, K, F]
    # the bin of each order at each window's speed, read by linear interpolation between neighbouring bins
    position = (orders[None, :] * shaft_hz[:, None] * (length / sample_rate)).clamp(0, lines.shape[-1] - 1.001)
    low = position.floor().long()
    frac = (position - low).unsqueeze(1)
    index = low.unsqueeze(1).expand(-1, lines.shape[1], -1)
    return lines.gather(-1, index) * (1 - frac) + lines.gather(-1, index + 1) * frac


def envelope_order_spectrum_at(
    spectrum: Tensor, bands: Tensor, length: int, shaft_hz: float, sample_rate: float, orders: tuple[float, ...]
) -> Tensor:
    """`envelope_order_spectrum` of windows that all turn at one `shaft_hz` (serving: one speed per request),
    equal to float tolerance in fewer, smaller steps: the division by the mean is done on the few bins the
    orders fall between (the transform is linear), and the reading is one matmul with a matrix made once per
    speed. `orders` is a tuple, the key of that matrix, so that the model converts its grid once, not per call."""
    energy, mean = _squared_envelope(spectrum, bands, length)
    taper, minus_taper_lines, reading = _order_reading(
        length, shaft_hz, sample_rate, orders, energy.dtype, energy.device
    )
    lines = torch.fft.rfft(energy * taper, dim=-1)[..., : len(reading)]
    return torch.addcdiv(minus_taper_lines, lines, mean).abs() @ reading  # |lines / mean - taper lines|


def _squared_envelope(spectrum: Tensor, bands: Tensor, length: int) -> tuple[Tensor, Tensor]:
    """Each band's squared envelope `[B, K, L]` and its mean over time `[B, K, 1]` (floored above zero).
    Positive frequencies only: the analytic signal's factor 2 cancels in the division by the mean, and so does
    the spectrum's scale (any rfft normalisation will do)."""
    analytic = torch.fft.ifft(spectrum.unsqueeze(1) * bands, n=length, dim=-1)
    energy = (analytic * analytic.conj()).real  # |analytic|^2 in one complex product
    return energy, energy.mean(dim=-1, keepdim=True).clamp_min(torch.finfo(energy.dtype).tiny)


@functools.lru_cache(maxsize=8)
def _taper(length: int, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor]:
    """The Hann taper and the factor that makes a full-scale sinusoid's line 1, built once per shape, outside
    inference mode so that training can save them for backward."""
    with torch.inference_mode(False):
        taper = torch.hann_window(length, dtype=dtype, device=device)
        return taper, 2 / taper.sum()


@functools.lru_cache(maxsize=64)
def _order_reading(
    length: int,
    shaft_hz: float,
    sample_rate: float,
    orders: tuple[float, ...],
    dtype: torch.dtype,
    device: torch.device,
) -> tuple[Tensor, Tensor, Tensor]:
    """For `envelope_order_spectrum_at`: the taper, minus the spectrum of the taper on the n bins read (what the
    envelope's mean contributes there), and `[n, len(orders)]` interpolation weights times the line scale,
    from the same positions `envelope_order_spectrum` computes."""
    with torch.inference_mode(False), torch.no_grad():
        taper, scale = _taper(length, dtype, device)
        grid = torch.tensor(orders, dtype=dtype, device=device)
        speed = torch.tensor(shaft_hz, dtype=dtype, device=device)
        position = (grid * speed * (length / sample_rate)).clamp(0, length // 2 + 1 - 1.001)
        low = position.floor().long()
        frac = position - low
        columns = torch.arange(len(orders), device=device)
        reading = torch.zeros(int(low.max()) + 2, len(orders), dtype=dtype, device=device)
        reading[low, columns] = (1 - frac) * scale
        reading[low + 1, columns] = frac * scale
        return taper, -torch.fft.rfft(taper)[: len(reading)], reading
