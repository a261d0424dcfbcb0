"""The force of a bearing fault's strikes: what the bearing's kinematics fix is computed, the rest is drawn.

Fixed by the kinematics: the strike rates, their load-zone modulation and the time a rolling element takes to
cross the defect. Drawn: the phase, slip and strike-to-strike scatter. Level is the caller's (`simulator`).
"""

from __future__ import annotations

import math

import numpy as np

from pipeline.data.bearing import BearingGeometry, characteristic_frequencies, fault_frequency
from pipeline.data.classes import fault_location, fault_size_in
from pipeline.data.modes import pulse_train


def log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """A scale drawn evenly in log: every factor of the range is as likely as any other."""
    return float(np.exp(rng.uniform(math.log(low), math.log(high))))


def strike_train(
    label: str, shaft_hz: float, bearing: BearingGeometry, n_samples: int, fs: float, rng: np.random.Generator
) -> np.ndarray:
    """Pulses of the fault's strikes, amplitude 1 on average (zeros for a healthy bearing).

    Strikes come at the class rate, each interval off by a random 0.5-1.5 % because the rolling elements slip
    (CWRU's outer 0.007 in fault: 1.1 %). Strike heights scatter by 3-10 % (log-normal): the force is what the
    kinematics residual reads as an impact train, so its own scatter stays small; the larger scatter of strike
    heights at a real sensor (CWRU: 0.25-1.0 of the mean, background included) is left to what else the sensor
    reads (`interference`). Inner-race strikes are modulated at the shaft rate
    (the defect turns through the load zone), ball strikes at the cage rate; the outer-race defect sits still
    in the load zone. Each strike is a weak entry into the defect followed, after the time a rolling element
    takes to cross it, by the exit strike: fault size shows as that delay, not as level.
    """
    location = fault_location(label)
    if location == "normal":
        return np.zeros(n_samples)
    rate = fault_frequency(label, bearing, shaft_hz)
    slip = rng.uniform(0.005, 0.015)
    n_max = int(n_samples / fs * rate * 1.2) + 10
    intervals = (1 + slip * rng.standard_normal(n_max)) / rate
    times = rng.uniform(0, 1 / rate) + np.concatenate([[0.0], np.cumsum(intervals[:-1])])
    times = times[times < n_samples / fs]

    spread = rng.uniform(0.03, 0.1)
    amplitude = np.exp(spread * rng.standard_normal(times.size) - spread**2 / 2)
    modulation_hz = {"inner": shaft_hz, "ball": characteristic_frequencies(bearing, shaft_hz)["ftf"]}.get(location)
    if modulation_hz is not None:
        depth, phase = rng.uniform(0.2, 1.0), rng.uniform(0, 2 * math.pi)
        amplitude *= 1 - depth / 2 + depth / 2 * np.cos(2 * math.pi * modulation_hz * times + phase)
    delay = fault_size_in(label) / rolling_speed(bearing, shaft_hz)
    entry = rng.uniform(0.1, 0.5)
    return pulse_train(times, entry * amplitude, n_samples, fs) + pulse_train(times + delay, amplitude, n_samples, fs)


def rolling_speed(bearing: BearingGeometry, shaft_hz: float) -> float:
    """Speed (in/s) at which a contact point crosses a defect: pi FTF (D + d cos a), the same on either race and
    on the ball's surface when the elements roll without slip. About 69 in/s at 1797 rpm on the SKF 6205, so the
    0.007, 0.014 and 0.021 in defects are crossed in 0.10, 0.20 and 0.30 ms (1.2, 2.4 and 3.6 samples at 12 kHz)."""
    ftf = characteristic_frequencies(bearing, shaft_hz)["ftf"]
    ball = bearing.ball_diameter_in * math.cos(math.radians(bearing.contact_angle_deg))
    return math.pi * ftf * (bearing.pitch_diameter_in + ball)
