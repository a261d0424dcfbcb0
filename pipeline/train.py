"""Stage 2, train: `python -m pipeline.train [overrides]` trains AGT-NO on a prepared dataset and logs it.

Metrics per epoch go to MLflow under the names of design.md §6; the model is logged as the `av-pino` pyfunc.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional

import hydra
import mlflow
import torch
from omegaconf import DictConfig
from torch.utils.data import DataLoader

from pipeline.config import ExperimentConfig, register_configs
from pipeline.data.prepared import PreparedDataset, load_prepared, prepare_dataset
from pipeline.model_factory import build_model
from pipeline.stage import main_with_packed_overrides, run_stage
from pipeline.tracking.callbacks import MlflowMetricsLogger, ProgressPrinter
from pipeline.tracking.datasets import log_dataset
from pipeline.tracking.model_logging import log_pyfunc_model
from pipeline.tracking.run import stage_run
from pipeline.tracking.store import checkpoint_root as default_checkpoint_root
from pipeline.training.training_engine import TrainingEngine

register_configs()


@dataclass
class TrainResult:
    run_id: str
    model_uri: str
    metrics: dict[str, float]  # the last epoch's train/ and val/ metrics


def make_loaders(dataset: PreparedDataset, config: ExperimentConfig) -> tuple[DataLoader, DataLoader]:
    """Shuffled, seeded training batches and ordered validation batches."""
    generator = torch.Generator().manual_seed(config.training.seed)
    kwargs = {"batch_size": config.training.batch_size, "num_workers": config.training.num_workers}
    train = DataLoader(dataset.subset("train"), shuffle=True, drop_last=False, generator=generator, **kwargs)
    val = DataLoader(dataset.subset("val"), shuffle=False, **kwargs)
    return train, val


def train(config: ExperimentConfig, dataset_dir: Optional[Path] = None, *, run_name: Optional[str] = None, callbacks: Iterable[Callable] = (),
          checkpoint_root: Optional[Path] = None, tags: Optional[dict] = None) -> TrainResult:
    """Train on `dataset_dir` (prepared from config.data when None) inside an MLflow run of stage `train`."""
    torch.manual_seed(config.training.seed)
    if dataset_dir is None:
        dataset_dir = prepare_dataset(config.data, Path(config.data.cache_dir).resolve())
    dataset = load_prepared(dataset_dir)
    train_loader, val_loader = make_loaders(dataset, config)
    model = build_model(config.model, sample_rate=dataset.manifest["sample_rate"])
    name = run_name or (f"train-pw{config.loss.physics_weight:g}-cw{config.loss.consistency_weight:g}"
                        f"-e{config.training.epochs}")

    with stage_run("train", config, experiment=config.tracking.experiment, run_name=name, system_metrics=True,
                   tags={"dataset_dir": str(Path(dataset_dir).resolve()), **(tags or {})}) as run:
        log_dataset(dataset_dir)
        engine = TrainingEngine(model, config, device=torch.device("cpu"), callbacks=[
            MlflowMetricsLogger(), ProgressPrinter(config.training.epochs), *callbacks])
        engine.mlflow_run_id = run.info.run_id
        checkpoints = (checkpoint_root or default_checkpoint_root()) / run.info.run_id
        trained, history = engine.train(train_loader, val_loader, checkpoint_dir=checkpoints)
        figure = engine.monitor.plot_training_curves()
        mlflow.log_figure(figure, "plots/training_curves.html")
        example = dataset.arrays["windows"][:2]
        model_uri = log_pyfunc_model(trained, config, example)
        mlflow.set_tag("model_uri", model_uri)
        metrics = {k: v[-1] for k, v in history.items()}
        print(f"train run {run.info.run_id}: model {model_uri}")
    return TrainResult(run.info.run_id, model_uri, metrics)


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """Returns the final validation accuracy: the value a Hydra sweeper optimises."""
    result = run_stage(train, cfg)
    return result.metrics.get("val_accuracy", float("nan"))


if __name__ == "__main__":
    main_with_packed_overrides(main)
