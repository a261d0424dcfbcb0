"""Machines share runs, not paths: four working directories on one store act as four machines, each with its
own dataset cache (`data/prepared` under its working directory). Before each command the other machines' caches
are deleted, so no machine finds a folder another one wrote.

A: a standalone `python -m pipeline.prepare`, then the workflow, which reuses that prepare run.
B: the same workflow reuses all four stages without reading any data.
C: with a changed training parameter it reuses prepare, rebuilds A's dataset in its own cache from the recorded
   config, checks its content hash and trains on it.
D (before C): a machine whose simulator gives other numbers is refused, naming both hashes.
All commands run in one warm zygote (tests/entry_zygote.py) on a tiny config.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import mlflow
import pytest

from pipeline.data.prepared import load_prepared
from pipeline.tracking.datasets import CONTENT_HASH_TAG
from tests.entry_zygote import run_entry_points
from tests.tiny import TINY_MODEL

pytestmark = pytest.mark.slow  # whole pipelines through the entry points

TINY = [
    *TINY_MODEL,
    "data.window=256",
    "data.hop=256",
    "data.duration_s=0.1",
    "data.recordings_per_load=3",
    "training.epochs=1",
]
# D's simulator: every signal shifted, as another library version could make it.
OTHER_NUMBERS = """
import dataclasses, pipeline.data.sources as sources
simulate = sources.simulate_recording

def shifted(*args, **kwargs):
    sim = simulate(*args, **kwargs)
    return dataclasses.replace(sim, signal=sim.signal + 1)

sources.simulate_recording = shifted
"""
# (machine, entry, extra overrides, extra setup)
JOBS = [
    ("a", "prepare", [], ""),
    ("a", "workflow", [], ""),
    ("b", "workflow", [], ""),
    ("d", "workflow", ["loss.physics_weight=0.3"], OTHER_NUMBERS),
    ("c", "workflow", ["loss.physics_weight=0.2"], ""),
]
MACHINES = sorted({machine for machine, *_ in JOBS})


def cache(root: Path, machine: str) -> Path:
    return root / machine / "data" / "prepared"


@pytest.fixture(scope="module")
def machines(tmp_path_factory):
    """Every job of JOBS in order, on one SQLite store; returns (root, jobs with their outputs, store URI)."""
    root = tmp_path_factory.mktemp("machines")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "OMP_NUM_THREADS": "1"}
    jobs = []
    for i, (machine, entry, overrides, setup) in enumerate(JOBS):
        (root / machine).mkdir(exist_ok=True)
        others = [str(cache(root, other)) for other in MACHINES if other != machine]
        jobs.append(
            {
                "entry": entry,
                "env": env,
                "args": [*TINY, *overrides],
                "stdout": str(root / f"{i}.out"),
                "stderr": str(root / f"{i}.err"),
                "setup": f"import os, shutil\nos.chdir({str(root / machine)!r})\n"
                f"for other in {others!r}: shutil.rmtree(other, ignore_errors=True)\n{setup}",
            }
        )
    done = run_entry_points(jobs)
    for job in done:
        job["out"], job["err"] = Path(job["stdout"]).read_text(), Path(job["stderr"]).read_text()
    mlflow.set_tracking_uri(uri)
    return root, done, uri


def parent(job) -> mlflow.entities.Run:
    """The pipeline run a workflow job printed."""
    run_id = next(line.split()[2].rstrip(":") for line in job["out"].splitlines() if line.startswith("pipeline run"))
    return mlflow.get_run(run_id)


def stage_run(pipeline: mlflow.entities.Run, stage: str) -> mlflow.entities.Run:
    """The run `pipeline` ran or reused for `stage`."""
    tags = pipeline.data.tags
    if f"reused.{stage}" in tags:
        return mlflow.get_run(tags[f"reused.{stage}"])
    [run] = mlflow.search_runs(
        [pipeline.info.experiment_id],
        output_format="list",
        filter_string=(f"tags.mlflow.parentRunId = '{pipeline.info.run_id}' and tags.stage = '{stage}'"),
    )
    return run


def assert_ran_on_rebuilt_dataset(pipeline: mlflow.entities.Run, prepared: mlflow.entities.Run, rebuilt: Path):
    """`pipeline` reused the `prepared` run and no later stage, and trained, evaluated and registered on
    `rebuilt`, a dataset this machine built with the content hash `prepared` recorded."""
    assert pipeline.data.tags["reused.prepare"] == prepared.info.run_id
    assert not any(f"reused.{stage}" in pipeline.data.tags for stage in ("train", "evaluate", "register"))
    content = prepared.data.tags[CONTENT_HASH_TAG]
    assert load_prepared(rebuilt, verify=True).manifest["content_hash"] == content
    for stage in ("train", "evaluate"):
        run = stage_run(pipeline, stage)
        assert run.info.status == "FINISHED" and run.data.tags["dataset_dir"] == str(rebuilt)
        assert run.data.tags[CONTENT_HASH_TAG] == content
    assert stage_run(pipeline, "register").info.status == "FINISHED"


def test_a_standalone_prepare_run_is_reused_by_a_later_workflow(machines):
    root, (prepare, workflow, *_), uri = machines
    assert prepare["returncode"] == 0 and workflow["returncode"] == 0, workflow["err"][-3000:]
    [standalone] = mlflow.search_runs(
        experiment_names=["av-pino"], output_format="list", filter_string="tags.stage = 'prepare'"
    )
    assert "mlflow.parentRunId" not in standalone.data.tags
    a = parent(workflow)
    assert a.data.tags["reused.prepare"] == standalone.info.run_id
    assert not any(f"reused.{stage}" in a.data.tags for stage in ("train", "evaluate", "register"))
    assert f"compare runs:  mlflow ui --backend-store-uri {uri}" in workflow["out"]


def test_another_machine_reuses_every_stage_without_reading_data(machines):
    root, (_, on_a, same, *_), _ = machines
    assert same["returncode"] == 0, same["err"][-3000:]
    a, b = parent(on_a), parent(same)
    assert {key: value for key, value in b.data.tags.items() if key.startswith("reused.")} == {
        f"reused.{stage}": stage_run(a, stage).info.run_id for stage in ("prepare", "train", "evaluate", "register")
    }
    assert not cache(root, "b").exists()


def test_a_changed_parameter_rebuilds_the_dataset_here_and_trains_on_it(machines):
    root, (_, on_a, _, _, changed), _ = machines
    assert changed["returncode"] == 0, changed["err"][-3000:]
    assert not cache(root, "a").exists()  # A's folder, which the prepare run names, is not on this machine
    [rebuilt] = cache(root, "c").iterdir()
    assert_ran_on_rebuilt_dataset(parent(changed), stage_run(parent(on_a), "prepare"), rebuilt)


def test_a_machine_that_rebuilds_other_content_is_refused(machines):
    root, (_, on_a, _, refused, _), _ = machines
    assert refused["returncode"] == 1 and "Traceback" not in refused["err"]
    [message] = [line for line in refused["err"].splitlines() if line.startswith("DatasetError:")]
    recorded = stage_run(parent(on_a), "prepare").data.tags[CONTENT_HASH_TAG]
    found = re.search(r"has content hash (sha256:\w+), not the recorded (sha256:\w+)", message)
    assert found and found[1] != recorded and found[2] == recorded, message
    runs = mlflow.search_runs(experiment_names=["av-pino"], output_format="list")
    assert "RUNNING" not in {run.info.status for run in runs}
    failed = [run for run in runs if run.info.status == "FAILED"]
    assert [run.data.tags["stage"] for run in failed] == ["pipeline"], "it stops before any stage starts"
    assert failed[0].data.tags["failure.reason"] == message
