"""Calibration of class probabilities: how far confidence is from accuracy (ECE), and temperature scaling.

Temperature scaling (Guo et al. 2017, "On calibration of modern neural networks") divides the logits by one
number T > 0 fitted on held-out windows: it changes how confident the model is, never which class it picks, so
accuracy and macro-F1 stay what they were. numpy and scipy only: the served model applies it too.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

log = logging.getLogger(__name__)

# T is searched in this range: a validation split the model classifies without error pulls T to the lower end
# (sharper is always better there), a range keeps that finite and says so in a warning.
TEMPERATURE_RANGE = (0.05, 20.0)


def calibration_bins(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> pd.DataFrame:
    """Per equal-width confidence bin ((m-1)/M, m/M]: count, mean confidence and accuracy (NaN when empty).

    Confidence is the top-class probability; a prediction is correct when its top class is the label.
    """
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels)
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    bins = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(bins, weights=confidence, minlength=n_bins) / count
        accuracy = np.bincount(bins, weights=correct, minlength=n_bins) / count
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return pd.DataFrame(
        {"lower": edges[:-1], "upper": edges[1:], "count": count, "confidence": mean_conf, "accuracy": accuracy}
    )


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """ECE of Guo et al. (2017): sum over bins of |B|/N * |accuracy(B) - confidence(B)|; NaN for no samples."""
    bins = calibration_bins(probs, labels, n_bins)
    total = bins["count"].sum()
    if total == 0:
        return float("nan")
    filled = bins[bins["count"] > 0]
    return float((filled["count"] * (filled["accuracy"] - filled["confidence"]).abs()).sum() / total)


def ece_sampling_floor(probs: np.ndarray, n_bins: int = 15, draws: int = 20, seed: int = 0) -> float:
    """The ECE a perfectly calibrated model with these probabilities `[N, C]` would show on N windows: the mean
    over `draws` sets of labels drawn from the probabilities themselves. ECE is biased upwards on a finite set,
    so a measured ECE near this floor is as calibrated as N windows can tell; a target below it is unmeasurable."""
    probs = np.asarray(probs, dtype=np.float64)
    if len(probs) == 0:
        return float("nan")
    cumulative = np.cumsum(probs, axis=1)
    uniform = np.random.default_rng(seed).random((draws, len(probs), 1)) * cumulative[:, -1:]
    labels = (uniform < cumulative).argmax(axis=2)  # the first class whose cumulative probability passes u
    return float(np.mean([expected_calibration_error(probs, drawn, n_bins) for drawn in labels]))


def scaled_probs(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """float32 softmax(logits / temperature) `[N, C]` of logits `[N, C]` (computed in float64)."""
    return softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1).astype(np.float32)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T in TEMPERATURE_RANGE minimising the mean negative log-likelihood of softmax(logits / T) on
    `labels`; logits `[N, C]`, labels `[N]` class indices.

    Deterministic: a bounded Brent search over log T. The NLL is convex in 1/T, so it has one minimum along
    log T and the search finds it. A ValueError names what is wrong with the input.
    """
    logits, labels = np.asarray(logits, dtype=np.float64), np.asarray(labels)
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise ValueError(f"need logits [N, C] of at least 2 classes to fit a temperature, got {logits.shape}")
    if len(logits) == 0:
        raise ValueError("no windows to fit a temperature on")
    if labels.shape != (len(logits),):
        raise ValueError(f"need one label per window: {len(logits)} windows, labels of shape {labels.shape}")
    if labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() >= logits.shape[1]:
        raise ValueError(f"labels must be class indices in 0..{logits.shape[1] - 1}")
    if not np.isfinite(logits).all():
        raise ValueError("the logits contain NaN or inf: no temperature fits them")
    rows = np.arange(len(labels))

    def nll(log_t: float) -> float:
        return float(-log_softmax(logits / math.exp(log_t), axis=1)[rows, labels].mean())

    bounds = tuple(math.log(t) for t in TEMPERATURE_RANGE)
    found = minimize_scalar(nll, bounds=bounds, method="bounded", options={"xatol": 1e-6})
    temperature = math.exp(found.x)
    if min(abs(found.x - bound) for bound in bounds) < 1e-3:
        log.warning("temperature %.3g is at the edge of its range %s", temperature, TEMPERATURE_RANGE)
    return temperature
