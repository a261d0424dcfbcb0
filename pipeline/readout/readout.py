"""What is fitted on a trained model's outputs after training, and applied wherever the model is used: a
temperature that calibrates its probabilities (pipeline.readout.calibration) and, for a model that returns `features`,
the class-conditional Gaussians of its training windows' features that give each window an `ood_score`, with the
threshold above which it is `out_of_distribution` (pipeline.readout.novelty).

A logged model stores its readout without pickle: the numbers in `model_config.json` under "readout", the
Gaussians' arrays in a torch file (the pyfunc artifact "readout", read with `weights_only=True`). Not as buffers
of the network: the readout sits on top of any model's outputs and is fitted after its training, and buffers
would add state-dict keys that the models logged before do not have. Such a model has no "readout": it loads
with temperature 1 and no ood_score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from pipeline.data.prepared import PreparedDataset
from pipeline.models.outputs import batch_readings
from pipeline.readout.calibration import expected_calibration_error, fit_temperature, scaled_probs
from pipeline.readout.config import EvaluateConfig, ReadoutConfig
from pipeline.readout.novelty import TiedGaussian, fit_tied_gaussian

READOUT_FILE = "readout.pt"


@dataclass(frozen=True)
class Readout:
    """A temperature T > 0 and, optionally, the Gaussians scoring `features` with the threshold of their score.
    `Readout()` changes nothing: the probabilities of the logits as they are, no ood_score."""

    temperature: float = 1.0
    novelty: Optional[TiedGaussian] = None
    ood_threshold: Optional[float] = None
    # what fitting measured on the validation windows (`calibration/temperature`, `val/ece_*`): not stored
    metrics: dict[str, float] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"temperature must be a finite number > 0, got {self.temperature!r}")
        if (self.novelty is None) != (self.ood_threshold is None):
            raise ValueError("an ood_score needs both its Gaussians and its threshold")

    def apply(self, readings: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Readings (`pipeline.models.outputs.window_readings`, as arrays) -> `probs` = softmax(logits / T),
        `probs_uncalibrated` = softmax(logits), the other readings as they are and, when the model returned
        `features` and this readout has Gaussians, `ood_score` [N] and `out_of_distribution` [N] (bool)."""
        rest = dict(readings)
        logits, features = rest.pop("logits"), rest.pop("features", None)
        out = {"probs": scaled_probs(logits, self.temperature), "probs_uncalibrated": scaled_probs(logits), **rest}
        if features is not None and self.novelty is not None:
            out["ood_score"] = self.novelty.score(features)
            out["out_of_distribution"] = out["ood_score"] > self.ood_threshold
        return out

    def settings(self) -> dict:
        """The numbers `model_config.json` keeps under "readout"."""
        return {"temperature": self.temperature, "ood_threshold": self.ood_threshold}

    def save_arrays(self, folder: Path) -> Optional[Path]:
        """Write the Gaussians to `folder`/READOUT_FILE as a torch file of plain tensors; None without them."""
        if self.novelty is None:
            return None
        path = Path(folder) / READOUT_FILE
        arrays = {"means": self.novelty.means, "precision": self.novelty.precision}
        torch.save({name: torch.tensor(value, dtype=torch.float64) for name, value in arrays.items()}, path)
        return path


def load_readout(settings: Optional[dict], arrays: Optional[str | Path] = None) -> Readout:
    """The readout of a logged model: its `model_config["readout"]` and its "readout" artifact, either absent
    for a model logged before readouts (temperature 1, no ood_score)."""
    settings = settings or {}
    novelty = None
    if arrays is not None:
        tensors = torch.load(arrays, map_location="cpu", weights_only=True)
        novelty = TiedGaussian(tensors["means"].numpy(), tensors["precision"].numpy())
    threshold = settings.get("ood_threshold")
    return Readout(float(settings.get("temperature", 1.0)), novelty, None if threshold is None else float(threshold))


def fit_readout(
    model: nn.Module,
    dataset: PreparedDataset,
    *,
    ood_quantile: float = ReadoutConfig.ood_quantile,
    ece_bins: int = EvaluateConfig.ece_bins,
    batch_size: int = EvaluateConfig.batch_size,
) -> Readout:
    """Fit the readout of a trained `model` on `dataset`: the temperature on the validation windows and, when the
    model returns `features`, the Gaussians on the training windows, with the threshold at `ood_quantile` of the
    validation windows' scores; windows whose outputs are not finite are left out. Its `metrics`:
    `calibration/temperature`, `val/ece_uncalibrated`, `val/ece_calibrated` (with `ece_bins` bins) and, with
    Gaussians, `val/ood_threshold`."""
    val = dataset.subset("val")
    if len(val) == 0:
        raise ValueError(
            f"{dataset.path} has no validation windows: the temperature and the ood threshold are fitted on them"
        )
    val_readings, val_labels = _finite(batch_readings(model, val.windows, batch_size, **val.conditions()), val.labels)
    try:
        temperature = fit_temperature(val_readings["logits"], val_labels)
    except ValueError as err:
        raise ValueError(f"cannot fit a temperature on the validation windows of {dataset.path}: {err}") from None
    novelty, threshold = None, None
    if "features" in val_readings:
        train = dataset.subset("train")
        train_readings, train_labels = _finite(
            batch_readings(model, train.windows, batch_size, **train.conditions()), train.labels
        )
        try:
            novelty = fit_tied_gaussian(train_readings["features"], train_labels)
        except ValueError as err:
            raise ValueError(f"cannot fit the ood score on the training windows of {dataset.path}: {err}") from None
        threshold = float(np.quantile(novelty.score(val_readings["features"]), ood_quantile))
    logits = val_readings["logits"]
    metrics = {
        "calibration/temperature": temperature,
        "val/ece_uncalibrated": expected_calibration_error(scaled_probs(logits), val_labels, ece_bins),
        "val/ece_calibrated": expected_calibration_error(scaled_probs(logits, temperature), val_labels, ece_bins),
        **({} if threshold is None else {"val/ood_threshold": threshold}),
    }
    return Readout(temperature, novelty, threshold, metrics)


def _finite(readings: dict[str, np.ndarray], labels: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The readings and labels of the windows whose logits and features are finite: a corrupt window (NaN or inf
    in the recording) says nothing about the model, as training skips its batch (`train/skipped_steps`)."""
    finite = np.isfinite(readings["logits"]).all(axis=1)
    if "features" in readings:
        finite &= np.isfinite(readings["features"]).all(axis=1)
    return {key: value[finite] for key, value in readings.items()}, np.asarray(labels)[finite]


def predict_windows(
    model: nn.Module,
    windows: np.ndarray,
    batch_size: int = 256,
    *,
    readout: Optional[Readout] = None,
    **conditions: Optional[np.ndarray],
) -> dict[str, np.ndarray]:
    """Run `model` over windows [N, L] in batches, on the model's device; puts it in eval mode (latent mean,
    no dropout). `conditions`, one value per window (`shaft_hz` [N], `bearing` [N, 4]: what
    `BearingWindows.conditions()` gives), reach the model as `model(x, shaft_hz=..., bearing=...)`.

    Returns `probs` [N, C] as the served model gives them (softmax(logits / T) with the temperature of
    `readout`, 1 without), `probs_uncalibrated` [N, C] and, for the optional outputs the model returns,
    `uncertainty`, `physics/<name>` and `params/<name>`, each [N] (`pipeline.models.outputs.window_readings`);
    `ood_score` [N] and `out_of_distribution` [N] (bool) when the model returns features and `readout` scores
    them (`pipeline.readout.Readout.apply`).
    """
    return (readout or Readout()).apply(batch_readings(model, windows, batch_size, **conditions))
