"""TrainingMonitor: history and CSV, plotly curves (HTML, or a static image without a browser), early stopping."""

import pandas as pd
import plotly.graph_objects as go
import pytest

from pipeline.training.monitoring import TrainingMonitor


def filled_monitor(tmp_path, epochs=4, save_frequency=2):
    monitor = TrainingMonitor(log_dir=str(tmp_path / "logs"), save_frequency=save_frequency)
    for epoch in range(epochs):
        monitor.log_metrics(
            epoch, {"train_loss": 1.0 / (epoch + 1), "val_loss": 1.2 / (epoch + 1), "val_accuracy": 0.5 + 0.1 * epoch}
        )
        monitor.log_physics_residuals(epoch, {"equation_of_motion": 0.1 / (epoch + 1), "physics/measurement": 0.2})
    return monitor


def test_history_is_a_dataframe_with_one_row_per_epoch(tmp_path):
    history = filled_monitor(tmp_path).history
    assert list(history.index) == [0, 1, 2, 3]
    assert {"train_loss", "val_loss", "val_accuracy", "physics/equation_of_motion", "physics/measurement"} <= set(
        history.columns
    )
    assert history.loc[3, "physics/equation_of_motion"] == pytest.approx(0.025)


def test_csv_is_written_every_save_frequency_epochs(tmp_path):
    monitor = TrainingMonitor(log_dir=str(tmp_path / "logs"), save_frequency=3)
    csv = tmp_path / "logs" / "metrics.csv"
    for epoch in range(2):
        monitor.log_metrics(epoch, {"train_loss": 1.0})
    assert not csv.exists()
    monitor.log_metrics(2, {"train_loss": 0.5})
    assert len(pd.read_csv(csv, index_col="epoch")) == 3


def test_in_memory_monitor_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monitor = TrainingMonitor(log_dir=None, save_frequency=1)
    monitor.log_metrics(0, {"train_loss": 1.0})
    assert monitor.save() is None and list(tmp_path.iterdir()) == []


def test_html_curves_are_written_and_returned(tmp_path):
    fig = filled_monitor(tmp_path).plot_training_curves(str(tmp_path / "curves.html"))
    assert isinstance(fig, go.Figure)
    assert {trace.name for trace in fig.data} >= {"train_loss", "val_loss", "val_accuracy", "physics/measurement"}
    assert "plotly" in (tmp_path / "curves.html").read_text()[:5000].lower()


def test_unknown_suffix_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"\.html"):
        filled_monitor(tmp_path).plot_training_curves(str(tmp_path / "curves.txt"))


def test_png_curves_need_no_browser(tmp_path, monkeypatch):
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-such-chromium"))  # was kaleido's; now ignored
    filled_monitor(tmp_path).plot_training_curves(str(tmp_path / "plots" / "curves.png"))
    assert (tmp_path / "plots" / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def log_losses(monitor, values, key="val_loss"):
    for epoch, value in enumerate(values):
        monitor.log_metrics(epoch, {key: value, "train_loss": 1.0 / (epoch + 1)})


def test_convergence_after_patience_epochs_without_improvement():
    monitor = TrainingMonitor(log_dir=None)
    log_losses(monitor, [1.0, 0.8, 0.7, 0.75, 0.72])
    assert not monitor.check_convergence(patience=3)  # two epochs since the best
    monitor.log_metrics(5, {"val_loss": 0.71})
    assert monitor.check_convergence(patience=3)


def test_min_delta_rule_ignores_tiny_improvements():
    monitor = TrainingMonitor(log_dir=None, min_delta=0.01)
    log_losses(monitor, [1.0, 0.995, 0.992, 0.991])  # each better, none by more than 0.01
    assert monitor.check_convergence(patience=3)
    assert not TrainingMonitor(log_dir=None, min_delta=0.0).check_convergence(patience=3)


def test_train_loss_is_watched_when_there_is_no_validation():
    monitor = TrainingMonitor(log_dir=None)
    for epoch, value in enumerate([1.0, 0.5, 0.6, 0.6]):
        monitor.log_metrics(epoch, {"train_loss": value})
    assert monitor.check_convergence(patience=2)
    assert not monitor.check_convergence(patience=3)


def test_nan_never_counts_as_improvement():
    monitor = TrainingMonitor(log_dir=None)
    log_losses(monitor, [1.0, float("nan"), float("nan")])
    assert monitor.check_convergence(patience=2)
    assert not TrainingMonitor(log_dir=None).check_convergence()  # empty history
