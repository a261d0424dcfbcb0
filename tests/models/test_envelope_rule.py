"""The envelope-spectrum rule: it names the fault location of simulated and real recordings with no training
but one fitted threshold, and it refuses input it cannot read."""

import numpy as np
import pytest
import scipy.io

from pipeline.data.bearing import SKF_6205_DE
from pipeline.data.classes import fault_location
from pipeline.data.simulator import simulate_recording
from pipeline.models.envelope_rule import DEFAULT_THRESHOLD, EnvelopeRule

WINDOW = 4096
LABELS = ("normal", "ball_014", "inner_007", "outer_021")


def cut(signal, window=WINDOW):
    """Consecutive non-overlapping windows [N, window] of a recording."""
    n = len(signal) // window
    return np.asarray(signal[: n * window], dtype=np.float32).reshape(n, window)


def simulated(label, load_hp, seed):
    """Windows, shaft speed (Hz) and fault location of a 3 s simulated recording at 20 dB SNR."""
    rec = simulate_recording(label, load_hp, seed, duration_s=3.0, snr_db=20.0)
    return cut(rec.signal), rec.params["shaft_hz"], fault_location(label)


@pytest.fixture(scope="module")
def fitted_rule():
    """A rule whose threshold is fitted on one seed of every location at two loads."""
    parts = [simulated(label, load, seed=0) for label in LABELS for load in (0, 3)]
    windows = np.concatenate([x for x, _, _ in parts])
    shaft_hz = np.concatenate([np.full(len(x), hz) for x, hz, _ in parts])
    locations = np.concatenate([[loc] * len(x) for x, _, loc in parts])
    rule = EnvelopeRule(sample_rate=12000, bearing=SKF_6205_DE).fit(windows, shaft_hz, locations)
    # nearly separable: the simulator also draws faults as faint as CWRU's outer 0.014 in one, whose line barely shows
    assert (rule.predict(windows, shaft_hz) == locations).mean() >= 0.95
    return rule


@pytest.mark.parametrize("load_hp", [0, 3])
@pytest.mark.parametrize("label", LABELS)
def test_names_the_location_of_unseen_simulated_recordings(fitted_rule, label, load_hp):
    windows, shaft_hz, location = simulated(label, load_hp, seed=1)
    assert (fitted_rule.predict(windows, shaft_hz) == location).mean() >= 0.9


def test_fitted_threshold_separates_healthy_from_faulty_training_windows(fitted_rule):
    healthy, healthy_hz, _ = simulated("normal", 0, seed=0)
    faulty, faulty_hz, _ = simulated("inner_007", 0, seed=0)
    assert fitted_rule.contrasts(healthy, healthy_hz).max() < fitted_rule.threshold
    assert fitted_rule.threshold <= fitted_rule.contrasts(faulty, faulty_hz).max(axis=1).min()


def test_unfitted_rule_says_normal_exactly_below_the_default_threshold():
    windows, shaft_hz, _ = simulated("outer_021", 2, seed=2)
    windows = np.concatenate([windows, simulated("normal", 2, seed=2)[0]])
    rule = EnvelopeRule()
    scores = rule.contrasts(windows, shaft_hz)
    assert scores.shape == (len(windows), 3)  # ball, inner, outer
    assert rule.threshold == DEFAULT_THRESHOLD
    np.testing.assert_array_equal(rule.predict(windows, shaft_hz) == "normal", scores.max(axis=1) < DEFAULT_THRESHOLD)


def test_one_shaft_speed_for_all_windows_equals_one_per_window():
    windows, shaft_hz, _ = simulated("ball_014", 1, seed=3)
    rule = EnvelopeRule()
    np.testing.assert_array_equal(
        rule.contrasts(windows, shaft_hz), rule.contrasts(windows, np.full(len(windows), shaft_hz))
    )


@pytest.mark.parametrize(
    "windows, shaft_hz, match",
    [
        (np.zeros(WINDOW), 30.0, r"windows must be a non-empty \[N, L\] array, got shape \(4096,\)"),
        (np.zeros((2, WINDOW, 1)), 30.0, r"windows must be a non-empty \[N, L\]"),
        (np.zeros((0, WINDOW)), 30.0, r"windows must be a non-empty \[N, L\]"),
        (np.zeros((2, 2048)), 30.0, "windows of 2048 samples are too short.*at least 4000 samples at 12000 Hz"),
        (np.full((2, WINDOW), np.nan), 30.0, "windows contain NaN"),
        (np.zeros((2, WINDOW)), 0.0, "shaft_hz must be positive"),
        (np.zeros((2, WINDOW)), [30.0, -1.0], "shaft_hz must be positive"),
        (np.zeros((2, WINDOW)), [30.0, 30.0, 30.0], r"shaft_hz must be one number or one per window \(2\)"),
    ],
)
def test_bad_windows_or_shaft_speeds_are_refused(windows, shaft_hz, match):
    with pytest.raises(ValueError, match=match):
        EnvelopeRule().predict(windows, shaft_hz)


@pytest.mark.parametrize(
    "labels, match",
    [
        (["inner_007"] * 2, r"labels must be fault locations.*\['inner_007'\].*fault_location"),
        (["inner"], r"labels must hold one location per window \(2\)"),
    ],
)
def test_fit_refuses_labels_that_are_not_one_location_per_window(labels, match):
    windows, shaft_hz, _ = simulated("inner_007", 0, seed=0)
    with pytest.raises(ValueError, match=match):
        EnvelopeRule().fit(windows[:2], shaft_hz, labels)


def test_sample_rate_must_keep_the_resonance_bands_below_nyquist():
    with pytest.raises(ValueError, match="sample_rate must exceed 11000 Hz"):
        EnvelopeRule(sample_rate=8000)


@pytest.mark.parametrize("number, location", [(130, "outer"), (105, "inner")])
def test_names_the_location_of_real_cwru_recordings(cwru_dir, number, location):
    """Outer 0.007 in and inner 0.007 in at 0 HP: faults an analyst reads straight off the envelope spectrum."""
    mat = scipy.io.loadmat(cwru_dir / f"{number}.mat")
    windows = cut(mat[f"X{number:03d}_DE_time"].ravel())
    shaft_hz = float(mat[f"X{number:03d}RPM"].squeeze()) / 60
    assert (EnvelopeRule().predict(windows, shaft_hz) == location).mean() >= 0.9
