"""Kill -9 a training job and run the same command again: it continues the same MLflow run from its last
checkpoint, ends FINISHED, logs every metric exactly once per epoch, ends where an uninterrupted run of the
same seed ends (to 1e-5), and leaves no local checkpoint behind. (From another machine:
tests/test_team.py.)"""

import os
import signal
import time

import mlflow
import pytest
import torch
from mlflow.tracking import MlflowClient

from tests.entry_zygote import EntryPoint, entry_job, run_entry_point
from tests.tiny import TINY as TINY_DATA_MODEL

pytestmark = pytest.mark.slow  # train jobs through the entry point, on one and two ranks

EPOCHS = 4
TINY = [*TINY_DATA_MODEL, f"training.epochs={EPOCHS}", "training.batch_size=32", "training.checkpoint_every=1"]


def train_args(root, *overrides):
    return [*TINY, f"data.cache_dir={root.parent / 'data'}", f"hydra.run.dir={root / 'hydra'}", *overrides]


def environment(root):
    return {**os.environ, "OMP_NUM_THREADS": "1", "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}"}


def run(root, *overrides):
    """`python -m pipeline.train` on the tiny config into `root`, to its end (forked from a warm interpreter:
    tests/entry_zygote.py)."""
    root.mkdir(exist_ok=True)
    return run_entry_point("train", *train_args(root, *overrides), env=environment(root), folder=root)


def train_runs(root):
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    return mlflow.search_runs(search_all_experiments=True, output_format="list", filter_string="tags.stage = 'train'")


def kill_after_first_checkpoint(root, *overrides):
    """Start training, wait for a checkpoint of epoch >= 1, kill -9 the whole job (launcher and ranks)."""
    root.mkdir()
    job = EntryPoint(entry_job("train", train_args(root, *overrides), environment(root), root))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and job.poll() is None:
        checkpoints = list((root / "checkpoints").glob("*/last.pt"))
        if checkpoints:
            try:
                if torch.load(checkpoints[0], weights_only=True)["epoch"] >= 1:
                    break
            except Exception:  # mid-rename or mid-write: look again
                pass
        time.sleep(0.05)
    assert job.poll() is None, "the job finished before it could be killed; make it longer"
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()


@pytest.mark.parametrize("ranks, how", [(1, "auto"), (2, "by run id")])
def test_a_killed_job_resumes_the_same_run_and_matches_an_uninterrupted_one(tmp_path, ranks, how):
    overrides = [f"distributed.nproc_per_node={ranks}"]
    straight_root, killed_root = tmp_path / "straight", tmp_path / "killed"
    assert run(straight_root, *overrides).returncode == 0
    kill_after_first_checkpoint(killed_root, *overrides)
    [killed] = train_runs(killed_root)
    assert killed.info.status == "RUNNING"  # what kill -9 leaves behind

    again = run(killed_root, *overrides, *([f"training.resume={killed.info.run_id}"] if how == "by run id" else []))
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"train run {killed.info.run_id}: resumed after epoch" in again.stdout
    [resumed] = train_runs(killed_root)
    assert resumed.info.run_id == killed.info.run_id and resumed.info.status == "FINISHED"
    assert list((killed_root / "checkpoints").iterdir()) == []  # finished: the run's artifacts keep its checkpoint
    [straight] = train_runs(straight_root)
    client = MlflowClient(f"sqlite:///{killed_root / 'mlflow.db'}")
    for name in ("train/loss", "val/accuracy", "val/loss", "physics/equation_of_motion"):
        steps = [m.step for m in client.get_metric_history(resumed.info.run_id, name)]
        assert sorted(steps) == list(range(EPOCHS)), name  # each epoch exactly once
    for name in ("train/loss", "val/loss", "val/accuracy"):
        assert resumed.data.metrics[name] == pytest.approx(straight.data.metrics[name], rel=1e-5, abs=1e-5), name


def test_resuming_a_run_that_does_not_exist_is_a_config_error(tmp_path):
    bad = run(tmp_path / "store", "training.resume=0123456789abcdef0123456789abcdef")
    assert bad.returncode == 2
    assert "training.resume names MLflow run 0123456789abcdef0123456789abcdef, which the tracking store" in bad.stderr
    assert f"sqlite:///{tmp_path / 'store' / 'mlflow.db'} does not hold" in bad.stderr  # the store that was asked
    assert not [r for r in train_runs(tmp_path / "store") if r.info.status == "RUNNING"]
