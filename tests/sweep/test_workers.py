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
    mlflow.search_experiments()  # create the SQLite store once: concurrent first use races on its migrations
    for worker in [start_worker(tmp_path, storage, "hydra.sweeper.n_trials=4") for _ in range(2)]:
        finish(worker)
    assert_two_workers_shared(storage)


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
    mlflow.search_experiments()
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

    mlflow.search_experiments()
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
