"""A physics simulator of CWRU-like bearing recordings with exact ground truth.

A local fault is struck at the class's characteristic rate; each strike is a short force pulse that rings
a single structural mode x'' + 2 zeta w_n x' + w_n^2 x = f (per unit mass); the accelerometer reads the
mode's acceleration plus shaft harmonics and white noise.

The mode is integrated with the trapezoidal rule (Tustin) at the sampling rate, the same discretisation
`pipeline.physics.residuals` states, so the returned fields satisfy those equations to rounding error on
any window cut from a recording. Tustin maps the continuous resonance w to (2/dt) atan(w dt/2), so the
equation's w_n is pre-warped to put the sampled resonance at the drawn physical `resonance_hz`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from pipeline.data.bearing import (
    NOMINAL_RPM,
    SKF_6205_DE,
    BearingGeometry,
    characteristic_frequencies,
    fault_frequency,
)
from pipeline.data.classes import class_index, fault_location, fault_size_in

PULSE_WIDTH_S = 50e-6  # Gaussian contact pulse: broadband enough to ring a 2.5-4 kHz mode
PULSE_HALF_SPAN = 4  # samples either side of an impact that receive pulse force
REFERENCE_SIZE_IN = 0.014  # fault size whose impacts ring the mode to about 1 g


@dataclass(frozen=True)
class SimulatedRecording:
    """One recording: the measured `signal` and the ground truth that produced it."""

    signal: np.ndarray  # float32 [T] accelerometer reading
    fields: dict[str, np.ndarray]  # float64 [T]: displacement, velocity, acceleration (noise-free), force
    params: dict[str, float]  # natural_freq_hz, damping_ratio, rpm, shaft_hz, fault_hz, resonance_hz, snr_db
    label: str
    load_hp: int
    sample_rate: float


def simulate_recording(
    label: str,
    load_hp: int,
    seed: int,
    duration_s: float = 2.0,
    snr_db: float = 20.0,
    sample_rate: float = 12000,
    bearing: BearingGeometry = SKF_6205_DE,
    harmonics: bool = True,
) -> SimulatedRecording:
    """Simulate `duration_s` of accelerometer signal for class `label` at motor load `load_hp` (0-3).

    The random stream is keyed by (seed, label, load_hp): the same triple always gives the same recording,
    and one seed gives independent recordings across classes and loads. `snr_db=inf` switches noise off;
    the SNR is the power ratio of the clean reading (structure + harmonics) to the white noise.
    """
    if load_hp not in NOMINAL_RPM:
        raise ValueError(f"load_hp must be one of {sorted(NOMINAL_RPM)}, got {load_hp}")
    if not duration_s > 0 or not sample_rate > 0:
        raise ValueError(f"duration_s and sample_rate must be positive, got {duration_s} and {sample_rate}")
    rng = np.random.default_rng([seed, class_index(label), load_hp])
    n_samples = int(round(duration_s * sample_rate))
    dt = 1.0 / sample_rate

    rpm = NOMINAL_RPM[load_hp] * (1 + rng.uniform(-0.005, 0.005))  # recorded speeds scatter around nominal
    shaft_hz = rpm / 60
    resonance_hz = rng.uniform(2500, 4000)
    damping = rng.uniform(0.02, 0.06)
    w_n = 2 / dt * math.tan(math.pi * resonance_hz * dt)  # pre-warp: Tustin maps w_n back to resonance_hz

    # Surface roughness (all classes): a weak white force, scaled below so it rings the mode at ~0.03 g.
    roughness = rng.standard_normal(n_samples)
    impacts = _impact_train(label, shaft_hz, bearing, n_samples, sample_rate, rng) / _strike_peak(w_n, damping, dt)
    x, v, a = _tustin_mode(np.stack([impacts, roughness]), w_n, damping, dt)
    gain = rng.uniform(0.02, 0.04) / np.sqrt(np.mean(a[1] ** 2))
    fields = {
        "displacement": x[0] + gain * x[1],
        "velocity": v[0] + gain * v[1],
        "acceleration": a[0] + gain * a[1],
        "force": impacts + gain * roughness,
    }

    clean = fields["acceleration"].copy()
    if harmonics:  # residual unbalance and misalignment at 1x and 2x shaft speed
        t = np.arange(n_samples) * dt
        for order, amplitude in ((1, rng.uniform(0.02, 0.06)), (2, rng.uniform(0.01, 0.03))):
            clean += amplitude * np.cos(2 * math.pi * order * shaft_hz * t + rng.uniform(0, 2 * math.pi))
    noise_std = np.sqrt(np.mean(clean**2)) * 10 ** (-snr_db / 20)  # zero for snr_db=inf
    signal = (clean + noise_std * rng.standard_normal(n_samples)).astype(np.float32)

    fault_hz = fault_frequency(label, bearing, shaft_hz)
    params = {
        "natural_freq_hz": w_n / (2 * math.pi),
        "damping_ratio": damping,
        "rpm": rpm,
        "shaft_hz": shaft_hz,
        "fault_hz": math.nan if fault_hz is None else fault_hz,
        "resonance_hz": resonance_hz,
        "snr_db": float(snr_db),
    }
    return SimulatedRecording(signal, fields, params, label, load_hp, float(sample_rate))


def _impact_train(
    label: str, shaft_hz: float, bearing: BearingGeometry, n_samples: int, fs: float, rng: np.random.Generator
) -> np.ndarray:
    """Impact force of the fault in strike-amplitude units (zeros for a healthy bearing).

    Impacts come at the class rate, each interval off by a random 1-2 % (standard deviation) because the
    rolling elements slip, so the train is not strictly periodic. Impulses scale with fault size; inner-race
    impacts are modulated at the shaft rate (the defect turns through the load zone), ball impacts at the
    cage rate (the ball is carried through it); the outer-race defect sits still in the load zone.
    """
    location = fault_location(label)
    if location == "normal":
        return np.zeros(n_samples)
    rate = fault_frequency(label, bearing, shaft_hz)
    slip = rng.uniform(0.01, 0.02)
    n_max = int(n_samples / fs * rate * 1.2) + 10
    intervals = (1 + slip * rng.standard_normal(n_max)) / rate
    times = rng.uniform(0, 1 / rate) + np.concatenate([[0.0], np.cumsum(intervals[:-1])])
    times = times[times < n_samples / fs]

    # +-15 % between recordings of one size: sizes 1:2:3 stay separable by impact level, as on CWRU's rig.
    amplitude = fault_size_in(label) / REFERENCE_SIZE_IN * rng.uniform(0.85, 1.15)
    amplitude = amplitude * (1 + 0.05 * rng.standard_normal(times.size))  # strike-to-strike scatter
    modulation_hz = {"inner": shaft_hz, "ball": characteristic_frequencies(bearing, shaft_hz)["ftf"]}.get(location)
    if modulation_hz is not None:
        depth, phase = rng.uniform(0.5, 0.9), rng.uniform(0, 2 * math.pi)
        amplitude *= 1 - depth / 2 + depth / 2 * np.cos(2 * math.pi * modulation_hz * times + phase)

    offsets = np.arange(-PULSE_HALF_SPAN, PULSE_HALF_SPAN + 1)
    index = np.floor(times * fs).astype(int)[:, None] + offsets
    force = np.zeros(n_samples)
    inside = (index >= 0) & (index < n_samples)
    np.add.at(force, index[inside], (amplitude[:, None] * _pulse(index / fs - times[:, None]))[inside])
    return force


def _strike_peak(w_n: float, damping: float, dt: float) -> float:
    """Peak acceleration rung by one unit-area pulse: dividing by it makes strike amplitude 1 mean 1 g."""
    probe = _pulse((np.arange(256) - PULSE_HALF_SPAN) * dt)
    return np.abs(_tustin_mode(probe, w_n, damping, dt)[2]).max()


def _pulse(tau: np.ndarray) -> np.ndarray:
    """Unit-area Gaussian contact pulse at time offsets `tau` (s)."""
    return np.exp(-0.5 * (tau / PULSE_WIDTH_S) ** 2) / (PULSE_WIDTH_S * math.sqrt(2 * math.pi))


def _tustin_mode(force: np.ndarray, w_n: float, damping: float, dt: float):
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
