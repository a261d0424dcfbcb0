"""Which train run a job continues: the run named by `training.resume`, or (`auto`) the newest interrupted
run of the same configuration that left a checkpoint.

Interrupted means killed (still RUNNING, but its owner process is gone) or stopped by a signal (FAILED with
the `interrupted` tag). A run that failed on its own (divergence, bad data) is not resumed: it would fail
again. The configuration is compared by a digest of everything that shapes training (data, model, loss,
training), so changing any of it starts a new run.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional

import mlflow
from mlflow.exceptions import MlflowException

from pipeline.config import ConfigError, ExperimentConfig
from pipeline.liveness import is_gone
from pipeline.tracking.store import ensure_experiment
from pipeline.training.training_engine import CHECKPOINT_NAME

CONFIG_DIGEST_TAG = "config_digest"
OWNER_TAG = "owner"  # host:pid of the process that holds the run
INTERRUPTED_TAG = "interrupted"


def config_digest(config: ExperimentConfig) -> str:
    shaping = {"data": asdict(config.data), "model": asdict(config.model), "loss": asdict(config.loss),
               "training": {k: v for k, v in asdict(config.training).items() if k != "resume"}}
    return hashlib.sha256(json.dumps(shaping, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_to_resume(config: ExperimentConfig, checkpoint_root: Path) -> Optional[str]:
    """The run id to continue, or None for a fresh run. An explicit id that cannot be resumed is a ConfigError."""
    if config.training.resume == "never":
        return None
    if config.training.resume != "auto":
        return _explicit(config.training.resume, checkpoint_root)
    candidates = mlflow.search_runs(
        experiment_ids=[ensure_experiment(config.tracking.experiment)], output_format="list",
        filter_string=f"tags.stage = 'train' AND tags.{CONFIG_DIGEST_TAG} = '{config_digest(config)}'",
        order_by=["attributes.start_time DESC"], max_results=20)
    for run in candidates:
        if _interrupted(run) and (checkpoint_root / run.info.run_id / CHECKPOINT_NAME).is_file():
            return run.info.run_id
    return None


def _interrupted(run: Any) -> bool:
    status, tags = run.info.status, run.data.tags
    return ((status == "RUNNING" and is_gone(tags.get(OWNER_TAG, ""))) or status == "KILLED"
            or (status == "FAILED" and tags.get(INTERRUPTED_TAG) == "true"))


def _explicit(run_id: str, checkpoint_root: Path) -> str:
    try:
        run = mlflow.get_run(run_id)
    except MlflowException:
        raise ConfigError(f"training.resume={run_id!r}: no such MLflow run in this store") from None
    if run.data.tags.get("stage") != "train":
        raise ConfigError(f"training.resume={run_id!r}: not a train run")
    if not (checkpoint_root / run_id / CHECKPOINT_NAME).is_file():
        raise ConfigError(f"training.resume={run_id!r}: it left no checkpoint under {checkpoint_root / run_id}")
    if run.info.status == "RUNNING" and not is_gone(run.data.tags.get(OWNER_TAG, "")):
        raise ConfigError(f"training.resume={run_id!r}: the run is still running "
                          f"(owner {run.data.tags.get(OWNER_TAG)})")
    return run_id


def log_epoch_missing_from_run(run_id: str, checkpoint: dict) -> None:
    """The checkpoint of epoch e is written before epoch e's metrics are logged: a job killed in between left
    epoch e in the checkpoint but not in MLflow. Log it now, so every epoch has exactly one value."""
    epoch, metrics = checkpoint["epoch"], checkpoint["metrics"]
    logged = {m.step for m in mlflow.tracking.MlflowClient().get_metric_history(run_id, "train/loss")}
    finite = {name: value for name, value in metrics.items() if math.isfinite(value)}
    if epoch not in logged and finite:
        mlflow.log_metrics(finite, step=epoch, run_id=run_id)
