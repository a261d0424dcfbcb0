"""The WDCNN baseline: built by name, any window length, no physics in its outputs, and trained by the same
TrainingEngine on batches that carry each window's shaft speed (which it ignores): it learns, and no physics
metric is invented for it."""

import pytest
import torch
from torch.utils.data import DataLoader

from pipeline.config import LossConfig, ModelConfig
from pipeline.models.outputs import predictive_uncertainty
from pipeline.models.wdcnn import WDCNN
from pipeline.training.model_factory import build_model
from pipeline.training.training_engine import TrainingEngine
from tests.training.tiny_training import AtShaftSpeed, tiny_config, tone_windows

OUTPUTS = {"predictions", "mean", "log_var", "uncertainties", "features"}


def test_built_by_name_from_a_model_config():
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="wdcnn", output_dim=4, latent_dim=6), sample_rate=12000)
    torch.manual_seed(0)
    by_hand = WDCNN(output_dim=4, latent_dim=6).state_dict()
    assert model.state_dict().keys() == by_hand.keys()
    assert all(torch.equal(value, by_hand[key]) for key, value in model.state_dict().items())
    assert model.eval()(torch.randn(2, 1024))["predictions"].shape == (2, 4)  # the config's four classes


@pytest.mark.parametrize("length", [100, 256, 1024, 2048])
def test_any_window_length_gives_the_engine_outputs(length):
    model = WDCNN(latent_dim=8).eval()
    out = model(torch.randn(3, length))
    assert out["predictions"].shape == (3, 10)
    assert out["mean"].shape == out["log_var"].shape == (3, 8)
    assert out["features"].shape == (3, 100)  # the dense layer the head reads: what the ood score models
    assert out["uncertainties"].shape == (3,) and (out["uncertainties"] > 0).all()
    assert torch.equal(out["uncertainties"], predictive_uncertainty(out["predictions"], out["log_var"]))
    assert set(out) == OUTPUTS  # it states and infers no physics
    x = torch.randn(3, length)
    assert torch.equal(model(x)["predictions"], model(x.unsqueeze(-1))["predictions"])  # [B, L] == [B, L, 1]


def test_eval_is_deterministic_and_training_samples_the_latent():
    torch.manual_seed(0)
    model, x = WDCNN(), torch.randn(4, 512)
    assert torch.equal(model.eval()(x)["predictions"], model(x)["predictions"])
    model.train()
    assert not torch.equal(model(x)["predictions"], model(x)["predictions"])


def test_takes_the_keywords_every_model_takes_and_answers_the_same():
    model, x = WDCNN().eval(), torch.randn(2, 1024)
    served = model(x, physics=False)
    conditioned = model(x, shaft_hz=torch.tensor([29.9, 28.8]))
    assert set(served) == set(conditioned) == OUTPUTS
    for key in OUTPUTS:
        assert torch.equal(served[key], model(x)[key]) and torch.equal(conditioned[key], model(x)[key]), key


def test_rejects_a_wrong_shape():
    with pytest.raises(ValueError, match=r"expects \[B, L\]"):
        WDCNN()(torch.randn(2, 3, 4, 5))


def test_trains_with_the_engine_on_the_data_and_kl_terms_alone():
    torch.manual_seed(0)
    config = tiny_config(epochs=4, learning_rate=3e-3)
    config.loss = LossConfig(physics_weight=0.0, consistency_weight=0.0, adaptive_weighting=False)
    engine = TrainingEngine(WDCNN(), config, torch.device("cpu"))
    train_loader = DataLoader(AtShaftSpeed(tone_windows(192, seed=0)), batch_size=16, shuffle=True)
    _, history = engine.train(train_loader, DataLoader(AtShaftSpeed(tone_windows(96, seed=1)), batch_size=48))
    assert set(history) == {
        "train_loss",
        "data_loss",
        "variational_loss",
        "skipped_steps",
        "lr",
        "loss_weight/data",
        "loss_weight/variational",
        "val_loss",
        "val_accuracy",
        "val_macro_f1",
    }
    assert history["data_loss"][-1] < 0.5 * history["data_loss"][0]
    assert history["val_accuracy"][-1] >= 0.9


class Interrupt(Exception):
    pass


def test_a_resumed_run_repeats_the_uninterrupted_one(tmp_path):
    loaders = (
        DataLoader(AtShaftSpeed(tone_windows(64, seed=0)), batch_size=16, shuffle=True),
        DataLoader(AtShaftSpeed(tone_windows(32, seed=1)), batch_size=32),
    )

    def run(checkpoint_dir=None, callbacks=()):
        torch.manual_seed(0)
        engine = TrainingEngine(WDCNN(), tiny_config(epochs=3), torch.device("cpu"), callbacks=callbacks)
        return engine.train(*loaders, checkpoint_dir=checkpoint_dir)[1]

    def crash_after_first_epoch(epoch, metrics):
        raise Interrupt

    straight = run()
    with pytest.raises(Interrupt):
        run(tmp_path, callbacks=[crash_after_first_epoch])
    resumed = run(tmp_path)
    assert resumed.keys() == straight.keys()
    for key, values in straight.items():
        assert resumed[key] == pytest.approx(values, rel=1e-6, abs=1e-6), key
