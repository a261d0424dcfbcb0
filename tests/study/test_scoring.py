"""Scoring helpers: the OOD AUROC is the pairwise probability it claims, system-identification errors are
percentages of the truth, and a scored model's physical parameters are collected from the one prediction pass."""
import numpy as np
import pytest
import torch

from pipeline.evaluation import predict_windows
from pipeline.study.scoring import PhysicalParams, auroc, sysid_errors
from tests.training.tiny_training import tiny_model


def pairwise_auroc(pos, neg):
    return np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])


def test_auroc_is_the_pairwise_ranking_probability_with_ties_half():
    rng = np.random.default_rng(0)
    pos, neg = rng.integers(0, 5, 40).astype(float), rng.integers(0, 4, 60).astype(float)  # many ties
    assert auroc(pos, neg) == pytest.approx(pairwise_auroc(pos, neg))
    assert auroc([2.0, 3.0], [0.0, 1.0]) == 1.0 and auroc([0.0], [1.0]) == 0.0
    assert np.isnan(auroc([], [1.0]))


def test_sysid_errors_are_mean_absolute_percentages():
    truth = {"resonance_hz": np.array([3000.0, 2000.0]), "damping_ratio": np.array([0.02, 0.04])}
    predicted = {"resonance_hz": np.array([3300.0, 2000.0]), "damping_ratio": np.array([0.03, 0.04])}
    logged = sysid_errors(predicted, truth, train_means={"resonance_hz": 2500.0, "damping_ratio": 0.04})
    assert logged["sysid/resonance_hz_error_pct"] == pytest.approx(5.0)  # (10 % + 0 %) / 2
    assert logged["sysid/resonance_hz_baseline_error_pct"] == pytest.approx((500 / 3000 + 500 / 2000) / 2 * 100)
    assert logged["sysid/damping_ratio_error_pct"] == pytest.approx(25.0)
    assert logged["sysid/resonance_hz_mean"] == pytest.approx(2650.0)
    assert "sysid/natural_freq_hz_error_pct" not in logged  # not predicted: not scored


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
