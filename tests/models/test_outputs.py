"""A model plugs in by what it returns (pipeline/models/outputs.py): one that returns nothing but class logits is
scored by `predict_windows` and served by the pyfunc, whose table has a column for each reading the model has.
AGT-NO and WDCNN share one variational head, so they return the same outputs, meaning the same."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest
import torch
from torch import nn

from pipeline.config import ModelConfig
from pipeline.data.classes import CLASS_NAMES
from pipeline.models.outputs import INITIAL_LOG_VAR, VariationalClassifier, predictive_uncertainty, window_readings
from pipeline.readout.readout import fit_readout, predict_windows
from pipeline.tracking.model_logging import served_model
from pipeline.training.model_factory import MODELS, build_from_settings, build_model
from tests.tiny import tiny_dataset

WINDOW = 256
PROB_COLUMNS = [f"prob_{name}" for name in CLASS_NAMES]
TINY = dict(hidden_dim=8, n_layers=1, n_modes=8, n_heads=2, patch_size=8, latent_dim=4)


class LogitsOnly(nn.Module):
    """The least a model returns: class logits, here from each window's level and spread. It takes the sizes
    `build_model` passes every model and the conditions every model is called with, and uses neither."""

    def __init__(self, output_dim: int, **sizes):  # noqa: ARG002
        super().__init__()
        self.linear = nn.Linear(2, output_dim)

    def forward(self, x: torch.Tensor, **conditions) -> dict:  # noqa: ARG002
        return {"predictions": self.linear(torch.stack([x.mean(dim=-1), x.std(dim=-1)], dim=-1))}


@pytest.fixture
def logits_only(monkeypatch):
    """The factory builds LogitsOnly by the name "logits_only" while the test runs; loading a pyfunc leaves the
    test process's thread count alone."""
    monkeypatch.setitem(MODELS, "logits_only", LogitsOnly)
    monkeypatch.setenv("OMP_NUM_THREADS", str(torch.get_num_threads()))


def settings(name: str) -> dict:
    """What serving a tiny model of `name` needs, as `pipeline.training.model_factory.model_settings` gives it."""
    return {
        "model": asdict(ModelConfig(name=name, output_dim=len(CLASS_NAMES), **TINY)),
        "class_names": list(CLASS_NAMES),
        "window": WINDOW,
        "sample_rate": 12000,
        "shaft_hz": 29.95,
    }


def windows(n: int) -> np.ndarray:
    return np.random.default_rng(n).normal(size=(n, WINDOW)).astype(np.float32)


def test_a_model_that_returns_only_logits_is_scored_on_its_probabilities():
    torch.manual_seed(0)
    model, x = LogitsOnly(output_dim=3), windows(5)
    out = predict_windows(model, x, batch_size=2, shaft_hz=np.full(5, 29.95))
    assert set(out) == {"probs", "probs_uncalibrated"}  # no uncertainty, physics or ood score: it has none
    expected = model(torch.from_numpy(x))["predictions"].softmax(dim=-1).detach().numpy()
    np.testing.assert_allclose(out["probs"], expected, rtol=1e-5)


def test_optional_outputs_are_read_by_name_as_one_number_per_window():
    readings = window_readings(
        {
            "predictions": torch.tensor([[2.0, 0.0], [0.0, 0.0]]),
            "features": torch.ones(2, 5),
            "uncertainties": torch.tensor([0.1, 0.2]),
            "physics_residuals": {"eom": torch.tensor([[1.0, 3.0], [0.0, 2.0]])},
            "physical_params": {"resonance_hz": torch.tensor([3000.0, 2500.0])},
            "fields": {"force": torch.zeros(2, 8)},  # a field over the window is no per-window reading
        }
    )
    assert set(readings) == {"logits", "features", "uncertainty", "physics/eom", "params/resonance_hz"}
    torch.testing.assert_close(readings["logits"][0], torch.tensor([2.0, 0.0]))  # a readout makes probabilities
    torch.testing.assert_close(readings["physics/eom"], torch.tensor([5.0, 2.0]))  # the mean squared residual
    torch.testing.assert_close(readings["params/resonance_hz"], torch.tensor([3000.0, 2500.0]))


OOD = ["ood_score", "out_of_distribution"]


@pytest.mark.usefixtures("logits_only")
@pytest.mark.parametrize(
    "name, readings",
    [("agt_no", ["uncertainty", *OOD]), ("wdcnn", ["uncertainty", *OOD]), ("logits_only", [])],
)
def test_the_served_table_has_a_column_for_each_reading_the_model_returns(name, readings, tmp_path):
    """A model that returns features is served with an ood score; one that returns only logits is not."""
    torch.manual_seed(0)
    model_settings = settings(name)
    model = build_from_settings(model_settings)
    readout = fit_readout(model, tiny_dataset())
    predictor, _ = served_model(model, model_settings, tmp_path, readout)
    table = predictor.predict(None, windows(3), {"shaft_hz": 25.0})
    assert list(table.columns) == ["class", *PROB_COLUMNS, *readings]
    probs = table[PROB_COLUMNS].to_numpy()
    assert probs.sum(axis=1) == pytest.approx(np.ones(3), abs=1e-5)
    assert table["class"].tolist() == [CLASS_NAMES[i] for i in probs.argmax(axis=1)]
    served = predict_windows(model, windows(3), readout=readout, shaft_hz=np.full(3, 25.0))
    np.testing.assert_allclose(probs, served["probs"], rtol=1e-4, atol=1e-6)  # temperature-scaled, as evaluated
    if OOD[0] in readings:
        np.testing.assert_allclose(table["ood_score"], served["ood_score"], rtol=1e-4)
        assert table["out_of_distribution"].dtype == bool


def test_a_model_logged_without_a_readout_serves_its_softmax_and_no_ood_score(tmp_path):
    torch.manual_seed(0)
    model_settings = settings("wdcnn")
    model = build_from_settings(model_settings)
    predictor, _ = served_model(model, model_settings, tmp_path)
    table = predictor.predict(None, windows(3), {"shaft_hz": 25.0})
    assert list(table.columns) == ["class", *PROB_COLUMNS, "uncertainty"]
    softmax = model.eval()(torch.from_numpy(windows(3)))["predictions"].softmax(dim=-1).detach().numpy()
    np.testing.assert_allclose(table[PROB_COLUMNS].to_numpy(), softmax, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["agt_no", "wdcnn"])
def test_agt_no_and_wdcnn_read_their_classes_off_one_variational_head(name):
    torch.manual_seed(0)
    model = MODELS[name](**TINY).eval()
    assert isinstance(model, VariationalClassifier)
    head = {"latent_head.weight", "latent_head.bias", "classifier.weight", "classifier.bias"}
    assert head <= model.state_dict().keys()  # the keys of every model logged so far
    assert (model.latent_head.bias[TINY["latent_dim"] :] == INITIAL_LOG_VAR).all()  # a small latent variance at first
    x = torch.randn(2, WINDOW)
    with torch.inference_mode():
        for outputs in (model(x), model(x, physics=False)):  # training's outputs and the serving path's
            assert {"predictions", "mean", "log_var", "uncertainties"} <= outputs.keys()
            torch.testing.assert_close(outputs["predictions"], model.classifier(outputs["mean"]))  # eval: the mean
            torch.testing.assert_close(
                outputs["uncertainties"], predictive_uncertainty(outputs["predictions"], outputs["log_var"])
            )


@pytest.mark.parametrize("name", ["agt_no", "wdcnn"])
def test_a_model_built_by_hand_is_the_one_the_pipeline_builds_from_the_default_config(name):
    torch.manual_seed(0)
    by_hand = MODELS[name]().state_dict()
    torch.manual_seed(0)
    configured = build_model(ModelConfig(name=name, output_dim=len(CLASS_NAMES)), sample_rate=12000).state_dict()
    assert by_hand.keys() == configured.keys()
    for key, value in by_hand.items():
        assert torch.equal(value, configured[key]), key
