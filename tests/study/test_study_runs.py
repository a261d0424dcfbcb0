"""The whole study at a tiny budget: one finished run per arm x split x seed, tagged and nested under one
study run, with the metrics each arm can honestly have, and tables that agree with the runs."""

import os
import subprocess
import sys
from itertools import product
from pathlib import Path

import mlflow
import pytest

from pipeline.study.design import ARMS
from pipeline.study.report import headline_table, split_table, study_runs, to_markdown
from pipeline.study.runner import run_study
from tests.study.tiny_study import study_config

REPO = Path(__file__).resolve().parents[2]
SPLITS = ["recording", "load_shift", "snr0", "reduced_labels", "ood_size"]  # tiny: study.snr_db=[0.0]
TRAINING_SETS = ["recording", "load_shift", "reduced_labels", "ood_size"]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        result = run_study(study_config(f"data.cache_dir={root / 'data'}"))
        yield (
            result,
            {
                run.info.run_id: run
                for run in mlflow.search_runs(experiment_names=["av-pino-study"], output_format="list")
            },
        )


def children(runs, parent_id, stage):
    return [
        r for r in runs.values() if r.data.tags.get("mlflow.parentRunId") == parent_id and r.data.tags["stage"] == stage
    ]


def test_one_finished_run_per_arm_split_and_seed_under_one_study_run(study):
    result, runs = study
    assert runs[result.run_id].data.tags["stage"] == "study"
    assert all(run.info.status == "FINISHED" for run in runs.values())
    cells = children(runs, result.run_id, "study_cell")
    keys = sorted((r.data.tags["arm"], r.data.tags["split"], r.data.tags["seed"]) for r in cells)
    assert keys == sorted(product(list(ARMS), SPLITS, ["0"]))
    trains = children(runs, result.run_id, "train")
    assert sorted((r.data.tags["arm"], r.data.tags["training_set"]) for r in trains) == sorted(
        product(list(ARMS), TRAINING_SETS)
    )
    for cell in cells:  # each cell names the train run of its own arm and seed
        train = runs[cell.data.tags["train_run_id"]]
        assert (train.data.tags["arm"], train.data.tags["seed"]) == (cell.data.tags["arm"], cell.data.tags["seed"])


def test_arms_train_the_same_data_and_budget_with_their_own_model_and_loss(study):
    result, runs = study
    trains = children(runs, result.run_id, "train")
    for key in ("training.epochs", "training.seed", "training.batch_size", "data.window"):
        assert len({r.data.params[key] for r in trains}) == 1, key
    params = {r.data.tags["arm"]: r.data.params for r in trains}
    assert params["data_only"]["loss.physics_weight"] == params["wdcnn"]["loss.physics_weight"] == "0.0"
    assert params["physics_fixed"]["loss.adaptive_weighting"] == "False"
    assert params["physics_adaptive"]["loss.adaptive_weighting"] == "True"
    assert params["wdcnn"]["model.name"] == "wdcnn" and params["physics_fixed"]["model.name"] == "agt_no"
    assert (
        runs[result.run_id].data.params["tuned.loss.physics_weight"] == params["physics_tuned"]["loss.physics_weight"]
    )


def test_each_cell_has_the_metrics_its_arm_and_split_can_have(study):
    result, runs = study
    for cell in children(runs, result.run_id, "study_cell"):
        metrics, arm, split = cell.data.metrics, cell.data.tags["arm"], cell.data.tags["split"]
        for name in ("test/accuracy", "test/macro_f1", "test/ece"):
            assert 0.0 <= metrics[name] <= 1.0, (arm, split, name)
        assert ("test/ood_auroc" in metrics) == (split == "ood_size")
        if split == "ood_size":
            assert 0.0 <= metrics["test/ood_auroc"] <= 1.0
        physics = {k for k in metrics if k.startswith(("test/physics", "sysid/"))}
        if arm == "wdcnn":  # states no physics, infers no parameters
            assert not physics
        else:
            assert metrics["test/physics_residual"] > 0.0
            assert {"test/physics/equation_of_motion", "test/physics/measurement"} <= physics
            assert metrics["sysid/resonance_hz_error_pct"] >= 0.0
            assert metrics["sysid/damping_ratio_baseline_error_pct"] >= 0.0


def test_tables_agree_with_the_runs_and_the_parent_logs_them(study):
    result, runs = study
    table = study_runs(result.run_id)
    assert len(table) == len(list(ARMS)) * len(SPLITS)
    accuracy = split_table(table)
    assert list(accuracy.index) == list(list(ARMS)) and list(accuracy.columns) == SPLITS
    cell = next(
        c
        for c in children(runs, result.run_id, "study_cell")
        if (c.data.tags["arm"], c.data.tags["split"]) == ("wdcnn", "load_shift")
    )
    assert accuracy.loc["wdcnn", "load_shift"] == f"{cell.data.metrics['test/accuracy']:.3g}"  # one seed: no spread
    logged = mlflow.artifacts.load_text(f"runs:/{result.run_id}/headline.md")
    assert logged == to_markdown(headline_table(table))
    assert headline_table(table).loc["wdcnn", "physics residual"] == ""


def test_entry_point_rejects_a_bad_study_setting_before_any_run(tmp_path):
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.study",
            "study=tiny",
            "study.arms=[bogus]",
            f"hydra.run.dir={tmp_path / 'hydra'}",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 2 and "study.arms" in out.stderr
    assert not (tmp_path / "mlflow.db").exists()
