"""The Mahalanobis score of a class-conditional Gaussian with a tied, shrunk covariance: larger for features
unlike the training windows', defined on fewer windows than dimensions, and bad input named."""

import numpy as np
import pytest

from pipeline.readout.metrics import auroc
from pipeline.readout.novelty import TiedGaussian, fit_tied_gaussian, ledoit_wolf

DIM = 16


def clusters(n: int, seed: int, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """`n` features of three classes, each a unit Gaussian around its own centre, all moved by `shift`."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(scale=4.0, size=(3, DIM))
    labels = np.arange(n) % 3
    return centres[labels] + rng.normal(size=(n, DIM)) + shift, labels


def test_shifted_features_score_higher_than_training_like_ones():
    train, labels = clusters(300, seed=0)
    gaussian = fit_tied_gaussian(train, labels)
    familiar, _ = clusters(200, seed=1)
    shifted, _ = clusters(200, seed=2, shift=3.0)
    in_scores, out_scores = gaussian.score(familiar), gaussian.score(shifted)
    assert in_scores.shape == (200,) and in_scores.dtype == np.float32 and (in_scores >= 0).all()
    assert np.median(in_scores) == pytest.approx(DIM, rel=0.3)  # ~ chi-square with DIM degrees of freedom
    assert auroc(in_scores, out_scores) > 0.99


def test_the_score_is_the_squared_distance_to_the_nearest_class_mean():
    gaussian = TiedGaussian(means=np.array([[0.0, 0.0], [10.0, 0.0]]), precision=np.diag([1.0, 4.0]))
    scores = gaussian.score(np.array([[1.0, 0.0], [9.0, 1.0], [5.0, 0.0]]))
    assert scores == pytest.approx([1.0, 1.0 + 4.0, 25.0])


def test_fewer_windows_than_dimensions_still_give_an_invertible_covariance():
    features, labels = clusters(8, seed=3)  # 8 windows, 16 dimensions: the sample covariance is singular
    gaussian = fit_tied_gaussian(features, labels)
    assert np.linalg.cond(np.linalg.inv(gaussian.precision)) < 1e4
    assert np.isfinite(gaussian.score(clusters(5, seed=4)[0])).all()


def test_ledoit_wolf_shrinks_little_when_the_windows_are_many():
    centred = np.random.default_rng(5).normal(size=(20000, 4)) * np.array([1.0, 2.0, 3.0, 4.0])
    assert np.diag(ledoit_wolf(centred)) == pytest.approx([1.0, 4.0, 9.0, 16.0], rel=0.05)


@pytest.mark.parametrize(
    "features, labels, message",
    [
        (np.zeros((3, 2)), np.array([0, 1, 2]), "more windows than classes"),
        (np.zeros((4, 2)), np.array([0, 0, 1, 1]), "do not vary within classes"),
        (np.full((4, 2), np.inf), np.array([0, 0, 1, 1]), "NaN or inf"),
        (np.zeros((4, 2)), np.array([0, 1]), "one label per window"),
        (np.zeros(4), np.zeros(4), r"features \[N, H\]"),
    ],
)
def test_bad_input_is_named(features, labels, message):
    with pytest.raises(ValueError, match=message):
        fit_tied_gaussian(features, labels)
