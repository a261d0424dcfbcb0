"""How good a model's predictions are: accuracy, macro-F1 and ECE with a per-class table, and the AUROC of a
score that should separate two sets of windows.

numpy only (no scikit-learn); the definitions follow scikit-learn's and the training loop's
(`pipeline.training.metrics`), so `val/macro_f1` and `test/macro_f1` mean the same thing.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from pipeline.readout.calibration import expected_calibration_error


def auroc(in_scores: np.ndarray, out_scores: np.ndarray) -> float:
    """How well a score separates out-of-distribution windows from in-distribution ones: the probability that
    an `out_scores` window scores above an `in_scores` window, ties counted half (the Mann-Whitney AUROC, from
    ranks). 0.5: indistinguishable; 1: every out window above every in window; NaN when either is empty."""
    inside, outside = np.asarray(in_scores, dtype=np.float64), np.asarray(out_scores, dtype=np.float64)
    if len(inside) == 0 or len(outside) == 0:
        return float("nan")
    _, tied, counts = np.unique(np.concatenate([outside, inside]), return_inverse=True, return_counts=True)
    mean_rank = np.cumsum(counts) - (counts - 1) / 2  # 1-based rank of each distinct value, ties averaged
    n_out = len(outside)
    return float((mean_rank[tied[:n_out]].sum() - n_out * (n_out + 1) / 2) / (n_out * len(inside)))


def confusion_counts(labels: np.ndarray, preds: np.ndarray, n_classes: int) -> np.ndarray:
    """[n_classes, n_classes] counts, rows = true class, columns = predicted class."""
    index = np.asarray(labels, dtype=np.int64) * n_classes + np.asarray(preds, dtype=np.int64)
    return np.bincount(index, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def classification_metrics(
    labels: np.ndarray, probs: np.ndarray, class_names: Sequence[str], n_bins: int = 15
) -> tuple[dict[str, float], pd.DataFrame]:
    """`{accuracy, balanced_accuracy, macro_f1, ece}` and a per-class table (precision, recall, f1, support)
    indexed by class.

    Precision is NaN for a class never predicted and recall NaN for a class absent from `labels` (undefined
    rather than a misleading 0); F1 = 2TP / (support + predicted) is 0 for both. Macro-F1 averages over the
    classes that occur as a label or a prediction, so a test split without some classes is not penalised;
    balanced accuracy is the mean recall over the classes present in `labels`, so a large class cannot hide a
    missed small one.
    """
    labels = np.asarray(labels)
    confusion = confusion_counts(labels, np.asarray(probs).argmax(axis=1), len(class_names)).astype(np.float64)
    true_pos, support, predicted = confusion.diagonal(), confusion.sum(axis=1), confusion.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = pd.DataFrame(
            {
                "precision": true_pos / predicted,
                "recall": true_pos / support,
                "f1": 2 * true_pos / (support + predicted),
                "support": support.astype(np.int64),
            },
            index=pd.Index(list(class_names), name="class"),
        )
    present = (support + predicted) > 0
    total = confusion.sum()
    metrics = {
        "accuracy": float(true_pos.sum() / total) if total else float("nan"),
        "balanced_accuracy": float(per_class["recall"][support > 0].mean()) if total else float("nan"),
        "macro_f1": float(per_class["f1"][present].mean()) if present.any() else float("nan"),
        "ece": expected_calibration_error(probs, labels, n_bins),
    }
    return metrics, per_class


def recording_accuracy(labels: np.ndarray, predicted: np.ndarray, recordings: np.ndarray) -> float:
    """The share of recordings whose windows, voting, name their label: a machine is diagnosed from all the
    windows it gives, not one. The label must win more votes than any other class; a tie counts as wrong."""
    labels, predicted, recordings = np.asarray(labels), np.asarray(predicted), np.asarray(recordings)
    right = []
    for recording in np.unique(recordings):
        mine = recordings == recording
        classes, votes = np.unique(predicted[mine], return_counts=True)
        winners = classes[votes == votes.max()]
        right.append(len(winners) == 1 and winners[0] == labels[mine][0])
    return float(np.mean(right))
