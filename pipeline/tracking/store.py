"""Where MLflow keeps runs: `MLFLOW_TRACKING_URI` if set, else a SQLite store under the repository's mlruns/.

Paths are absolute and derived from this package's location, never from the working directory, so Hydra's
output folders and `mlflow run`'s working directory cannot scatter runs across stores.
"""
from __future__ import annotations

import os
from pathlib import Path

import mlflow

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STORE_DIR = REPO_ROOT / "mlruns"


def tracking_uri(store_dir: Path = DEFAULT_STORE_DIR) -> str:
    """The tracking URI in force: the environment's (relative SQLite paths made absolute), else
    `sqlite:////<repo>/mlruns/mlflow.db`."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env and env.startswith("sqlite:///") and not env.startswith("sqlite:////"):
        # A relative SQLite path means the working directory's: pin it, so subprocesses agree.
        return f"sqlite:///{Path(env[len('sqlite:///'):]).resolve()}"
    if env:
        return env
    return f"sqlite:///{(store_dir / 'mlflow.db').resolve()}"


def artifact_root(uri: str) -> str | None:
    """Artifact location for new experiments: `artifacts/` beside a SQLite file, else the server's choice."""
    if not uri.startswith("sqlite:///"):
        return None
    db_path = Path(uri[len("sqlite:///"):])
    return (db_path.parent / "artifacts").resolve().as_uri()


def checkpoint_root() -> Path:
    """Where training checkpoints go: `checkpoints/` beside a SQLite store, else the repository's."""
    uri = tracking_uri()
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///"):]).parent / "checkpoints"
    return REPO_ROOT / "checkpoints"


def use_store() -> str:
    """Point MLflow at the store in force and return its URI."""
    uri = tracking_uri()
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    return uri


def ensure_experiment(name: str) -> str:
    """Id of experiment `name`, created with an absolute artifact location when it is new."""
    uri = use_store()
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return mlflow.create_experiment(name, artifact_location=artifact_root(uri))
    except mlflow.exceptions.MlflowException:
        # Another process created it between our lookup and our create.
        return mlflow.get_experiment_by_name(name).experiment_id
