"""A physics simulator of CWRU-like bearing recordings with exact ground truth.

A local fault is struck at the class's characteristic rate (`pipeline.data.excitation`); the strikes ring one
measured structural mode x'' + 2 zeta w_n x' + w_n^2 x = f, integrated by the trapezoidal rule the residuals state
(`pipeline.data.modes`), so its fields satisfy them to rounding error; the accelerometer reads the mode's
acceleration, shaft harmonics, and what else a real sensor reads (`pipeline.data.interference`). Each recording is
a new machine: what real machines vary is drawn, within ranges measured on the 37 real CWRU recordings
(notebooks/simulator_vs_real.ipynb; the ranges are listed in docs/how-it-works.md#physics)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline.data.bearing import NOMINAL_RPM, SKF_6205_DE, BearingGeometry, fault_frequency
from pipeline.data.classes import class_index
from pipeline.data.excitation import log_uniform, strike_train
from pipeline.data.interference import interference
from pipeline.data.modes import prewarped, strike_peak, tustin_mode

SIMULATOR_VERSION = 2  # bump when a seed gives other recordings: prepared synthetic datasets are keyed by it
RESONANCE_HZ = (1200.0, 4800.0)
MAX_RESONANCE_FRACTION = 0.42  # of the sample rate: below the anti-alias roll-off of any recording
DAMPING = (0.01, 0.08)
STRIKE_PEAK_G = (0.15, 3.0)
STRIKE_TO_BACKGROUND = (3.0, 100.0)  # strike peak over the RMS of the background the mode rings
SPEED_SPREAD = 0.03
HARMONIC_LEVEL = (0.001, 0.03)  # of the clean reading's RMS


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
    the SNR is the power ratio of the clean reading (the mode + harmonics) to what the sensor adds besides
    (other modes, coloured background, white noise; `interference`).
    """
    if load_hp not in NOMINAL_RPM:
        raise ValueError(f"load_hp must be one of {sorted(NOMINAL_RPM)}, got {load_hp}")
    if not duration_s > 0 or not sample_rate > 0:
        raise ValueError(f"duration_s and sample_rate must be positive, got {duration_s} and {sample_rate}")
    # every step draws from this one stream, in this order: reordering the steps changes every recording
    rng = np.random.default_rng([seed, class_index(label), load_hp])
    n_samples = int(round(duration_s * sample_rate))
    machine = _draw_machine(rng, load_hp, sample_rate)
    strikes, fields = _ring_mode(rng, machine, label, bearing, n_samples, sample_rate)
    clean = fields["acceleration"].copy()
    if harmonics:
        _add_shaft_harmonics(rng, clean, machine.shaft_hz, sample_rate)
    noise_std = np.sqrt(np.mean(clean**2)) * 10 ** (-snr_db / 20)  # zero for snr_db=inf
    signal = (clean + noise_std * interference(strikes, machine.band, sample_rate, rng)).astype(np.float32)
    fault_hz = fault_frequency(label, bearing, machine.shaft_hz)
    params = {
        "natural_freq_hz": machine.w_n / (2 * math.pi),
        "damping_ratio": machine.damping,
        "rpm": machine.rpm,
        "shaft_hz": machine.shaft_hz,
        "fault_hz": math.nan if fault_hz is None else fault_hz,
        "resonance_hz": machine.resonance_hz,
        "snr_db": float(snr_db),
    }
    return SimulatedRecording(signal, fields, params, label, load_hp, float(sample_rate))


@dataclass(frozen=True)
class _Machine:
    """What one recording's machine draws: its shaft speed and the measured mode it rings."""

    rpm: float
    shaft_hz: float
    band: tuple[float, float]  # where its resonance may lie at this sample rate (Hz)
    resonance_hz: float
    damping: float
    w_n: float  # rad/s of the trapezoidal equation whose sampled resonance is `resonance_hz`


def _draw_machine(rng: np.random.Generator, load_hp: int, sample_rate: float) -> _Machine:
    rpm = NOMINAL_RPM[load_hp] * (1 + rng.uniform(-SPEED_SPREAD, SPEED_SPREAD))
    band = (min(RESONANCE_HZ[0], 0.25 * sample_rate), min(RESONANCE_HZ[1], MAX_RESONANCE_FRACTION * sample_rate))
    resonance_hz = log_uniform(rng, *band)
    damping = log_uniform(rng, *DAMPING)
    return _Machine(rpm, rpm / 60, band, resonance_hz, damping, prewarped(resonance_hz, 1.0 / sample_rate))


def _ring_mode(
    rng: np.random.Generator,
    machine: _Machine,
    label: str,
    bearing: BearingGeometry,
    n_samples: int,
    sample_rate: float,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The strike train (in g at the mode) and the exact fields of the mode it and the background force ring."""
    dt = 1.0 / sample_rate
    level = log_uniform(rng, *STRIKE_PEAK_G)
    strikes = level * strike_train(label, machine.shaft_hz, bearing, n_samples, sample_rate, rng)
    impacts = strikes / strike_peak(machine.w_n, machine.damping, dt)  # strikes ring the mode to `level` g
    roughness = rng.standard_normal(n_samples)
    x, v, a = tustin_mode(np.stack([impacts, roughness]), machine.w_n, machine.damping, dt)
    gain = level / log_uniform(rng, *STRIKE_TO_BACKGROUND) / np.sqrt(np.mean(a[1] ** 2))
    fields = {
        "displacement": x[0] + gain * x[1],
        "velocity": v[0] + gain * v[1],
        "acceleration": a[0] + gain * a[1],
        "force": impacts + gain * roughness,
    }
    return strikes, fields


def _add_shaft_harmonics(rng: np.random.Generator, reading: np.ndarray, shaft_hz: float, sample_rate: float) -> None:
    """Add residual unbalance and misalignment at 1x and 2x shaft speed to `reading`, in place."""
    dt = 1.0 / sample_rate
    t = np.arange(len(reading)) * dt
    rms = np.sqrt(np.mean(reading**2))
    for order in (1, 2):
        amplitude = rms * log_uniform(rng, *HARMONIC_LEVEL)
        reading += amplitude * np.cos(2 * math.pi * order * shaft_hz * t + rng.uniform(0, 2 * math.pi))
