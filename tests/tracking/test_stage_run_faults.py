"""A training job stopped with SIGTERM (a pre-empted node, `kill`): the process exits, and its MLflow run ends
FAILED with the reason recorded instead of staying RUNNING forever."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import mlflow
import pytest

from tests.entry_zygote import EntryPoint, entry_job
from tests.training.test_divergence_faults import OVERRIDES

pytestmark = pytest.mark.slow  # a train job through the entry point


def test_sigterm_during_training_ends_the_run_failed_with_the_reason(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "OMP_NUM_THREADS": "1"}
    args = [*OVERRIDES, "training.epochs=500", f"data.cache_dir={tmp_path}/data", f"hydra.run.dir={tmp_path}/hydra"]
    job = EntryPoint(entry_job("train", args, env, tmp_path))  # forked from a warm interpreter
    stdout = Path(job.job["stdout"])
    try:
        while not (stdout.exists() and "epoch 1/500" in stdout.read_text()):  # first epoch done: the run is open
            assert job.poll() is None, f"the job ended ({job.returncode}) before its first epoch"
            time.sleep(0.05)
        os.kill(job.pid, signal.SIGTERM)
        job.wait(timeout=120)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait()

    assert job.returncode == 128 + signal.SIGTERM
    mlflow.set_tracking_uri(uri)
    [run] = mlflow.search_runs(experiment_names=["av-pino"], output_format="list")
    assert run.info.status == "FAILED" and run.data.tags["failure.reason"] == "stopped by SIGTERM"
