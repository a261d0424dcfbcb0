"""A structural mode x'' + 2 zeta w x' + w^2 x = f (per unit mass), integrated by the trapezoidal rule.

The trapezoidal rule (Tustin) is the discretisation `pipeline.physics.residuals` states, so fields computed
here satisfy those equations to rounding error on any window. Tustin maps a continuous resonance w to
(2/dt) atan(w dt/2), so a mode meant to ring at a physical frequency is pre-warped (`prewarped`).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import lfilter

PULSE_WIDTH_S = 50e-6  # Gaussian contact pulse: its spectrum is still 0.17 of its peak at 6 kHz
PULSE_HALF_SPAN = 4  # samples either side of a strike that receive pulse force


def prewarped(resonance_hz: float, dt: float) -> float:
    """The w_n (rad/s) of the trapezoidal equation whose sampled resonance is `resonance_hz`."""
    return 2 / dt * math.tan(math.pi * resonance_hz * dt)


def tustin_mode(force: np.ndarray, w_n: float, damping: float, dt: float):
    """Displacement, velocity, acceleration of the mode driven by `force` (along the last axis), at rest before.

    The trapezoidal rule on [x, v] gives, with z^-1 a one-sample delay and q = f / den(z),
        x = dt^2/4 (1 + z^-1)^2 q,  v = dt/2 (1 - z^-2) q,
        den = (1 - z^-1)^2 + zeta w dt (1 - z^-2) + (w dt / 2)^2 (1 + z^-1)^2,
    and a = f - 2 zeta w v - w^2 x closes the equation of motion exactly.
    """
    c, k = damping * w_n * dt, (w_n * dt / 2) ** 2
    den = np.array([1 + c + k, -2 + 2 * k, 1 - c + k])
    q = lfilter([1.0], den, force, axis=-1)
    q_pad = np.pad(q, [(0, 0)] * (q.ndim - 1) + [(2, 0)])
    x = dt**2 / 4 * (q_pad[..., 2:] + 2 * q_pad[..., 1:-1] + q_pad[..., :-2])
    v = dt / 2 * (q_pad[..., 2:] - q_pad[..., :-2])
    a = force - 2 * damping * w_n * v - w_n**2 * x
    return x, v, a


def strike_peak(w_n: float, damping: float, dt: float) -> float:
    """Peak acceleration rung by one unit-area pulse: dividing a pulse train by it makes amplitude 1 mean 1 g."""
    probe = pulse((np.arange(256) - PULSE_HALF_SPAN) * dt)
    return float(np.abs(tustin_mode(probe, w_n, damping, dt)[2]).max())


def pulse(tau: np.ndarray) -> np.ndarray:
    """Unit-area Gaussian contact pulse at time offsets `tau` (s)."""
    return np.exp(-0.5 * (tau / PULSE_WIDTH_S) ** 2) / (PULSE_WIDTH_S * math.sqrt(2 * math.pi))


def pulse_train(times: np.ndarray, amplitudes: np.ndarray, n_samples: int, fs: float) -> np.ndarray:
    """Force [n_samples] of unit-area pulses at `times` (s), each scaled by its amplitude."""
    offsets = np.arange(-PULSE_HALF_SPAN, PULSE_HALF_SPAN + 1)
    index = np.floor(times * fs).astype(int)[:, None] + offsets
    force = np.zeros(n_samples)
    inside = (index >= 0) & (index < n_samples)
    np.add.at(force, index[inside], (amplitudes[:, None] * pulse(index / fs - times[:, None]))[inside])
    return force
