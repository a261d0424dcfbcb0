"""What a train job records: rank 0's TrainTracking opens (or resumes) the run, tags it, records the dataset and
logs each epoch once; the other ranks' NoTracking records nothing."""

import json
from dataclasses import replace

import mlflow
import pytest
from mlflow import MlflowClient

from pipeline.config import ExperimentConfig
from pipeline.tracking.contract import training_digest
from pipeline.tracking.liveness import this_process
from pipeline.tracking.train_run import NoTracking, TrainTracking

CONFIG = ExperimentConfig()


@pytest.fixture
def dataset_dir(tmp_path):
    """A dataset folder as the run sees it: its manifest."""
    folder = tmp_path / "synthetic-0123"
    folder.mkdir()
    manifest = {"content_hash": "c0ffee", "config_hash": "0123", "format_version": 1, "data_config": {}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def tracking(dataset_dir, checkpoint_root, resume="never", **kwargs):
    return TrainTracking(
        CONFIG,
        replace(CONFIG.training, epochs=3, resume=resume),
        "train-run-test",
        run_name="train-test",
        dataset_dir=dataset_dir,
        content_hash="c0ffee",
        checkpoint_root=checkpoint_root,
        **kwargs,
    )


def end_epochs(tracking, epochs, loss):
    for epoch in epochs:
        for callback in tracking.epoch_callbacks():
            callback(epoch, {"train/loss": loss, "time/epoch_s": 0.1})


def logged_losses(run_id):
    history = MlflowClient().get_metric_history(run_id, "train/loss")
    assert len({m.step for m in history}) == len(history), "an epoch was logged twice"
    return {m.step: m.value for m in history}


def test_a_new_run_is_tagged_records_its_dataset_and_logs_every_epoch(mlflow_store, dataset_dir, tmp_path, capsys):
    seen = []
    new = tracking(dataset_dir, tmp_path, tags={"trial": "7"}, callbacks=[lambda epoch, _: seen.append(epoch)])
    with new.run() as (run_id, resuming):
        end_epochs(new, range(2), loss=1.0)
        new.stopped_early("pruned at epoch 1")

    run = mlflow.get_run(run_id)
    assert not resuming and run.info.status == "FINISHED" and seen == [0, 1]
    assert logged_losses(run_id) == {0: 1.0, 1: 1.0}
    tags = run.data.tags
    assert tags["stage"] == "train" and tags["mlflow.runName"] == "train-test" and tags["trial"] == "7"
    assert tags["config_digest"] == training_digest(CONFIG, "c0ffee") and tags["owner"] == this_process()
    assert tags["dataset_dir"] == str(dataset_dir.resolve()) and tags["world_size"] == "1"
    assert tags["dataset.content_hash"] == "c0ffee" and "heartbeat" in tags
    assert tags["stopped_early"] == "pruned at epoch 1" and "model_uri" not in tags
    assert f"train run {run_id}: stopped early (pruned at epoch 1); no model logged" in capsys.readouterr().out


def test_a_resumed_run_logs_only_the_epochs_it_lacks(mlflow_store, dataset_dir, tmp_path):
    first = tracking(dataset_dir, tmp_path)
    with first.run() as (run_id, _):
        end_epochs(first, range(2), loss=1.0)
    (tmp_path / run_id).mkdir()
    (tmp_path / run_id / "last.pt").write_bytes(b"the checkpoint of epoch 0")  # found, not read, by run()

    resumed = tracking(dataset_dir, tmp_path, resume=run_id)
    with resumed.run() as (again, resuming):
        resumed.resumed_from({"epoch": 0, "metrics": {"train/loss": 1.0, "time/epoch_s": 0.1}})
        end_epochs(resumed, range(1, 3), loss=0.25)  # epoch 1 again (the checkpoint is older), then epoch 2

    assert again == run_id and resuming
    assert logged_losses(run_id) == {0: 1.0, 1: 1.0, 2: 0.25}  # each epoch logged once: epoch 1's value stands
    assert len(mlflow.get_run(run_id).inputs.dataset_inputs) == 1  # the dataset is recorded once


def test_the_other_ranks_record_nothing():
    others = NoTracking()
    with others.run() as started:
        assert started is None  # they learn the run from rank 0
    assert others.epoch_callbacks() == []
