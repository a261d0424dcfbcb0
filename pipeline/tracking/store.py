"""Where MLflow keeps runs: `MLFLOW_TRACKING_URI` if set, else a SQLite store under the repository's mlruns/.

Paths are absolute and derived from this package's location, never from the working directory, so Hydra's
output folders and `mlflow run`'s working directory cannot scatter runs across stores.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import mlflow
import sqlalchemy
from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STORE_DIR = REPO_ROOT / "mlruns"
SERVER_DATABASES = ("postgresql", "mysql", "mssql")  # MLflow's SQL stores other than SQLite
# What an experiment is for, as MLflow 3 records it: "custom_model_development" is the kind its UI names "Machine
# learning", as opposed to "genai_development" ("GenAI apps & agents", traces). MLflow 3.17's own UI picks an
# experiment's pages by its sidebar's GenAI / Model training switch instead, whatever the kind.
EXPERIMENT_KIND, MODEL_TRAINING = "mlflow.experimentKind", "custom_model_development"


def tracking_uri(store_dir: Path = DEFAULT_STORE_DIR) -> str:
    """The tracking URI in force: the environment's (relative SQLite paths made absolute), else
    `sqlite:////<repo>/mlruns/mlflow.db`."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env and env.startswith("sqlite:///") and not env.startswith("sqlite:////"):
        # A relative SQLite path means the working directory's: pin it, so subprocesses agree.
        return f"sqlite:///{Path(env[len('sqlite:///') :]).resolve()}"
    if env:
        return env
    return f"sqlite:///{(store_dir / 'mlflow.db').resolve()}"


def artifact_root(uri: str) -> str | None:
    """Artifact location for new experiments: `artifacts/` beside a SQLite file, else the server's choice."""
    if not uri.startswith("sqlite:///"):
        return None
    db_path = Path(uri[len("sqlite:///") :])
    return (db_path.parent / "artifacts").resolve().as_uri()


def checkpoint_root() -> Path:
    """Where training checkpoints go: `checkpoints/` beside a SQLite store, else the repository's."""
    uri = tracking_uri()
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///") :]).parent / "checkpoints"
    return REPO_ROOT / "checkpoints"


def use_store() -> str:
    """Point MLflow at the store in force and return its URI. In a non-interactive run (a log file, CI) MLflow's
    artifact progress bars are turned off unless the user set them: each would write hundreds of updates."""
    if not sys.stderr.isatty():
        os.environ.setdefault(MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name, "false")
    uri = tracking_uri()
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    return uri


class StoreError(RuntimeError):
    """The tracking store cannot be used; the message names the URI."""


def check_store() -> str:
    """Point MLflow at the store in force and make one cheap query, so a bad URI or an unreachable server fails
    before any work (naming the URI) rather than after minutes of preparing data; returns the URI."""
    uri = use_store()
    try:
        if uri.split(":", 1)[0].split("+", 1)[0] in SERVER_DATABASES:
            _connect_once(uri)
        client = mlflow.MlflowClient(uri, registry_uri=uri)
        client.search_experiments(max_results=1)
        client.search_registered_models(max_results=1)
    except Exception as err:  # every store type fails in its own exception classes
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise StoreError(
            f"MLFLOW_TRACKING_URI={shown_uri(uri)!r} cannot be used ({type(err).__name__}: {first})"
        ) from None
    return uri


def shown_uri(uri: str) -> str:
    """A store URI fit to print: a database password is hidden."""
    return sqlalchemy.engine.make_url(uri).render_as_string() if "@" in uri and "://" in uri else uri


def _connect_once(uri: str) -> None:
    """One direct connection: MLflow itself retries an unreachable database for about 100 s before failing."""
    engine = sqlalchemy.create_engine(uri, connect_args={"connect_timeout": 10} if uri.startswith("postgres") else {})
    try:
        with engine.connect():
            pass
    finally:
        engine.dispose()


def ensure_experiment(name: str) -> str:
    """Id of experiment `name`, created with an absolute artifact location when it is new, and marked as a
    model-training experiment (`EXPERIMENT_KIND`) unless it already states a kind."""
    uri = use_store()
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is None:
        try:
            return mlflow.create_experiment(
                name, artifact_location=artifact_root(uri), tags={EXPERIMENT_KIND: MODEL_TRAINING}
            )
        except mlflow.exceptions.MlflowException:
            # Another process created it between our lookup and our create.
            experiment = mlflow.get_experiment_by_name(name)
    # Without a kind: made by `mlflow run --experiment-name` or an older pipeline. A deleted experiment cannot be
    # tagged; it fails where it is used, as before.
    if EXPERIMENT_KIND not in experiment.tags and experiment.lifecycle_stage == "active":
        mlflow.MlflowClient().set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND, MODEL_TRAINING)
    return experiment.experiment_id
