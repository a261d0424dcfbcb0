"""Shared fixtures: a private MLflow store per test, the Hydra config composed the way the stages do, the real
CWRU recordings, and one whole pipeline run (with its champion served over HTTP) for the tests that need a real
trained model."""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from pipeline.config import register_configs
from tests.tiny import TINY, TINY_MODEL

REPO = Path(__file__).resolve().parents[1]
CONF_DIR = REPO / "conf"
POSTGRES = "postgresql://postgres@127.0.0.1:5432"

torch.set_num_threads(1)  # two cores are shared by pytest's workers and any subprocess they start


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files that hold a slow test first, each file's tests in their own order. `make test` hands whole files
    to its two workers in this order (`--dist loadfile --no-loadscope-reorder`): the long files start early
    and the many short ones fill in at the end, so neither worker is left finishing a long file alone."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)  # a stable sort: the order within stays


def bench_module(name: str):
    """A module of bench/, a folder of scripts (not a package) whose modules import each other by bare name."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(REPO / "bench"))
        return importlib.import_module(name)


@pytest.fixture(scope="session")
def cwru_dir() -> Path:
    """The folder of real CWRU recordings, found as the benchmarks find it (bench/common.py: $AVPINO_CWRU_DIR,
    else ../shared/data/cwru beside the repository). They are never copied into the repository, so the tests
    that read them skip where the folder is absent."""
    folder = bench_module("common").cwru_dir()
    if not folder.is_dir():
        pytest.skip(f"real CWRU recordings not found at {folder} (set AVPINO_CWRU_DIR to a CWRU folder)")
    return folder


@pytest.fixture(scope="session")
def uestc_dir(cwru_dir) -> Path:
    """The UESTC recordings (another rig and bearing), in the folder `uestc` beside the CWRU folder, as the
    benchmarks find them (bench/common.py); tests that read them skip where the folder is absent."""
    folder = cwru_dir.parent / "uestc"
    if not (folder / "manifest.csv").is_file():
        pytest.skip(f"UESTC recordings not found at {folder} (they sit beside the CWRU folder, in uestc/)")
    return folder


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory) -> Path:
    """An MLflow SQLite store with its tables made and nothing in them, made once per session: MLflow's
    migrations take a second or two for every new store, a copy of this one a millisecond."""
    import mlflow  # here, not at the top: the xdist controller loads this file too and needs no MLflow

    db = tmp_path_factory.mktemp("empty-store") / "mlflow.db"
    mlflow.MlflowClient(f"sqlite:///{db}").search_experiments()  # the first call makes the tables
    return db


@pytest.fixture
def mlflow_store(empty_store, tmp_path, monkeypatch):
    """Point MLflow at a fresh SQLite store in tmp_path (a copy of `empty_store`); returns its tracking URI."""
    import mlflow

    db = tmp_path / "mlruns" / "mlflow.db"
    db.parent.mkdir()
    shutil.copyfile(empty_store, db)
    uri = f"sqlite:///{db}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    yield uri
    while mlflow.active_run():
        mlflow.end_run()


@pytest.fixture
def compose_config():
    """compose_config(*overrides) -> the DictConfig the Hydra entry points receive."""
    register_configs()

    def _compose(*overrides: str):
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose(config_name="config", overrides=list(overrides))

    return _compose


@contextlib.contextmanager
def fresh_postgres_database(template: str | None = None) -> Iterator[str]:
    """URL of a new database on the PostgreSQL server at 127.0.0.1:5432 (trust auth), a copy of database
    `template` if given, else empty; dropped after the block. Skips the test where there is no such server."""
    import psycopg2

    try:
        admin = psycopg2.connect(f"{POSTGRES}/postgres")
    except psycopg2.OperationalError as err:  # CI and these machines have it; elsewhere say why we skip
        pytest.skip(f"needs PostgreSQL on 127.0.0.1:5432 with trust auth: {str(err).strip()}")
    admin.autocommit = True
    name = f"av_pino_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
        yield f"{POSTGRES}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL database, dropped after the test."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def mlflow_schema(tmp_path_factory) -> Iterator[str]:
    """Name of a PostgreSQL database holding MLflow's tables, made once per session: MLflow's migrations take
    15-30 s on a fresh database, a copy of this one well under a second."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    with fresh_postgres_database() as url:
        store = SqlAlchemyStore(url, tmp_path_factory.mktemp("template-artifacts").as_uri())
        store.engine.dispose()  # a database being copied must have no open connection
        yield url.rsplit("/", 1)[1]


@pytest.fixture
def mlflow_postgres_database(mlflow_schema) -> Iterator[str]:
    """URL of a fresh PostgreSQL database with MLflow's tables already made, dropped after the test."""
    with fresh_postgres_database(template=mlflow_schema) as url:
        yield url


def shared_by_workers(tmp_path_factory) -> Path:
    """A folder of this run that every pytest-xdist worker sees (the run's own folder without workers)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def pipeline_store(tmp_path_factory):
    """A store holding one whole pipeline run started the way the README does, with `mlflow run .`, on a tiny
    config (`overrides`); its `av-pino@champion` is a real trained model. One per run: the first worker that
    needs it makes it, holding a lock that a second worker waits on before it reads what the first printed."""
    root = shared_by_workers(tmp_path_factory) / "pipeline"
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}", "OMP_NUM_THREADS": "1"}
    with open(f"{root}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / "stdout.txt").exists():
            root.mkdir(exist_ok=True)
            (root / "stdout.txt").write_text(run_the_readme_pipeline(root, env))
    stdout = (root / "stdout.txt").read_text()
    return {
        "root": root,
        "env": env,
        "uri": env["MLFLOW_TRACKING_URI"],
        "stdout": stdout,
        "overrides": TINY,
        "tiny_model": TINY_MODEL,
        "repo": REPO,
    }


def run_the_readme_pipeline(root: Path, env: dict) -> str:
    """`mlflow run .` (the README's first command) on the tiny config, into `root`; returns what it printed."""
    overrides = " ".join(TINY + [f"data.cache_dir={root / 'data'}", f"hydra.run.dir={root / 'hydra'}"])
    command = ["mlflow", "run", ".", "--env-manager", "local", "--experiment-name", "av-pino", "-P", "epochs=2"]
    result = subprocess.run(
        [*command, "-P", f"overrides={overrides}"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="session")
def serving_bench():
    """bench/serving_benchmarks.py, whose server launcher and load generator the serving tests share."""
    return bench_module("serving_benchmarks")


@pytest.fixture(scope="session")
def served_champion(pipeline_store, serving_bench, tmp_path_factory):
    """`mlflow models serve -m models:/av-pino@champion` of `pipeline_store` on 127.0.0.1; yields its port."""
    log = tmp_path_factory.mktemp("served-champion") / "server.log"
    with serving_bench.served("models:/av-pino@champion", pipeline_store["env"], log) as port:
        yield port
