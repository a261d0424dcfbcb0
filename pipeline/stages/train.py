"""Stage 2, train: train the configured model on a prepared dataset, on one rank or many, and log it.

Metrics per epoch go to MLflow (train/*, physics/*, val/*); the model is logged as the `av-pino` pyfunc with
its readout (`readout.*`: temperature and ood score, fitted after training; its metrics `calibration/temperature`,
`val/ece_uncalibrated`, `val/ece_calibrated`, `val/ood_threshold`). A job of several ranks is one `TrainJob` run
by every rank: rank 0 tracks, checkpoints, fits the readout and logs; the others train.
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional

import mlflow
import torch
from torch.utils.data import DataLoader

from pipeline.config import ExperimentConfig
from pipeline.data.prepared import PreparedDataset, load_prepared, prepare_dataset
from pipeline.distributed import broadcast_from_rank0, launch, process_group, rank, under_launcher, world_size
from pipeline.liveness import this_process
from pipeline.model_factory import build_from_settings, model_settings
from pipeline.readout import fit_readout
from pipeline.stages.contract import CONFIG_DIGEST_TAG, DATASET_DIR_TAG, MODEL_URI_TAG, training_digest
from pipeline.tracking.callbacks import MlflowMetricsLogger, ProgressPrinter
from pipeline.tracking.datasets import log_dataset
from pipeline.tracking.model_logging import log_pyfunc_model
from pipeline.tracking.remote_checkpoints import RunKeeper
from pipeline.tracking.resume import (
    OWNER_TAG,
    SkipLoggedEpochs,
    log_epoch_missing_from_run,
    logged_epochs,
    run_to_resume,
)
from pipeline.tracking.run import stage_run
from pipeline.tracking.store import checkpoint_root as default_checkpoint_root
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
        job.dataset_dir = job.dataset_dir or _prepare(config)
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
        config = self.config
        torch.manual_seed(config.training.seed)
        logs = rank() == 0
        dataset_dir = self.dataset_dir or broadcast_from_rank0(_prepare(config) if logs else None)
        dataset = load_prepared(dataset_dir)
        train_loader, val_loader = make_loaders(dataset, config)
        settings = model_settings(config.model, dataset.manifest)
        model = build_from_settings(settings)
        name = self.run_name or (
            f"train-pw{config.loss.physics_weight:g}-cw{config.loss.consistency_weight:g}-e{config.training.epochs}"
        )
        digest = training_digest(config, dataset.manifest["content_hash"])
        run_tags = {
            DATASET_DIR_TAG: str(Path(dataset_dir).resolve()),
            "world_size": str(world_size()),
            CONFIG_DIGEST_TAG: digest,
            OWNER_TAG: this_process(),
            **self.tags,
        }
        checkpoint_root = self.checkpoint_root or default_checkpoint_root()
        resumed_id = run_to_resume(config, checkpoint_root, digest) if logs else None

        with (
            (
                stage_run(
                    "train",
                    config,
                    experiment=config.tracking.experiment,
                    run_name=name,
                    system_metrics=True,
                    tags=run_tags,
                    parent_run_id=self.parent_run_id,
                    run_id=resumed_id,
                )
                if logs
                else contextlib.nullcontext()
            ) as run,
            RunKeeper(run.info.run_id, config.training.heartbeat_s) if logs else contextlib.nullcontext() as keeper,
        ):
            run_id, resuming = broadcast_from_rank0((run.info.run_id, resumed_id is not None) if logs else None)
            if logs and not resuming:
                log_dataset(dataset_dir)
            logged = logged_epochs(run_id) if logs and resuming else set()
            callbacks = (
                [
                    SkipLoggedEpochs(MlflowMetricsLogger(), logged),
                    ProgressPrinter(config.training.epochs),
                    keeper,
                    *self.callbacks,
                ]
                if logs
                else []
            )
            engine = TrainingEngine(model, config, callbacks=callbacks)
            engine.mlflow_run_id = run_id
            checkpoints = checkpoint_root / run_id
            if resuming:  # every rank loads the same checkpoint
                checkpoint = engine.load_checkpoint(checkpoints / CHECKPOINT_NAME)
                if logs:
                    log_epoch_missing_from_run(run_id, checkpoint, logged)
                    print(f"train run {run_id}: resumed after epoch {checkpoint['epoch'] + 1}", flush=True)
            trained, _ = engine.train(
                train_loader,
                val_loader,
                checkpoint_dir=checkpoints,
                resume=False,
                on_checkpoint=keeper.upload if logs else None,
            )
            if not logs:
                return None
            mlflow.log_figure(engine.monitor.plot_training_curves(), "plots/training_curves.html")
            model_uri = None
            if engine.stop_reason is None:
                readout = None
                if config.readout.fit:  # rank 0 only, on the trained weights: the other ranks are done
                    readout = fit_readout(
                        trained,
                        dataset,
                        ood_quantile=config.readout.ood_quantile,
                        ece_bins=config.evaluate.ece_bins,
                        batch_size=config.evaluate.batch_size,
                    )
                    mlflow.log_metrics(readout.metrics)
                model_uri = log_pyfunc_model(trained, settings, dataset.arrays["windows"][:2], readout=readout)
                mlflow.set_tag(MODEL_URI_TAG, model_uri)
                print(f"train run {run_id}: model {model_uri}")
            else:
                mlflow.set_tag("stopped_early", engine.stop_reason)
                print(f"train run {run_id}: stopped early ({engine.stop_reason}); no model logged")
        shutil.rmtree(checkpoints, ignore_errors=True)  # FINISHED: a cache of what the run's artifacts keep
        return TrainResult(run_id, model_uri, dict(engine.last_metrics), engine.stop_reason)


def _prepare(config: ExperimentConfig) -> Path:
    return prepare_dataset(config.data, Path(config.data.cache_dir).resolve())
