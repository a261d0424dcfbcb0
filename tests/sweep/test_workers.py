"""Several sweep workers on one study, started from the command line as users do: on a journal file they share
the study without repeating points (on PostgreSQL, one worker on each of two machines: tests/test_team.py); a
worker killed mid-trial loses only that trial; a worker rides out dropped PostgreSQL connections."""

import os
import signal
import sys
import time
from pathlib import Path

import mlflow
import optuna
import pytest
from optuna.trial import TrialState

from pipeline.sweep.storage import open_storage
from pipeline.sweep.sweeper import PARENT_ATTR
from tests.entry_zygote import EntryPoint, entry_job
from tests.sweep.conftest import TINY

pytestmark = pytest.mark.slow  # sweep workers through the entry point, one on PostgreSQL

POSTGRES = "postgresql://postgres@127.0.0.1:5432"


def sweep_command(folder, storage, *overrides):
    return [
        sys.executable,
        "-m",
        "pipeline.train",
        "-m",
        "hparams_search=physics_weights",
        *TINY,
        f"data.cache_dir={folder / 'data'}",
        f"hydra.sweep.dir={folder / 'multirun'}",
        "distributed.nproc_per_node=1",
        "hydra.sweeper.study_name=shared",
        f"hydra.sweeper.storage={storage}",
        "hydra.sweeper.sampler.kwargs.n_startup_trials=2",
        *overrides,
    ]


def start_worker(folder, storage, *overrides) -> EntryPoint:
    """A worker started in `folder`, its data cache and sweep outputs there too (forked from a warm interpreter:
    tests/entry_zygote.py)."""
    _, _, _, *args = sweep_command(folder, storage, *overrides)  # python -m pipeline.train <args>
    job = entry_job("train", args, {**os.environ, "OMP_NUM_THREADS": "1"}, folder)
    return EntryPoint({**job, "setup": f"import os; os.chdir({str(folder)!r})"})


def finish(worker: EntryPoint, timeout=600) -> str:
    """Wait for `worker` to end with status 0; returns what it printed (stdout, then stderr)."""
    returncode = worker.wait(timeout)
    output = "".join(Path(worker.job[stream]).read_text() for stream in ("stdout", "stderr"))
    assert returncode == 0, output[-4000:]
    return output


def assert_two_workers_shared(storage):
    """What two workers asked for 4 trials leave: both ran trials, no point twice, their sweep runs FINISHED."""
    study = optuna.load_study(study_name="shared", storage=open_storage(storage))
    finished = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(finished) >= 4
    assert len({trial.user_attrs["worker"] for trial in finished}) == 2  # both workers ran trials
    points = [tuple(trial.params.values()) for trial in study.trials]
    assert len(set(points)) == len(points)  # no point proposed twice
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list", filter_string="tags.stage = 'sweep'")
    assert sorted(run.data.tags["sweep.role"] for run in runs) == ["parent", "worker"]
    assert len({run.data.tags["sweep.sampler_seed"] for run in runs}) == 2
    assert all(run.info.status == "FINISHED" for run in runs)


def test_two_workers_share_a_journal_file(mlflow_store, tmp_path):
    storage = str(tmp_path / "study.log")
    for worker in [start_worker(tmp_path, storage, "hydra.sweeper.n_trials=4") for _ in range(2)]:
        finish(worker)
    assert_two_workers_shared(storage)


def test_a_sweep_after_its_tracking_store_was_deleted_continues_the_study_under_a_new_parent(mlflow_store, tmp_path):
    storage = str(tmp_path / "study.log")
    finish(start_worker(tmp_path, storage, "hydra.sweeper.n_trials=1", "training.epochs=1"))
    old_parent = optuna.load_study(study_name="shared", storage=open_storage(storage)).user_attrs[PARENT_ATTR]
    Path(mlflow_store.removeprefix("sqlite:///")).unlink()  # the store goes; the study's journal stays

    output = finish(start_worker(tmp_path, storage, "hydra.sweeper.n_trials=2", "training.epochs=1"))

    assert "Traceback" not in output
    [line] = [line for line in output.splitlines() if "continuing it under a new parent run" in line]
    assert old_parent in line and "1 finished trials summarised there" in line
    [parent] = mlflow.search_runs(
        search_all_experiments=True, output_format="list", filter_string="tags.stage = 'sweep'"
    )
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["sweep.previous_parent_run_id"] == old_parent
    assert parent.data.tags["sweep.previous_tracking_uri"] == mlflow_store
    assert parent.data.metrics["trials/complete"] + parent.data.metrics["trials/pruned"] == 2  # both trials
    trial_runs = mlflow.search_runs(
        search_all_experiments=True, output_format="list", filter_string="tags.stage = 'train'"
    )
    assert [run.data.tags["sweep.trial"] for run in trial_runs] == ["1"]  # trial 0 ran in the deleted store
    assert not mlflow.search_runs(
        search_all_experiments=True, output_format="list", filter_string="attributes.status = 'RUNNING'"
    )


def running_trials(storage: str) -> list:
    """The study's RUNNING trials owned by a worker; none while the journal or the study in it does not exist yet."""
    if not Path(storage).exists():
        return []
    try:
        study = optuna.load_study(study_name="shared", storage=open_storage(storage))
    except KeyError:  # the worker created the file but has not written the study into it yet
        return []
    return [t for t in study.get_trials(states=(TrialState.RUNNING,)) if "worker" in t.user_attrs]


def test_a_killed_worker_loses_only_its_running_trial(mlflow_store, tmp_path):
    storage = str(tmp_path / "study.log")
    worker = start_worker(tmp_path, storage, "hydra.sweeper.n_trials=2", "training.epochs=500")
    deadline = time.monotonic() + 300
    running, trial_runs = [], []
    while not trial_runs and time.monotonic() < deadline:  # wait for the state we kill in, not for a proxy
        time.sleep(1)
        running = running or running_trials(storage)
        if running:
            trial_runs = mlflow.search_runs(
                search_all_experiments=True,
                output_format="list",
                filter_string=f"tags.`sweep.trial` = '{running[0].number}'",
            )
    assert trial_runs, "the worker never started a trial with its MLflow run"
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()

    output = finish(start_worker(tmp_path, storage, "hydra.sweeper.n_trials=1", "training.epochs=1"))
    assert f"trial {running[0].number} of a worker that is gone was marked FAIL" in output
    study = optuna.load_study(study_name="shared", storage=open_storage(storage))
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.COMPLETE]
    killed_runs = mlflow.search_runs(
        search_all_experiments=True, output_format="list", filter_string=f"tags.`sweep.trial` = '{running[0].number}'"
    )
    assert [(r.info.status, r.data.tags["sweep.trial_state"]) for r in killed_runs] == [("FAILED", "FAIL")]
    assert not mlflow.search_runs(
        search_all_experiments=True, output_format="list", filter_string="attributes.status = 'RUNNING'"
    )


def test_a_worker_rides_out_dropped_postgresql_connections(mlflow_store, tmp_path, postgres_database):
    import psycopg2

    worker = start_worker(tmp_path, postgres_database, "hydra.sweeper.n_trials=3")
    storage = open_storage(postgres_database)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and worker.poll() is None:
        time.sleep(0.5)
        studies = optuna.get_all_study_summaries(storage)
        if studies and studies[0].n_trials >= 2:  # one trial done, the next one running
            break
    admin = psycopg2.connect(f"{POSTGRES}/postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:  # what a database restart or a network blip does to the worker
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (postgres_database.rsplit("/", 1)[1],),
        )
        dropped = cursor.fetchone()[0]
    admin.close()
    finish(worker)
    assert dropped > 0
    study = optuna.load_study(study_name="shared", storage=open_storage(postgres_database))
    assert len(study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))) == 3  # nothing finished is lost
    assert not study.get_trials(states=(TrialState.RUNNING,))
