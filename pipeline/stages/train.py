"""Stage 2, train: train the configured model on a prepared dataset, on one rank or many, and log it.

Metrics per epoch go to MLflow (train/*, physics/*, val/*); the model is logged as the `av-pino` pyfunc with
its readout (`readout.*`: temperature and ood score, fitted after training; its metrics `calibration/temperature`,
`val/ece_uncalibrated`, `val/ece_calibrated`, `val/ood_threshold`). A job of several ranks is one `TrainJob` run
by every rank: rank 0 tracks, checkpoints, fits the readout and logs; the others train.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional

import mlflow
import torch
from torch import nn
from torch.utils.data import DataLoader

from pipeline.config import ExperimentConfig
from pipeline.data.config import DataConfig
from pipeline.data.prepared import PreparedDataset, load_prepared, prepare_dataset
from pipeline.readout.config import EvaluateConfig, ReadoutConfig
from pipeline.readout.readout import Readout, fit_readout
from pipeline.tracking.store import checkpoint_root as default_checkpoint_root
from pipeline.tracking.train_run import NoTracking, TrainTracking
from pipeline.training.config import LossConfig, TrainingConfig
from pipeline.training.distributed import broadcast_from_rank0, launch, process_group, rank, under_launcher
from pipeline.training.model_factory import build_from_settings, model_settings
from pipeline.training.training_engine import CHECKPOINT_NAME, TrainingEngine


@dataclass
class TrainResult:
    run_id: str
    model_uri: Optional[str]  # None when a callback stopped training early (e.g. a pruned trial)
    metrics: dict[str, float]  # the last epoch's metrics under the tracking names (`val/accuracy`, ...)
    stop_reason: Optional[str] = None


def make_loaders(dataset: PreparedDataset, config: ExperimentConfig) -> tuple[DataLoader, DataLoader]:
    """Shuffled, seeded training batches and ordered validation batches (sharded per rank by the engine)."""
    generator = torch.Generator().manual_seed(config.training.seed)
    kwargs = {"batch_size": config.training.batch_size, "num_workers": config.training.num_workers}
    train = DataLoader(dataset.subset("train"), shuffle=True, drop_last=False, generator=generator, **kwargs)
    val = DataLoader(dataset.subset("val"), shuffle=False, **kwargs)
    return train, val


def train(
    config: ExperimentConfig,
    dataset_dir: Optional[Path] = None,
    *,
    run_name: Optional[str] = None,
    callbacks: Iterable[Callable] = (),
    checkpoint_root: Optional[Path] = None,
    tags: Optional[dict] = None,
    parent_run_id: Optional[str] = None,
) -> Optional[TrainResult]:
    """Train on `dataset_dir` (prepared from config.data when None) inside an MLflow run of stage `train`.

    The run nests under the active run, else under `parent_run_id` when given. With
    `distributed.nproc_per_node > 1` the job runs on that many ranks through the elastic launcher; under
    torchrun it runs on torchrun's ranks. Only rank 0 logs, checkpoints and calls `callbacks` (which must be
    picklable to cross into launched ranks); other ranks return None. A callback raising
    `StopTraining` ends the job early on all ranks: the run is kept, without a logged model.

    Checkpoints go to `checkpoint_root/<run id>/` and are uploaded to the run's artifacts, so any machine can
    resume the run (pipeline.tracking.remote_checkpoints); the local folder is removed once the run FINISHED.
    """
    active = mlflow.active_run()
    job = TrainJob(
        config,
        dataset_dir,
        run_name,
        tuple(callbacks),
        checkpoint_root,
        tags or {},
        active.info.run_id if active else parent_run_id,
    )
    if config.distributed.nproc_per_node > 1 and not under_launcher():
        job.dataset_dir = job.dataset_dir or _prepare(config.data)
        job.tracking_uri = mlflow.get_tracking_uri()
        return launch(job.run, (), config.distributed)[0]
    return job.run()


@dataclass
class TrainJob:
    """One training job, as every rank runs it (picklable, so launched ranks receive it whole)."""

    config: ExperimentConfig
    dataset_dir: Optional[Path]
    run_name: Optional[str]
    callbacks: tuple[Callable, ...]
    checkpoint_root: Optional[Path]
    tags: dict = field(default_factory=dict)
    parent_run_id: Optional[str] = None
    tracking_uri: Optional[str] = None  # set for ranks started in new processes

    def run(self) -> Optional[TrainResult]:
        """Join the job's process group (if it has several ranks) and train this rank's share."""
        if self.tracking_uri:
            mlflow.set_tracking_uri(self.tracking_uri)
        with process_group(self.config.distributed, self.config.training.device):
            return self._train_this_rank()

    def _train_this_rank(self) -> Optional[TrainResult]:
        """Train this rank's share; rank 0 returns the result, the other ranks None."""
        config = self.config
        torch.manual_seed(config.training.seed)
        # rank 0 prepares the dataset; the others wait for its folder
        dataset_dir = self.dataset_dir or broadcast_from_rank0(_prepare(config.data) if rank() == 0 else None)
        dataset = load_prepared(dataset_dir)
        train_loader, val_loader = make_loaders(dataset, config)
        settings = model_settings(config.model, dataset.manifest)
        model = build_from_settings(settings)
        checkpoint_root = self.checkpoint_root or default_checkpoint_root()
        tracking = self._tracking(dataset_dir, dataset.manifest["content_hash"], checkpoint_root)
        with tracking.run() as started:
            run_id, resuming = broadcast_from_rank0(started)
            engine = TrainingEngine(model, config, callbacks=tracking.epoch_callbacks())
            engine.mlflow_run_id = run_id
            checkpoints = checkpoint_root / run_id
            if resuming:  # every rank loads the same checkpoint
                tracking.resumed_from(engine.load_checkpoint(checkpoints / CHECKPOINT_NAME))
            trained, _ = engine.train(
                train_loader,
                val_loader,
                checkpoint_dir=checkpoints,
                resume=False,
                on_checkpoint=tracking.upload_checkpoint,
            )
            if rank() != 0:
                return None  # the other ranks are done: rank 0 fits the readout and logs the model
            model_uri = self._log_outcome(tracking, engine, trained, dataset, settings)
        shutil.rmtree(checkpoints, ignore_errors=True)  # FINISHED: a cache of what the run's artifacts keep
        return TrainResult(run_id, model_uri, dict(engine.last_metrics), engine.stop_reason)

    def _tracking(self, dataset_dir: Path, content_hash: str, checkpoint_root: Path) -> TrainTracking | NoTracking:
        """Rank 0 tracks the job; the other ranks get a tracking that records nothing."""
        if rank() != 0:
            return NoTracking()
        config = self.config
        return TrainTracking(
            config,
            config.training,
            config.tracking.experiment,
            run_name=self.run_name or _default_run_name(config.loss, config.training),
            dataset_dir=dataset_dir,
            content_hash=content_hash,
            checkpoint_root=checkpoint_root,
            parent_run_id=self.parent_run_id,
            tags=self.tags,
            callbacks=self.callbacks,
        )

    def _log_outcome(
        self,
        tracking: TrainTracking,
        engine: TrainingEngine,
        trained: nn.Module,
        dataset: PreparedDataset,
        settings: dict,
    ) -> Optional[str]:
        """Rank 0, once training ended: the curves, then the model with its readout; None (no model) when a
        callback stopped training early."""
        tracking.log_training_curves(engine.monitor)
        if engine.stop_reason is not None:
            tracking.stopped_early(engine.stop_reason)
            return None
        readout = _fit_readout(trained, dataset, self.config.readout, self.config.evaluate)
        return tracking.log_model(trained, settings, dataset.arrays["windows"][:2], readout)


def _default_run_name(loss: LossConfig, training: TrainingConfig) -> str:
    return f"train-pw{loss.physics_weight:g}-cw{loss.consistency_weight:g}-e{training.epochs}"


def _fit_readout(
    model: nn.Module, dataset: PreparedDataset, readout: ReadoutConfig, evaluate: EvaluateConfig
) -> Optional[Readout]:
    """The readout of the trained weights, fitted on rank 0 alone (the other ranks are done); None when
    `readout.fit` is off."""
    if not readout.fit:
        return None
    return fit_readout(
        model, dataset, ood_quantile=readout.ood_quantile, ece_bins=evaluate.ece_bins, batch_size=evaluate.batch_size
    )


def _prepare(data: DataConfig) -> Path:
    return prepare_dataset(data, Path(data.cache_dir).resolve())
