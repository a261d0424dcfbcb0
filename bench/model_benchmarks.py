"""Model and trainer benchmarks: accuracy, engine and tracking overhead, AGT-NO's epoch against WDCNN's, inference
latency."""

from __future__ import annotations

import gc
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import mlflow
import torch
from common import benchmark, emit, fixed_batches, load_dataset, timed_pair
from torch import nn

from pipeline.config import ExperimentConfig, compose_experiment_config
from pipeline.readout.calibration import expected_calibration_error
from pipeline.readout.readout import fit_readout, predict_windows
from pipeline.stages.train import make_loaders
from pipeline.tracking.callbacks import MlflowMetricsLogger
from pipeline.training.model_factory import untrained_model
from pipeline.training.training_engine import TrainingEngine


def _train_and_test(config: ExperimentConfig, label: str) -> None:
    """Default training, then accuracy and macro-F1 on the held-out recordings, and their ECE before and after the
    temperature the train stage fits on the validation windows."""
    dataset = load_dataset(config)
    torch.manual_seed(config.training.seed)
    train_loader, val_loader = make_loaders(dataset, config)
    test_loader = torch.utils.data.DataLoader(dataset.subset("test"), batch_size=256)
    model = untrained_model(config)[0]
    engine = TrainingEngine(model, config, device="cpu")
    start = time.perf_counter()
    engine.train(train_loader, val_loader)
    seconds = time.perf_counter() - start
    test = engine.validate(test_loader)
    emit(f"{label}/test_accuracy", test["accuracy"], "fraction", windows=len(test_loader.dataset))
    emit(f"{label}/test_macro_f1", test["macro_f1"], "fraction")
    emit(f"{label}/train_wall_time", seconds, "s", epochs=engine.epoch)
    readout = fit_readout(engine.model, dataset)
    windows = dataset.subset("test")
    outputs = predict_windows(engine.model, windows.windows, readout=readout, **windows.conditions())
    emit(
        f"{label}/test_ece",
        expected_calibration_error(outputs["probs"], windows.labels),
        "fraction",
        before_temperature=round(expected_calibration_error(outputs["probs_uncalibrated"], windows.labels), 4),
        temperature=round(readout.temperature, 4),
    )


@benchmark
def accuracy() -> None:
    """Default dataset (split by recording) and default training."""
    _train_and_test(compose_experiment_config(), "default")


@benchmark
def accuracy_load_shift() -> None:
    """Train on loads 0-2 HP, test on 3 HP: the standard harder benchmark."""
    config = compose_experiment_config()
    _train_and_test(replace(config, data=replace(config.data, split="load_shift")), "load_shift")


@benchmark
def engine_overhead(rounds: int = 8) -> None:
    """TrainingEngine.train_epoch vs a bare PyTorch loop with the same model, losses, clipping and batches,
    alternated in one process after one untimed epoch of each (first calls pay for allocations);
    ratio = engine / bare (median over rounds)."""
    config = compose_experiment_config()
    loader = fixed_batches(config)
    model = untrained_model(config)[0]
    engine = TrainingEngine(model, config, device="cpu")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def bare_epoch() -> None:
        model.train()
        for windows, labels, conditions in loader:
            optimizer.zero_grad(set_to_none=True)
            outputs = model(windows, **conditions)
            losses = engine.loss_fn(outputs["predictions"], labels, outputs.get("physics_residuals"))
            total = losses["total_loss"] + engine.advanced_loss.get_total_advanced_loss(outputs)
            total.backward()
            nn.utils.clip_grad_norm_(model.parameters(), config.training.grad_clip)
            optimizer.step()

    engine.train_epoch(loader)
    bare_epoch()
    ratios, engine_times, bare_times = [], [], []
    for round_ in range(rounds):
        engine_s, bare_s = timed_pair(round_, lambda: engine.train_epoch(loader), bare_epoch)
        engine_times.append(engine_s)
        bare_times.append(bare_s)
        ratios.append(engine_s / bare_s)
    emit(
        "engine_overhead/epoch_time_ratio",
        statistics.median(ratios),
        "ratio",
        ratio=statistics.median(ratios),
        engine_s=statistics.median(engine_times),
        bare_s=statistics.median(bare_times),
        batches=len(loader),
    )


@benchmark
def epoch_vs_wdcnn(rounds: int = 6) -> None:
    """TrainingEngine.train_epoch of AGT-NO (its fault orders computed in every forward) vs of WDCNN, the same
    batches and loss settings, alternated in one process after one untimed epoch each; ratio = AGT-NO / WDCNN
    (median over rounds)."""
    config = compose_experiment_config()
    loader = fixed_batches(config)
    engines = {}
    for name in ("agt_no", "wdcnn"):
        named = replace(config, model=replace(config.model, name=name))
        engines[name] = TrainingEngine(untrained_model(named)[0], named, device="cpu")
        engines[name].train_epoch(loader)
    pairs = [
        timed_pair(round_, lambda: engines["agt_no"].train_epoch(loader), lambda: engines["wdcnn"].train_epoch(loader))
        for round_ in range(rounds)
    ]
    ratio = statistics.median(agt_no / wdcnn for agt_no, wdcnn in pairs)
    emit(
        "epoch_vs_wdcnn/epoch_time_ratio",
        ratio,
        "ratio",
        ratio=ratio,
        agt_no_s=statistics.median(p[0] for p in pairs),
        wdcnn_s=statistics.median(p[1] for p in pairs),
        batches=len(loader),
    )


@benchmark
def inference_latency(repeats: int = 1000, warmup: int = 50) -> None:
    """Latency of the serving path (eval, inference mode, forward with physics=False, as the pyfunc calls it):
    batch 1 and batch 256, p50 and p99, per call and per window, with torch's default intra-op threads and with
    one. One thread is the configuration for a shared machine: when another process holds a core, every
    parallel op waits for its descheduled helper thread.

    Each timed loop follows `warmup` untimed calls (caches, allocator pools and the tables built once per window
    length) and runs with the garbage collector off: a collection pass triggered by the benchmark's own bookkeeping
    would be charged to whichever call it lands in, a pause of the Python process rather than of the model."""
    config = compose_experiment_config()
    model = untrained_model(config)[0].eval()
    default_threads = torch.get_num_threads()
    for threads in sorted({default_threads, 1}, reverse=True):
        torch.set_num_threads(threads)
        for batch in (1, 256):
            x = torch.randn(batch, config.data.window)
            calls = repeats if batch == 1 else max(20, repeats // 10)
            times = []
            with torch.inference_mode():
                for _ in range(warmup if batch == 1 else max(2, warmup // 10)):
                    model(x, physics=False)
                gc.disable()
                try:
                    for _ in range(calls):
                        start = time.perf_counter()
                        model(x, physics=False)
                        times.append(time.perf_counter() - start)
                finally:
                    gc.enable()
            times.sort()
            p50, p99 = times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.99))]
            suffix = "" if threads == default_threads else f"/threads{threads}"
            emit(
                f"inference/batch{batch}/p50{suffix}",
                p50 * 1e3,
                "ms",
                per_window_ms=p50 * 1e3 / batch,
                threads=threads,
                calls=calls,
            )
            emit(
                f"inference/batch{batch}/p99{suffix}",
                p99 * 1e3,
                "ms",
                per_window_ms=p99 * 1e3 / batch,
                threads=threads,
                calls=calls,
            )
    torch.set_num_threads(default_threads)


@benchmark
def tracking_overhead(rounds: int = 4) -> None:
    """train_epoch plus per-epoch MLflow logging vs train_epoch alone, alternated on the same engine and
    batches; ratio = with logging / without (median over rounds)."""
    config = compose_experiment_config()
    loader = fixed_batches(config)
    engine = TrainingEngine(untrained_model(config)[0], config, device="cpu")
    log = MlflowMetricsLogger()
    with tempfile.TemporaryDirectory() as tmp:
        mlflow.set_tracking_uri(f"sqlite:///{Path(tmp) / 'mlflow.db'}")
        with mlflow.start_run():
            ratios = []
            for round_ in range(rounds):
                logged, bare = timed_pair(
                    round_,
                    lambda: log(round_, {f"train/{k}": v for k, v in engine.train_epoch(loader).items()}),
                    lambda: engine.train_epoch(loader),
                )
                ratios.append(logged / bare)
    emit("tracking_overhead/epoch_time_ratio", statistics.median(ratios), "ratio", ratio=statistics.median(ratios))
