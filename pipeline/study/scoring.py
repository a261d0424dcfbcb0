"""Scores of one trained model on one evaluation set: the test/ metrics of the evaluate stage, plus the fault
location named, the accuracy per recording, out-of-distribution AUROC of the model's readings and system
identification against the simulator.

Reuses `pipeline.readout` (prediction, accuracy, macro-F1, ECE) and `pipeline.stages.evaluate.logged_metrics`, so
a study run's `test/accuracy` means exactly what an evaluate run's does.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
from torch import nn

from pipeline.data.classes import FAULT_LOCATIONS
from pipeline.data.cwru_grades import GRADES, recording_grade
from pipeline.data.prepared import PreparedDataset
from pipeline.readout.metrics import auroc, classification_metrics
from pipeline.readout.readout import Readout, predict_windows
from pipeline.stages.evaluate import logged_metrics
from pipeline.study.sets import TRAIN, VAL, EvaluationSet, evaluated_windows

# Physical parameters the model infers and the simulator records (the resonance follows from the natural
# frequency: the simulator pre-warps w_n = (2/dt) tan(pi f_res dt)).
SYSID_PARAMS = ("natural_freq_hz", "damping_ratio", "resonance_hz")


def score(
    model: nn.Module,
    dataset: PreparedDataset,
    evaluation: EvaluationSet,
    *,
    batch_size: int = 256,
    ece_bins: int = 15,
    readout: Optional[Readout] = None,
) -> dict[str, float]:
    """`test/*` metrics on the in-distribution test windows, of the probabilities `readout` calibrates (as the
    served model does), with the fault location they name (`location_scores`) and `test/recording_accuracy`;
    `test/shift_auroc`, how well the readout's ood score tells these test windows from the set's validation
    windows; when the set has an OOD part, how well a reading tells its windows from the in-distribution test
    windows: `test/ood_auroc` by the ood score, `test/uncertainty_auroc` by the uncertainty; `sysid/*` when the
    dataset carries the simulator's ground truth and the model infers physical parameters. A model that returns
    no residuals (WDCNN) gets no physics metrics.
    """
    a = dataset.arrays
    test, ood = evaluated_windows(dataset, evaluation)
    scored = test & ~ood
    params = PhysicalParams()
    windows = dataset.subset("test")
    with params.recorded(model):
        outputs = predict_windows(model, windows.windows, batch_size, readout=readout, **windows.conditions())
    in_dist = ~ood[test]
    labels = np.asarray(a["labels"][scored])
    names = dataset.manifest["class_names"]
    metrics, per_class = classification_metrics(labels, outputs["probs"][in_dist], names, ece_bins)
    recordings = np.asarray(a["recording"][scored])
    logged = logged_metrics(
        metrics, per_class, {k: v[in_dist] for k, v in outputs.items()}, labels, ece_bins, recordings
    )
    predicted = outputs["probs"][in_dist].argmax(axis=1)
    locations = dataset.manifest["class_locations"]
    if None not in locations:  # the user's recordings may leave a class's location unstated
        locations = np.asarray(locations)
        grades = window_grades(dataset, recordings) if evaluation.graded else None
        logged.update(location_scores(locations[labels], locations[predicted], grades))
    if "ood_score" in outputs and np.any(a["split"] == VAL):  # a shifted test split reads as out of distribution
        val = dataset.subset("val")
        val_scores = predict_windows(model, val.windows, batch_size, readout=readout, **val.conditions())["ood_score"]
        logged["test/shift_auroc"] = auroc(val_scores, outputs["ood_score"][in_dist])
    if ood.any():  # held-out windows against in-distribution test windows
        for metric, reading in (("test/ood_auroc", "ood_score"), ("test/uncertainty_auroc", "uncertainty")):
            if reading in outputs:
                logged[metric] = auroc(outputs[reading][in_dist], outputs[reading][~in_dist])
    if params.values and "natural_freq_hz" in a:
        truth = ground_truth(dataset, test)
        logged.update(sysid_errors(params.arrays(), truth, train_means=ground_truth_means(dataset)))
    return logged


def location_scores(
    true_locations: np.ndarray, predicted_locations: np.ndarray, grades: Optional[np.ndarray] = None
) -> dict[str, float]:
    """`test/location_accuracy`, the share of windows whose fault location is named right (on a location task,
    `test/accuracy`), `test/location_recall/<location>` for each location the windows hold, and with each
    window's recording grade (`window_grades`) `test/location_accuracy/grade_<grade>` for each grade present."""
    hit = np.asarray(predicted_locations) == np.asarray(true_locations)
    logged = {"test/location_accuracy": float(np.mean(hit))}
    for location in FAULT_LOCATIONS:
        present = np.asarray(true_locations) == location
        if present.any():
            logged[f"test/location_recall/{location}"] = float(np.mean(hit[present]))
    for grade in GRADES if grades is not None else ():
        graded = np.asarray(grades) == grade
        if graded.any():
            logged[f"test/location_accuracy/grade_{grade}"] = float(np.mean(hit[graded]))
    return logged


def window_grades(dataset: PreparedDataset, recording_ids: np.ndarray) -> np.ndarray:
    """The grade (Y, P or N: does envelope analysis find its fault?) of the CWRU recording of each window."""
    per_recording = [recording_grade(r["label"], r["load_hp"]) for r in dataset.manifest["recordings"]]
    return np.asarray(per_recording)[np.asarray(recording_ids)]


def ground_truth(dataset: PreparedDataset, mask: np.ndarray) -> dict[str, np.ndarray]:
    """The simulator's per-window parameters under `mask`, with the resonance it pre-warped from."""
    a, fs = dataset.arrays, float(dataset.manifest["sample_rate"])
    natural = np.asarray(a["natural_freq_hz"][mask], dtype=np.float64)
    return {
        "natural_freq_hz": natural,
        "damping_ratio": np.asarray(a["damping_ratio"][mask], dtype=np.float64),
        "resonance_hz": fs / math.pi * np.arctan(math.pi * natural / fs),
    }


def ground_truth_means(dataset: PreparedDataset) -> dict[str, float]:
    """Mean of each parameter over the training windows: the naive estimate a model must beat."""
    train = np.asarray(dataset.arrays["split"]) == TRAIN
    return {name: float(values.mean()) for name, values in ground_truth(dataset, train).items()}


def sysid_errors(
    predicted: dict[str, np.ndarray], truth: dict[str, np.ndarray], train_means: dict[str, float]
) -> dict[str, float]:
    """Mean absolute error in % of the truth, per parameter, for the model (`sysid/<p>_error_pct`) and for
    always answering the training mean (`sysid/<p>_baseline_error_pct`), and the mean inferred value."""
    logged = {}
    for name in SYSID_PARAMS:
        if name not in predicted:
            continue
        true = truth[name]
        logged[f"sysid/{name}_error_pct"] = float(100 * np.mean(np.abs(predicted[name] - true) / true))
        logged[f"sysid/{name}_baseline_error_pct"] = float(100 * np.mean(np.abs(train_means[name] - true) / true))
        logged[f"sysid/{name}_mean"] = float(np.mean(predicted[name]))
    return logged


class PhysicalParams:
    """Collects `physical_params` from the model's forward passes (a forward hook), so the one prediction pass
    of `predict_windows` also yields the inferred parameters."""

    def __init__(self) -> None:
        self.values: dict[str, list[np.ndarray]] = {}

    def recorded(self, model: nn.Module):
        def hook(module, inputs, output):  # noqa: ARG001 - forward hook signature
            for name, value in output.get("physical_params", {}).items():
                self.values.setdefault(name, []).append(value.detach().float().cpu().numpy())

        return model.register_forward_hook(hook)  # a context manager: removed on leaving the block

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: np.concatenate(parts) for name, parts in self.values.items()}
