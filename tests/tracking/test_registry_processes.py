"""Registry safety with real concurrent `register` processes (issue 6, item 8).

Three `python -m pipeline.register` commands promote three evaluations at once into one SQLite store that
already has a champion, while this test watches the `champion` alias. The alias must never be missing and
never step down to a worse version; at the end it holds the best, and every version records its decision.
(The gate's rules and a two-thread race: test_registry.py, whose template store and stub runs are used here.)
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from mlflow import MlflowClient

from pipeline.tracking.registry import promote
from pipeline.tracking.store import ensure_experiment
from tests.tracking.test_registry import EXPERIMENT, POLICY, evaluation_run, model_uri  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
SCORES = (0.7, 0.9, 0.8)  # started together; 0.9 must end as champion whatever the order


def watch_champion(stop: threading.Event, seen: list[str]) -> None:
    """Record every change of `champion`, as a reader of the registry would see it."""
    client = MlflowClient()
    while not stop.is_set():
        current = client.get_registered_model(POLICY.model_name).aliases.get("champion")
        if not seen or seen[-1] != str(current):
            seen.append(str(current))
        stop.wait(0.05)


def test_concurrent_register_processes_never_demote_or_drop_the_champion(model_uri, mlflow_store):
    first = promote(evaluation_run(model_uri, f1=0.5), POLICY)
    runs = {evaluation_run(model_uri, f1=score): score for score in SCORES}
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_store, "OMP_NUM_THREADS": "1"}
    stop, seen = threading.Event(), []
    watcher = threading.Thread(target=watch_champion, args=(stop, seen))
    watcher.start()
    try:
        processes = [subprocess.Popen(
            [sys.executable, "-m", "pipeline.register", f"registry.evaluation_run_id={run_id}",
             f"registry.model_name={POLICY.model_name}", "hydra.run.dir=" + str(Path(mlflow_store[10:]).parent)],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for run_id in runs]
        outputs = [process.communicate(timeout=300) for process in processes]
    finally:
        stop.set()
        watcher.join()

    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0, err[-3000:]
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
