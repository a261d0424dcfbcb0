"""A team, for real: one `mlflow server` on PostgreSQL with proxied artifacts, as the README's team section starts
it, and two folders, A and B, each a checkout of the code and configs, acting as two machines. Every command
runs in its machine's folder with `MLFLOW_TRACKING_URI` pointing at the server, so a machine's dataset cache and
`checkpoints/` are its own and all else goes through the server.

What the team does, three things at once (`team` runs them, the tests read what they left):
- A runs the pipeline; A's dataset is then moved out of reach and B runs the pipeline with a changed parameter:
  B reuses A's prepare run and rebuilds its dataset in B's cache, checked by content hash; then B pulls the
  champion over HTTP alone;
- a train job on A is killed with SIGKILL once it uploaded a checkpoint of epoch >= 1, and B continues it;
- two sweep workers, one in each folder, share one Optuna study on PostgreSQL. The study has a database of its
  own, as in the README: Optuna's tables and MLflow's would share one `alembic_version` table.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mlflow
import pytest

from pipeline.tracking.remote_checkpoints import LATEST_TAG
from tests.conftest import fresh_postgres_database
from tests.sweep.test_workers import assert_two_workers_shared, sweep_command
from tests.test_two_machines import TINY, assert_ran_on_rebuilt_dataset, parent, stage_run
from tests.tracking.conftest import mlflow_server
from tests.tracking.test_remote_checkpoints import epoch_steps, uploaded
from tests.tracking.test_resume import EPOCHS
from tests.tracking.test_resume import TINY as TRAIN_TINY  # 4 epochs, a checkpoint after each

pytestmark = pytest.mark.slow  # an mlflow server on PostgreSQL; whole pipelines, a train job and sweep workers on it

REPO = Path(__file__).resolve().parents[1]
STAGES = ("prepare", "train", "evaluate", "register")
PULL_CHAMPION = (
    "import mlflow, numpy as np; m = mlflow.pyfunc.load_model('models:/av-pino@champion'); "
    "print(len(m.predict(np.zeros((3, 256), dtype=np.float32))))"
)


def checkout(folder: Path) -> Path:
    """A copy of the code and configs: a checkout whose store is a server keeps `checkpoints/` beside its code."""
    for part in ("pipeline", "conf"):
        shutil.copytree(REPO / part, folder / part, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def here(machine: Path) -> list[str]:
    """The overrides that keep a command's dataset cache and Hydra outputs in its machine's folder."""
    return [f"data.cache_dir={machine / 'data'}", f"hydra.run.dir={machine / 'hydra'}"]


def python(machine: Path, *args: str) -> str:
    """`python <args>` typed in `machine`'s folder; returns what it printed."""
    done = subprocess.run([sys.executable, *args], cwd=machine, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"python {' '.join(args)} failed on {machine.name}:\n{done.stderr[-3000:]}"
    return done.stdout


def pipelines(a: Path, b: Path, aside: Path) -> dict:
    """A's pipeline; B's with a changed parameter, once the dataset folder A's prepare run recorded is out of
    reach (nothing else builds that dataset on A); then B pulls the champion."""
    on_a = parent({"out": python(a, "-m", "pipeline.workflow", *TINY, *here(a))})
    shutil.move(stage_run(on_a, "prepare").data.tags["dataset_dir"], aside)
    on_b = parent({"out": python(b, "-m", "pipeline.workflow", *TINY, *here(b), "loss.physics_weight=0.2")})
    return {"pipeline_a": on_a, "pipeline_b": on_b, "champion": python(b, "-c", PULL_CHAMPION)}


def killed_and_resumed(a: Path, b: Path) -> dict:
    """A train job on A killed with SIGKILL once it uploaded a checkpoint of epoch >= 1, then continued on B. Its
    run is the train run without a parent: the pipelines' and the sweep's train runs are children."""
    job = subprocess.Popen(
        [sys.executable, "-m", "pipeline.train", *TRAIN_TINY, *here(a)],
        cwd=a,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline, run = time.monotonic() + 300, None
    while run is None or run.data.tags.get(LATEST_TAG, "") < "checkpoints/epoch-0001.pt":
        assert job.poll() is None, f"the train job on A ended ({job.returncode}) before a checkpoint of epoch >= 1"
        assert time.monotonic() < deadline, "the train job on A uploaded no checkpoint of epoch >= 1 in 300 s"
        time.sleep(0.2)
        runs = mlflow.search_runs(
            search_all_experiments=True,
            output_format="list",
            filter_string="tags.stage = 'train' and tags.mlflow.parentRunId IS NULL",
        )
        run = runs[0] if runs else None
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    run_id = run.info.run_id
    killed = mlflow.get_run(run_id)  # its state as SIGKILL left it
    resumed = python(b, "-m", "pipeline.train", *TRAIN_TINY, *here(b), f"training.resume={run_id}")
    return {"killed": killed, "resumed": resumed}


def sweep(a: Path, b: Path, study: str) -> dict:
    """A sweep worker in each folder on the one study, one epoch a trial (sharing needs no pruning); both exit 0."""
    workers = {
        machine: subprocess.Popen(
            sweep_command(machine, study, "hydra.sweeper.n_trials=4", "training.epochs=1"),
            cwd=machine,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for machine in (a, b)
    }
    for machine, worker in workers.items():
        output = worker.communicate(timeout=600)[0]
        assert worker.returncode == 0, f"the sweep worker on {machine.name} failed:\n{output[-3000:]}"
    return {}


@pytest.fixture(scope="module")
def team(tmp_path_factory, mlflow_schema) -> Iterator[dict]:
    """The server, the two machines and what each of the three flows left; the server stops after the module."""
    root = tmp_path_factory.mktemp("team")
    with (
        fresh_postgres_database(template=mlflow_schema) as runs,
        fresh_postgres_database() as study,
        mlflow_server(runs, root / "server") as url,
        pytest.MonkeyPatch.context() as env,
    ):
        env.setenv("MLFLOW_TRACKING_URI", url)  # on every machine
        env.setenv("OMP_NUM_THREADS", "1")
        mlflow.set_tracking_uri(url)
        a, b = checkout(root / "a"), checkout(root / "b")
        aside = root / "a-dataset-out-of-reach"
        with ThreadPoolExecutor() as flows:
            started = [
                flows.submit(pipelines, a, b, aside),
                flows.submit(killed_and_resumed, a, b),
                flows.submit(sweep, a, b, study),
            ]
            left = {key: value for flow in started for key, value in flow.result().items()}
        yield {"a": a, "b": b, "study": study, "aside": aside, **left}


def test_a_machine_runs_the_pipeline_on_the_server(team):
    pipeline = team["pipeline_a"]
    runs = [pipeline, *(stage_run(pipeline, stage) for stage in STAGES)]
    assert [run.info.status for run in runs] == ["FINISHED"] * 5
    assert not any(tag.startswith("reused.") for tag in pipeline.data.tags)
    assert all(run.info.artifact_uri.startswith("mlflow-artifacts:") for run in runs)  # proxied by the server


def test_a_changed_parameter_on_another_machine_rebuilds_the_dataset_there(team):
    prepared, b = stage_run(team["pipeline_a"], "prepare"), team["pipeline_b"]
    assert not Path(prepared.data.tags["dataset_dir"]).exists() and team["aside"].is_dir()  # out of B's reach
    rebuilt = Path(stage_run(b, "train").data.tags["dataset_dir"])
    assert rebuilt.parent == team["b"] / "data"
    assert_ran_on_rebuilt_dataset(b, prepared, rebuilt)


def test_a_job_killed_on_one_machine_continues_on_another(team):
    killed = team["killed"]
    run_id = killed.info.run_id
    assert killed.info.status == "RUNNING"  # as SIGKILL left it
    assert (team["a"] / "checkpoints" / run_id / "last.pt").is_file()

    assert f"train run {run_id}: resumed after epoch" in team["resumed"]
    resumed = mlflow.get_run(run_id)
    assert resumed.info.status == "FINISHED"
    assert epoch_steps(run_id, "train/loss", "val/accuracy", "time/epoch_s") == dict.fromkeys(
        ["train/loss", "val/accuracy", "time/epoch_s"], list(range(EPOCHS))
    )  # each epoch exactly once
    assert resumed.data.tags[LATEST_TAG] == "checkpoints/epoch-0003.pt"
    assert uploaded(run_id) == ["checkpoints/epoch-0002.pt", "checkpoints/epoch-0003.pt"]  # older ones deleted
    assert not (team["b"] / "checkpoints" / run_id).exists()  # finished: B's local cache is gone


def test_sweep_workers_on_two_machines_share_one_postgresql_study(team):
    assert_two_workers_shared(team["study"])


def test_the_other_machine_pulls_the_champion(team):
    assert team["champion"].strip().splitlines()[-1] == "3"
