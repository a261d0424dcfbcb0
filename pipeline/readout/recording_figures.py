"""The diagnosis figure of a few test recordings per class, for evaluate to log beside the confusion matrix: an
analyst opens the run and checks the model's answer on a recording against its envelope spectrum, with the
bearing's fault lines marked (pipeline.readout.diagnosis_figure)."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from pipeline.data.bearing import BearingGeometry
from pipeline.data.dataset import BearingWindows
from pipeline.readout.diagnosis_figure import diagnosis_figure


def recording_figures(
    test: BearingWindows, probs: np.ndarray, class_names: list[str], per_class: int, sample_rate: float, hop: int
) -> dict[str, go.Figure]:
    """Up to `per_class` recordings of each class in `test` (windows cut every `hop` samples), each drawn from its
    windows laid end to end (every k-th window, so they do not overlap) with the mean of its windows' `probs`;
    keyed `<class>-recording-<id>`."""
    figures = {}
    windows = test.windows  # a copy of the whole split: taken once, not once per figure
    window = windows.shape[1]
    step = max(1, math.ceil(window / hop))  # windows this far apart in a recording do not overlap
    for label, name in enumerate(class_names):
        for recording in np.unique(test.recording_ids[test.labels == label])[:per_class]:
            mine = np.flatnonzero(test.recording_ids == recording)
            geometry = test.bearing[mine[0]]
            figures[f"{name}-recording-{recording}"] = diagnosis_figure(
                windows[mine[::step]].reshape(-1),
                sample_rate,
                float(test.shaft_hz[mine].mean()),
                BearingGeometry(int(geometry[0]), *(float(g) for g in geometry[1:])),
                dict(zip(class_names, probs[mine].mean(axis=0).tolist())),
                title=f"test recording {recording} ({name})",
            )
    return figures
