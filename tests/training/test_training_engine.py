"""TrainingEngine on a tiny real AGT-NO and on a model without physics: learning, metrics, conditions,
checkpoints and resume, guards, precision (damaged checkpoint files: test_checkpoint.py)."""

import math
import warnings

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from pipeline.training.device import Precision
from pipeline.training.training_engine import TrainingDivergedError, TrainingEngine
from tests.training.tiny_training import AtShaftSpeed, SpectrumClassifier, tiny_config, tiny_model, tone_windows


def stated_residuals() -> tuple[str, ...]:
    """The residuals the tiny AGT-NO returns (which ones depends on what it is told about its classes)."""
    with torch.no_grad():
        return tuple(tiny_model()(tone_windows(2).tensors[0])["physics_residuals"])


RESIDUALS = stated_residuals()
NO_PHYSICS_HISTORY = {
    "train_loss",
    "data_loss",
    "skipped_steps",
    "lr",
    "loss_weight/data",
    "val_loss",
    "val_accuracy",
    "val_macro_f1",
}


def small_loaders(n=96, generator=None):
    return (
        DataLoader(tone_windows(n, seed=0), batch_size=16, shuffle=True, generator=generator),
        DataLoader(tone_windows(48, seed=1), batch_size=48),
    )


class Interrupt(Exception):
    pass


def test_training_learns_and_the_physics_residuals_fall(loaders):
    engine = TrainingEngine(tiny_model(), tiny_config(epochs=4), torch.device("cpu"))
    model, history = engine.train(*loaders)

    assert model is engine.model
    assert {"equation_of_motion", "measurement"} <= set(RESIDUALS)
    expected = {
        "train_loss",
        "data_loss",
        "physics_loss",
        "consistency_loss",
        "variational_loss",
        "val_loss",
        "val_accuracy",
        "val_macro_f1",
        "skipped_steps",
        "lr",
        *(f"physics/{n}" for n in RESIDUALS),
        *(f"val_physics/{n}" for n in RESIDUALS),
        *(f"loss_weight/{t}" for t in ("data", *RESIDUALS, "consistency", "variational")),
    }
    assert expected <= set(history)
    assert all(len(values) == 4 for values in history.values())
    assert history["data_loss"][-1] < 0.5 * history["data_loss"][0]
    assert history["val_loss"][-1] < history["val_loss"][0]
    assert history["val_accuracy"][-1] > history["val_accuracy"][0] and history["val_accuracy"][-1] >= 0.9
    assert history["val_macro_f1"][-1] >= 0.9
    residual_sum = [sum(history[f"physics/{n}"][i] for n in RESIDUALS) for i in range(4)]
    assert residual_sum[-1] < residual_sum[0]
    assert history["physics/equation_of_motion"][-1] < 0.5 * history["physics/equation_of_motion"][0]
    assert history["consistency_loss"][-1] < history["consistency_loss"][0]
    assert history["lr"][0] == pytest.approx(1e-2) and history["lr"][-1] < history["lr"][0]  # cosine
    assert history["skipped_steps"] == [0, 0, 0, 0]


def test_train_epoch_and_validate_return_documented_keys():
    train_loader, val_loader = small_loaders()
    engine = TrainingEngine(tiny_model(), tiny_config(), torch.device("cpu"))
    metrics = engine.train_epoch(train_loader)
    assert {
        "loss",
        "data_loss",
        "physics_loss",
        "consistency_loss",
        "variational_loss",
        "skipped_steps",
        *(f"physics/{n}" for n in RESIDUALS),
        "loss_weight/data",
        "loss_weight/variational",
    } <= set(metrics)
    assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values())
    assert metrics["loss_weight/measurement"] == pytest.approx(0.1)  # physics_weight x SoftAdapt weight 1
    val = engine.validate(val_loader)
    assert {"loss", "accuracy", "macro_f1", *(f"physics/{n}" for n in RESIDUALS)} <= set(val)
    assert 0.0 <= val["accuracy"] <= 1.0 and 0.0 <= val["macro_f1"] <= 1.0


def test_callbacks_receive_train_and_val_metrics_and_may_stop_training():
    seen = []

    def stop_at_second_epoch(epoch, metrics):
        seen.append((epoch, metrics))
        if epoch == 1:
            raise Interrupt("pruned")

    engine = TrainingEngine(tiny_model(), tiny_config(epochs=4), torch.device("cpu"), callbacks=[stop_at_second_epoch])
    with pytest.raises(Interrupt):
        engine.train(*small_loaders())
    assert [epoch for epoch, _ in seen] == [0, 1]
    metrics = seen[0][1]
    assert {
        "train/loss",
        "train/data_loss",
        "train/physics_loss",
        "train/consistency_loss",
        "train/variational_loss",
        "val/loss",
        "val/accuracy",
        "val/macro_f1",
        "physics/measurement",
        "loss_weight/data",
        "val/physics/measurement",
    } <= set(metrics)


def test_checkpoint_round_trip_restores_everything(tmp_path):
    train_loader, val_loader = small_loaders()
    engine = TrainingEngine(tiny_model(), tiny_config(), torch.device("cpu"))
    engine.train_epoch(train_loader)
    engine.train_epoch(train_loader)
    val = engine.validate(val_loader)
    engine.mlflow_run_id = "run-123"
    engine.save_checkpoint(str(tmp_path / "ckpt" / "epoch_1.pth"), 1, val)
    rng_after_save = torch.rand(3)

    other = TrainingEngine(tiny_model(seed=7), tiny_config(), torch.device("cpu"))
    checkpoint = other.load_checkpoint(str(tmp_path / "ckpt" / "epoch_1.pth"))
    assert checkpoint["epoch"] == 1 and checkpoint["metrics"] == pytest.approx(val)
    assert other.epoch == 2 and other.mlflow_run_id == "run-123"
    assert torch.equal(torch.rand(3), rng_after_save)  # RNG continues where the saved run was
    for (name, a), b in zip(engine.model.state_dict().items(), other.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert other.loss_fn.weights == engine.loss_fn.weights
    assert other.scheduler.state_dict() == engine.scheduler.state_dict()
    assert other.optimizer.state_dict()["state"][0]["step"] == engine.optimizer.state_dict()["state"][0]["step"]
    assert other.validate(val_loader) == pytest.approx(val)


@pytest.mark.parametrize("make_model", [tiny_model, SpectrumClassifier], ids=["agt-no", "no-physics"])
@pytest.mark.parametrize("own_generator", [False, True], ids=["global-rng", "loader-generator"])
def test_resumed_run_reproduces_the_uninterrupted_run(tmp_path, own_generator, make_model):
    def run(checkpoint_dir, callbacks=()):
        generator = torch.Generator().manual_seed(3) if own_generator else None
        torch.manual_seed(0)
        engine = TrainingEngine(make_model(), tiny_config(epochs=4), torch.device("cpu"), callbacks=callbacks)
        return engine.train(*small_loaders(generator=generator), checkpoint_dir=checkpoint_dir)[1]

    straight = run(None)

    def crash_after_second_epoch(epoch, metrics):
        if epoch == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        run(tmp_path, callbacks=[crash_after_second_epoch])
    epochs_run = []
    resumed = run(tmp_path, callbacks=[lambda epoch, metrics: epochs_run.append(epoch)])

    assert epochs_run == [2, 3]

    assert set(resumed) == set(straight)
    for key, values in straight.items():
        assert len(resumed[key]) == 4, key
        assert resumed[key] == pytest.approx(values, rel=1e-6, abs=1e-6), key


def test_a_nan_batch_is_skipped_and_counted():
    windows, labels = tone_windows(64, seed=0).tensors
    windows[16:32] = float("nan")  # the second batch
    loader = DataLoader(TensorDataset(windows, labels), batch_size=16)
    engine = TrainingEngine(tiny_model(), tiny_config(), torch.device("cpu"))
    metrics = engine.train_epoch(loader)
    assert metrics["skipped_steps"] == 1
    assert math.isfinite(metrics["loss"])
    assert all(torch.isfinite(p).all() for p in engine.model.parameters())


def test_all_nan_data_raises_training_diverged_after_max_bad_steps():
    windows, labels = tone_windows(160, seed=0).tensors
    loader = DataLoader(TensorDataset(torch.full_like(windows, float("nan")), labels), batch_size=16)
    engine = TrainingEngine(tiny_model(), tiny_config(max_bad_steps=3), torch.device("cpu"))
    calls = []
    engine._net.register_forward_hook(lambda *args: calls.append(1))
    with pytest.raises(TrainingDivergedError, match=r"3 consecutive.*max_bad_steps=3"):
        engine.train(loader)
    assert len(calls) == 3


def test_cuda_out_of_memory_skips_the_batch(monkeypatch):
    engine = TrainingEngine(tiny_model(), tiny_config(), torch.device("cpu"))
    forward = engine.model.forward
    calls = []

    def oom_once(x):
        calls.append(1)
        if len(calls) == 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return forward(x)

    monkeypatch.setattr(engine.model, "forward", oom_once)
    with pytest.warns(UserWarning, match="out of memory"):
        metrics = engine.train_epoch(DataLoader(tone_windows(64), batch_size=16))
    assert metrics["skipped_steps"] == 1 and math.isfinite(metrics["loss"])


def test_bf16_mixed_precision_on_cpu():
    engine = TrainingEngine(tiny_model(), tiny_config(epochs=2, mixed_precision=True), torch.device("cpu"))
    assert engine.precision.dtype == torch.bfloat16 and not engine.scaler.is_enabled()
    seen = []
    engine.model.classifier.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    _, history = engine.train(*small_loaders())
    assert torch.bfloat16 in seen
    assert all(math.isfinite(v) for v in history["train_loss"] + history["val_loss"])


def test_a_resumed_run_continues_with_the_gradient_scaler_state(tmp_path, monkeypatch):
    """CUDA's fp16 path steps through a GradScaler; here a float32 CPU run does, which takes the same steps."""
    monkeypatch.setattr(
        "pipeline.training.training_engine.precision_for",
        lambda device, mixed_precision: Precision(device.type, None, scaled=True),
    )

    def run(checkpoint_dir, callbacks=()):
        torch.manual_seed(0)
        engine = TrainingEngine(
            tiny_model(), tiny_config(epochs=4, mixed_precision=True), torch.device("cpu"), callbacks=callbacks
        )
        return engine, engine.train(*small_loaders(), checkpoint_dir=checkpoint_dir)[1]

    straight, straight_history = run(None)

    def crash_after_second_epoch(epoch, metrics):
        if epoch == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        run(tmp_path, callbacks=[crash_after_second_epoch])
    resumed, resumed_history = run(tmp_path)

    assert straight.scaler.is_enabled() and straight.scaler.state_dict()["_growth_tracker"] == 4 * 6  # steps
    assert resumed.scaler.state_dict() == straight.scaler.state_dict()
    for key, values in straight_history.items():
        assert resumed_history[key] == pytest.approx(values, rel=1e-6, abs=1e-6), key


def test_compile_flag_compiles_the_model(monkeypatch):
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda module, **kwargs: compiled.append(module) or module)
    engine = TrainingEngine(tiny_model(), tiny_config(compile=True), torch.device("cpu"))
    assert compiled == [engine.model]


def test_early_stopping_through_the_monitor():
    engine = TrainingEngine(tiny_model(), tiny_config(epochs=10, patience=2, learning_rate=1e-9), torch.device("cpu"))
    _, history = engine.train(*small_loaders(n=48))
    assert len(history["train_loss"]) == 3  # best at epoch 0, then 2 epochs without improvement
    assert engine.monitor.check_convergence(patience=2)


def test_a_finished_run_is_not_trained_again_on_resume(tmp_path):
    config = tiny_config(epochs=2)
    TrainingEngine(tiny_model(), config, torch.device("cpu")).train(*small_loaders(n=48), checkpoint_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        engine = TrainingEngine(tiny_model(), config, torch.device("cpu"))
        _, history = engine.train(*small_loaders(n=48), checkpoint_dir=tmp_path)
    assert len(history["train_loss"]) == 2 and engine.epoch == 2


def test_a_model_returning_only_predictions_trains_without_physics_terms(loaders):
    torch.manual_seed(0)
    seen = []
    engine = TrainingEngine(
        SpectrumClassifier(),
        tiny_config(epochs=4),
        torch.device("cpu"),
        callbacks=[lambda epoch, metrics: seen.append(metrics)],
    )
    _, history = engine.train(*loaders)

    assert set(history) == NO_PHYSICS_HISTORY  # no physics, consistency or KL term: absent, not zero
    assert history["data_loss"][-1] < 0.5 * history["data_loss"][0]
    assert history["train_loss"] == history["data_loss"]
    assert history["val_accuracy"][-1] >= 0.9
    assert set(seen[-1]) == {
        "train/loss",
        "train/data_loss",
        "train/skipped_steps",
        "train/lr",
        "loss_weight/data",
        "val/loss",
        "val/accuracy",
        "val/macro_f1",
        "time/epoch_s",
    }
    assert set(engine.validate(loaders[1])) == {"loss", "accuracy", "macro_f1"}


class RecordsConditions(SpectrumClassifier):
    """Keeps the keyword arguments of every forward call."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, x, shaft_hz):
        self.calls.append(shaft_hz)
        return super().forward(x)


def test_a_batch_with_conditions_reaches_the_model_as_keyword_arguments():
    train_set, val_set = AtShaftSpeed(tone_windows(64, seed=0), seed=0), AtShaftSpeed(tone_windows(32, seed=1), seed=1)
    model = RecordsConditions()
    engine = TrainingEngine(model, tiny_config(), torch.device("cpu"))

    metrics = engine.train_epoch(DataLoader(train_set, batch_size=16))
    assert metrics["skipped_steps"] == 0 and math.isfinite(metrics["loss"])
    assert [tuple(s.shape) for s in model.calls] == [(16,)] * 4
    assert torch.equal(torch.cat(model.calls), train_set.shaft_hz)  # each window with its own speed, in order
    model.calls.clear()
    engine.validate(DataLoader(val_set, batch_size=32))
    assert torch.equal(torch.cat(model.calls), val_set.shaft_hz)


def test_a_malformed_batch_is_a_clear_error():
    windows, labels = tone_windows(32).tensors

    def batches_of(batch):
        return DataLoader(range(1), collate_fn=lambda _: batch)

    engine = TrainingEngine(SpectrumClassifier(), tiny_config(), torch.device("cpu"))
    with pytest.raises(ValueError, match=r"\(inputs, targets\) or \(inputs, targets, conditions\), got a tuple of 4"):
        engine.train_epoch(batches_of((windows, labels, {}, "extra")))
    with pytest.raises(ValueError, match="third item of a batch must be a dict.*got Tensor"):
        engine.validate(batches_of((windows, labels, labels)))
