"""The WDCNN baseline: built by name, any window length, trained by the unchanged TrainingEngine with no
physics in its loss, and it learns."""
import pytest
import torch
from torch.utils.data import DataLoader

from pipeline.baselines.wdcnn import NO_PHYSICS, WDCNN
from pipeline.config import LossConfig, ModelConfig
from pipeline.model_factory import build_model
from pipeline.training.training_engine import TrainingEngine
from tests.training.tiny_training import tiny_config, tone_windows


def test_built_by_name_from_a_model_config():
    model = build_model(ModelConfig(name="wdcnn"), sample_rate=12000)
    assert isinstance(model, WDCNN)


@pytest.mark.parametrize("length", [100, 256, 1024, 2048])
def test_any_window_length_gives_the_engine_outputs(length):
    model = WDCNN(latent_dim=8).eval()
    out = model(torch.randn(3, length))
    assert out["predictions"].shape == (3, 10)
    assert out["mean"].shape == out["log_var"].shape == (3, 8)
    assert out["uncertainties"].shape == (3,) and (out["uncertainties"] > 0).all()
    assert list(out["physics_residuals"]) == [NO_PHYSICS]
    assert not out["physics_residuals"][NO_PHYSICS].any()
    assert "physical_params" not in out  # it infers no physics
    x = torch.randn(3, length)
    assert torch.equal(model(x)["predictions"], model(x.unsqueeze(-1))["predictions"])  # [B, L] == [B, L, 1]


def test_eval_is_deterministic_and_training_samples_the_latent():
    torch.manual_seed(0)
    model, x = WDCNN(), torch.randn(4, 512)
    assert torch.equal(model.eval()(x)["predictions"], model(x)["predictions"])
    model.train()
    assert not torch.equal(model(x)["predictions"], model(x)["predictions"])


def test_the_serving_path_leaves_out_the_training_placeholders():
    model, x = WDCNN().eval(), torch.randn(2, 1024)
    served = model(x, physics=False)
    assert set(served) == {"predictions", "mean", "log_var", "uncertainties"}
    assert torch.equal(served["predictions"], model(x)["predictions"])


def test_rejects_a_wrong_shape():
    with pytest.raises(ValueError, match=r"expects \[B, L\]"):
        WDCNN()(torch.randn(2, 3, 4, 5))


def test_trains_with_the_engine_on_the_data_loss_alone():
    torch.manual_seed(0)
    config = tiny_config(epochs=4, learning_rate=3e-3)
    config.loss = LossConfig(physics_weight=0.0, consistency_weight=0.0, adaptive_weighting=False)
    engine = TrainingEngine(WDCNN(), config, torch.device("cpu"))
    train_loader = DataLoader(tone_windows(192, seed=0), batch_size=16, shuffle=True)
    _, history = engine.train(train_loader, DataLoader(tone_windows(96, seed=1), batch_size=48))
    assert history["physics_loss"] == [0.0] * 4 and history["consistency_loss"] == [0.0] * 4
    assert history["data_loss"][-1] < 0.5 * history["data_loss"][0]
    assert history["val_accuracy"][-1] >= 0.9
