"""Per-epoch callbacks for TrainingEngine: log metrics to MLflow, print progress a person can follow."""

from __future__ import annotations

import math
import time
from typing import Mapping

import mlflow


class MlflowMetricsLogger:
    """Log every epoch's metrics to the active run with step = epoch (train/*, val/*, physics/*, loss_weight/*)."""

    def __call__(self, epoch: int, metrics: Mapping[str, float]) -> None:
        finite = {name: float(value) for name, value in metrics.items() if math.isfinite(float(value))}
        mlflow.log_metrics(finite, step=epoch)


class ProgressPrinter:
    """One line per epoch: epoch, loss, validation accuracy, and the time left at the current pace."""

    def __init__(self, epochs: int, print_fn=print):
        self.epochs, self.print_fn = epochs, print_fn
        self.start = time.monotonic()
        self.first_epoch: int | None = None

    def __call__(self, epoch: int, metrics: Mapping[str, float]) -> None:
        if self.first_epoch is None:
            self.first_epoch = epoch
        done = epoch - self.first_epoch + 1
        per_epoch = (time.monotonic() - self.start) / done
        left = per_epoch * (self.epochs - epoch - 1)
        accuracy = metrics.get("val/accuracy")
        shown = f"  val/accuracy {accuracy:.4f}" if accuracy is not None else ""
        self.print_fn(
            f"epoch {epoch + 1}/{self.epochs}  train/loss {metrics['train/loss']:.4f}{shown}  "
            f"{per_epoch:.1f}s/epoch  ~{left:.0f}s left",
            flush=True,
        )
