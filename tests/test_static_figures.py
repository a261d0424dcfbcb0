"""write_figure / to_matplotlib: the project's plotly figures as PNG/SVG drawn by matplotlib, with no browser."""

import os
import subprocess
import sys
import warnings

import numpy as np
import optuna
import plotly.graph_objects as go
import pytest
from matplotlib.container import BarContainer
from matplotlib.image import imread
from plotly.subplots import make_subplots

from pipeline.evaluation import confusion_matrix_figure, reliability_figure
from pipeline.static_figures import to_matplotlib, write_figure
from pipeline.sweep.views import study_figures
from pipeline.training.monitoring import TrainingMonitor

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CLASSES = ["normal", "inner race", "outer race", "ball"]


def training_curves() -> go.Figure:
    monitor = TrainingMonitor(log_dir=None)
    for epoch in range(5):
        monitor.log_metrics(
            epoch, {"train_loss": 1.0 / (epoch + 1), "val_loss": 1.2 / (epoch + 1), "val_accuracy": 0.5 + 0.1 * epoch}
        )
        monitor.log_physics_residuals(epoch, {"equation_of_motion": 0.1 / (epoch + 1)})
    return monitor.plot_training_curves()


def confusion_matrix() -> go.Figure:
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2])  # no "ball" window: its normalised row stays blank
    preds = np.array([0, 0, 1, 1, 1, 2, 0, 2])
    return confusion_matrix_figure(labels, preds, CLASSES)


def reliability() -> go.Figure:
    rng = np.random.default_rng(0)
    return reliability_figure(rng.dirichlet(np.ones(4), size=200), rng.integers(0, 4, size=200))


FIGURES = {"training_curves": training_curves, "confusion_matrix": confusion_matrix, "reliability": reliability}

NO_BROWSER_EXPORT = """
import shutil, sys
import plotly.io as pio
from pipeline.static_figures import write_figure
from pipeline.training.monitoring import TrainingMonitor

reachable = [name for name in ("chromium", "chromium-browser", "chrome", "google-chrome") if shutil.which(name)]
assert not reachable, f"a browser is reachable: {reachable}"
for name in sys.argv[1:]:
    write_figure(pio.read_json(f"{name}.json"), f"figures/{name}.png")

# the seed API's example
monitor = TrainingMonitor(log_dir="training_logs")
for epoch in range(4):
    monitor.log_metrics(epoch, {"train_loss": 0.234 / (epoch + 1), "val_loss": 0.267 / (epoch + 1), "accuracy": 0.89})
monitor.plot_training_curves("training_curves.png")
"""


@pytest.fixture(scope="module")
def no_browser_folder(tmp_path_factory):
    """The project's figures (built here, handed over as JSON) and the seed example's curves, exported as PNG by
    a Python process whose PATH holds only the python executable's directory: no Chrome/Chromium to find."""
    folder = tmp_path_factory.mktemp("no_browser")
    for name, make in FIGURES.items():
        (folder / f"{name}.json").write_text(make().to_json())
    env = {key: value for key, value in os.environ.items() if key != "BROWSER_PATH"}
    env["PATH"] = os.path.dirname(sys.executable)
    result = subprocess.run(
        [sys.executable, "-c", NO_BROWSER_EXPORT, *FIGURES],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return folder


def assert_drawn_png(path):
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    pixels = imread(path)
    assert (pixels != pixels[0, 0]).any(axis=-1).mean() > 0.01  # not blank: drawn beyond the background colour


@pytest.mark.parametrize("name", FIGURES)
def test_project_figures_export_png_without_a_browser(no_browser_folder, name):
    assert_drawn_png(no_browser_folder / "figures" / f"{name}.png")


def test_seed_example_writes_training_curves_png_without_a_browser(no_browser_folder):
    assert_drawn_png(no_browser_folder / "training_curves.png")


@pytest.mark.parametrize(
    "name, texts",
    [
        (
            "training_curves",
            [
                "Training curves",
                "losses",
                "physics residuals",
                "other metrics",
                "epoch",
                "train_loss",
                "val_loss",
                "val_accuracy",
                "physics/equation_of_motion",
            ],
        ),
        (
            "confusion_matrix",
            [
                "Confusion matrix (test split)",
                "counts",
                "fraction of true class",
                "predicted",
                "true",
                *CLASSES,
                ">0.67<",
                ">0.33<",
            ],
        ),
        (
            "reliability",
            ["Reliability (ECE", "confidence", "accuracy", "bin at its mean confidence", "perfect calibration"],
        ),
    ],
)
def test_svg_keeps_titles_axis_titles_and_trace_names_as_text(tmp_path, name, texts):
    svg = write_figure(FIGURES[name](), tmp_path / "figures" / f"{name}.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert [text for text in texts if text not in svg] == []


def test_training_curves_are_stacked_panels_sharing_the_epoch_axis():
    drawing = to_matplotlib(training_curves())
    losses, residuals, others = drawing.axes
    assert losses.get_position().y0 > residuals.get_position().y0 > others.get_position().y0
    assert losses.get_shared_x_axes().joined(losses, others) and residuals.get_shared_x_axes().joined(residuals, others)
    assert [ax.get_yscale() for ax in drawing.axes] == ["log", "log", "linear"]
    assert others.get_xlabel() == "epoch"
    assert [text.get_text() for text in drawing.legends[0].texts] == [
        "train_loss",
        "val_loss",
        "physics/equation_of_motion",
        "val_accuracy",
    ]


def test_confusion_matrix_is_two_heatmaps_with_cell_text_and_one_colour_bar():
    drawing = to_matplotlib(confusion_matrix())
    counts, fractions, colour_bar = drawing.axes  # only the normalised heatmap shows its scale
    assert counts.get_position().x1 < fractions.get_position().x0
    assert colour_bar.get_position().x0 > fractions.get_position().x1
    assert [label.get_text() for label in counts.get_xticklabels()] == CLASSES
    assert counts.yaxis.get_inverted()  # first class on top, as in plotly's autorange="reversed"
    assert {"2", "1", "0"} <= {text.get_text() for text in counts.texts}
    assert {"0.67", "0.33", "1.00"} <= {text.get_text() for text in fractions.texts}
    assert len(fractions.texts) == 12  # the empty "ball" row has no text


def test_grouped_and_horizontal_bars_with_error_bars():
    figure = make_subplots(rows=1, cols=2)
    figure.add_trace(go.Bar(x=["a", "b"], y=[1, 2], name="first", error_y={"array": [0.1, 0.2]}), row=1, col=1)
    figure.add_trace(go.Bar(x=["a", "b"], y=[3, 4], name="second"), row=1, col=1)
    figure.add_trace(go.Bar(x=[5, 6], y=["c", "d"], orientation="h", width=0.5, name="sideways"), row=1, col=2)
    grouped, horizontal = to_matplotlib(figure).axes
    first, second = [c for c in grouped.containers if isinstance(c, BarContainer)]
    for left, right, centre in zip(first.patches, second.patches, (0, 1)):
        assert left.get_x() + left.get_width() == pytest.approx(right.get_x())  # side by side, around the category
        assert (left.get_x() + right.get_x() + right.get_width()) / 2 == pytest.approx(centre)
    assert [p.get_height() for p in second.patches] == [3, 4]
    error_lines = first.errorbar.lines[2][0].get_segments()
    assert [segment[:, 1].tolist() for segment in error_lines] == [pytest.approx([0.9, 1.1]), pytest.approx([1.8, 2.2])]
    (sideways,) = [c for c in horizontal.containers if isinstance(c, BarContainer)]
    assert [(p.get_width(), p.get_height()) for p in sideways.patches] == [(5, 0.5), (6, 0.5)]


def test_scatter_modes_error_bars_and_legend():
    figure = go.Figure(
        [
            go.Scatter(x=[0, 1, 2], y=[1, 2, 3], mode="markers", name="points", error_y={"array": [0.5, 0.5, 0.5]}),
            go.Scatter(x=[0, 2], y=[0, 3], mode="lines", line={"dash": "dash"}, name="line"),
        ]
    )
    drawing = to_matplotlib(figure)
    points, line = drawing.axes[0].containers
    assert (points.lines[0].get_marker(), points.lines[0].get_linestyle()) == ("o", "None")
    assert (line.lines[0].get_marker(), line.lines[0].get_linestyle()) == ("None", "--")
    assert [segment[:, 1].tolist() for segment in points.lines[2][0].get_segments()] == [
        [0.5, 1.5],
        [1.5, 2.5],
        [2.5, 3.5],
    ]
    assert [text.get_text() for text in drawing.legends[0].texts] == ["points", "line"]


def test_other_trace_types_are_refused_with_a_pointer_to_html(tmp_path):
    pie = go.Figure(go.Pie(labels=["a", "b"], values=[1, 2]))
    with pytest.raises(ValueError, match=r"'pie' trace.*\.html.*interactive"):
        write_figure(pie, tmp_path / "pie.png")
    assert not (tmp_path / "pie.png").exists()
    write_figure(pie, tmp_path / "pie.html")
    assert "plotly" in (tmp_path / "pie.html").read_text()[:5000].lower()


@pytest.mark.parametrize("name", ["curves.txt", "curves"])
def test_unsupported_suffix_is_refused_by_name(tmp_path, name):
    with pytest.raises(ValueError, match=r"cannot save a figure as '(\.txt|a file without suffix)'.*\.html.*\.png"):
        write_figure(training_curves(), tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def finished_study(directions: list[str]) -> optuna.Study:
    def objective(trial):
        x, width = trial.suggest_float("x", 0.0, 1.0), trial.suggest_int("width", 8, 64, log=True)
        if len(directions) == 1:
            trial.report(x, step=0)  # the intermediate values view; Optuna has none for several objectives
        return [x * (i + 1) + width / 64 for i in range(len(directions))]

    study = optuna.create_study(directions=directions, sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=8)
    return study


def test_the_sweeps_optuna_views_export_as_png(tmp_path):
    single = study_figures(finished_study(["minimize"]), ["val/loss"])
    multi = study_figures(finished_study(["minimize", "maximize"]), ["val/loss", "val/accuracy"])
    assert set(single) == {"optimization_history", "intermediate_values", "parallel_coordinate", "param_importances"}
    assert set(multi) == {"optimization_history", "parallel_coordinate", "param_importances", "pareto_front"}
    for prefix, figures in (("single", single), ("multi", multi)):
        for name, figure in figures.items():
            assert_drawn_png(write_figure(figure, tmp_path / f"{prefix}_{name}.png"))


def test_optuna_views_of_other_trace_types_are_refused(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna warns that these views are experimental
        contour = optuna.visualization.plot_contour(finished_study(["minimize"]))
        pareto_3d = optuna.visualization.plot_pareto_front(finished_study(["minimize"] * 3))
    with pytest.raises(ValueError, match="'contour' trace"):
        write_figure(contour, tmp_path / "contour.png")
    with pytest.raises(ValueError, match="'scatter3d' trace"):
        write_figure(pareto_3d, tmp_path / "pareto.png")
