"""Checkpoints on the tracking server: `auto` takes over a run whose owner on another host stopped beating, and
not one whose heartbeat is fresh; a finished run leaves no local checkpoint folder; a failed upload does not stop
training. (A train job killed on one machine and continued on another from the checkpoint it uploaded:
tests/test_team.py.)"""

from __future__ import annotations

import time
from pathlib import Path

import mlflow
import pytest
from mlflow.exceptions import MlflowException

from pipeline.data.prepared import load_prepared, prepare_dataset
from pipeline.stages.train import train
from pipeline.tracking.contract import CONFIG_DIGEST_TAG, training_digest
from pipeline.tracking.liveness import HEARTBEAT_S, MISSED_BEATS, this_process
from pipeline.tracking.remote_checkpoints import HEARTBEAT_TAG, LATEST_TAG
from pipeline.tracking.resume import OWNER_TAG, TAKEOVER_TAG, run_to_resume
from pipeline.tracking.store import ensure_experiment
from tests.tracking.test_resume import EPOCHS
from tests.training.test_divergence_faults import tiny_config as tiny_stage_config

ELSEWHERE = "another-host:4242"  # an owner on a host this one cannot ask about its pid


class Killed(BaseException):
    """Stands in for kill -9 in an in-process job: not an Exception, so nothing on the way handles it."""


def tiny_config(cache_dir: Path, **training):
    return tiny_stage_config(cache_dir, **{"epochs": EPOCHS, **training})


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    config = tiny_config(tmp_path_factory.mktemp("data"))
    return prepare_dataset(config.data, config.data.cache_dir)


def epoch_steps(run_id: str, *names: str) -> dict[str, list[int]]:
    client = mlflow.MlflowClient()
    return {name: sorted(m.step for m in client.get_metric_history(run_id, name)) for name in names}


def uploaded(run_id: str) -> list[str]:
    return sorted(f.path for f in mlflow.MlflowClient().list_artifacts(run_id, "checkpoints"))


def test_auto_takes_over_a_run_whose_owner_on_another_host_stopped_beating(mlflow_store, prepared, tmp_path, capsys):
    config = tiny_config(prepared.parent, checkpoint_every=2)  # checkpoints after epochs 1 and 3

    def killed_after_epoch_2(epoch, metrics):  # after epoch 2's metrics: they are newer than the checkpoint
        if epoch == 2:
            raise Killed()

    with pytest.raises(Killed):
        train(config, prepared, checkpoint_root=tmp_path / "a", callbacks=[killed_after_epoch_2])
    [run] = mlflow.search_runs(search_all_experiments=True, output_format="list")
    run_id, client = run.info.run_id, mlflow.MlflowClient()
    assert run.data.tags[LATEST_TAG] == "checkpoints/epoch-0001.pt"
    client.update_run(run_id, status="RUNNING")  # as kill -9 on another host leaves it
    client.set_tag(run_id, OWNER_TAG, ELSEWHERE)
    machine_b = tmp_path / "b"

    client.set_tag(run_id, HEARTBEAT_TAG, f"{time.time():.0f}")
    digest = training_digest(config, load_prepared(prepared).manifest["content_hash"])
    assert (
        run_to_resume(config.training.resume, config.tracking.experiment, machine_b, digest) is None
    )  # alive, as far as anyone can tell
    assert not machine_b.exists() and TAKEOVER_TAG not in mlflow.get_run(run_id).data.tags

    client.set_tag(run_id, HEARTBEAT_TAG, f"{time.time() - MISSED_BEATS * HEARTBEAT_S - 5:.0f}")
    result = train(config, prepared, checkpoint_root=machine_b)
    assert result.run_id == run_id
    assert f"train run {run_id}: resumed after epoch 2" in capsys.readouterr().out
    resumed = mlflow.get_run(run_id)
    assert resumed.info.status == "FINISHED"
    assert resumed.data.tags[TAKEOVER_TAG] == ELSEWHERE and resumed.data.tags[OWNER_TAG] == this_process()
    assert epoch_steps(run_id, "train/loss", "val/accuracy", "time/epoch_s") == dict.fromkeys(
        ["train/loss", "val/accuracy", "time/epoch_s"], list(range(EPOCHS))
    )  # epoch 2 retrained, not relogged
    assert not (machine_b / run_id).exists() and (tmp_path / "a" / run_id / "last.pt").is_file()


def test_auto_ends_a_run_whose_owner_on_another_host_died_before_its_first_checkpoint(mlflow_store, tmp_path):
    config = tiny_config(tmp_path / "data")
    experiment = ensure_experiment(config.tracking.experiment)  # not set_experiment: it outlives the test
    client = mlflow.MlflowClient()
    run = client.create_run(
        experiment,
        tags={
            "stage": "train",
            CONFIG_DIGEST_TAG: training_digest(config, "a dataset's content hash"),
            OWNER_TAG: ELSEWHERE,
            HEARTBEAT_TAG: f"{time.time() - MISSED_BEATS * HEARTBEAT_S - 5:.0f}",
        },
    )
    assert (
        run_to_resume(
            config.training.resume,
            config.tracking.experiment,
            tmp_path / "checkpoints",
            training_digest(config, "a dataset's content hash"),
        )
        is None
    )
    assert client.get_run(run.info.run_id).info.status == "KILLED"


def test_a_failed_upload_warns_once_and_training_goes_on(mlflow_store, prepared, tmp_path, monkeypatch):
    log_artifact, failures = mlflow.MlflowClient.log_artifact, []

    def server_down_for_two_checkpoints(self, run_id, local_path, artifact_path=None):
        if artifact_path == "checkpoints" and len(failures) < 2:
            failures.append(Path(local_path).name)
            raise MlflowException("API request failed: connection refused")
        return log_artifact(self, run_id, local_path, artifact_path)

    monkeypatch.setattr(mlflow.MlflowClient, "log_artifact", server_down_for_two_checkpoints)
    with pytest.warns(UserWarning, match="could not upload checkpoint") as warned:
        result = train(tiny_config(prepared.parent), prepared, checkpoint_root=tmp_path / "checkpoints")

    assert failures == ["epoch-0000.pt", "epoch-0001.pt"]
    assert [str(w.message) for w in warned if "could not upload" in str(w.message)] == [
        f"train run {result.run_id}: could not upload checkpoint checkpoints/epoch-0000.pt (MlflowException: API "
        f"request failed: connection refused); the local checkpoint "
        f"{tmp_path / 'checkpoints' / result.run_id / 'last.pt'} stays, and the next checkpoint is uploaded again"
    ]
    run = mlflow.get_run(result.run_id)
    assert run.info.status == "FINISHED" and result.model_uri
    assert run.data.tags[LATEST_TAG] == "checkpoints/epoch-0003.pt"
    assert uploaded(result.run_id) == ["checkpoints/epoch-0002.pt", "checkpoints/epoch-0003.pt"]
    assert not (tmp_path / "checkpoints" / result.run_id).exists()
