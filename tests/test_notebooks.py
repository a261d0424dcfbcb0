"""The notebooks run end to end with nbclient: compare_runs.ipynb on a store of one tiny pipeline and then of
two that differ in `loss.physics_weight`, drawing its four plotly figures both times, with recall bars over the
classes of the runs' task; physics_study.ipynb on a tiny study, drawing figures that agree with the study's runs."""

import base64
import os
from pathlib import Path

import mlflow
import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

from pipeline.config import to_experiment_config
from pipeline.stages.workflow import run_pipeline
from pipeline.study.runner import run_study
from tests.study.tiny_study import study_config
from tests.tiny import TINY

pytestmark = pytest.mark.slow  # notebooks, on whole pipelines and a study

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "compare_runs.ipynb"
STUDY_NOTEBOOK = REPO / "notebooks" / "physics_study.ipynb"

PLOTLY = "application/vnd.plotly.v1+json"
TITLES = [
    "Accuracy vs loss.physics_weight (colour: loss.consistency_weight)",
    "Accuracy vs loss.consistency_weight (colour: loss.physics_weight)",
    "Physics residuals per epoch",
    "Per-class test recall, two newest evaluate runs",
]


def execute_notebook(path: Path = NOTEBOOK) -> list[dict]:
    """Run every cell of a notebook in notebooks/ as Jupyter would; return the plotly figures it displayed."""
    return [o.data[PLOTLY] for o in notebook_outputs(path) if PLOTLY in o.get("data", {})]


def notebook_outputs(path: Path) -> list[dict]:
    """Run every cell of a notebook in notebooks/ as Jupyter would; return every output, none of them an error."""
    notebook = nbformat.read(path, as_version=4)
    # The kernel inherits MLFLOW_TRACKING_URI from mlflow_store; PYTHONPATH makes it import this checkout's
    # `pipeline` even if the installed one points elsewhere.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    NotebookClient(
        notebook, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(path.parent)}}
    ).execute(env=env)
    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    errors = [f"{o.ename}: {o.evalue}" for o in outputs if o.output_type == "error"]
    assert not errors, errors
    return outputs


def test_notebook_compares_one_run_and_then_two(mlflow_store, compose_config, tmp_path):
    def pipeline(physics_weight: float) -> None:
        cfg = compose_config(
            *TINY, "training.epochs=2", f"loss.physics_weight={physics_weight}", f"data.cache_dir={tmp_path / 'data'}"
        )
        run_pipeline(to_experiment_config(cfg))

    pipeline(0.1)
    figures = execute_notebook()  # a single train and evaluate run: nothing to compare, nothing may break
    assert [f["layout"]["title"]["text"] for f in figures] == TITLES
    assert len(figures[3]["data"]) == 1

    pipeline(0.5)
    figures = execute_notebook()
    assert [f["layout"]["title"]["text"] for f in figures] == TITLES
    lines = {trace["name"] for trace in figures[2]["data"]}
    bars = [trace["name"] for trace in figures[3]["data"]]
    assert len(lines) == 2 and sorted(bars) == sorted(lines)  # residual curves and recall bars of both runs
    assert all(name.startswith(("train-pw0.1-", "train-pw0.5-")) for name in lines)


def test_recall_bars_name_the_classes_of_the_task_the_runs_tell_apart(mlflow_store, compose_config, tmp_path):
    cfg = compose_config(*TINY, "training.epochs=1", "data.task=fault_location", f"data.cache_dir={tmp_path / 'data'}")
    run_pipeline(to_experiment_config(cfg))
    (bars,) = execute_notebook()[3]["data"]
    assert list(bars["x"]) == ["normal", "ball", "inner", "outer"]


def values(array) -> list[float]:
    """A plotly JSON array: a list, or plotly's base64 typed array ({"dtype", "bdata"})."""
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
    return list(array)


def test_study_notebook_rebuilds_its_figures_from_the_study_runs(mlflow_store, tmp_path):
    study = run_study(
        study_config(
            f"data.cache_dir={tmp_path / 'data'}",
            "study.arms=[data_only,wdcnn]",
            "study.training_sets=[recording,load_shift,ood_size]",
            "study.seeds=[0,1]",
        )
    )
    figures = execute_notebook(STUDY_NOTEBOOK)
    assert [f["layout"]["title"]["text"] for f in figures] == [
        "Test accuracy per split (mean ± std over seeds)",
        "Accuracy vs noise",
        "Calibration (ECE, load shift) and OOD detection (AUROC, held-out size and location), per seed",
        "Inferred physical parameters vs simulator ground truth (held-out recordings)",
    ]
    cells = mlflow.search_runs(
        experiment_names=["av-pino-study"],
        filter_string=(f"tags.mlflow.parentRunId = '{study.run_id}' and tags.stage = 'study_cell'"),
    )
    expected = cells.groupby(["tags.arm", "tags.split"])["metrics.test/accuracy"].mean()
    bars = {
        (trace["name"], split): y for trace in figures[0]["data"] for split, y in zip(trace["x"], values(trace["y"]))
    }
    assert bars.keys() == set(expected.index)
    assert all(abs(bars[key] - expected[key]) < 1e-12 for key in bars)
