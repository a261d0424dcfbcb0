"""A window read in its bearing's own coordinates: the same fault gives the same evidence on any bearing, at any
speed, sampling rate and level."""

import math

import pytest
import torch

from pipeline.dsp.fault_orders import (
    FAULT_LOCATIONS_READ,
    HARMONICS,
    demodulation_bands,
    fault_order_evidence,
    fault_rates,
)

SKF_6205 = torch.tensor([9.0, 0.3126, 1.537, 0.0])
OTHER_BEARING = torch.tensor([8.0, 0.3125, 1.3189, 0.0])
OUTER, INNER, BALL = FAULT_LOCATIONS_READ.index("outer"), FAULT_LOCATIONS_READ.index("inner"), 0


def impacts(rate_hz: float, fs: float, seconds: float = 0.5, resonance_hz: float = 3000.0, shaft_hz: float = 0.0):
    """Strikes at `rate_hz`, each ringing a mode at `resonance_hz`, in light noise; amplitude-modulated at `shaft_hz`
    (an inner race turning through the load zone) when given."""
    t = torch.arange(int(seconds * fs), dtype=torch.float64) / fs
    since = torch.remainder(t, 1 / rate_hz)
    ringing = torch.exp(-2 * math.pi * resonance_hz * 0.03 * since) * torch.sin(2 * math.pi * resonance_hz * since)
    if shaft_hz:
        ringing = ringing * (1.2 + torch.cos(2 * math.pi * shaft_hz * t))
    noise = 0.05 * torch.randn(len(t), dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    return (ringing + noise).float()[None]


def evidence(signal, fs, shaft_hz, bearing):
    return fault_order_evidence(signal, fs, torch.tensor([shaft_hz]), bearing[None])[0]


def test_outer_race_strikes_light_up_the_outer_comb_on_two_bearings_at_three_rates():
    for bearing, shaft_hz, fs in (
        (SKF_6205, 29.95, 12000.0),
        (OTHER_BEARING, 16.7, 20000.0),
        (SKF_6205, 24.0, 48000.0),
    ):
        bpfo = float(fault_rates(bearing[None])[0, OUTER, 0]) * shaft_hz
        found = evidence(impacts(bpfo, fs), fs, shaft_hz, bearing)[..., 1]  # [location, harmonic], centre lines
        assert found[OUTER].min() > 1.0, (bearing, fs, found)
        assert found[OUTER].mean() > 2 * found[[BALL, INNER]].mean(dim=-1).max(), (bearing, fs, found)


def test_inner_race_strikes_show_their_comb_and_its_shaft_sidebands():
    shaft_hz, fs = 29.95, 12000.0
    bpfi = float(fault_rates(SKF_6205[None])[0, INNER, 0]) * shaft_hz
    found = evidence(impacts(bpfi, fs, shaft_hz=shaft_hz), fs, shaft_hz, SKF_6205)
    assert found[INNER, :, 1].mean() > 2 * found[[BALL, OUTER], :, 1].mean(dim=-1).max()
    assert found[INNER, :2, 0].min() > 0.5 and found[INNER, :2, 2].min() > 0.5  # the load zone's sidebands


def test_loudness_changes_nothing():
    signal, bearing = impacts(107.0, 12000.0), SKF_6205
    torch.testing.assert_close(
        evidence(1000 * signal, 12000.0, 29.95, bearing), evidence(signal, 12000.0, 29.95, bearing)
    )


def test_noise_shows_no_comb():
    noise = torch.randn(64, 6000, generator=torch.Generator().manual_seed(1))
    found = fault_order_evidence(noise, 12000.0, torch.full((64,), 29.95), SKF_6205.expand(64, 4))
    assert found.shape == (64, len(FAULT_LOCATIONS_READ), HARMONICS, 3)
    assert found.mean().abs() < 0.1


def test_a_faster_recording_is_demodulated_in_more_bands_and_a_slow_one_is_refused():
    assert len(demodulation_bands(48000.0)) > len(demodulation_bands(20000.0)) > len(demodulation_bands(12000.0))
    assert max(high for _, high in demodulation_bands(20000.0)) <= 9000.0
    with pytest.raises(ValueError, match="sample_rate 4000 Hz is too low"):
        demodulation_bands(4000.0)
