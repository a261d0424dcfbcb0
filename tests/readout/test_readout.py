"""The readout fitted on a trained model (pipeline/readout/readout.py): a temperature from the validation windows
and, for a model that returns features, an ood score from the training windows with its threshold at a quantile of the
validation windows' scores. A model that returns only logits gets a temperature and no ood score."""

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.models.wdcnn import WDCNN
from pipeline.readout.metrics import auroc
from pipeline.readout.readout import Readout, fit_readout, load_readout, predict_windows
from tests.tiny import tiny_dataset
from tests.training.tiny_training import SpectrumClassifier


class LogitsOnly(SpectrumClassifier):
    """Class logits and nothing else, whatever the recording conditions."""

    def forward(self, x, **conditions):  # noqa: ARG002
        return super().forward(x)


@pytest.fixture
def wdcnn() -> WDCNN:
    torch.manual_seed(0)
    return WDCNN(latent_dim=4).eval()


def test_a_model_with_features_gets_a_temperature_and_an_ood_score(wdcnn):
    dataset = tiny_dataset()
    readout = fit_readout(wdcnn, dataset, ood_quantile=0.9)
    assert readout.temperature > 0 and readout.novelty.means.shape == (3, 100)  # three classes, WDCNN's 100 units
    assert set(readout.metrics) == {
        "calibration/temperature",
        "val/ece_uncalibrated",
        "val/ece_calibrated",
        "val/ood_threshold",
    }
    assert readout.metrics["calibration/temperature"] == readout.temperature

    val = dataset.subset("val")
    out = predict_windows(wdcnn, val.windows, readout=readout, **val.conditions())
    assert out["ood_score"].shape == (60,) and out["out_of_distribution"].dtype == bool
    assert out["out_of_distribution"].mean() == pytest.approx(0.1, abs=1 / 60)  # the 90th percentile
    expected = torch.from_numpy(np.log(out["probs_uncalibrated"]) / readout.temperature).softmax(dim=1).numpy()
    np.testing.assert_allclose(out["probs"], expected, rtol=1e-4, atol=1e-6)

    unlike = 20 * val.windows[:, ::-1].copy()  # louder, and time reversed: no training window looks like these
    shifted = predict_windows(wdcnn, unlike, readout=readout, **val.conditions())
    assert auroc(out["ood_score"], shifted["ood_score"]) > 0.9 and shifted["out_of_distribution"].mean() > 0.5


def test_a_model_that_returns_only_logits_gets_a_temperature_and_no_ood_score():
    torch.manual_seed(0)
    model, dataset = LogitsOnly(), tiny_dataset()
    readout = fit_readout(model, dataset)
    assert readout.novelty is None and readout.ood_threshold is None and readout.temperature > 0
    out = predict_windows(model, dataset.subset("test").windows, readout=readout)
    assert set(out) == {"probs", "probs_uncalibrated"}


def test_an_empty_validation_split_is_named(wdcnn):
    with pytest.raises(ValueError, match="tiny has no validation windows"):
        fit_readout(wdcnn, tiny_dataset({"train": 30, "test": 10}))


def test_a_readout_is_stored_as_numbers_and_tensors_and_read_back(wdcnn, tmp_path):
    readout = fit_readout(wdcnn, tiny_dataset())
    arrays = readout.save_arrays(tmp_path)
    loaded = load_readout(readout.settings(), arrays)  # read with weights_only=True
    assert (loaded.temperature, loaded.ood_threshold) == (readout.temperature, readout.ood_threshold)
    np.testing.assert_array_equal(loaded.novelty.precision, readout.novelty.precision)
    features = np.random.default_rng(0).normal(size=(4, 100))
    np.testing.assert_array_equal(loaded.novelty.score(features), readout.novelty.score(features))


class TouchesAFile:
    """Unpickling this creates `path`: a stand-in for any code a malicious pickle would run."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_a_readout_file_holding_a_pickle_is_refused_without_running_it(tmp_path):
    marker, arrays = tmp_path / "pwned", tmp_path / "readout.pt"
    torch.save({"means": TouchesAFile(marker)}, arrays)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        load_readout({"temperature": 2.0, "ood_threshold": 1.0}, arrays)
    assert not marker.exists()


def test_a_model_logged_before_readouts_reads_its_logits_as_they_are():
    assert load_readout(None) == Readout() and Readout().temperature == 1.0
    logits = np.array([[2.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    out = Readout().apply({"logits": logits, "features": np.zeros((2, 3))})
    np.testing.assert_array_equal(out["probs"], out["probs_uncalibrated"])
    assert set(out) == {"probs", "probs_uncalibrated"}  # features, but no Gaussians to score them with


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan")])
def test_a_temperature_must_be_positive(temperature):
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        Readout(temperature)
