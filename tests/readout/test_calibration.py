"""Temperature scaling recovers the temperature that made logits overconfident, and fixes their calibration
without changing a single decision; a calibrated model's ECE is the sampling floor; bad input is named."""

import logging

import numpy as np
import pytest

from pipeline.readout.calibration import (
    TEMPERATURE_RANGE,
    ece_sampling_floor,
    expected_calibration_error,
    fit_temperature,
    scaled_probs,
)


def sampled(n: int, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels drawn from softmax(logits): calibrated by construction (T = 1)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(n, classes))
    probs = scaled_probs(logits).astype(np.float64)
    labels = (rng.random((n, 1)) > probs.cumsum(axis=1)).sum(axis=1)  # one draw per row
    return logits, np.minimum(labels, classes - 1)


def test_the_fit_recovers_the_temperature_that_scaled_calibrated_logits():
    logits, labels = sampled(20000, 5)
    assert fit_temperature(logits, labels) == pytest.approx(1.0, rel=0.05)
    assert fit_temperature(logits * 3, labels) == pytest.approx(3.0, rel=0.05)  # a model 3x too sure
    assert fit_temperature(logits / 2, labels) == pytest.approx(0.5, rel=0.05)  # and one too unsure


def test_scaling_an_overconfident_model_lowers_its_ece_and_keeps_its_decisions():
    logits, labels = sampled(5000, 4, seed=1)
    overconfident = logits * 3
    temperature = fit_temperature(overconfident, labels)
    before, after = scaled_probs(overconfident), scaled_probs(overconfident, temperature)
    assert expected_calibration_error(after, labels) < expected_calibration_error(before, labels) / 3
    assert np.array_equal(after.argmax(axis=1), before.argmax(axis=1))
    assert after.dtype == np.float32 and after.sum(axis=1) == pytest.approx(np.ones(len(after)), abs=1e-5)


def test_a_calibrated_model_shows_the_ece_floor_of_its_sample_size():
    for n in (300, 1500):
        measured, floor = [], []
        for seed in range(20):  # the floor is a mean: compare it with the mean ECE of calibrated models
            logits, labels = sampled(n, 5, seed)
            probs = scaled_probs(logits)
            measured.append(expected_calibration_error(probs, labels))
            floor.append(ece_sampling_floor(probs, seed=seed))
        assert np.mean(floor) == pytest.approx(np.mean(measured), rel=0.15)
        assert min(floor) > 0.01  # a finite set never shows ECE 0, even for a calibrated model
    assert ece_sampling_floor(scaled_probs(sampled(20000, 5)[0])) < 0.5 * np.mean(floor)  # it shrinks with N
    assert np.isnan(ece_sampling_floor(np.zeros((0, 5))))


def test_the_fit_is_deterministic_and_stays_in_its_range(caplog):
    logits, labels = sampled(500, 3, seed=2)
    assert fit_temperature(logits, labels) == fit_temperature(logits, labels)
    perfect = np.eye(3)[labels]  # every window right: sharper is always better
    with caplog.at_level(logging.WARNING, logger="pipeline.readout.calibration"):
        assert TEMPERATURE_RANGE[0] <= fit_temperature(perfect, labels) < 1.01 * TEMPERATURE_RANGE[0]
    assert "at the edge of its range" in caplog.text


@pytest.mark.parametrize(
    "logits, labels, message",
    [
        (np.zeros((4, 1)), np.zeros(4, dtype=int), "at least 2 classes"),
        (np.zeros((0, 3)), np.zeros(0, dtype=int), "no windows"),
        (np.zeros((4, 3)), np.zeros(3, dtype=int), "one label per window"),
        (np.zeros((4, 3)), np.array([0, 1, 2, 3]), r"class indices in 0\.\.2"),
        (np.full((2, 3), np.nan), np.array([0, 1]), "NaN or inf"),
    ],
)
def test_bad_input_is_named(logits, labels, message):
    with pytest.raises(ValueError, match=message):
        fit_temperature(logits, labels)
