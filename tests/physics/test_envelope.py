"""The envelope spectrum in shaft orders: a resonance modulated at a multiple of the shaft speed shows a line there."""

import math

import torch

from pipeline.physics.envelope import envelope_order_spectrum

FS, LENGTH = 12000.0, 4096
ORDERS = torch.arange(0.5, 12.0, 0.25)


def modulated_carrier(order: float, shaft_hz: float) -> torch.Tensor:
    """A 3 kHz carrier whose amplitude swings at `order` times the shaft frequency."""
    t = torch.arange(LENGTH) / FS
    return (1 + 0.8 * torch.cos(2 * math.pi * order * shaft_hz * t)) * torch.sin(2 * math.pi * 3000 * t)


def lines(signals: torch.Tensor, shaft_hz: torch.Tensor, band=(2000.0, 4000.0)) -> torch.Tensor:
    spectrum = torch.fft.rfft(signals.double(), dim=-1)
    freqs = torch.fft.rfftfreq(LENGTH, 1 / FS)
    bands = ((freqs >= band[0]) & (freqs <= band[1])).double().expand(len(signals), 1, -1)
    return envelope_order_spectrum(spectrum, bands, LENGTH, shaft_hz.double(), FS, ORDERS.double())[:, 0]


def test_the_modulation_shows_at_its_order_whatever_the_speed():
    speeds = torch.tensor([29.95, 28.7])
    signals = torch.stack([modulated_carrier(5.0, s.item()) for s in speeds])
    found = ORDERS[lines(signals, speeds).argmax(dim=-1)]
    torch.testing.assert_close(found, torch.tensor([5.0, 5.0]))


def test_a_band_without_the_carrier_shows_no_line():
    signal = modulated_carrier(5.0, 29.95)[None]
    inside = lines(signal, torch.tensor([29.95]))
    outside = lines(signal, torch.tensor([29.95]), band=(4500.0, 5500.0))
    assert outside.max() < 0.05 * inside.max()
