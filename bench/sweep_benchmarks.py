"""Sweep and DDP benchmarks: one sweep with and without pruning; the same training on 2 ranks and on 1."""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import mlflow
import optuna
from common import CACHE, REPO, benchmark, emit
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from pipeline.config import DistributedConfig, compose_experiment_config
from pipeline.stages.train import train
from pipeline.sweep.config import SweepConfig
from pipeline.sweep.storage import open_storage
from pipeline.sweep.sweeper import SweepResult, run_sweep


def _shipped_sweep(**changes) -> SweepConfig:
    """The sweep of conf/hparams_search/physics_weights.yaml (sampler, pruner, space), with `changes`."""
    settings = OmegaConf.to_container(OmegaConf.load(REPO / "conf" / "hparams_search" / "physics_weights.yaml"))
    return SweepConfig(**{**settings["hydra"]["sweeper"], **changes})


def _use_fresh_store(root: Path) -> None:
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")


@benchmark
def sweep_pruning() -> None:
    """The shipped 8-trial sweep (same seed, space and objective) on the default data and training, with its
    median pruner and with none, one after the other on 1 rank; ratio = wall time with pruning / without, the
    best objective value each found with that trial's val/accuracy, and every trial's epochs, parameters and
    objective (the last reported, for a pruned trial). Fixed costs per trial (run start, model logging) count
    on both sides."""
    base = compose_experiment_config()
    config = replace(base, data=replace(base.data, cache_dir=str(CACHE)))
    wall_s, summary = {}, {}
    for label, pruner in (("pruned", None), ("unpruned", {"name": "nop", "kwargs": {}})):
        with tempfile.TemporaryDirectory() as tmp:
            _use_fresh_store(Path(tmp))
            sweep = _shipped_sweep(
                storage=str(Path(tmp) / "study.log"),
                study_name=f"bench-{label}",
                **({"pruner": pruner} if pruner else {}),
            )
            start = time.perf_counter()
            result = run_sweep(config, sweep)
            wall_s[label] = time.perf_counter() - start
            accuracy = MlflowClient().get_run(result.parent_run_id).data.metrics["best/val/accuracy"]
            summary[label] = (result.best_trials[0].value, accuracy, result.states, _trial_rows(result))
    emit(
        "sweep/pruning_wall_time_ratio",
        wall_s["pruned"] / wall_s["unpruned"],
        "ratio",
        ratio=wall_s["pruned"] / wall_s["unpruned"],
        pruned_s=wall_s["pruned"],
        unpruned_s=wall_s["unpruned"],
        trials=summary["pruned"][2],
        epochs=config.training.epochs,
    )
    for label, (value, accuracy, _, rows) in summary.items():
        emit(
            f"sweep/best_value_{label}",
            value,
            sweep.metrics[0],
            direction=sweep.directions[0],
            val_accuracy=accuracy,
            trials=rows,
        )


def _trial_rows(result: SweepResult) -> list[dict]:
    """Per trial: state, epochs run, parameters and the objective it ended on (or was pruned at)."""
    study = optuna.load_study(study_name=result.study_name, storage=open_storage(result.storage))
    rows = []
    for trial in study.trials:
        reported = trial.intermediate_values
        value = trial.value if trial.value is not None else reported[max(reported)] if reported else None
        rows.append(
            {
                "trial": trial.number,
                "state": trial.state.name,
                "epochs": len(reported),
                "params": {k: round(v, 4) for k, v in trial.params.items()},
                "value": None if value is None else round(value, 4),
            }
        )
    return rows


@benchmark
def ddp_scaling(epochs: int = 3) -> None:
    """The default training (fewer epochs) on 1 rank and on 2 ranks of this machine at the same global batch;
    ratio = median epoch time on 2 ranks / on 1, and the final val/accuracy of each."""
    base = compose_experiment_config()
    config = replace(
        base, data=replace(base.data, cache_dir=str(CACHE)), training=replace(base.training, epochs=epochs)
    )
    epoch_s, accuracy = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        _use_fresh_store(Path(tmp))
        for ranks in (1, 2):
            result = train(
                replace(config, distributed=DistributedConfig(nproc_per_node=ranks)),
                checkpoint_root=Path(tmp) / "checkpoints",
            )
            history = MlflowClient().get_metric_history(result.run_id, "time/epoch_s")
            epoch_s[ranks] = statistics.median(m.value for m in history)
            accuracy[ranks] = result.metrics["val/accuracy"]
    emit(
        "ddp/epoch_time_ratio_2_vs_1",
        epoch_s[2] / epoch_s[1],
        "ratio",
        ratio=epoch_s[2] / epoch_s[1],
        epoch_s_1_rank=epoch_s[1],
        epoch_s_2_ranks=epoch_s[2],
        epochs=epochs,
    )
    emit("ddp/val_accuracy_1_rank", accuracy[1], "fraction")
    emit("ddp/val_accuracy_2_ranks", accuracy[2], "fraction")
