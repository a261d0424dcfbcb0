"""DDP jobs: `pipeline.training.distributed.launch` (torch's elastic launcher) and torchrun, on CPU with gloo.

What a user relies on: 2 ranks learn what 1 rank learns at the same global batch; a callback on rank 0 can
stop every rank (no rank hangs in a collective); the train stage logs exactly one MLflow run per job; and
two torchrun "nodes" on 127.0.0.1 meet through the c10d rendezvous.
"""

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import mlflow
import pytest
import torch
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.utils.data import DataLoader

from pipeline.config import DistributedConfig
from pipeline.training.distributed import free_port, launch, process_group, rank
from pipeline.training.training_engine import StopTraining, TrainingEngine
from tests.tiny import TINY
from tests.training.tiny_training import tiny_config, tiny_model, tone_windows

pytestmark = pytest.mark.slow  # DDP jobs of two ranks

REPO = Path(__file__).resolve().parents[1]
TINY_STAGE = [*TINY, "training.epochs=2", "training.batch_size=32"]


class StopAfterEpoch:
    """A rank-0 callback that ends training after `epoch` (as a pruner would)."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def __call__(self, epoch, metrics):
        if epoch == self.epoch:
            raise StopTraining(f"stopped after epoch {epoch + 1}")


class FailAtEpoch:
    def __call__(self, epoch, metrics):
        raise RuntimeError("callback failed on rank 0")


def train_tones(config, callbacks=()):
    """Runs on every rank: train the tiny model on tone windows; report what this rank saw."""
    with process_group(config.distributed):
        torch.manual_seed(0)
        engine = TrainingEngine(tiny_model(), config, "cpu", callbacks=callbacks)
        train = DataLoader(
            tone_windows(192, seed=0),
            batch_size=config.training.batch_size,
            shuffle=True,
            generator=torch.Generator().manual_seed(0),
        )
        engine.train(train, DataLoader(tone_windows(96, seed=1), batch_size=48))
        return {
            "rank": rank(),
            "epochs": engine.epoch,
            "stop_reason": engine.stop_reason,
            "val_accuracy": engine.history["val_accuracy"][-1],
        }


def two_ranks(config):
    return replace(config, distributed=DistributedConfig(nproc_per_node=2))


def test_two_ranks_reach_the_accuracy_of_one_rank_at_the_same_global_batch():
    config = tiny_config(epochs=6, batch_size=16)
    single = train_tones(config)
    ranks = launch(train_tones, (two_ranks(config),), two_ranks(config).distributed)
    assert [r["rank"] for r in ranks] == [0, 1]
    assert ranks[0]["val_accuracy"] == ranks[1]["val_accuracy"]  # metrics are all-reduced
    assert single["val_accuracy"] >= 0.9
    assert ranks[0]["val_accuracy"] == pytest.approx(single["val_accuracy"], abs=0.05)


def test_a_stop_on_rank_0_stops_every_rank_after_the_same_epoch():
    config = two_ranks(tiny_config(epochs=5))
    ranks = launch(train_tones, (config, [StopAfterEpoch(1)]), config.distributed)
    assert [r["epochs"] for r in ranks] == [2, 2]
    assert ranks[0]["stop_reason"] == "stopped after epoch 2"
    assert ranks[1]["stop_reason"] == "rank 0 stopped training"


def test_a_failing_callback_on_rank_0_fails_the_job_instead_of_hanging_it():
    config = two_ranks(tiny_config(epochs=3))
    with pytest.raises(ChildFailedError, match="train_tones"):
        launch(train_tones, (config, [FailAtEpoch()]), config.distributed)


def test_train_stage_on_two_ranks_logs_one_run(mlflow_store, tmp_path, compose_config):
    from pipeline.config import to_experiment_config
    from pipeline.stages.train import train

    config = to_experiment_config(
        compose_config(*TINY_STAGE, f"data.cache_dir={tmp_path / 'data'}", "distributed.nproc_per_node=2")
    )
    with mlflow.start_run(run_name="parent") as parent:
        result = train(config, checkpoint_root=tmp_path / "checkpoints")
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    train_runs = [r for r in runs if r.data.tags.get("stage") == "train"]
    assert len(train_runs) == 1 and train_runs[0].info.run_id == result.run_id
    assert train_runs[0].data.tags["world_size"] == "2"
    assert train_runs[0].data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert train_runs[0].info.status == "FINISHED" and result.model_uri
    history = mlflow.tracking.MlflowClient().get_metric_history(result.run_id, "val/accuracy")
    assert [m.step for m in history] == [0, 1]  # one value per epoch, not one per rank
    temperature = mlflow.tracking.MlflowClient().get_metric_history(result.run_id, "calibration/temperature")
    assert len(temperature) == 1  # the readout is fitted once, by rank 0, after training


def test_two_torchrun_nodes_meet_on_127_0_0_1(mlflow_store, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes=2",
        "--nproc-per-node=1",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint=127.0.0.1:{port}",
        "--rdzv-id=two-nodes",
        "-m",
        "pipeline.train",
        *TINY_STAGE,
        f"data.cache_dir={tmp_path / 'data'}",
        f"hydra.run.dir={tmp_path / 'hydra'}",
    ]
    nodes = [
        subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outputs = [node.communicate(timeout=600)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    train_runs = mlflow.search_runs(
        search_all_experiments=True, filter_string="tags.stage = 'train'", output_format="list"
    )
    assert len(train_runs) == 1
    assert train_runs[0].data.tags["world_size"] == "2" and train_runs[0].info.status == "FINISHED"
