"""A fresh SQLite store is created by one process at a time (pipeline/tracking/store_creation.py): first runs
started together on a fresh clone all finish, where MLflow alone makes all but one fail in its migrations."""

import os
import subprocess
import sys

import mlflow
import pytest
from mlflow.tracking._model_registry.utils import _get_store_registry
from mlflow.tracking._tracking_service.utils import _tracking_store_registry

from pipeline.tracking.store_creation import lock_path, registry_store, tracking_store
from tests.conftest import REPO
from tests.tiny import TINY


def test_mlflow_opens_sqlite_stores_through_the_creation_lock(tmp_path):
    assert _tracking_store_registry.get_store_builder("sqlite:///mlflow.db") is tracking_store
    assert _get_store_registry().get_store_builder("sqlite:///mlflow.db") is registry_store

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert [e.name for e in client.search_experiments()] == ["Default"]
    assert lock_path(f"sqlite:///{tmp_path / 'mlflow.db'}") == tmp_path / "mlflow.db.lock"
    assert (tmp_path / "mlflow.db.lock").exists()
    assert lock_path("sqlite://") is None  # an in-memory database has nothing to share


OPEN_FRESH_STORE = """
import sys, mlflow
client = mlflow.MlflowClient(sys.argv[1])
client.create_experiment(sys.argv[2])
client.search_registered_models()
"""


@pytest.mark.slow
def test_four_processes_opening_one_fresh_store_together_all_succeed(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    processes = [
        subprocess.Popen([sys.executable, "-c", OPEN_FRESH_STORE, uri, f"experiment-{i}"], stderr=subprocess.PIPE)
        for i in range(4)
    ]
    errors = [p.communicate(timeout=120)[1].decode() for p in processes]

    assert [p.returncode for p in processes] == [0, 0, 0, 0], "\n".join(e[-1500:] for e in errors)
    names = {e.name for e in mlflow.MlflowClient(uri).search_experiments()}
    assert names == {"Default", "experiment-0", "experiment-1", "experiment-2", "experiment-3"}


@pytest.mark.slow
def test_two_first_runs_at_once_on_a_fresh_store_both_finish(tmp_path):
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}

    def overrides(i: int) -> str:
        return " ".join([*TINY, f"data.cache_dir={tmp_path / f'data{i}'}", f"hydra.run.dir={tmp_path / f'hydra{i}'}"])

    processes = [
        subprocess.Popen(
            ["mlflow", "run", ".", "-e", "prepare", "--env-manager", "local", "--experiment-name", "av-pino"]
            + ["-P", f"overrides={overrides(i)}"],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for i in range(2)
    ]
    errors = [p.communicate(timeout=300)[1].decode() for p in processes]

    assert [p.returncode for p in processes] == [0, 0], "\n".join(e[-1500:] for e in errors)
    runs = mlflow.MlflowClient(env["MLFLOW_TRACKING_URI"]).search_runs(
        [mlflow.MlflowClient(env["MLFLOW_TRACKING_URI"]).get_experiment_by_name("av-pino").experiment_id]
    )
    assert sorted(run.info.status for run in runs) == ["FINISHED", "FINISHED"]
