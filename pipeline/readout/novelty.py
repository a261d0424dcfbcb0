"""How unfamiliar a window is to a trained model: the Mahalanobis score of its features (Lee et al. 2018, "A
simple unified framework for detecting out-of-distribution samples and adversarial attacks").

The features of each class's training windows are modelled as Gaussians with their own means and one shared
(tied) covariance; a window's score is its squared Mahalanobis distance to the nearest class mean. Higher means
less familiar: a window far from every class the model was trained on, whatever class it is then given.
The covariance is shrunk towards a multiple of the identity by the Ledoit-Wolf rule, which needs no setting
and keeps it invertible when there are fewer windows than feature dimensions. numpy only: the served model
scores with it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

# The smallest shrinkage used, whatever the Ledoit-Wolf estimate: it bounds the covariance's condition number.
MIN_SHRINKAGE = 1e-3


@dataclass(frozen=True)
class TiedGaussian:
    """Class means `[K, H]` (of the K classes present in training) and the precision `[H, H]`, the inverse of
    their shared covariance."""

    means: np.ndarray
    precision: np.ndarray

    def __post_init__(self) -> None:
        k, h = np.shape(self.means) if np.ndim(self.means) == 2 else (0, 0)
        if k == 0 or np.shape(self.precision) != (h, h):
            raise ValueError(
                f"need means [K, H] and a precision [H, H], got {np.shape(self.means)} and {np.shape(self.precision)}"
            )

    @cached_property
    def _whitening(self) -> np.ndarray:
        """L with precision = L L^T, so a squared distance is the squared norm of (x - mean) L."""
        return np.linalg.cholesky(np.asarray(self.precision, dtype=np.float64))

    def score(self, features: np.ndarray) -> np.ndarray:
        """`[N]` float32: min over classes of the squared Mahalanobis distance of features `[N, H]`."""
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or features.shape[1] != self.precision.shape[0]:
            raise ValueError(f"need features [N, {self.precision.shape[0]}], got {features.shape}")
        x, m = features @ self._whitening, np.asarray(self.means, dtype=np.float64) @ self._whitening
        squared = (x**2).sum(axis=1)[:, None] - 2 * x @ m.T + (m**2).sum(axis=1)[None, :]
        return np.maximum(squared.min(axis=1), 0.0).astype(np.float32)  # >= 0, whatever the rounding


def fit_tied_gaussian(features: np.ndarray, labels: np.ndarray) -> TiedGaussian:
    """The class means and shrunk shared covariance of training features `[N, H]` with class labels `[N]`.
    A ValueError names what is wrong with the input."""
    features, labels = np.asarray(features, dtype=np.float64), np.asarray(labels)
    if features.ndim != 2 or len(features) == 0:
        raise ValueError(f"need features [N, H] of at least one window, got shape {features.shape}")
    if labels.shape != (len(features),):
        raise ValueError(f"need one label per window: {len(features)} windows, labels of shape {labels.shape}")
    if not np.isfinite(features).all():
        raise ValueError("the features contain NaN or inf")
    classes, index = np.unique(labels, return_inverse=True)
    if len(features) <= len(classes):
        raise ValueError(
            f"{len(features)} windows of {len(classes)} classes: a shared covariance needs more windows than classes"
        )
    means = np.stack([features[index == k].mean(axis=0) for k in range(len(classes))])
    covariance = ledoit_wolf(features - means[index])
    return TiedGaussian(means, np.linalg.inv(covariance))


def ledoit_wolf(centred: np.ndarray) -> np.ndarray:
    """The covariance `[H, H]` of centred rows `[N, H]`, shrunk towards mu * I (mu its mean variance) by the
    Ledoit-Wolf (2004) estimate of the best shrinkage, at least MIN_SHRINKAGE."""
    n, h = centred.shape
    empirical = centred.T @ centred / n
    mu = np.trace(empirical) / h
    if mu <= 0:
        raise ValueError("the features do not vary within classes: there is no covariance to fit")
    target = mu * np.eye(h)
    distance = ((empirical - target) ** 2).sum() / h  # how far the sample covariance is from the target
    # how noisy the sample covariance is: the mean squared distance of x x^T from it, over n
    noise = (((centred**2).sum(axis=1) ** 2).sum() / n - (empirical**2).sum()) / (n * h)
    shrinkage = 1.0 if distance == 0 else min(noise, distance) / distance
    shrinkage = max(shrinkage, MIN_SHRINKAGE)
    return (1 - shrinkage) * empirical + shrinkage * target
