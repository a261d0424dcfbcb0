"""Rolling-bearing kinematics: the rates at which a local fault is struck.

A defect on a race or ball produces one impact each time a rolling element passes it, so every fault
class has a characteristic impact rate proportional to the shaft speed. The multipliers of the shaft
frequency depend only on the geometry below.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pipeline.data.classes import fault_location


@dataclass(frozen=True)
class BearingGeometry:
    """Geometry of a deep-groove ball bearing; diameters in inches (only their ratio matters)."""

    n_balls: int
    ball_diameter_in: float
    pitch_diameter_in: float
    contact_angle_deg: float = 0.0

    def __post_init__(self) -> None:
        if self.n_balls < 1:
            raise ValueError(f"n_balls must be >= 1, got {self.n_balls}")
        if self.ball_diameter_in <= 0:
            raise ValueError(f"ball_diameter_in must be positive, got {self.ball_diameter_in}")
        if self.ball_diameter_in >= self.pitch_diameter_in:
            raise ValueError(
                f"ball_diameter_in ({self.ball_diameter_in}) must be smaller than "
                f"pitch_diameter_in ({self.pitch_diameter_in})"
            )

    @property
    def row(self) -> tuple[float, float, float, float]:
        """(n_balls, ball, pitch, contact angle): the row a model reads per window."""
        return (float(self.n_balls), self.ball_diameter_in, self.pitch_diameter_in, self.contact_angle_deg)

    @property
    def text(self) -> str:
        """`n_balls/ball/pitch/angle`, the form a manifest or a request names a geometry by."""
        return "/".join(f"{value:.6g}" for value in self.row)


SKF_6205_DE = BearingGeometry(n_balls=9, ball_diameter_in=0.3126, pitch_diameter_in=1.537)
"""CWRU drive-end bearing (SKF 6205-2RS JEM)."""

NSK_6203_FE = BearingGeometry(n_balls=8, ball_diameter_in=0.2656, pitch_diameter_in=1.122)
"""CWRU fan-end bearing (NSK 6203-2RS JEM)."""

BEARINGS: dict[str, BearingGeometry] = {"skf_6205": SKF_6205_DE, "nsk_6203": NSK_6203_FE}
"""Presets by name (`data.bearing`): the bearing whose faults a dataset's recordings hold."""

RANDOM_BEARING = "random"
"""`data.bearing=random` (simulator only): each recording's bearing is drawn by `random_bearing`."""

BALLS_RANGE = (7, 16)  # deep-groove ball bearings of common series
BALL_TO_PITCH_RANGE = (0.15, 0.30)  # d/D: the 6205 is 0.20, the 6203 0.24


MIN_COMB_GAP = 0.08  # relative gap between the first two lines of different fault locations' combs


def random_bearing(rng) -> BearingGeometry:
    """A deep-groove ball bearing (contact angle 0) drawn from BALLS_RANGE and BALL_TO_PITCH_RANGE, with a pitch
    diameter of 1-3 in (only the ratio matters): its fault orders span BPFO 2.4-6.8, BPFI 4.0-10.4. Drawn again
    while two locations' combs overlap (`combs_apart`): where BPFI equals 2 BSF, no envelope spectrum can tell an
    inner-race fault from a ball fault, and a task the physics cannot decide is no test of a model."""
    while True:
        pitch = float(rng.uniform(1.0, 3.0))
        ratio = float(rng.uniform(*BALL_TO_PITCH_RANGE))
        n_balls = int(rng.integers(BALLS_RANGE[0], BALLS_RANGE[1] + 1))
        bearing = BearingGeometry(n_balls, round(ratio * pitch, 4), round(pitch, 4))
        if combs_apart(bearing):
            return bearing


def combs_apart(bearing: BearingGeometry, gap: float = MIN_COMB_GAP) -> bool:
    """Whether the first two lines of the outer (BPFO), inner (BPFI) and ball (2 BSF) combs all lie more than
    `gap` (relative) from every line of another location's comb."""
    rates = characteristic_frequencies(bearing, 1.0)
    combs = [rates["bpfo"], rates["bpfi"], 2 * rates["bsf"]]
    for i, a in enumerate(combs):
        for b in combs[i + 1 :]:
            for line_a in (a, 2 * a):
                for line_b in (b, 2 * b):
                    if abs(line_a - line_b) <= gap * max(line_a, line_b):
                        return False
    return True


NOMINAL_RPM: dict[int, int] = {0: 1797, 1: 1772, 2: 1750, 3: 1730}
"""CWRU motor load (HP) -> nominal shaft speed (rpm): the motor slows slightly as the load grows."""


def characteristic_frequencies(bearing: BearingGeometry, shaft_hz: float) -> dict[str, float]:
    """Fundamental train (cage), ball-pass outer/inner and ball-spin frequencies in Hz.

    FTF = f_r/2 (1 - d/D cos a), BPFO = n FTF, BPFI = n f_r/2 (1 + d/D cos a),
    BSF = D f_r/(2d) (1 - (d/D cos a)^2), with the inner race turning at f_r and the outer race fixed.
    """
    if not shaft_hz > 0:  # also rejects NaN
        raise ValueError(f"shaft_hz must be positive, got {shaft_hz}")
    ratio = bearing.ball_diameter_in / bearing.pitch_diameter_in * math.cos(math.radians(bearing.contact_angle_deg))
    ftf = shaft_hz / 2 * (1 - ratio)
    return {
        "ftf": ftf,
        "bpfo": bearing.n_balls * ftf,
        "bpfi": bearing.n_balls * shaft_hz / 2 * (1 + ratio),
        "bsf": bearing.pitch_diameter_in * shaft_hz / (2 * bearing.ball_diameter_in) * (1 - ratio**2),
    }


def fault_frequency(label: str, bearing: BearingGeometry, shaft_hz: float) -> float | None:
    """Impact rate (Hz) of a fault class: BPFO outer, BPFI inner, 2 x BSF ball, None for normal.

    A ball defect strikes both races once per spin revolution, hence twice the ball-spin frequency.
    """
    location = fault_location(label)
    freqs = characteristic_frequencies(bearing, shaft_hz)
    return {"normal": None, "outer": freqs["bpfo"], "inner": freqs["bpfi"], "ball": 2 * freqs["bsf"]}[location]
