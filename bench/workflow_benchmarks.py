"""End-to-end benchmark: the README's first command."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

import mlflow
from common import CACHE, REPO, benchmark, emit


@benchmark
def pipeline_end_to_end() -> None:
    """The README's first command, `mlflow run .`, on the embedded default, into a fresh temporary store."""
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
        start = time.perf_counter()
        subprocess.run(
            [
                "mlflow",
                "run",
                ".",
                "--env-manager",
                "local",
                "--experiment-name",
                "av-pino",
                "-P",
                f"overrides=data.cache_dir={CACHE} hydra.run.dir={tmp}/hydra",
            ],
            cwd=REPO,
            env=env,
            check=True,
            capture_output=True,
        )
        seconds = time.perf_counter() - start
        mlflow.set_tracking_uri(uri)
        evaluation = mlflow.search_runs(
            experiment_names=["av-pino"], filter_string="tags.stage = 'evaluate'", output_format="list"
        )[0]
    emit("pipeline/mlflow_run_wall_time", seconds, "s")
    emit("pipeline/test_accuracy", evaluation.data.metrics["test/accuracy"], "fraction")
