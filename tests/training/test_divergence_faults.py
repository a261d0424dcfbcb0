"""NaN and divergence through the real train stage.

The faults are real data faults: NaN/inf written into the prepared dataset's `windows.npy` on disk (the train
stage memory-maps it, so a write during training reaches the next batch, as silent corruption would).
Non-finite batches are skipped and counted in `train/skipped_steps`; `training.max_bad_steps` of them in a row
end the MLflow run FAILED with the reason recorded, and the last good checkpoint stays loadable.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch

from pipeline.config import DataConfig, ExperimentConfig, ModelConfig, TrainingConfig
from pipeline.data.prepared import load_prepared, prepare_dataset
from pipeline.data.windows import SPLIT_NAMES
from pipeline.stages.train import make_loaders, train
from pipeline.training.checkpoint import load_checkpoint_file
from pipeline.training.training_engine import TrainingDivergedError
from tests.entry_zygote import run_entry_point

# the embedded default's data (conf/data/synthetic.yaml), so that the command line reads the dataset poisoned here
DATA = dict(window=256, hop=256, duration_s=0.3, recordings_per_load=3, task="fault_location", bearing="random")
MODEL = dict(hidden_dim=8, n_layers=1, n_modes=8, n_heads=2, patch_size=32)
OVERRIDES = [*(f"data.{k}={v}" for k, v in DATA.items()), *(f"model.{k}={v}" for k, v in MODEL.items())]


def tiny_config(cache_dir: Path, **training) -> ExperimentConfig:
    return ExperimentConfig(
        data=DataConfig(**DATA, cache_dir=str(cache_dir)),
        model=ModelConfig(**MODEL),
        training=TrainingConfig(**{"epochs": 2, "batch_size": 64, **training}),
    )


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """The tiny dataset, prepared once; tests poison copies of it."""
    config = tiny_config(tmp_path_factory.mktemp("data"))
    return prepare_dataset(config.data, config.data.cache_dir)


def copy_into(prepared: Path, cache_dir: Path) -> Path:
    """A private copy under `cache_dir`, where the stage finds it as a cache hit (the name is the config hash)."""
    return Path(shutil.copytree(prepared, cache_dir / prepared.name))


def poison(dataset_dir: Path, rows: np.ndarray) -> None:
    """Write NaN and inf into `rows` of the dataset's windows, on disk."""
    windows = np.load(dataset_dir / "windows.npy", mmap_mode="r+")
    windows[rows[::2], 7] = np.nan
    windows[rows[1::2], :] = np.inf
    windows.flush()


def train_rows(dataset_dir: Path) -> np.ndarray:
    return np.flatnonzero(load_prepared(dataset_dir).arrays["split"] == SPLIT_NAMES.index("train"))


def non_finite_batches_per_epoch(config: ExperimentConfig, dataset_dir: Path, epochs: int) -> list[int]:
    """What the stage will meet: its own loader, replayed epoch by epoch from the same seed."""
    loader, _ = make_loaders(load_prepared(dataset_dir), config)
    return [sum(not torch.isfinite(batch[0]).all() for batch in loader) for _ in range(epochs)]


def metric_steps(run_id: str, name: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in mlflow.MlflowClient().get_metric_history(run_id, name)]


def test_non_finite_batches_are_skipped_and_counted_in_mlflow(mlflow_store, prepared, tmp_path):
    config = tiny_config(tmp_path / "data")
    dataset_dir = copy_into(prepared, tmp_path / "data")
    poison(dataset_dir, train_rows(dataset_dir)[[3, 200, 400, 777]])
    expected = non_finite_batches_per_epoch(config, dataset_dir, epochs=2)
    assert all(count >= 1 for count in expected)

    result = train(config, dataset_dir, checkpoint_root=tmp_path / "checkpoints")

    run = mlflow.get_run(result.run_id)
    assert run.info.status == "FINISHED" and result.model_uri
    assert metric_steps(result.run_id, "train/skipped_steps") == [(0, expected[0]), (1, expected[1])]
    assert all(np.isfinite(value) for _, value in metric_steps(result.run_id, "train/loss"))


def test_divergence_fails_the_run_and_keeps_the_last_good_checkpoint(mlflow_store, prepared, tmp_path):
    config = tiny_config(tmp_path / "data", epochs=3, max_bad_steps=3)
    dataset_dir = copy_into(prepared, tmp_path / "data")
    rows = train_rows(dataset_dir)

    def corrupt_after_first_epoch(epoch, metrics):  # called after epoch 0's checkpoint is written
        if epoch == 0:
            poison(dataset_dir, rows)

    with pytest.raises(TrainingDivergedError, match=r"3 consecutive steps.*max_bad_steps=3"):
        train(config, dataset_dir, checkpoint_root=tmp_path / "checkpoints", callbacks=[corrupt_after_first_epoch])

    [run] = mlflow.search_runs(experiment_names=[config.tracking.experiment], output_format="list")
    assert run.info.status == "FAILED"
    assert run.data.tags["failure.reason"].startswith("TrainingDivergedError: training diverged: 3 consecutive")
    assert [step for step, _ in metric_steps(run.info.run_id, "train/loss")] == [0]
    checkpoint = load_checkpoint_file(tmp_path / "checkpoints" / run.info.run_id / "last.pt")
    assert checkpoint["epoch"] == 0 and checkpoint["mlflow_run_id"] == run.info.run_id
    assert all(torch.isfinite(tensor).all() for tensor in checkpoint["model"].values())


@pytest.mark.slow
def test_the_command_line_says_why_the_run_failed(prepared, tmp_path):
    cache = tmp_path / "data"
    dataset_dir = copy_into(prepared, cache)
    poison(dataset_dir, train_rows(dataset_dir))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_entry_point(  # `python -m pipeline.train ...`, forked from a warm interpreter
        "train",
        *OVERRIDES,
        "training.max_bad_steps=2",
        f"data.cache_dir={cache}",
        f"hydra.run.dir={tmp_path / 'hydra'}",
        env={**os.environ, "MLFLOW_TRACKING_URI": uri, "OMP_NUM_THREADS": "1"},
        folder=tmp_path,
    )

    assert result.returncode == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("TrainingDivergedError: training diverged: 2 consecutive steps had a non-finite loss or gradient")
    )
    assert "Traceback" not in result.stderr
    mlflow.set_tracking_uri(uri)
    [run] = mlflow.search_runs(experiment_names=["av-pino"], output_format="list")
    assert run.info.status == "FAILED" and "training diverged" in run.data.tags["failure.reason"]
