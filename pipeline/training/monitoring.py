"""Per-epoch metric history: CSV logging, training curves (plotly, or a static matplotlib image), and the
early-stopping rule.

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
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from plotly.subplots import make_subplots

MONITORED = ("val_loss", "val/loss", "loss", "train_loss", "train/loss")
LOG_PANELS = ("losses", "physics residuals")  # drawn on a log scale


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

        Returns the interactive plotly figure (what a train run logs). `save_path` ending in .html writes it; a
        matplotlib image format (.png, .svg, .pdf, ...) draws the same panels with matplotlib, no browser needed.
        """
        panels = self._panels()
        if save_path is not None:
            path = Path(save_path)
            suffix = path.suffix.lower().lstrip(".")
            if suffix != "html" and suffix not in FigureCanvasAgg.get_supported_filetypes():
                formats = ", ".join(sorted(FigureCanvasAgg.get_supported_filetypes()))
                raise ValueError(f"{save_path}: write .html or a matplotlib image format ({formats})")
            path.parent.mkdir(parents=True, exist_ok=True)
        figure = self._plotly_curves(panels)
        if save_path is not None and suffix == "html":
            figure.write_html(path)
        elif save_path is not None:
            self._matplotlib_curves(panels).savefig(path)
        return figure

    def _panels(self) -> dict[str, list[str]]:
        """Panel title -> the history's columns drawn in it; empty panels are left out."""
        history = self.history
        panels = {
            "losses": [c for c in history if "loss" in c and not c.startswith(("physics/", "loss_weight/"))],
            "physics residuals": [c for c in history if c.startswith("physics/")],
        }
        panels["other metrics"] = [c for c in history if not any(c in cols for cols in panels.values())]
        return {title: cols for title, cols in panels.items() if cols}

    def _plotly_curves(self, panels: dict[str, list[str]]) -> go.Figure:
        history, rows = self.history, max(len(panels), 1)
        fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, subplot_titles=list(panels))
        for row, (title, columns) in enumerate(panels.items(), start=1):
            for column in columns:
                fig.add_trace(
                    go.Scatter(x=history.index, y=history[column], mode="lines+markers", name=column), row=row, col=1
                )
            if title in LOG_PANELS:
                fig.update_yaxes(type="log", row=row, col=1)
        fig.update_xaxes(title_text="epoch", row=rows, col=1)
        fig.update_layout(height=320 * rows, title="Training curves")
        return fig

    def _matplotlib_curves(self, panels: dict[str, list[str]]) -> Figure:
        history, rows = self.history, max(len(panels), 1)
        figure = Figure(figsize=(8, 3.2 * rows), layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
        for ax, (title, columns) in zip(axes, panels.items()):
            for column in columns:
                ax.plot(history.index, history[column], marker="o", label=column)
            ax.set_title(title)
            ax.set_yscale("log" if title in LOG_PANELS else "linear")
            ax.legend(fontsize="small")
            ax.grid(alpha=0.3)
        axes[-1].set_xlabel("epoch")
        axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
        figure.suptitle("Training curves")
        return figure
