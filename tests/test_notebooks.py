"""notebooks/compare_runs.ipynb runs end to end with nbclient, on a store of one tiny pipeline and then of two
that differ in `loss.physics_weight`, and draws its four plotly figures both times."""
import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from pipeline.config import to_experiment_config
from pipeline.workflow import run_pipeline

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "compare_runs.ipynb"
TINY = ["data.window=256", "data.hop=256", "data.duration_s=0.3", "data.recordings_per_load=3",  # as test_workflow
        "model.hidden_dim=8", "model.n_layers=1", "model.n_modes=8", "model.n_heads=2", "model.patch_size=32"]
PLOTLY = "application/vnd.plotly.v1+json"
TITLES = ["Accuracy vs loss.physics_weight (colour: loss.consistency_weight)",
          "Accuracy vs loss.consistency_weight (colour: loss.physics_weight)",
          "Physics residuals per epoch", "Per-class test recall, two newest evaluate runs"]


def execute_notebook() -> list[dict]:
    """Run every cell in notebooks/ as Jupyter would; return the plotly figures it displayed."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # The kernel inherits MLFLOW_TRACKING_URI from mlflow_store; PYTHONPATH makes it import this checkout's
    # `pipeline` even if the installed one points elsewhere.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    NotebookClient(notebook, kernel_name="python3", timeout=300,
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute(env=env)
    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    errors = [f"{o.ename}: {o.evalue}" for o in outputs if o.output_type == "error"]
    assert not errors, errors
    return [o.data[PLOTLY] for o in outputs if PLOTLY in o.get("data", {})]


def test_notebook_compares_one_run_and_then_two(mlflow_store, compose_config, tmp_path):
    def pipeline(physics_weight: float) -> None:
        cfg = compose_config(*TINY, "training.epochs=2", f"loss.physics_weight={physics_weight}",
                             f"data.cache_dir={tmp_path / 'data'}")
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
