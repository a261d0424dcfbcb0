"""A training job stopped with SIGTERM (a pre-empted node, `kill`): the process exits, and its MLflow run ends
FAILED with the reason recorded instead of staying RUNNING forever."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import mlflow

from tests.training.test_divergence_faults import OVERRIDES

REPO = Path(__file__).resolve().parents[2]


def test_sigterm_during_training_ends_the_run_failed_with_the_reason(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    job = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline.train",
            *OVERRIDES,
            "training.epochs=500",
            f"data.cache_dir={tmp_path}/data",
            f"hydra.run.dir={tmp_path}/hydra",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "MLFLOW_TRACKING_URI": uri, "OMP_NUM_THREADS": "1"},
    )
    try:
        for line in job.stdout:  # the progress line of the first epoch: the run is open and training
            if line.startswith("epoch 1/500"):
                break
        job.send_signal(signal.SIGTERM)
        job.wait(timeout=120)
    finally:
        job.kill()
        job.wait()

    assert job.returncode == 128 + signal.SIGTERM
    mlflow.set_tracking_uri(uri)
    [run] = mlflow.search_runs(experiment_names=["av-pino"], output_format="list")
    assert run.info.status == "FAILED" and run.data.tags["failure.reason"] == "stopped by SIGTERM"
