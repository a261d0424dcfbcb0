"""The physics residuals vanish on the simulator's ground truth and grow on anything that breaks the physics.

Windows of 4096 samples (0.34 s) are cut from the middle of 2 s recordings, so they start mid-motion; the
Tustin residuals must still be exact there. Everything runs in float32, the model's dtype.
"""

import math

import numpy as np
import pytest
import torch

from pipeline.data.bearing import BEARINGS
from pipeline.data.classes import CLASS_NAMES, class_index, fault_location
from pipeline.data.simulator import simulate_recording
from pipeline.physics.residuals import energy_balance, energy_balance_residual, physics_residuals

WINDOW = 4096
FS = 12000.0


def windows(labels, loads=(0, 3), seeds=(0, 1), **sim_kwargs):
    """A float32 batch cut from the middle of simulated recordings: fields, signal, params, one-hot probs."""
    sim_kwargs = {"snr_db": math.inf, "harmonics": False} | sim_kwargs
    recs = [simulate_recording(lab, load, seed, **sim_kwargs) for lab in labels for load in loads for seed in seeds]
    start = recs[0].signal.size // 2 - WINDOW // 2
    cut = lambda a: torch.tensor(np.stack(a)[:, start : start + WINDOW], dtype=torch.float32)  # noqa: E731
    fields = {k: cut([r.fields[k] for r in recs]) for k in ("displacement", "velocity", "force")}
    names = ("natural_freq_hz", "damping_ratio", "shaft_hz")
    params = {k: torch.tensor([r.params[k] for r in recs]).float() for k in names}
    probs = torch.stack([one_hot(r.label, 1)[0] for r in recs])
    return fields, cut([r.signal for r in recs]), params, probs


LOCATIONS = [fault_location(name) for name in CLASS_NAMES]  # what each class's kinematics residual checks


def one_hot(label, batch):
    return torch.zeros(batch, len(CLASS_NAMES)).index_fill_(1, torch.tensor(class_index(label)), 1.0)


def residuals(fields, signal, params, probs=None):
    return physics_residuals(
        fields,
        signal,
        FS,
        natural_freq_hz=params["natural_freq_hz"],
        damping_ratio=params["damping_ratio"],
        class_probs=probs,
        class_locations=LOCATIONS,
        shaft_hz=params["shaft_hz"],
    )


def perturbed(fields, rel=0.1, seed=0):
    """Each field plus white noise at 10 % of its RMS."""
    g = torch.Generator().manual_seed(seed)
    rms = {k: f.pow(2).mean(-1, keepdim=True).sqrt() for k, f in fields.items()}
    return {k: f + rel * rms[k] * torch.randn(f.shape, generator=g) for k, f in fields.items()}


def ms(r):
    return r.pow(2).mean().item()


def energy_ms(fields, params):
    coupled = energy_balance(fields, FS, params["natural_freq_hz"], params["damping_ratio"])
    return ms(energy_balance_residual(coupled))


LABELS = ("normal", "ball_014", "inner_007", "outer_021")


def test_structural_residuals_vanish_on_truth_and_not_on_perturbed_fields():
    fields, signal, params, _ = windows(LABELS)
    truth, noisy = residuals(fields, signal, params), residuals(perturbed(fields), signal, params)
    for name, length in (("equation_of_motion", WINDOW - 2), ("measurement", WINDOW - 3)):
        assert truth[name].shape == (len(signal), length)
        assert ms(truth[name]) < 1e-9, name  # float32 rounding
        assert ms(noisy[name]) > 100 * ms(truth[name]), name
    assert energy_ms(fields, params) < 1e-9
    assert energy_ms(perturbed(fields), params) > 100 * energy_ms(fields, params)


@pytest.mark.parametrize(
    "truth, wrong", [("outer", "inner"), ("inner", "outer"), ("ball", "inner"), ("ball", "outer"), ("outer", "ball")]
)
def test_kinematics_prefers_the_true_fault_location(truth, wrong):
    fields, signal, params, probs = windows([f"{truth}_{size}" for size in ("007", "021")], loads=(0, 1, 2, 3))
    right = residuals(fields, signal, params, probs)["kinematics"]
    swapped = residuals(fields, signal, params, one_hot(f"{wrong}_014", len(signal)))["kinematics"]
    assert right.shape == (len(signal),)
    assert ms(swapped) > 100 * ms(right), (ms(right), ms(swapped))


def test_kinematics_of_normal_means_no_impact_train():
    healthy_fields, healthy_signal, healthy_params, healthy_probs = windows(["normal"], loads=(0, 1, 2, 3))
    assert ms(residuals(healthy_fields, healthy_signal, healthy_params, healthy_probs)["kinematics"]) < 0.05
    fields, signal, params, probs = windows(["outer_014", "inner_014"], loads=(0, 3))
    called_normal = one_hot("normal", len(signal))
    right = residuals(fields, signal, params, probs)["kinematics"]
    assert ms(residuals(fields, signal, params, called_normal)["kinematics"]) > 30 * ms(right)


def test_residuals_do_not_depend_on_units():
    fields, signal, params, probs = windows(["outer_014", "ball_007"], loads=(1,), seeds=(0,))
    fields, probs = perturbed(fields), probs.roll(1, dims=-1)  # non-zero residuals everywhere
    base = residuals(fields, signal, params, probs)
    scaled = residuals({k: 1000 * f for k, f in fields.items()}, 1000 * signal, params, probs)
    for name in base:
        torch.testing.assert_close(scaled[name], base[name], rtol=1e-4, atol=1e-5)  # float32, O(1)
    scaled_energy = energy_ms({k: 1000 * f for k, f in fields.items()}, params)
    assert scaled_energy == pytest.approx(energy_ms(fields, params), rel=1e-4)


def test_batch_elements_are_independent():
    fields, signal, params, probs = windows(["inner_014", "outer_014"], loads=(2,), seeds=(0,))
    base = residuals(fields, signal, params, probs)
    other = {k: f.clone() for k, f in fields.items()}
    other["displacement"][1] *= 3.0
    other["force"][1] = torch.randn(WINDOW)
    changed = residuals(other, signal, params, probs)
    for name in base:
        assert torch.equal(changed[name][0], base[name][0]), name
        assert not torch.equal(changed[name][1], base[name][1]), name


def test_gradients_flow_to_fields_parameters_and_class_probabilities():
    fields, signal, params, _ = windows(["ball_021", "inner_021"], loads=(0,), seeds=(0,))
    fields = {k: f.requires_grad_() for k, f in perturbed(fields).items()}
    params = {k: p.clone().requires_grad_() for k, p in params.items()}
    logits = torch.zeros(len(signal), len(CLASS_NAMES), requires_grad=True)
    res = residuals(fields, signal, params, logits.softmax(-1))
    coupled = energy_balance(fields, FS, params["natural_freq_hz"], params["damping_ratio"])
    loss = sum(r.pow(2).mean() for r in res.values()) + energy_balance_residual(coupled).pow(2).mean()
    loss.backward()
    for tensor in (*fields.values(), params["natural_freq_hz"], params["damping_ratio"], logits):
        assert torch.isfinite(tensor.grad).all() and tensor.grad.abs().sum() > 0


def test_all_zero_window_gives_finite_residuals():
    zeros = torch.zeros(2, 512)
    fields = {"displacement": zeros, "velocity": zeros, "force": zeros}
    ones = torch.ones(2)
    res = physics_residuals(
        fields,
        zeros,
        FS,
        natural_freq_hz=3000 * ones,
        damping_ratio=0.03 * ones,
        class_probs=torch.full((2, 10), 0.1),
        class_locations=LOCATIONS,
    )
    coupled = energy_balance(fields, FS, 3000 * ones, 0.03 * ones)
    assert all(torch.isfinite(r).all() for r in [*res.values(), energy_balance_residual(coupled)])


def test_windows_too_short_to_resolve_the_combs_carry_no_kinematic_evidence():
    fields, signal, params, probs = windows(["outer_021"], loads=(0,), seeds=(0,))
    short = {k: f[:, :256] for k, f in fields.items()}  # 21 ms: one envelope bin spans 1.6 shaft orders
    assert residuals(short, signal[:, :256], params, probs)["kinematics"].abs().max() == 0


@pytest.mark.parametrize("snr_db", [20.0, 30.0])
def test_measurement_residual_sits_at_the_sensor_noise_floor(snr_db):
    """With what else the sensor reads (other modes, background, noise) the true displacement cannot (and must
    not) explain it: the measurement residual of the ground truth is that reading filtered, about 1/SNR in power;
    the filters S (1 + z^-1)^2 and the high-pass (1 - z^-1) weight it and the 1.2-4.8 kHz resonance differently,
    hence 0.5-4 x 1/SNR.
    The shaft harmonics (on here, as in the default data) are not motion of the mode and stay out of it."""
    fields, signal, params, _ = windows(LABELS[1:], snr_db=snr_db, harmonics=True)
    floor = ms(residuals(fields, signal, params)["measurement"])
    assert 0.5 * 10 ** (-snr_db / 10) < floor < 4 * 10 ** (-snr_db / 10)
    assert ms(residuals(fields, signal, params)["equation_of_motion"]) < 1e-9  # noise touches a only


def test_each_window_is_checked_against_its_own_bearings_fault_lines():
    """A batch from two machines: the simulator's NSK 6203 outer-race fault fits its own geometry's comb, and
    the same window read with the SKF 6205's geometry (where the lines are elsewhere) does not."""
    skf, nsk = BEARINGS["skf_6205"], BEARINGS["nsk_6203"]
    fields, signal, params, probs = windows(["outer_014"], loads=(0, 3), bearing=nsk)
    rows = torch.tensor(
        [[g.n_balls, g.ball_diameter_in, g.pitch_diameter_in, g.contact_angle_deg] for g in (nsk, skf, nsk, skf)]
    )
    per_window = physics_residuals(
        fields,
        signal,
        FS,
        natural_freq_hz=params["natural_freq_hz"],
        damping_ratio=params["damping_ratio"],
        class_probs=probs,
        class_locations=LOCATIONS,
        shaft_hz=params["shaft_hz"],
        bearing=rows,
    )["kinematics"]
    own, other = per_window[rows[:, 0] == nsk.n_balls], per_window[rows[:, 0] == skf.n_balls]
    assert ms(other) > 30 * ms(own), (ms(own), ms(other))
    with pytest.raises(ValueError, match="bearing has 2 rows for 4 windows"):
        physics_residuals(
            fields,
            signal,
            FS,
            natural_freq_hz=params["natural_freq_hz"],
            damping_ratio=params["damping_ratio"],
            class_probs=probs,
            class_locations=LOCATIONS,
            shaft_hz=params["shaft_hz"],
            bearing=rows[:2],
        )
