"""The envelope rule as an arm of the study: nothing trained; its one threshold fitted on a training set's
training windows, then scored on each evaluation set of that training set, as a trained arm's model is.

The rule reads the same recordings and splits in its own, longer windows (`design.rule_data`), and it names
fault locations only: on a ten-class set it is scored on the location its classes name (`test/location_*`), on
a location task also as any model is (`test/accuracy`, `test/macro_f1`, `test/recording_accuracy`). It states
no confidence, so it has no ECE; it reads no uncertainty, so it has no OOD AUROC.
"""

from __future__ import annotations

import numpy as np

from pipeline.data.classes import FAULT_LOCATIONS
from pipeline.data.prepared import PreparedDataset
from pipeline.models.envelope_rule import EnvelopeRule
from pipeline.readout.metrics import classification_metrics, recording_accuracy
from pipeline.study.scoring import location_scores, window_grades
from pipeline.study.sets import EvaluationSet, evaluated_windows


def fit_rule(dataset: PreparedDataset) -> EnvelopeRule:
    """The rule at the dataset's sampling rate, its threshold fitted on the training windows, each read in its
    own bearing."""
    rule = EnvelopeRule(sample_rate=dataset.manifest["sample_rate"])
    train = dataset.subset("train")
    return rule.fit(train.windows, train.shaft_hz, _locations(dataset)[train.labels], train.bearing)


def score_rule(rule: EnvelopeRule, dataset: PreparedDataset, evaluation: EvaluationSet) -> dict[str, float]:
    """The rule's metrics on `evaluation`'s in-distribution test windows, and the threshold it was fitted to.
    It reads each window's fault combs in the window's own bearing (another rig's, for `other_rig`) at its
    fitted threshold."""
    test, ood = evaluated_windows(dataset, evaluation)
    windows = dataset.subset("test")
    in_dist = ~ood[test]
    labels = windows.labels[in_dist]
    predicted = rule.predict(windows.windows[in_dist], windows.shaft_hz[in_dist], windows.bearing[in_dist])
    truth = _locations(dataset)[labels]
    grades = window_grades(dataset, windows.recording_ids[in_dist]) if evaluation.graded else None
    logged = {"rule/threshold": rule.threshold, **location_scores(truth, predicted, grades)}
    if dataset.manifest["task"] == "fault_location":
        code = {location: index for index, location in enumerate(FAULT_LOCATIONS)}
        one_hot = np.eye(len(FAULT_LOCATIONS))[[code[location] for location in predicted]]  # an answer is certain
        metrics, _ = classification_metrics([code[location] for location in truth], one_hot, FAULT_LOCATIONS)
        logged["test/accuracy"], logged["test/macro_f1"] = metrics["accuracy"], metrics["macro_f1"]
        logged["test/recording_accuracy"] = recording_accuracy(truth, predicted, windows.recording_ids[in_dist])
    return logged


def _locations(dataset: PreparedDataset) -> np.ndarray:
    """The fault location of each class of the dataset, indexed by label."""
    locations = dataset.manifest["class_locations"]
    if None in locations:
        raise ValueError(f"{dataset.path}: the envelope rule names fault locations, and a class here states none")
    return np.asarray(locations)
