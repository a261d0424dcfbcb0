"""The comb scorer names a fault location by its own comb standing out, with one judgement for every location."""

import torch

from pipeline.dsp.fault_orders import EVIDENCE_SHAPE, FAULT_LOCATIONS_READ
from pipeline.models.comb_scorer import CombScorer

CLASSES = ["normal", "ball", "inner", "outer"]


def evidence_with_comb(location: str, height: float) -> torch.Tensor:
    """Background everywhere (0 Np) but `location`'s lines, `height` nepers above it."""
    evidence = torch.zeros(1, *EVIDENCE_SHAPE)
    evidence[0, FAULT_LOCATIONS_READ.index(location)] = height
    return evidence


def test_untrained_it_is_the_analysts_rule_a_standing_comb_names_its_location_and_none_means_normal():
    scorer = CombScorer(8, CLASSES, len(CLASSES))
    for location in FAULT_LOCATIONS_READ:
        _, scores = scorer(evidence_with_comb(location, 1.5))
        assert CLASSES[int(scores.argmax())] == location
    _, scores = scorer(torch.zeros(1, *EVIDENCE_SHAPE))
    assert CLASSES[int(scores.argmax())] == "normal"


def test_which_location_is_which_is_hidden_from_the_pooled_features():
    """Swapping the evidence of two locations swaps their scores and leaves the pooled features as they were."""
    scorer = CombScorer(8, CLASSES, len(CLASSES))
    evidence = torch.randn(5, *EVIDENCE_SHAPE, generator=torch.Generator().manual_seed(0))
    swapped = evidence[:, [2, 1, 0]]  # ball <-> outer
    pooled, scores = scorer(evidence)
    pooled_swapped, scores_swapped = scorer(swapped)
    torch.testing.assert_close(pooled_swapped, pooled)
    torch.testing.assert_close(scores_swapped[:, [0, 3, 2, 1]], scores)


def test_classes_that_are_not_locations_get_no_scores():
    pooled, scores = CombScorer(8, None, 3)(torch.zeros(2, *EVIDENCE_SHAPE))
    assert scores is None and pooled.shape == (2, 16)
