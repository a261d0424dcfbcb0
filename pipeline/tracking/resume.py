"""Which train run a job continues: the run named by `training.resume`, or (`auto`) the newest interrupted
run of the same configuration that left a checkpoint, here or on the tracking server.

Interrupted means killed (still RUNNING, but its owner is gone: its pid on this host, its heartbeat on
another, see pipeline.tracking.liveness) or stopped by a signal (FAILED with the `interrupted` tag). A run that failed
on its own (divergence, bad data) is not resumed: it would fail again. A RUNNING run that is resumed is taken
over: the `taken_over_from` tag names its old owner, and the new owner ends it. A killed run that left no
checkpoint cannot be resumed; `auto` ends it KILLED rather than leave it RUNNING forever. (MLflow tags have
no compare-and-swap: two jobs that pick the same run at the same moment both take it over.) The configuration
is compared by `training_digest`: the params that shape training and the dataset's content hash, so changing
either starts a new run, on whichever machine.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import mlflow
from mlflow.entities import RunTag

from pipeline.common.config_section import ConfigError
from pipeline.tracking.contract import CONFIG_DIGEST_TAG, STAGE_TAG
from pipeline.tracking.liveness import is_gone, this_process
from pipeline.tracking.records import recorded_run
from pipeline.tracking.remote_checkpoints import LATEST_TAG, heartbeat_now, last_heartbeat, local_checkpoint
from pipeline.tracking.run import FAILURE_TAG
from pipeline.tracking.store import ensure_experiment

OWNER_TAG = "owner"  # host:pid of the process that holds the run
INTERRUPTED_TAG = "interrupted"
TAKEOVER_TAG = "taken_over_from"  # the owner a resumed RUNNING run had
EPOCH_MARKER = "time/epoch_s"  # logged every epoch, always finite: its steps are the epochs a run has logged


def run_to_resume(resume: str, experiment: str, checkpoint_root: Path, digest: str) -> Optional[str]:
    """The run id to continue (`training.resume` is `resume`), or None for a fresh run; `auto` looks among the
    train runs of `experiment` tagged with `digest`
    (`training_digest` of the config and the dataset it trains on). Its checkpoint is then
    `checkpoint_root/<id>/last.pt`, downloaded from the run's artifacts when this machine has none. An explicit
    id that cannot be resumed is a ConfigError."""
    if resume == "never":
        return None
    if resume != "auto":
        return _take_over(_explicit(resume, checkpoint_root))
    candidates = mlflow.search_runs(
        experiment_ids=[ensure_experiment(experiment)],
        output_format="list",
        filter_string=f"tags.{STAGE_TAG} = 'train' AND tags.{CONFIG_DIGEST_TAG} = '{digest}'",
        order_by=["attributes.start_time DESC"],
        max_results=20,
    )
    for run in candidates:
        if not _interrupted(run):
            continue
        if local_checkpoint(run, checkpoint_root / run.info.run_id):
            return _take_over(run)
        if run.info.status == "RUNNING":
            _end_abandoned(run)
    return None


def _owner_gone(run: Any) -> bool:
    tags = run.data.tags
    return is_gone(tags.get(OWNER_TAG, ""), *last_heartbeat(tags))


def _interrupted(run: Any) -> bool:
    status, tags = run.info.status, run.data.tags
    return (
        (status == "RUNNING" and _owner_gone(run))
        or status == "KILLED"
        or (status == "FAILED" and tags.get(INTERRUPTED_TAG) == "true")
    )


def _explicit(run_id: str, checkpoint_root: Path) -> Any:
    run = recorded_run(run_id, "training.resume")
    if run.data.tags.get(STAGE_TAG) != "train":
        raise ConfigError(f"training.resume={run_id!r}: not a train run")
    if run.info.status == "RUNNING" and not _owner_gone(run):
        raise ConfigError(
            f"training.resume={run_id!r}: the run is still running (owner {run.data.tags.get(OWNER_TAG)})"
        )
    if not local_checkpoint(run, checkpoint_root / run_id):
        raise ConfigError(
            f"training.resume={run_id!r}: it left no checkpoint, neither under "
            f"{checkpoint_root / run_id} nor as a run artifact (tag {LATEST_TAG})"
        )
    return run


def _take_over(run: Any) -> str:
    """Claim a RUNNING run for this process before resuming it (the job then ends it FINISHED or FAILED): the
    old owner goes in TAKEOVER_TAG; a fresh heartbeat keeps other hosts from taking it over in turn."""
    if run.info.status == "RUNNING":
        mlflow.MlflowClient().log_batch(
            run.info.run_id,
            tags=[
                RunTag(TAKEOVER_TAG, run.data.tags.get(OWNER_TAG, "")),
                RunTag(OWNER_TAG, this_process()),
                heartbeat_now(),
            ],
        )
    return run.info.run_id


def _end_abandoned(run: Any) -> None:
    client = mlflow.MlflowClient()
    client.set_tag(
        run.info.run_id, FAILURE_TAG, f"owner {run.data.tags.get(OWNER_TAG)} gone before its first checkpoint"
    )
    client.set_terminated(run.info.run_id, "KILLED")


def logged_epochs(run_id: str) -> set[int]:
    """The epochs `run_id` has metrics for."""
    return {m.step for m in mlflow.MlflowClient().get_metric_history(run_id, EPOCH_MARKER)}


def log_epoch_missing_from_run(run_id: str, checkpoint: dict, logged: set[int]) -> None:
    """The checkpoint of epoch e is written before epoch e's metrics are logged: a job killed in between left
    epoch e in the checkpoint but not in MLflow (`logged`). Log it now, so every epoch has exactly one value."""
    epoch, metrics = checkpoint["epoch"], checkpoint["metrics"]
    finite = {name: value for name, value in metrics.items() if math.isfinite(value)}
    if epoch not in logged and finite:
        mlflow.log_metrics(finite, step=epoch, run_id=run_id)


class SkipLoggedEpochs:
    """A per-epoch callback that passes on only the epochs not in `logged`.

    A resumed run retrains the epochs after its checkpoint, and some may be logged already: the checkpoint is
    older than the metrics when `training.checkpoint_every` > 1 or when the newest upload failed. Retraining
    repeats the same values, so the logged ones stand and each epoch keeps exactly one value per metric.
    """

    def __init__(self, callback: Callable[[int, Mapping[str, float]], None], logged: set[int]):
        self.callback, self.logged = callback, logged

    def __call__(self, epoch: int, metrics: Mapping[str, float]) -> None:
        if epoch not in self.logged:
            self.callback(epoch, metrics)
