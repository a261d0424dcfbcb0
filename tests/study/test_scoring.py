"""Scoring helpers: system-identification errors are percentages of the truth, a scored model's physical
parameters are collected from the one prediction pass, and a model without physics is scored on what it
returns, each test window at its own shaft speed."""

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.data.bearing import SKF_6205_DE
from pipeline.data.prepared import PreparedDataset
from pipeline.data.windows import SPLIT_NAMES
from pipeline.readout.readout import predict_windows
from pipeline.study.scoring import PhysicalParams, location_scores, score, sysid_errors, window_grades
from pipeline.study.sets import EvaluationSet
from tests.training.tiny_training import SpectrumClassifier, tiny_model


def test_sysid_errors_are_mean_absolute_percentages():
    truth = {"resonance_hz": np.array([3000.0, 2000.0]), "damping_ratio": np.array([0.02, 0.04])}
    predicted = {"resonance_hz": np.array([3300.0, 2000.0]), "damping_ratio": np.array([0.03, 0.04])}
    logged = sysid_errors(predicted, truth, train_means={"resonance_hz": 2500.0, "damping_ratio": 0.04})
    assert logged["sysid/resonance_hz_error_pct"] == pytest.approx(5.0)  # (10 % + 0 %) / 2
    assert logged["sysid/resonance_hz_baseline_error_pct"] == pytest.approx((500 / 3000 + 500 / 2000) / 2 * 100)
    assert logged["sysid/damping_ratio_error_pct"] == pytest.approx(25.0)
    assert logged["sysid/resonance_hz_mean"] == pytest.approx(2650.0)
    assert "sysid/natural_freq_hz_error_pct" not in logged  # not predicted: not scored


def test_location_scores_count_the_location_named_right():
    truth = np.array(["inner", "inner", "ball", "normal"])
    logged = location_scores(truth, np.array(["inner", "outer", "ball", "ball"]))
    assert logged == {
        "test/location_accuracy": 0.5,
        "test/location_recall/normal": 0.0,
        "test/location_recall/ball": 1.0,
        "test/location_recall/inner": 0.5,
    }  # no outer-race window: no outer recall


def test_location_accuracy_per_grade_counts_the_windows_of_each_grades_recordings():
    truth = np.array(["inner", "inner", "ball", "ball", "normal"])
    predicted = np.array(["inner", "outer", "inner", "inner", "normal"])
    grades = np.array(["Y", "Y", "N", "N", "Y"])  # no P recording: no P accuracy
    logged = location_scores(truth, predicted, grades)
    assert logged["test/location_accuracy/grade_Y"] == pytest.approx(2 / 3)
    assert logged["test/location_accuracy/grade_N"] == 0.0
    assert "test/location_accuracy/grade_P" not in logged
    assert logged["test/location_accuracy"] == pytest.approx(2 / 5)


def test_each_window_gets_the_grade_of_its_cwru_recording():
    recordings = [
        {"label": "ball_007", "load_hp": 0},  # file 118: N
        {"label": "ball_007", "load_hp": 3},  # file 121: Y
        {"label": "outer_014", "load_hp": 1},  # file 198: P
        {"label": "normal", "load_hp": 0},  # file 97: Y
    ]
    dataset = PreparedDataset(Path("in-memory"), {"recordings": recordings}, {})
    grades = window_grades(dataset, np.array([3, 0, 0, 1, 2]))
    assert grades.tolist() == ["Y", "N", "N", "Y", "P"]


def test_physical_params_are_collected_during_prediction_and_the_hook_removed():
    model = tiny_model()
    windows = np.random.default_rng(0).standard_normal((10, 256)).astype(np.float32)
    params = PhysicalParams()
    with params.recorded(model):
        predict_windows(model, windows, batch_size=4)  # three batches
    collected = params.arrays()
    assert set(collected) == {"natural_freq_hz", "damping_ratio", "resonance_hz"}
    expected = model(torch.from_numpy(windows))["physical_params"]["resonance_hz"].detach().numpy()
    np.testing.assert_allclose(collected["resonance_hz"], expected, rtol=1e-5)
    assert not model._forward_hooks


class RecordsShaftSpeed(SpectrumClassifier):
    def __init__(self, n_classes: int):
        super().__init__(n_classes=n_classes)
        self.shaft_hz = []

    def forward(self, x, shaft_hz, bearing):
        self.shaft_hz.append(shaft_hz)
        return super().forward(x)


def test_a_model_without_physics_is_scored_on_what_it_returns_at_each_windows_speed():
    n, classes = 12, ["normal", "ball", "inner", "outer"]
    split = np.array([SPLIT_NAMES.index("test")] * 8 + [SPLIT_NAMES.index("train")] * 4)
    rpm = np.linspace(1720.0, 1797.0, n).astype(np.float32)
    arrays = {
        "windows": np.random.default_rng(0).standard_normal((n, 256)).astype(np.float32),
        "labels": np.arange(n) % len(classes),
        "split": split,
        "rpm": rpm,
        "recording": np.arange(n),
        "load": np.zeros(n, dtype=np.int8),
        "bearing": np.zeros(n, dtype=np.int8),
    }
    bearings = [{"name": "skf_6205", "geometry": asdict(SKF_6205_DE)}]
    dataset = PreparedDataset(
        Path("in-memory"),
        {"class_names": classes, "class_locations": classes, "sample_rate": 12000.0, "bearings": bearings},
        arrays,
    )
    model = RecordsShaftSpeed(len(classes))
    logged = score(model, dataset, EvaluationSet("recording", dataset.path), batch_size=3)
    assert {"test/accuracy", "test/ece", *(f"test/recall/{c}" for c in classes)} <= set(logged)
    assert logged["test/location_accuracy"] == logged["test/accuracy"]  # a location task
    assert logged["test/recording_accuracy"] == logged["test/accuracy"]  # one window per recording
    assert not [
        name for name in logged if name.startswith(("test/physics", "test/mean_uncertainty", "test/ood", "sysid/"))
    ]
    np.testing.assert_allclose(torch.cat(model.shaft_hz).numpy(), rpm[:8] / 60, rtol=1e-6)
