"""What the accelerometer reads besides the measured mode and the shaft harmonics, at a level the caller sets.

Three parts in random proportions, each of unit RMS before mixing: other structural modes rung by the same
strikes, the machine's background vibration of random colour, and white electronics noise. None is motion of
the measured mode, so the fields stay exact while the reading looks like a real machine's.
"""

from __future__ import annotations

import numpy as np

from pipeline.data.excitation import log_uniform
from pipeline.data.modes import prewarped, strike_peak, tustin_mode


def interference(strikes: np.ndarray, band_hz: tuple[float, float], fs: float, rng: np.random.Generator) -> np.ndarray:
    """[T] reading of unit RMS: other modes (none for a healthy bearing), background and noise, mixed with
    weights drawn evenly over all proportions (a flat Dirichlet)."""
    parts = [
        other_modes(strikes, band_hz, fs, rng),
        background(strikes.size, fs, rng),
        rng.standard_normal(strikes.size),
    ]
    weights = rng.dirichlet(np.ones(len(parts)))
    mix = sum(np.sqrt(w) * p / max(np.sqrt(np.mean(p**2)), np.finfo(float).tiny) for w, p in zip(weights, parts))
    return mix / np.sqrt(np.mean(mix**2))


def other_modes(strikes: np.ndarray, band_hz: tuple[float, float], fs: float, rng: np.random.Generator) -> np.ndarray:
    """Acceleration [T] of 1-2 other structural modes rung by the strikes `strikes` (pulses in g of strike peak).

    CWRU's strikes ring several modes at once (spectral peaks near 1.0, 1.4, 2.5-2.9, 3.2-3.7 and 4.1 kHz, two
    or three per recording), each with its own level. Each mode here rings at a random frequency in `band_hz`,
    damping 0.01-0.08 and level 0.2-1; it carries the strikes' rhythm into another band.
    """
    dt = 1 / fs
    reading = np.zeros_like(strikes)
    for _ in range(rng.integers(1, 3)):
        hz, damping, level = log_uniform(rng, *band_hz), log_uniform(rng, 0.01, 0.08), rng.uniform(0.2, 1.0)
        w = prewarped(hz, dt)
        reading += level * tustin_mode(strikes / strike_peak(w, damping, dt), w, damping, dt)[2]
    return reading


def background(n_samples: int, fs: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian vibration [T] of the machine's other sources (motor, coupling, healthy rolling), of random colour.

    Its spectrum tilts by -25 to +10 dB per decade (CWRU, between strikes, 0.2-2 kHz: -24 to +7 dB) and carries
    0-2 bumps of up to +20 dB at 0.5 kHz-0.45 fs, resonances the background rings (CWRU's healthy recording has
    65 % of its power at 4-6 kHz, 16-21 % below 1 kHz). It fades in over 100-300 Hz, where the shaft harmonics
    rule.
    """
    freqs = np.fft.rfftfreq(n_samples, 1 / fs)
    tilt = rng.uniform(-25, 10)
    continuum = lambda f: (np.maximum(f, 1.0) / 1000) ** (tilt / 20)  # noqa: E731
    shape = continuum(freqs)
    for _ in range(rng.integers(0, 3)):
        centre, width, gain = log_uniform(rng, 500, 0.45 * fs), rng.uniform(0.03, 0.15), log_uniform(rng, 1, 10)
        shape += gain * continuum(centre) * np.exp(-0.5 * ((freqs - centre) / (width * centre)) ** 2)
    shape *= 0.5 - 0.5 * np.cos(np.pi * np.clip((freqs - 100) / 200, 0, 1))
    return np.fft.irfft(np.fft.rfft(rng.standard_normal(n_samples)) * shape, n_samples)
