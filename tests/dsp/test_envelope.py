"""The envelope analysis: a band's analytic envelope, the choice of band, the envelope spectrum and the fault combs
in it."""

import math

import numpy as np
import scipy.signal
import torch

from pipeline.data.bearing import SKF_6205_DE, characteristic_frequencies
from pipeline.dsp.envelope import (
    COMB_LOCATIONS,
    RESONANCE_BANDS_HZ,
    band_masks,
    comb_contrast,
    envelope_spectrum,
    most_impulsive_band,
    squared_envelope,
)

FS, LENGTH = 12000.0, 4096
T = torch.arange(LENGTH, dtype=torch.float64) / FS


def ringing_impacts(rate_hz: float, resonance_hz: float) -> torch.Tensor:
    """Impacts at `rate_hz`, each ringing a lightly damped mode at `resonance_hz`, as one float64 window."""
    since = torch.remainder(T, 1 / rate_hz)
    return torch.exp(-2 * math.pi * resonance_hz * 0.03 * since) * torch.sin(2 * math.pi * resonance_hz * since)


def test_the_squared_envelope_is_the_hilbert_envelope_of_the_band_passed_signal():
    """A brick-wall band in the frequency domain, then |analytic signal|^2, in the signal's own units."""
    x = torch.randn(LENGTH, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    masks = band_masks(LENGTH, FS, [(2000.0, 3500.0)], torch.float64)
    band_passed = torch.fft.irfft(torch.fft.rfft(x) * masks[0], n=LENGTH).numpy()
    expected = np.abs(scipy.signal.hilbert(band_passed)) ** 2
    np.testing.assert_allclose(squared_envelope(torch.fft.rfft(x), masks, LENGTH)[0].numpy(), expected, atol=1e-12)


def test_the_band_chosen_is_where_impacts_ring_not_where_the_power_is():
    """A strong steady tone near 2 kHz holds most of the power; the impacts ring at 5 kHz, and spectral kurtosis
    picks the one band that holds 5 kHz alone. (The tone fits the window a whole number of times: see
    `band_masks` for what a strong tone that does not fit does to the bands near it.)"""
    noise = 0.05 * torch.randn(LENGTH, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    tone = torch.sin(2 * math.pi * (683 * FS / LENGTH) * T)
    x = ringing_impacts(100.0, 5000.0) + 3 * tone + noise
    energy, best = most_impulsive_band(x[None], FS)
    assert RESONANCE_BANDS_HZ[int(best)] == (4000, 5500)
    masks = band_masks(LENGTH, FS, dtype=torch.float64)
    torch.testing.assert_close(energy[0], squared_envelope(torch.fft.rfft(x), masks, LENGTH)[int(best)])


def test_a_fully_modulated_energy_shows_a_line_of_height_one():
    """The envelope spectrum is unit-free: energy swinging fully at a rate shows 1 there, at any level."""
    rate_bin = 100
    energy = 1 + torch.cos(2 * math.pi * rate_bin * torch.arange(LENGTH, dtype=torch.float64) / LENGTH)
    for level in (1e-3, 1.0, 1e3):
        spectrum = envelope_spectrum(level * energy)
        assert spectrum.argmax() == rate_bin
        torch.testing.assert_close(spectrum[rate_bin], torch.tensor(1.0, dtype=torch.float64))


def test_impacts_at_a_fault_rate_light_up_that_fault_locations_comb():
    """Outer-race impacts (BPFO) ring a 3 kHz mode; their squared envelope's spectrum lies on the outer comb."""
    shaft_hz = 29.95
    bpfo = characteristic_frequencies(SKF_6205_DE, shaft_hz)["bpfo"]
    energy, _ = most_impulsive_band(ringing_impacts(bpfo, 3000.0)[None], FS)
    contrast, resolved = comb_contrast(energy, FS, shaft_hz, SKF_6205_DE)
    scores = dict(zip(COMB_LOCATIONS, contrast[0].tolist()))
    assert resolved.all()
    assert scores["outer"] > 0.5 > max(scores["ball"], scores["inner"])
