"""Registry safety with real concurrent `register` processes.

Three `python -m pipeline.register` commands promote three evaluations at once into one store that already has
a champion (SQLite; PostgreSQL; a team's `mlflow server` on PostgreSQL, reached over HTTP), taking turns through
the promotion lock (pipeline/tracking/promotion_lock.py), while this test watches the `champion` alias. The alias
must never be missing and never step down to a worse version; at the end it holds the best, every version records
its decision, and the lock's queue is empty. The three are forked together from a warm interpreter
(tests/entry_zygote.py) and each pauses after reading the champion, so without the lock they would interleave.
(The gate's rules and a two-thread race: test_registry.py, whose template store and stub runs are used here.)
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from pipeline.tracking.registry import promote
from pipeline.tracking.store import ensure_experiment
from tests.entry_zygote import run_entry_points
from tests.tracking.test_registry import EXPERIMENT, POLICY, TINY_MODEL, evaluation_run, model_uri  # noqa: F401

pytestmark = pytest.mark.slow  # register processes on SQLite, PostgreSQL and an mlflow server

SCORES = (0.7, 0.9, 0.8)  # started together; 0.9 must end as champion whatever the order
# Each process pauses after reading the champion, widening the read-compare-set window that promoters without
# the lock would race in (they would all compare against the old champion, and the last writer would win).
SLOW_CHAMPION_READ = """
import time
from pipeline.tracking import registry
read = registry._champion
registry._champion = lambda *args: (read(*args), time.sleep(0.5))[0]
"""


def watch_champion(stop: threading.Event, seen: list[str]) -> None:
    """Record every change of `champion`, as a reader of the registry would see it."""
    client = MlflowClient()
    while not stop.is_set():
        current = client.get_registered_model(POLICY.model_name).aliases.get("champion")
        if not seen or seen[-1] != str(current):
            seen.append(str(current))
        stop.wait(0.05)


@pytest.fixture(params=["sqlite", "postgresql", "http"])
def store(request, tmp_path, monkeypatch) -> tuple[str, str]:
    """(tracking URI, URI of a logged tiny model in it) for a fresh store of each kind."""
    if request.param == "sqlite":
        return request.getfixturevalue("mlflow_store"), request.getfixturevalue("model_uri")
    if request.param == "http":
        uri, artifacts = request.getfixturevalue("tracking_server"), None  # the server keeps them
    else:
        uri = request.getfixturevalue("mlflow_postgres_database")
        artifacts = (tmp_path / "artifacts").as_uri()  # a server database has no folder to put them beside
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.create_experiment(EXPERIMENT, artifact_location=artifacts)
    code = tmp_path / "tiny_model.py"
    code.write_text(TINY_MODEL)
    with mlflow.start_run(experiment_id=mlflow.create_experiment("models", artifact_location=artifacts)):
        return uri, mlflow.pyfunc.log_model(name="model", python_model=str(code), pip_requirements=[]).model_uri


def test_concurrent_register_processes_never_demote_or_drop_the_champion(store, tmp_path):
    tracking_uri, model_uri = store
    first = promote(evaluation_run(model_uri, f1=0.5), POLICY)
    runs = {evaluation_run(model_uri, f1=score): score for score in SCORES}
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "OMP_NUM_THREADS": "1"}
    stop, seen = threading.Event(), []
    watcher = threading.Thread(target=watch_champion, args=(stop, seen))
    watcher.start()
    try:
        jobs = run_entry_points(
            [
                {
                    "entry": "register",
                    "env": env,
                    "setup": SLOW_CHAMPION_READ,
                    "stdout": str(tmp_path / f"out-{i}.txt"),
                    "stderr": str(tmp_path / f"err-{i}.txt"),
                    "args": [
                        f"registry.evaluation_run_id={run_id}",
                        f"registry.model_name={POLICY.model_name}",
                        f"hydra.run.dir={tmp_path / 'hydra'}",
                    ],
                }
                for i, run_id in enumerate(runs)
            ],
            together=True,
        )
    finally:
        stop.set()
        watcher.join()

    for job in jobs:
        assert job["returncode"] == 0, Path(job["stderr"]).read_text()[-3000:]
    client = MlflowClient()
    versions = {str(v.version): v for v in client.search_model_versions(f"name = '{POLICY.model_name}'")}
    score = {version: float(v.tags["test/macro_f1"]) for version, v in versions.items()}
    best = next(v for v in versions.values() if v.tags["evaluation_run_id"] == max(runs, key=runs.get))

    assert seen[0] == first.version and "None" not in seen
    assert [score[v] for v in seen] == sorted(score[v] for v in seen), seen  # never stepped down
    assert seen[-1] == str(best.version) == str(client.get_registered_model(POLICY.model_name).aliases["champion"])
    for version, v in versions.items():  # every decision recorded; each promotion replaced a worse champion
        assert v.tags["promotion.decision"] in ("promoted", "rejected") and v.tags["promotion.reason"]
        if v.tags["promotion.decision"] == "promoted" and version != first.version:
            assert score[v.tags["promotion.previous_champion"]] < score[version]
    register_runs = client.search_runs([ensure_experiment(EXPERIMENT)], "tags.stage = 'register'")
    assert [r.info.status for r in register_runs] == ["FINISHED"] * len(SCORES)
    assert client.search_model_versions(f"name = '{POLICY.model_name}.promotion-lock'") == []  # all released
