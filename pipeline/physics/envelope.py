"""The squared-envelope spectrum in shaft orders: where a bearing's impacts repeat, independent of speed.

Every strike of a local fault rings the structure's resonances; demodulating a resonance band (the analytic
signal's squared magnitude) leaves a pulse train at the strike rate, and the spectrum of that envelope shows lines
at the fault's characteristic frequency and its harmonics, with sidebands at the shaft or cage rate where the load
zone modulates the strikes. Those rates are fixed multiples of the shaft speed (pipeline.data.bearing), so reading
the envelope spectrum on a grid of shaft orders gives the same picture at every load, and on every bearing of the
same geometry. Everything here is differentiable, so the bands to demodulate can be learned.
"""
from __future__ import annotations

import torch
from torch import Tensor


def envelope_order_spectrum(spectrum: Tensor, bands: Tensor, length: int, shaft_hz: Tensor, sample_rate: float,
                            orders: Tensor) -> Tensor:
    """Magnitude of the squared-envelope spectrum of each band, read at `orders` of the shaft speed.

    spectrum: rfft of the windows `[B, F]` (F = length // 2 + 1); bands: weights in [0, 1] over those bins
    `[B, K, F]`; shaft_hz: `[B]`; orders: `[n]`. Returns `[B, K, n]`, unit-free: each envelope is divided by
    its mean before its spectrum is taken, so a line of height 1 means the band's energy is fully modulated.
    """
    analytic = torch.fft.ifft(2 * spectrum.unsqueeze(1) * bands, n=length, dim=-1)  # positive frequencies only
    energy = analytic.real**2 + analytic.imag**2  # [B, K, L] squared envelope
    energy = energy / energy.mean(dim=-1, keepdim=True).clamp_min(torch.finfo(energy.dtype).tiny) - 1
    taper = torch.hann_window(length, dtype=energy.dtype, device=energy.device)
    lines = torch.fft.rfft(energy * taper, dim=-1).abs() * (2 / taper.sum())  # [B, K, F]
    # the bin of each order at each window's speed, read by linear interpolation between neighbouring bins
    position = (orders[None, :] * shaft_hz[:, None] * (length / sample_rate)).clamp(0, lines.shape[-1] - 1.001)
    low = position.floor().long()
    frac = (position - low).unsqueeze(1)
    index = low.unsqueeze(1).expand(-1, lines.shape[1], -1)
    return lines.gather(-1, index) * (1 - frac) + lines.gather(-1, index + 1) * frac
