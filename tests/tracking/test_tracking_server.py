"""A team's tracking server, started as the README's team section does: `mlflow server` on PostgreSQL with
proxied artifacts (the `tracking_server` fixture, tests/tracking/conftest.py). A machine pointed at it runs the
whole pipeline; another process, in another folder, pulls the champion over HTTP alone."""
from __future__ import annotations

import os
import subprocess
import sys

import mlflow

from tests.entry_zygote import run_entry_points

TINY = ["data.window=256", "data.hop=256", "data.duration_s=0.3", "data.recordings_per_load=3", "training.epochs=1",
        "model.hidden_dim=8", "model.n_layers=1", "model.n_modes=8", "model.n_heads=2", "model.patch_size=32"]


def test_a_machine_runs_the_pipeline_on_the_server_and_another_pulls_the_champion(tracking_server, tmp_path):
    machine = tmp_path / "machine_a"
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_server}
    [job] = run_entry_points([{
        "entry": "workflow", "env": env, "stdout": str(tmp_path / "a.out"), "stderr": str(tmp_path / "a.err"),
        "args": [*TINY, f"data.cache_dir={machine / 'data'}", f"hydra.run.dir={machine / 'hydra'}"]}], tmp_path)
    assert job["returncode"] == 0, (tmp_path / "a.err").read_text()[-3000:]

    mlflow.set_tracking_uri(tracking_server)
    runs = mlflow.search_runs(experiment_names=["av-pino"], output_format="list")
    assert {run.data.tags["stage"]: run.info.status for run in runs} == dict.fromkeys(
        ["pipeline", "prepare", "train", "evaluate", "register"], "FINISHED")
    assert all(run.info.artifact_uri.startswith("mlflow-artifacts:") for run in runs)  # proxied by the server

    elsewhere = tmp_path / "machine_b"
    elsewhere.mkdir()
    code = ("import mlflow, numpy as np; m = mlflow.pyfunc.load_model('models:/av-pino@champion'); "
            "print(len(m.predict(np.zeros((3, 256), dtype=np.float32))))")
    pulled = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True,
                            timeout=300)
    assert pulled.returncode == 0, pulled.stderr[-3000:]
    assert pulled.stdout.strip().splitlines()[-1] == "3"
