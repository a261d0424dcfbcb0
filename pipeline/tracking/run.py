"""One MLflow run per pipeline stage, which always ends FINISHED or FAILED.

`stage_run` logs what makes a run comparable (the flattened config as params, `config.yaml`, the stage and
code version as tags) and turns SIGTERM into an ordinary exception, so a stopped job marks its run FAILED
instead of leaving it RUNNING. A finished run of a stage in `REUSE_KEYS` (pipeline/tracking/contract.py) is tagged
with its `fingerprint`, so
the workflow can reuse it whether the workflow or a stage command (`python -m pipeline.prepare`) made it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import signal
import subprocess
from dataclasses import asdict, is_dataclass
from typing import Any, Iterator, Mapping, Optional

import mlflow
import sqlalchemy
import yaml

from pipeline.tracking.contract import (
    CODE_VERSION_TAG,
    FINGERPRINT_TAG,
    MAX_PARAM_LENGTH,
    REUSE_KEYS,
    STAGE_TAG,
    param_values,
    reuse_fingerprint,
)
from pipeline.tracking.records import recorded_run
from pipeline.tracking.store import REPO_ROOT, ensure_experiment

FAILURE_TAG = "failure.reason"  # on a FAILED run: what stopped it, so the UI says why without the logs


def browse_hint(uri: str, experiment_id: Optional[str] = None) -> str:
    """How to look at the runs of store `uri`: a tracking server is already the UI; a database needs `mlflow ui`
    (at its default address). With `experiment_id`, the link opens that experiment's runs table."""
    if uri.startswith(("http://", "https://")):
        return f"open {runs_table_url(uri, experiment_id) if experiment_id else uri}"
    if "@" in uri:  # a database server's credentials stay out of logs
        uri = sqlalchemy.engine.make_url(uri).render_as_string(hide_password=True)
    command = f"mlflow ui --backend-store-uri {uri}"
    return f"{command}, then open {runs_table_url(LOCAL_UI, experiment_id)}" if experiment_id else command


LOCAL_UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves by default


def runs_table_url(ui: str, experiment_id: str) -> str:
    """The experiment's runs table in MLflow's UI at `ui`. MLflow 3.17's UI picks an experiment's pages by its
    sidebar's GenAI / Model training switch, not by the experiment's kind, so the link sets the switch."""
    return f"{ui.rstrip('/')}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def failure_reason(err: BaseException) -> str:
    """`TrainingDivergedError: training diverged: ...`; SIGTERM (SystemExit 143) is said as such."""
    if isinstance(err, SystemExit) and err.code == 128 + signal.SIGTERM:
        return "stopped by SIGTERM"
    return f"{type(err).__name__}: {err}"[:MAX_PARAM_LENGTH]


@functools.cache
def git_commit() -> str | None:
    """The repository's HEAD commit, or None outside a git checkout; read once per process, as `code_version`."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@functools.cache
def code_version() -> str:
    """The git commit, plus a digest of uncommitted changes so edited code never reuses old results. Once per
    process: the code it runs was read when it started."""
    commit = git_commit() or "unversioned"
    diff = subprocess.run(["git", "diff", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True).stdout
    return commit if not diff else f"{commit}-dirty-{hashlib.sha256(diff.encode()).hexdigest()[:12]}"


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
def stage_run(
    stage: str,
    config: Any,
    *,
    experiment: str,
    run_name: str | None = None,
    tags: Mapping[str, str] | None = None,
    run_id: str | None = None,
    system_metrics: bool = False,
    parent_run_id: str | None = None,
) -> Iterator[mlflow.ActiveRun]:
    """The run of one stage; ends FINISHED, or FAILED on any exception (SIGTERM included).

    Inside an active run (the pipeline's parent), or with `parent_run_id` (a parent in another process, e.g.
    a sweep's), it is a child run in the parent's experiment. Otherwise it adopts the run `mlflow run` made for
    this process (MLFLOW_RUN_ID), else starts a run in `experiment`.
    With `run_id` it resumes that run and logs no params again. `system_metrics` samples CPU and memory.
    """
    active = mlflow.active_run()
    parent = active or (recorded_run(parent_run_id, "the parent run id") if parent_run_id else None)
    experiment_id = parent.info.experiment_id if parent else ensure_experiment(experiment)
    all_tags = {STAGE_TAG: stage, CODE_VERSION_TAG: code_version(), **(tags or {})}
    commit = git_commit()
    if commit:
        all_tags["mlflow.source.git.commit"] = commit
    if run_name:
        all_tags["mlflow.runName"] = run_name  # also names a run adopted from MLFLOW_RUN_ID
    with _sigterm_as_exception():
        run = mlflow.start_run(
            run_id=run_id,
            experiment_id=experiment_id,
            nested=active is not None,
            parent_run_id=None if active or run_id else parent_run_id,
            log_system_metrics=system_metrics,
        )
        try:
            mlflow.set_tags(all_tags)
            if run_id is None:
                mlflow.log_params(param_values(config))
                mlflow.log_text(
                    yaml.safe_dump(asdict(config) if is_dataclass(config) else dict(config), sort_keys=False),
                    "config.yaml",
                )
            yield run
            if stage in REUSE_KEYS:  # from what the run recorded, however it was started
                done = mlflow.get_run(run.info.run_id)
                mlflow.set_tag(FINGERPRINT_TAG, reuse_fingerprint(stage, done.data.params, done.data.tags))
        except BaseException as err:
            with contextlib.suppress(Exception):  # best effort: the store may be what failed
                mlflow.set_tag(FAILURE_TAG, failure_reason(err))
                if not isinstance(err, Exception):  # SIGTERM or Ctrl-C: the job may be resumed
                    mlflow.set_tag("interrupted", "true")
            mlflow.end_run(status="FAILED")
            raise
        mlflow.end_run(status="FINISHED")
