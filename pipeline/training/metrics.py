"""Classification metrics from a confusion matrix.

A confusion matrix is a sum over samples, so per-batch matrices add up (and all-reduce across DDP ranks)
to the exact matrix of the whole set; accuracy and macro-F1 are then read off it once.
"""

from __future__ import annotations

import torch
from torch import Tensor


def confusion_matrix(predictions: Tensor, targets: Tensor, n_classes: int) -> Tensor:
    """[n_classes, n_classes] int64 counts, rows = true class, columns = predicted class.

    `predictions` are class indices [N] or logits [N, C] (arg-maxed here).
    """
    if predictions.ndim == 2:
        predictions = predictions.argmax(dim=-1)
    index = targets.reshape(-1).long() * n_classes + predictions.reshape(-1).long()
    return torch.bincount(index, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def accuracy(confusion: Tensor) -> float:
    """Fraction of samples on the diagonal (NaN for an empty matrix)."""
    total = confusion.sum().item()
    return confusion.diagonal().sum().item() / total if total else float("nan")


def macro_f1(confusion: Tensor) -> float:
    """Unweighted mean of per-class F1 over the classes that occur as a target or a prediction.

    Classes absent from both are left out (as scikit-learn does with its default labels), so a validation
    split that holds 4 of the 10 classes is not scored as if it had missed the other 6.
    """
    confusion = confusion.double()
    true_pos = confusion.diagonal()
    support, predicted = confusion.sum(dim=1), confusion.sum(dim=0)
    present = (support + predicted) > 0
    if not present.any():
        return float("nan")
    f1 = 2 * true_pos / (support + predicted).clamp_min(1)
    return f1[present].mean().item()
