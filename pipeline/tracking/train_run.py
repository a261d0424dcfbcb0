"""What a train job records, in one object the job calls: on rank 0 a `TrainTracking`, on the other ranks a
`NoTracking` that answers the same calls and records nothing, so the training loop has no rank branches.

Rank 0 opens the stage run (a new one, or the interrupted one `training.resume` picks), keeps it alive with
heartbeats and checkpoint uploads (`RunKeeper`), records the dataset, logs every epoch once (a resumed run skips
the epochs it has), and at the end logs the training curves and the model with the readout it is handed.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence

import mlflow
import numpy as np
from torch import nn

from pipeline.readout.readout import Readout
from pipeline.tracking.callbacks import MlflowMetricsLogger, ProgressPrinter
from pipeline.tracking.contract import CONFIG_DIGEST_TAG, DATASET_DIR_TAG, MODEL_URI_TAG, training_digest
from pipeline.tracking.datasets import log_dataset
from pipeline.tracking.liveness import this_process
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
from pipeline.training.config import TrainingConfig
from pipeline.training.distributed import world_size
from pipeline.training.monitoring import TrainingMonitor

Callback = Callable[[int, Mapping[str, float]], None]


class TrainTracking:
    """Rank 0's record of a train job: its MLflow run of stage `train` and everything logged on it.

    `config` is recorded, not read: the run's params and config.yaml, and (with the dataset's `content_hash`)
    the digest `training.resume=auto` matches. `callbacks` are the caller's own, called after each epoch's
    metrics are logged; `tags` are added to (and may override) the run's own.
    """

    def __init__(
        self,
        config: Any,
        training: TrainingConfig,
        experiment: str,
        *,
        run_name: str,
        dataset_dir: Path,
        content_hash: str,
        checkpoint_root: Path,
        parent_run_id: Optional[str] = None,
        tags: Optional[Mapping[str, str]] = None,
        callbacks: Sequence[Callback] = (),
    ):
        self.config, self.training, self.experiment = config, training, experiment
        self.run_name, self.dataset_dir, self.checkpoint_root = run_name, dataset_dir, checkpoint_root
        self.parent_run_id, self.callbacks = parent_run_id, list(callbacks)
        self.digest = training_digest(config, content_hash)
        self.tags = {
            DATASET_DIR_TAG: str(Path(dataset_dir).resolve()),
            "world_size": str(world_size()),
            CONFIG_DIGEST_TAG: self.digest,
            OWNER_TAG: this_process(),
            **(tags or {}),
        }
        self.run_id: Optional[str] = None
        self._keeper: Optional[RunKeeper] = None
        self._logged: set[int] = set()  # the epochs a resumed run has logged already

    @contextlib.contextmanager
    def run(self) -> Iterator[tuple[str, bool]]:
        """Open the train run and keep it alive for the block; yields (run id, whether it resumes). A new run
        records its dataset; a resumed one is asked which epochs it has logged."""
        resumed_id = run_to_resume(self.training.resume, self.experiment, self.checkpoint_root, self.digest)
        with (
            stage_run(
                "train",
                self.config,
                experiment=self.experiment,
                run_name=self.run_name,
                system_metrics=True,
                tags=self.tags,
                parent_run_id=self.parent_run_id,
                run_id=resumed_id,
            ) as run,
            RunKeeper(run.info.run_id, self.training.heartbeat_s) as keeper,
        ):
            self.run_id, self._keeper = run.info.run_id, keeper
            if resumed_id is None:
                log_dataset(self.dataset_dir)
            else:
                self._logged = logged_epochs(self.run_id)
            yield self.run_id, resumed_id is not None

    def epoch_callbacks(self) -> list[Callback]:
        """Log each epoch's metrics (once), print progress, beat the heartbeat, then the caller's callbacks."""
        return [
            SkipLoggedEpochs(MlflowMetricsLogger(), self._logged),
            ProgressPrinter(self.training.epochs),
            self._keeper,
            *self.callbacks,
        ]

    def resumed_from(self, checkpoint: dict) -> None:
        """Log the checkpoint's epoch should the run lack it, and say where training picks up."""
        log_epoch_missing_from_run(self.run_id, checkpoint, self._logged)
        print(f"train run {self.run_id}: resumed after epoch {checkpoint['epoch'] + 1}", flush=True)

    def upload_checkpoint(self, path: Path, epoch: int) -> None:
        """The engine's `on_checkpoint`: the run's artifacts keep each checkpoint, so any machine can resume."""
        self._keeper.upload(path, epoch)

    def log_training_curves(self, monitor: TrainingMonitor) -> None:
        mlflow.log_figure(monitor.plot_training_curves(), "plots/training_curves.html")

    def log_model(
        self, model: nn.Module, settings: dict, example: np.ndarray, readout: Optional[Readout] = None
    ) -> str:
        """Log the trained model as the `av-pino` pyfunc with `readout` (and its metrics); return its URI."""
        if readout is not None:
            mlflow.log_metrics(readout.metrics)
        model_uri = log_pyfunc_model(model, settings, example, readout=readout)
        mlflow.set_tag(MODEL_URI_TAG, model_uri)
        print(f"train run {self.run_id}: model {model_uri}")
        return model_uri

    def stopped_early(self, reason: str) -> None:
        """A callback stopped training (e.g. a pruned trial): the run is kept, without a model."""
        mlflow.set_tag("stopped_early", reason)
        print(f"train run {self.run_id}: stopped early ({reason}); no model logged")


class NoTracking:
    """What the other ranks call of a `TrainTracking` (everything up to the end of training), recording nothing:
    what is logged after training is rank 0's alone."""

    @contextlib.contextmanager
    def run(self) -> Iterator[None]:
        """Yields None: rank 0 alone knows the run (broadcast it)."""
        yield None

    def epoch_callbacks(self) -> list[Callback]:
        return []

    def resumed_from(self, checkpoint: dict) -> None:
        pass

    def upload_checkpoint(self, path: Path, epoch: int) -> None:
        pass
