"""One MLflow run per pipeline stage, which always ends FINISHED or FAILED.

`stage_run` logs what makes a run comparable (the flattened config as params, `config.yaml`, the stage and
code version as tags) and turns SIGTERM into an ordinary exception, so a stopped job marks its run FAILED
instead of leaving it RUNNING.
"""
from __future__ import annotations

import contextlib
import signal
import subprocess
from dataclasses import asdict, is_dataclass
from typing import Any, Iterator, Mapping

import mlflow
import yaml

from pipeline.tracking.store import REPO_ROOT, ensure_experiment

MAX_PARAM_LENGTH = 6000  # MLflow's limit on a param value
FAILURE_TAG = "failure.reason"  # on a FAILED run: what stopped it, so the UI says why without the logs


def failure_reason(err: BaseException) -> str:
    """`TrainingDivergedError: training diverged: ...`; SIGTERM (SystemExit 143) is said as such."""
    if isinstance(err, SystemExit) and err.code == 128 + signal.SIGTERM:
        return "stopped by SIGTERM"
    return f"{type(err).__name__}: {err}"[:MAX_PARAM_LENGTH]


def flatten_config(config: Any, prefix: str = "") -> dict[str, Any]:
    """`{'loss': {'physics_weight': 0.1}}` -> `{'loss.physics_weight': 0.1}` (dataclasses too)."""
    if is_dataclass(config):
        config = asdict(config)
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) or is_dataclass(value):
            flat.update(flatten_config(value, name + "."))
        else:
            flat[name] = value
    return flat


def git_commit() -> str | None:
    """The repository's HEAD commit, or None outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@contextlib.contextmanager
def _sigterm_as_exception() -> Iterator[None]:
    """Raise SystemExit on SIGTERM (main thread only) so context managers unwind and runs end FAILED."""
    def handler(signum, frame):  # noqa: ARG001 - signal handler signature
        raise SystemExit(128 + signum)

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: nothing to install
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def stage_run(stage: str, config: Any, *, experiment: str, run_name: str | None = None,
              tags: Mapping[str, str] | None = None, run_id: str | None = None,
              system_metrics: bool = False, parent_run_id: str | None = None) -> Iterator[mlflow.ActiveRun]:
    """The run of one stage; ends FINISHED, or FAILED on any exception (SIGTERM included).

    Inside an active run (the pipeline's parent), or with `parent_run_id` (a parent in another process, e.g.
    a sweep's), it is a child run in the parent's experiment. Otherwise it adopts the run `mlflow run` made for this process (MLFLOW_RUN_ID), else starts a run in `experiment`.
    With `run_id` it resumes that run and logs no params again. `system_metrics` samples CPU and memory.
    """
    active = mlflow.active_run()
    parent = active or (mlflow.get_run(parent_run_id) if parent_run_id else None)
    experiment_id = parent.info.experiment_id if parent else ensure_experiment(experiment)
    all_tags = {"stage": stage, **(tags or {})}
    commit = git_commit()
    if commit:
        all_tags["mlflow.source.git.commit"] = commit
    if run_name:
        all_tags["mlflow.runName"] = run_name  # also names a run adopted from MLFLOW_RUN_ID
    with _sigterm_as_exception():
        run = mlflow.start_run(run_id=run_id, experiment_id=experiment_id, nested=active is not None,
                               parent_run_id=None if active or run_id else parent_run_id,
                               log_system_metrics=system_metrics)
        try:
            mlflow.set_tags(all_tags)
            if run_id is None:
                params = {k: str(v)[:MAX_PARAM_LENGTH] for k, v in flatten_config(config).items()}
                mlflow.log_params(params)
                mlflow.log_text(yaml.safe_dump(asdict(config) if is_dataclass(config) else dict(config),
                                               sort_keys=False), "config.yaml")
            yield run
        except BaseException as err:
            with contextlib.suppress(Exception):  # best effort: the store may be what failed
                mlflow.set_tag(FAILURE_TAG, failure_reason(err))
                if not isinstance(err, Exception):  # SIGTERM or Ctrl-C: the job may be resumed
                    mlflow.set_tag("interrupted", "true")
            mlflow.end_run(status="FAILED")
            raise
        mlflow.end_run(status="FINISHED")
