"""Scoring a logged model on held-out windows: loading, prediction, metrics and plots (no MLflow runs here).

Metrics are computed with numpy so that the pipeline does not depend on scikit-learn; their definitions
follow scikit-learn's and the training loop's (`pipeline.training.metrics`), so `val/macro_f1` and
`test/macro_f1` mean the same thing. Calibration error lives in pipeline.calibration.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Optional, Sequence

import mlflow
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
from mlflow.models import Model
from plotly.subplots import make_subplots
from torch import nn

from pipeline.calibration import calibration_bins, expected_calibration_error
from pipeline.model_factory import build_from_settings
from pipeline.model_outputs import batch_readings
from pipeline.readout import Readout, load_readout


def load_logged_model(model_uri: str) -> tuple[nn.Module, dict, Readout]:
    """The torch network behind a logged `av-pino` pyfunc, in eval mode, its `model_config` dict and its readout
    (temperature 1 and no ood_score for a model logged before readouts).

    Reads the pyfunc's artifacts directly (not `mlflow.pyfunc.load_model`) because evaluation needs the
    raw outputs the pyfunc hides: logits and, when the model has them, physics residuals.
    """
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp))
        artifacts = Model.load(local).flavors["python_function"]["artifacts"]
        config = json.loads((local / artifacts["model_config"]["path"]).read_text())
        state = torch.load(local / artifacts["weights"]["path"], map_location="cpu", weights_only=True)
        arrays = local / artifacts["readout"]["path"] if "readout" in artifacts else None
        readout = load_readout(config.get("readout"), arrays)
    model = build_from_settings(config)
    model.load_state_dict(state)
    return model.eval(), config, readout


def predict_windows(
    model: nn.Module,
    windows: np.ndarray,
    batch_size: int = 256,
    *,
    readout: Optional[Readout] = None,
    **conditions: Optional[np.ndarray],
) -> dict[str, np.ndarray]:
    """Run `model` over windows [N, L] in batches, on the model's device; puts it in eval mode (latent mean,
    no dropout). `conditions`, one value per window (`shaft_hz` [N], `bearing` [N, 4]: what
    `BearingWindows.conditions()` gives), reach the model as `model(x, shaft_hz=..., bearing=...)`.

    Returns `probs` [N, C] as the served model gives them (softmax(logits / T) with the temperature of
    `readout`, 1 without), `probs_uncalibrated` [N, C] and, for the optional outputs the model returns,
    `uncertainty`, `physics/<name>` and `params/<name>`, each [N] (`pipeline.model_outputs.window_readings`);
    `ood_score` [N] and `out_of_distribution` [N] (bool) when the model returns features and `readout` scores
    them (`pipeline.readout.Readout.apply`).
    """
    return (readout or Readout()).apply(batch_readings(model, windows, batch_size, **conditions))


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
    """`{accuracy, macro_f1, ece}` and a per-class table (precision, recall, f1, support) indexed by class.

    Precision is NaN for a class never predicted and recall NaN for a class absent from `labels` (undefined
    rather than a misleading 0); F1 = 2TP / (support + predicted) is 0 for both. Macro-F1 averages over the
    classes that occur as a label or a prediction, so a test split without some classes is not penalised.
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
        "macro_f1": float(per_class["f1"][present].mean()) if present.any() else float("nan"),
        "ece": expected_calibration_error(probs, labels, n_bins),
    }
    return metrics, per_class


def confusion_matrix_figure(labels: np.ndarray, preds: np.ndarray, class_names: Sequence[str]) -> go.Figure:
    """Two heatmaps: raw counts, and rows normalised to recall (each row sums to 1; empty rows stay blank)."""
    names = list(class_names)
    counts = confusion_counts(labels, preds, len(names))
    with np.errstate(invalid="ignore", divide="ignore"):
        normalised = counts / counts.sum(axis=1, keepdims=True)
    figure = make_subplots(rows=1, cols=2, subplot_titles=("counts", "fraction of true class"), horizontal_spacing=0.15)
    figure.add_trace(
        go.Heatmap(
            z=counts,
            x=names,
            y=names,
            colorscale="Blues",
            showscale=False,
            texttemplate="%{z}",
            hovertemplate="true %{y}<br>predicted %{x}<br>%{z}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    figure.add_trace(
        go.Heatmap(
            z=normalised,
            x=names,
            y=names,
            colorscale="Blues",
            zmin=0,
            zmax=1,
            texttemplate="%{z:.2f}",
            hovertemplate="true %{y}<br>predicted %{x}<br>%{z:.3f}<extra></extra>",
        ),
        row=1,
        col=2,
    )
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
