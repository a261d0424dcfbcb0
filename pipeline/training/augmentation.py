"""Training-time randomisation of what real machines vary and a fault does not: the transfer path.

Between a bearing and its accelerometer the vibration passes through housing, bolts and sensor mount, a linear
filter that differs from machine to machine; the fault's kinematics (where impacts repeat, in shaft orders) pass
through any such filter unchanged. Filtering each training window through a random smooth frequency response and
gain makes a model that leans on one rig's resonances and levels pay for it. It is a choice of the data
(`data.augment_*_db`), off by default: on CWRU's bearings never seen it did not help (docs/how-it-works.md)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

N_RIPPLES = 6  # cosine terms of the random log-gain curve over 0..Nyquist: a few broad peaks and notches
NEPERS_PER_DB = math.log(10) / 20


def random_transfer_path(windows: Tensor, spread_db: float, gain_db: float) -> Tensor:
    """Windows `[B, L]` or `[B, L, C]` (time on axis 1), each passed through its own random linear filter: a smooth
    log-gain curve over frequency with about `spread_db` standard deviation, times a gain of `gain_db` standard
    deviation. Zero-phase (the response is real), so impacts stay where they are. Uses torch's global RNG."""
    if spread_db < 0 or gain_db < 0:
        raise ValueError(f"spread_db and gain_db must be >= 0, got {spread_db} and {gain_db}")
    length = windows.shape[1]
    spectrum = torch.fft.rfft(windows.float(), dim=1)
    batch, bins = windows.shape[0], spectrum.shape[1]
    frequency = torch.linspace(0, math.pi, bins, device=windows.device)  # 0..Nyquist as an angle
    order = torch.arange(1, N_RIPPLES + 1, device=windows.device, dtype=torch.float32)
    # each of N_RIPPLES terms carries spread/sqrt(N) dB, so the curve's spread is about spread_db
    amplitude = torch.randn(batch, N_RIPPLES, 1, device=windows.device) * (spread_db / math.sqrt(N_RIPPLES))
    phase = 2 * math.pi * torch.rand(batch, N_RIPPLES, 1, device=windows.device)
    log_gain_db = (amplitude * torch.cos(order[:, None] * frequency + phase)).sum(dim=1)  # [B, bins]
    log_gain_db = log_gain_db + gain_db * torch.randn(batch, 1, device=windows.device)
    shape = (batch, bins) + (1,) * (windows.ndim - 2)
    response = torch.exp(log_gain_db * NEPERS_PER_DB).view(shape)
    return torch.fft.irfft(spectrum * response, n=length, dim=1).to(windows.dtype)
