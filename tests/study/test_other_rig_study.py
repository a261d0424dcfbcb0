"""Bearings never trained on, at a tiny budget: a model trained on CWRU is scored on every window of UESTC's
rig (a bearing of another geometry, named by the manifest the bench writes) on fault location, with each
location's recall, and each held-out CWRU fault size is also scored per envelope grade of its recordings."""

import mlflow
import numpy as np
import pytest

from pipeline.data.prepared import load_prepared
from pipeline.study.report import study_runs
from tests.conftest import bench_module
from tests.study.tiny_study import run_tiny_study

pytestmark = pytest.mark.slow  # a whole study, on the real recordings of two rigs

TEST = 2


@pytest.fixture(scope="module")
def other_rig_study(tmp_path_factory, cwru_dir, uestc_dir):
    root = tmp_path_factory.mktemp("other-rig-study")
    manifest = bench_module("study_benchmarks").uestc_files_manifest(uestc_dir, root / "uestc.csv")
    result = run_tiny_study(
        root,
        "data=cwru",
        f"data.path={cwru_dir}",
        "study.arms=[physics_adaptive,envelope_rule]",
        "study.training_sets=[other_rig,unseen_size]",
        "study.unseen_sizes=[0.014]",
        f"study.other_rig_manifest={manifest}",
        "study.snr_db=[]",
        "training.batch_size=256",  # few steps: CWRU holds thousands of tiny windows
    )
    yield study_runs(result.run_id)


def cell(table, arm: str, split: str):
    return table[(table["arm"] == arm) & (table["split"] == split)].iloc[0]


def test_every_uestc_window_is_scored_and_none_trained_on(other_rig_study):
    scored_run = mlflow.get_run(cell(other_rig_study, "physics_adaptive", "other_rig")["run_id"])
    scored = load_prepared(scored_run.data.tags["dataset_dir"])
    assert scored.manifest["source"] == "files"
    assert scored.manifest["class_names"] == ["normal", "ball", "inner", "outer"]
    assert np.all(scored.arrays["split"] == TEST)
    assert len(scored.manifest["recordings"]) == 16 and {r["split"] for r in scored.manifest["recordings"]} == {"test"}
    window = int(scored_run.data.params["data.window"])
    at_12khz = 262144 * 12000 // 20000  # each file's 13.1 s at the study's rate
    assert scored.manifest["n_windows"] == 16 * (at_12khz // window)  # every window, one apart
    trained = load_prepared(mlflow.get_run(scored_run.data.tags["train_run_id"]).data.tags["dataset_dir"])
    assert trained.manifest["source"] == "cwru" and trained.manifest["task"] == "fault_location"


def test_other_rig_cells_log_each_locations_recall(other_rig_study):
    for arm in ("physics_adaptive", "envelope_rule"):
        scores = cell(other_rig_study, arm, "other_rig")
        recalls = [scores[f"test/location_recall/{loc}"] for loc in ("normal", "ball", "inner", "outer")]
        assert all(0.0 <= recall <= 1.0 for recall in recalls)
        assert scores["test/location_accuracy"] == pytest.approx(np.mean(recalls))  # 4 x 4 recordings, same length


def test_a_held_out_size_is_scored_per_envelope_grade(other_rig_study):
    scores = cell(other_rig_study, "physics_adaptive", "unseen_0.014")
    grades = {g: scores[f"test/location_accuracy/grade_{g}"] for g in ("Y", "P", "N")}  # 0.014 in holds all three
    assert all(0.0 <= accuracy <= 1.0 for accuracy in grades.values())
    rule = cell(other_rig_study, "envelope_rule", "unseen_0.014")
    assert 0.0 <= rule["test/location_accuracy/grade_P"] <= 1.0
