"""The physics the fields must obey, as residuals that are zero for an exact solution: one function checks both
the simulator's ground truth (rounding error) and the operator's outputs (trained towards zero); the equations are
stated where each is computed and in docs/how-it-works.md#physics. Time operators are the trapezoidal (Tustin)
rule, which the simulator integrates with, in one-sample-delay notation D2 = (4/dt^2)(1 - z^-1)^2,
D1 = (2/dt)(1 - z^-2), S = (1 + z^-1)^2 (3-tap filters: residuals have T-2 samples); spectral derivatives would
ring at the ends of non-periodic windows and fail on a mode sampled at 2.5-10 points per period."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from pipeline.data.bearing import SKF_6205_DE, BearingGeometry
from pipeline.dsp.envelope import COMB_LOCATIONS, comb_contrast


def physics_residuals(
    fields: dict[str, Tensor],
    signal: Tensor,
    sample_rate: float,
    *,
    natural_freq_hz: Tensor,
    damping_ratio: Tensor,
    class_probs: Tensor | None = None,
    class_locations: Sequence[str] | None = None,
    shaft_hz: Tensor | float = 29.53,
    bearing: BearingGeometry | Tensor = SKF_6205_DE,
) -> dict[str, Tensor]:
    """Residuals of the structural equations and, given class probabilities, of the bearing kinematics.

    fields: `displacement`, `force` [B, T] (per unit mass); signal: measured acceleration [B, T];
    natural_freq_hz, damping_ratio: [B]; class_probs: [B, C] over classes whose fault locations (normal, ball,
    inner or outer) are `class_locations`; shaft_hz: a number or [B]; bearing: one geometry, or one per window
    as [B, 4] rows (n_balls, ball diameter, pitch diameter, contact angle in degrees).
    Returns `equation_of_motion` [B, T-2] and `measurement` [B, T-3], in units of the window's RMS of S a
    (high-passed for measurement) so that `.pow(2).mean()` is a relative squared error, and `kinematics` [B] when
    class_probs and class_locations are given.
    """
    x, force = fields["displacement"], fields["force"]
    dt = 1.0 / sample_rate
    w = 2 * math.pi * _per_window(natural_freq_hz, x)
    zeta = _per_window(damping_ratio, x)
    d2x = 4 / dt**2 * (x[:, 2:] - 2 * x[:, 1:-1] + x[:, :-2])
    d1x = 2 / dt * (x[:, 2:] - x[:, :-2])
    s_a = _smooth(signal)
    scale = _rms(s_a).unsqueeze(-1)
    mismatch = d2x - s_a
    residuals = {
        # x'' + 2 zeta w x' + w^2 x = f, trapezoidal: D2 x + 2 zeta w D1 x + w^2 S x - S f = 0
        "equation_of_motion": (d2x + 2 * zeta * w * d1x + w**2 * _smooth(x) - _smooth(force)) / scale,
        # the accelerometer reads the mode's acceleration: (1 - z^-1)(D2 x - S a) = 0. The first difference
        # is a high-pass (gain 0.016 at 30 Hz, 1.4 at 3 kHz) that keeps the shaft harmonics, which are not
        # motion of the mode, from swamping the residual; what else the sensor reads (noise, other modes, the
        # machine's background) remains as its floor.
        "measurement": (mismatch[:, 1:] - mismatch[:, :-1]) / _rms(s_a[:, 1:] - s_a[:, :-1]).unsqueeze(-1),
    }
    if class_probs is not None and class_locations is not None:
        residuals["kinematics"] = kinematics_residual(
            force, class_probs, class_locations, sample_rate, shaft_hz, bearing
        )
    return residuals


def kinematics_residual(
    force: Tensor,
    class_probs: Tensor,
    class_locations: Sequence[str],
    sample_rate: float,
    shaft_hz: Tensor | float = 29.53,
    bearing: BearingGeometry | Tensor = SKF_6205_DE,
) -> Tensor:
    """[B] residual tying the predicted class to where the force's impacts repeat.

    For each fault location the comb contrast C = (F - rho) / (1 - rho) compares the fraction F of the
    force's envelope-spectrum energy lying in that location's comb (see `comb_contrast`) with the fraction
    rho a flat spectrum would put there: C = 1 for a pure impact train of that class, about 0 for
    broadband force. A ball, inner or outer class has residual 1 - C of its location; `normal` has
    max(0, max C): a healthy bearing must not show any impact train, so predicting `normal` is no free
    way out. The window's residual is the class_probs-weighted mean over the classes, each scored by its
    location in `class_locations`; it is 0 for a window too short to resolve the combs (under about
    0.05 s), which carries no kinematic evidence.

    The force's envelope is its energy f^2, not a band's analytic envelope as for the measured signal: the
    force is what strikes the structure, before the resonance rings, so an impact is a pulse in f and f^2
    already repeats at the strike rate. There is no ringing carrier to demodulate, and a band-pass would
    only smear the pulses.
    """
    contrast, resolved = comb_contrast(force.square(), sample_rate, shaft_hz, bearing)
    per_location = {loc: 1 - contrast[:, i] for i, loc in enumerate(COMB_LOCATIONS)}
    per_location["normal"] = contrast.amax(dim=-1).clamp_min(0)
    per_class = torch.stack([per_location[location] for location in class_locations], dim=-1)
    return (class_probs.to(per_class.dtype) * per_class).sum(dim=-1) * resolved


def energy_balance(
    fields: dict[str, Tensor], sample_rate: float, natural_freq_hz: Tensor, damping_ratio: Tensor
) -> dict[str, Tensor]:
    """Energy fields of the mode, per unit mass: E_kin = v^2/2, E_pot = w^2 x^2/2 ([B, T]), and the work
    done by the force and by damping over each step ([B, T-1]): dt vbar fbar and dt 2 zeta w vbar^2, bars
    being averages of consecutive samples. The trapezoidal rule conserves this balance exactly (see
    `energy_balance_residual`), so it is a consistency check that also ties the velocity field in."""
    x, v, force = fields["displacement"], fields["velocity"], fields["force"]
    dt = 1.0 / sample_rate
    w = 2 * math.pi * _per_window(natural_freq_hz, x)
    zeta = _per_window(damping_ratio, x)
    v_bar = (v[:, 1:] + v[:, :-1]) / 2
    return {
        "kinetic_energy": v**2 / 2,
        "potential_energy": w**2 * x**2 / 2,
        "input_work": dt * v_bar * (force[:, 1:] + force[:, :-1]) / 2,
        "dissipated_work": dt * 2 * zeta * w * v_bar**2,
    }


def energy_balance_residual(coupled_fields: dict[str, Tensor]) -> Tensor:
    """[B, T-1] residual of Delta(E_kin + E_pot) = W_in - W_diss, relative to the window's RMS of the
    three terms' summed magnitudes. Exact for trapezoidal steps: Delta E = vbar Delta v + w^2 xbar Delta x
    with Delta x = dt vbar and Delta v = dt (fbar - 2 zeta w vbar - w^2 xbar)."""
    energy = coupled_fields["kinetic_energy"] + coupled_fields["potential_energy"]
    change = energy[:, 1:] - energy[:, :-1]
    w_in, w_diss = coupled_fields["input_work"], coupled_fields["dissipated_work"]
    scale = _rms(change.abs() + w_in.abs() + w_diss.abs()).unsqueeze(-1)
    return (change - w_in + w_diss) / scale


def _smooth(u: Tensor) -> Tensor:
    """S u = (1 + z^-1)^2 u along time: [B, T] -> [B, T-2]."""
    return u[:, 2:] + 2 * u[:, 1:-1] + u[:, :-2]


def _rms(u: Tensor) -> Tensor:
    """Per-window RMS [B], floored so an all-zero window does not divide by zero."""
    return u.pow(2).mean(dim=-1).clamp_min(torch.finfo(u.dtype).tiny).sqrt()


def _per_window(value: Tensor | float, like: Tensor) -> Tensor:
    """A scalar or [B] parameter as a [B, 1] column in `like`'s dtype and device."""
    return torch.as_tensor(value, dtype=like.dtype, device=like.device).reshape(-1, 1).expand(like.shape[0], 1)
