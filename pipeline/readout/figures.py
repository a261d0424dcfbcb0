"""The figures an evaluate run logs: the confusion matrix and the reliability diagram (plotly, interactive in
MLflow's artifact view)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from pipeline.readout.calibration import calibration_bins, expected_calibration_error
from pipeline.readout.metrics import confusion_counts


def confusion_matrix_figure(labels: np.ndarray, preds: np.ndarray, class_names: Sequence[str]) -> go.Figure:
    """Two heatmaps: raw counts, and rows normalised to recall (each row sums to 1; empty rows stay blank)."""
    names = list(class_names)
    counts = confusion_counts(labels, preds, len(names))
    with np.errstate(invalid="ignore", divide="ignore"):
        normalised = counts / counts.sum(axis=1, keepdims=True)
    figure = make_subplots(rows=1, cols=2, subplot_titles=("counts", "fraction of true class"), horizontal_spacing=0.15)
    cells = (
        dict(z=counts, showscale=False, texttemplate="%{z}", hovertemplate="%{z}"),
        dict(z=normalised, zmin=0, zmax=1, texttemplate="%{z:.2f}", hovertemplate="%{z:.3f}"),
    )
    for col, cell in enumerate(cells, start=1):
        hover = f"true %{{y}}<br>predicted %{{x}}<br>{cell.pop('hovertemplate')}<extra></extra>"
        figure.add_trace(go.Heatmap(x=names, y=names, colorscale="Blues", hovertemplate=hover, **cell), row=1, col=col)
    for col in (1, 2):
        figure.update_xaxes(title_text="predicted", row=1, col=col)
        figure.update_yaxes(title_text="true", autorange="reversed", row=1, col=col)
    figure.update_layout(title="Confusion matrix (test split)", width=1200, height=560)
    return figure


def reliability_figure(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> go.Figure:
    """Reliability diagram: accuracy per confidence bin against the diagonal of perfect calibration."""
    bins = calibration_bins(probs, labels, n_bins)
    centres = (bins["lower"] + bins["upper"]) / 2
    ece = expected_calibration_error(probs, labels, n_bins)
    figure = go.Figure()
    figure.add_trace(
        go.Bar(
            x=centres,
            y=bins["accuracy"],
            width=1.0 / n_bins,
            name="accuracy",
            customdata=np.stack([bins["count"], bins["confidence"]], axis=1),
            hovertemplate="accuracy %{y:.3f}<br>mean confidence %{customdata[1]:.3f}"
            "<br>%{customdata[0]} windows<extra></extra>",
        )
    )
    figure.add_trace(
        go.Scatter(x=bins["confidence"], y=bins["accuracy"], mode="markers", name="bin at its mean confidence")
    )
    figure.add_trace(
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration", line={"dash": "dash", "color": "grey"})
    )
    figure.update_layout(
        title=f"Reliability (ECE {ece:.3f}, {n_bins} bins)",
        xaxis_title="confidence",
        yaxis_title="accuracy",
        xaxis_range=[0, 1],
        yaxis_range=[0, 1],
        width=640,
        height=560,
    )
    return figure
