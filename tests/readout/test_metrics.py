"""Evaluation metrics and figures on hand-made arrays whose right answers are known by hand."""

import numpy as np
import pytest
import torch
from torch import nn

from pipeline.config import ModelConfig
from pipeline.readout.calibration import calibration_bins, expected_calibration_error
from pipeline.readout.figures import confusion_matrix_figure, reliability_figure
from pipeline.readout.metrics import auroc, classification_metrics, recording_accuracy
from pipeline.readout.readout import predict_windows
from pipeline.training.metrics import macro_f1 as training_macro_f1
from pipeline.training.model_factory import build_model


def one_hot_probs(preds, confidence, n_classes=3):
    """Probabilities whose top class is `preds[i]` with probability `confidence[i]`, the rest shared evenly."""
    preds, confidence = np.asarray(preds), np.broadcast_to(np.asarray(confidence, dtype=float), len(preds))
    probs = np.repeat(((1 - confidence) / (n_classes - 1))[:, None], n_classes, axis=1)
    probs[np.arange(len(preds)), preds] = confidence
    return probs


def test_ece_is_zero_when_confidence_matches_accuracy():
    labels = np.array([0] * 8 + [1] * 2)  # 80 % confidence in class 0, right 8 times in 10
    assert expected_calibration_error(one_hot_probs([0] * 10, 0.8), labels) == pytest.approx(0.0)
    assert expected_calibration_error(one_hot_probs([2] * 5, 1.0), [2] * 5) == pytest.approx(0.0)


def test_ece_of_overconfident_predictions():
    # Half the windows at 0.95 and all right (gap 0.05), half at 0.6 and all wrong (gap 0.6).
    probs = one_hot_probs([0, 0, 1, 1], [0.95, 0.95, 0.6, 0.6])
    assert expected_calibration_error(probs, [0, 0, 2, 2]) == pytest.approx(0.5 * 0.05 + 0.5 * 0.6)
    # One bin, 90 % confident and right half the time.
    assert expected_calibration_error(one_hot_probs([0] * 4, 0.9), [0, 1, 0, 1]) == pytest.approx(0.4)


def test_calibration_bins_are_equal_width_and_closed_on_the_right():
    bins = calibration_bins(one_hot_probs([0, 0, 0], [0.4, 0.41, 1.0]), [0, 1, 0], n_bins=5)
    assert bins["upper"].tolist() == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert bins["count"].tolist() == [0, 1, 1, 0, 1]  # 0.4 belongs to (0.2, 0.4]
    assert bins["accuracy"].tolist()[1:3] == [1.0, 0.0] and np.isnan(bins["accuracy"][0])


def test_classification_metrics_on_a_known_confusion():
    labels = np.array([0, 0, 0, 1, 1, 2])
    preds = np.array([0, 0, 1, 1, 2, 2])
    metrics, per_class = classification_metrics(labels, one_hot_probs(preds, 0.9), ["a", "b", "c"])
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert per_class["precision"].tolist() == pytest.approx([1.0, 0.5, 0.5])
    assert per_class["recall"].tolist() == pytest.approx([2 / 3, 0.5, 1.0])
    assert per_class["f1"].tolist() == pytest.approx([0.8, 0.5, 2 / 3])
    assert per_class["support"].tolist() == [3, 2, 1] and list(per_class.index) == ["a", "b", "c"]
    assert metrics["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert metrics["ece"] == pytest.approx(abs(0.9 - 4 / 6))


def test_absent_class_is_undefined_not_zero_and_left_out_of_macro_f1():
    labels, preds = np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])  # class 2 neither occurs nor is predicted
    metrics, per_class = classification_metrics(labels, one_hot_probs(preds, 0.7), ["a", "b", "c"])
    assert np.isnan(per_class.loc["c", "recall"]) and np.isnan(per_class.loc["c", "precision"])
    assert metrics["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    confusion = torch.tensor([[1, 1, 0], [0, 2, 0], [0, 0, 0]])
    assert metrics["macro_f1"] == pytest.approx(training_macro_f1(confusion))  # same as val/macro_f1


def test_metrics_agree_with_scikit_learn():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 200)
    probs = rng.dirichlet(np.ones(5), 200)  # class 4 never a label, sometimes predicted
    metrics, per_class = classification_metrics(labels, probs, list("abcde"))
    preds = probs.argmax(axis=1)
    assert metrics["accuracy"] == pytest.approx(sklearn_metrics.accuracy_score(labels, preds))
    assert metrics["macro_f1"] == pytest.approx(sklearn_metrics.f1_score(labels, preds, average="macro"))
    assert per_class["recall"][:4].tolist() == pytest.approx(
        sklearn_metrics.recall_score(labels, preds, labels=range(4), average=None).tolist()
    )


def test_confusion_matrix_figure_shows_counts_and_row_fractions():
    figure = confusion_matrix_figure([0, 0, 0, 1], [0, 0, 1, 1], ["a", "b", "c"])
    counts, fractions = (np.array(trace.z, dtype=float) for trace in figure.data)
    assert counts.tolist() == [[2, 1, 0], [0, 1, 0], [0, 0, 0]]
    assert fractions[0].tolist() == pytest.approx([2 / 3, 1 / 3, 0]) and fractions[1].tolist() == [0, 1, 0]
    assert np.isnan(fractions[2]).all()  # no true windows of class c: blank, not zeros
    assert list(figure.data[0].x) == ["a", "b", "c"]


def test_reliability_figure_plots_accuracy_per_bin():
    probs, labels = one_hot_probs([0] * 4, 0.9), [0, 1, 0, 1]
    figure = reliability_figure(probs, labels, n_bins=10)
    bars = figure.data[0]
    assert len(bars.y) == 10 and bars.y[8] == pytest.approx(0.5)
    assert "ECE 0.400" in figure.layout.title.text


class FixedOutputs(nn.Module):
    """Stands in for AGT-NO: logits from the input's first two samples and a residual of known size."""

    def forward(self, x):
        return {
            "predictions": x[:, :2],
            "uncertainties": x[:, 0].abs(),
            "physics_residuals": {"eom": x[:, :4] * 2.0, "kinematics": x[:, 0]},
        }


def test_predict_windows_reduces_residuals_per_window_and_keeps_order():
    windows = np.random.default_rng(0).standard_normal((7, 4)).astype(np.float32)
    out = predict_windows(FixedOutputs(), windows, batch_size=3)
    assert set(out) == {"probs", "probs_uncalibrated", "uncertainty", "physics/eom", "physics/kinematics"}
    assert out["probs"] == pytest.approx(torch.from_numpy(windows[:, :2]).softmax(dim=-1).numpy())
    assert out["physics/eom"] == pytest.approx((4 * windows**2).mean(axis=1))
    assert out["physics/kinematics"] == pytest.approx(windows[:, 0] ** 2)


def test_predict_windows_on_a_real_model_does_not_depend_on_batch_size():
    torch.manual_seed(0)
    model = build_model(
        ModelConfig(hidden_dim=8, n_layers=1, n_modes=8, n_heads=2, patch_size=32, output_dim=10), 12000
    )
    windows = np.random.default_rng(1).standard_normal((5, 256)).astype(np.float32)
    whole, batched = predict_windows(model, windows, batch_size=5), predict_windows(model, windows, batch_size=2)
    assert not model.training and whole["probs"].shape == (5, 10) and whole["uncertainty"].shape == (5,)
    assert whole["probs"].sum(axis=1) == pytest.approx(np.ones(5), abs=1e-5)
    for key in whole:
        assert batched[key] == pytest.approx(whole[key], rel=1e-4, abs=1e-6), key


class SpeedAware(nn.Module):
    """Logits from nothing but each window's shaft speed, and no physics: what it returns is all there is."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x, shaft_hz=None):
        speed = torch.full((len(x),), 30.0) if shaft_hz is None else shaft_hz
        return {"predictions": torch.stack([self.scale * speed, -self.scale * speed], dim=-1)}


def test_predict_windows_passes_each_windows_shaft_speed_and_reads_only_what_the_model_returns():
    windows, shaft_hz = np.zeros((5, 4), dtype=np.float32), np.array([28.0, 29.0, 0.0, -1.0, 30.0])
    out = predict_windows(SpeedAware(), windows, batch_size=2, shaft_hz=shaft_hz)
    assert set(out) == {"probs", "probs_uncalibrated"}  # no uncertainty, physics/* or ood score: it has none
    expected = torch.tensor(np.stack([shaft_hz, -shaft_hz], axis=1)).float().softmax(dim=-1).numpy()
    assert out["probs"] == pytest.approx(expected)
    with pytest.raises(ValueError, match="shaft_hz has 2 values for 5 windows"):
        predict_windows(SpeedAware(), windows, shaft_hz=shaft_hz[:2])


def pairwise_auroc(inside, outside):
    return np.mean([(o > i) + 0.5 * (o == i) for o in outside for i in inside])


def test_auroc_is_the_probability_an_out_window_scores_above_an_in_window_ties_half():
    rng = np.random.default_rng(0)
    inside, outside = rng.integers(0, 4, 60).astype(float), rng.integers(0, 5, 40).astype(float)  # many ties
    assert auroc(inside, outside) == pytest.approx(pairwise_auroc(inside, outside))
    assert auroc(in_scores=[0.0, 1.0], out_scores=[2.0, 3.0]) == 1.0 and auroc([1.0], [0.0]) == 0.0
    assert auroc([1.0, 1.0], [1.0]) == 0.5 and np.isnan(auroc([1.0], []))


def test_a_recording_is_right_when_most_of_its_windows_name_its_label():
    recordings = np.array([4, 4, 4, 9, 9, 9, 6, 6])
    labels = np.array([2, 2, 2, 0, 0, 0, 1, 1])
    predicted = np.array([2, 1, 2, 0, 3, 3, 1, 0])  # 2 of 3 right; 1 of 3 right; a tie, 1 to 1
    assert recording_accuracy(labels, predicted, recordings) == pytest.approx(1 / 3)
    assert recording_accuracy(labels, labels, recordings) == 1.0


def test_a_test_split_without_a_class_scores_only_the_classes_it_has():
    labels = np.array([1, 1, 1, 1, 3])  # classes 0 and 2 have no test window
    probs = np.eye(4)[[1, 1, 1, 0, 0]]  # class 1: 3 of 4 right; class 3: missed
    metrics, per_class = classification_metrics(labels, probs, ["normal", "inner", "ball", "outer"])
    assert metrics["accuracy"] == pytest.approx(3 / 5)
    assert metrics["balanced_accuracy"] == pytest.approx((3 / 4 + 0) / 2)  # the missed small class counts half
    assert per_class["recall"].isna().tolist() == [True, False, True, False]  # undefined, not 1.0 or 0.0
