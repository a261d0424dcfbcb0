"""Per-epoch metric history: CSV logging, plotly training curves, and the early-stopping rule.

Early stopping (`check_convergence`) watches one loss: `val_loss` (or `val/loss`) when the history has it,
else `loss`, else `train_loss` (or `train/loss`). Min-delta rule: an epoch improves on the best value so far
only if it is lower by more than `min_delta` (absolute, default 1e-4); NaN never improves. Training has
converged when the last `patience` epochs brought no improvement.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Optional

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from pipeline.static_figures import write_figure

MONITORED = ("val_loss", "val/loss", "loss", "train_loss", "train/loss")


class TrainingMonitor:
    """Keeps one row of metrics per epoch; writes `log_dir/metrics.csv` every `save_frequency` epochs.

    `log_dir=None` keeps the history in memory only.
    """

    def __init__(self, log_dir: Optional[str] = "logs", save_frequency: int = 10, min_delta: float = 1e-4):
        if save_frequency < 1:
            raise ValueError(f"save_frequency must be >= 1, got {save_frequency}")
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.save_frequency = save_frequency
        self.min_delta = min_delta
        self._rows: dict[int, dict[str, float]] = {}  # epoch -> metrics, in logging order

    @property
    def history(self) -> pd.DataFrame:
        """One row per epoch (index `epoch`), one column per metric."""
        return pd.DataFrame.from_dict(self._rows, orient="index").rename_axis("epoch")

    def log_metrics(self, epoch: int, metrics: Mapping[str, float]) -> None:
        """Record `metrics` for `epoch` (merged into the epoch's row); saves the CSV every save_frequency epochs."""
        self._rows.setdefault(epoch, {}).update({k: float(v) for k, v in metrics.items()})
        if (epoch + 1) % self.save_frequency == 0:
            self.save()

    def log_physics_residuals(self, epoch: int, residuals: Mapping[str, float]) -> None:
        """Record physics residuals for `epoch` as `physics/<name>` columns."""
        self._rows.setdefault(epoch, {}).update(
            {(k if k.startswith("physics/") else f"physics/{k}"): float(v) for k, v in residuals.items()}
        )

    def clear(self) -> None:
        """Forget the history (a resumed run refills it from the checkpoint)."""
        self._rows.clear()

    def save(self) -> Optional[Path]:
        """Write the history to `log_dir/metrics.csv` now; returns the path (None without a log_dir)."""
        if self.log_dir is None:
            return None
        self.log_dir.mkdir(parents=True, exist_ok=True)
        path = self.log_dir / "metrics.csv"
        self.history.to_csv(path)
        return path

    def check_convergence(self, patience: int = 10) -> bool:
        """True when the monitored loss has not improved (by more than min_delta) for `patience` epochs."""
        key = next((k for k in MONITORED if any(k in row for row in self._rows.values())), None)
        if key is None:
            return False
        values = [row.get(key, math.nan) for _, row in sorted(self._rows.items())]
        best, since_best = math.inf, 0
        for value in values:
            if value < best - self.min_delta:  # False for NaN
                best, since_best = value, 0
            else:
                since_best += 1
        return since_best >= patience

    def plot_training_curves(self, save_path: Optional[str] = None) -> go.Figure:
        """Losses (log scale), physics residuals (log scale) and other metrics, one panel each, by epoch.

        `save_path` ending in .html writes interactive HTML; .png/.svg/.pdf/... a static image, drawn by
        matplotlib (no browser needed).
        """
        history = self.history
        panels = {
            "losses": [c for c in history if "loss" in c and not c.startswith(("physics/", "loss_weight/"))],
            "physics residuals": [c for c in history if c.startswith("physics/")],
        }
        panels["other metrics"] = [c for c in history if not any(c in cols for cols in panels.values())]
        panels = {title: cols for title, cols in panels.items() if cols}
        fig = make_subplots(rows=max(len(panels), 1), cols=1, shared_xaxes=True, subplot_titles=list(panels))
        for row, (title, columns) in enumerate(panels.items(), start=1):
            for column in columns:
                fig.add_trace(
                    go.Scatter(x=history.index, y=history[column], mode="lines+markers", name=column), row=row, col=1
                )
            if title != "other metrics":
                fig.update_yaxes(type="log", row=row, col=1)
        fig.update_xaxes(title_text="epoch", row=max(len(panels), 1), col=1)
        fig.update_layout(height=320 * max(len(panels), 1), title="Training curves")
        if save_path is not None:
            write_figure(fig, save_path)
        return fig
