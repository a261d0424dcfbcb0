"""The whole study at a tiny budget: one finished run per arm x split x seed, tagged and nested under one
study run, with the metrics each arm can honestly have, and tables that agree with the runs. The envelope rule,
which trains nothing, reads the same recordings in its own longer windows: where they do not fit (the tiny
study's 0.1 s) it is skipped and the study run says why; where they do, it is scored on the fault location."""

import os
from itertools import product
from pathlib import Path

import mlflow
import pytest

from pipeline.study.design import ARMS
from pipeline.study.report import headline_table, split_table, study_runs, to_markdown
from tests.entry_zygote import run_entry_point
from tests.study.tiny_study import run_tiny_study

pytestmark = pytest.mark.slow  # whole studies, and the study's entry point

SPLITS = ["recording", "load_shift", "snr0", "reduced_labels", "ood_size"]  # tiny: study.snr_db=[0.0]
TRAINING_SETS = ["recording", "load_shift", "reduced_labels", "ood_size"]
TRAINED = [name for name, arm in ARMS.items() if arm.trained]


def tiny_study(root: Path, *overrides: str):
    """The tiny study with `overrides`, in a store of its own under `root`: its result and every run by id."""
    result = run_tiny_study(root, *overrides)
    runs = mlflow.search_runs(experiment_names=["av-pino-study"], output_format="list")
    return result, {run.info.run_id: run for run in runs}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return tiny_study(tmp_path_factory.mktemp("study"))


@pytest.fixture(scope="module")
def rule_study(tmp_path_factory):
    """The envelope rule alone, on recordings long enough for one of its windows (0.35 s: 4,200 samples)."""
    return tiny_study(
        tmp_path_factory.mktemp("rule-study"),
        "data.duration_s=0.35",
        "data.task=fault_class",
        "study.arms=[envelope_rule]",
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
    assert keys == sorted(product(TRAINED, SPLITS, ["0"]))
    trains = children(runs, result.run_id, "train")
    assert sorted((r.data.tags["arm"], r.data.tags["training_set"]) for r in trains) == sorted(
        product(TRAINED, TRAINING_SETS)
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
        names = ("test/accuracy", "test/recording_accuracy", "test/location_accuracy", "test/macro_f1", "test/ece")
        for name in (*names, "test/shift_auroc"):
            assert 0.0 <= metrics[name] <= 1.0, (arm, split, name)
        assert metrics["train/epochs"] == 1 and metrics["train/epoch_s"] > 0.0
        assert metrics["calibration/temperature"] > 0.0
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
    assert len(table) == len(TRAINED) * len(SPLITS)
    accuracy = split_table(table)
    assert list(accuracy.index) == TRAINED and list(accuracy.columns) == SPLITS
    cell = next(
        c
        for c in children(runs, result.run_id, "study_cell")
        if (c.data.tags["arm"], c.data.tags["split"]) == ("wdcnn", "load_shift")
    )
    assert accuracy.loc["wdcnn", "load_shift"] == f"{cell.data.metrics['test/accuracy']:.3g}"  # one seed: no spread
    logged = mlflow.artifacts.load_text(f"runs:/{result.run_id}/headline.md")
    assert logged == to_markdown(headline_table(table))
    assert headline_table(table).loc["wdcnn", "physics residual"] == ""


def test_the_rule_is_skipped_where_its_windows_do_not_fit_and_the_study_says_why(study):
    result, runs = study
    reason = runs[result.run_id].data.tags["skipped.envelope_rule"]
    assert "data.window=4096" in reason and "data.duration_s=0.1" in reason


def test_the_rule_fits_one_threshold_per_training_set_and_names_locations(rule_study):
    result, runs = rule_study
    assert not children(runs, result.run_id, "train")  # nothing trained
    cells = children(runs, result.run_id, "study_cell")
    assert sorted(c.data.tags["split"] for c in cells) == sorted(SPLITS)
    for cell in cells:  # ten classes: scored on the location they name; it states no confidence
        metrics = cell.data.metrics
        assert cell.data.params["data.window"] == "4096" and cell.data.params["model.name"] == "envelope_rule"
        assert 0.0 <= metrics["rule/threshold"] <= 1.0 and 0.0 <= metrics["test/location_accuracy"] <= 1.0
        assert not {"test/accuracy", "test/ece", "test/ood_auroc", "train/epochs"} & set(metrics)
    headline = headline_table(study_runs(result.run_id))
    recording = next(c for c in cells if c.data.tags["split"] == "recording")
    assert headline.loc["envelope_rule", "recording"] == ""  # no ten-class accuracy
    location = recording.data.metrics["test/location_accuracy"]
    assert headline.loc["envelope_rule", "location accuracy, held-out"] == f"{location:.3g}"


def test_entry_point_rejects_a_bad_study_setting_before_any_run(tmp_path):
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    out = run_entry_point(  # `python -m pipeline.study ...`, forked from a warm interpreter
        "study", "study=tiny", "study.arms=[bogus]", f"hydra.run.dir={tmp_path / 'hydra'}", env=env, folder=tmp_path
    )
    assert out.returncode == 2 and "study.arms" in out.stderr
    assert not (tmp_path / "mlflow.db").exists()
