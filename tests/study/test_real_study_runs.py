"""The study on real recordings at a tiny budget: a simulator-trained model is scored on the recordings (ten
classes, the fault location they name, and each recording by its windows' vote), a held-out fault location is
told from the seen ones, and the envelope rule, fitted on simulated windows of its own length, names the
locations of the recordings in windows of that length."""

import mlflow
import pytest

from pipeline.data.prepared import load_prepared
from pipeline.study.report import headline_table, study_runs
from tests.study.tiny_study import run_tiny_study

pytestmark = pytest.mark.slow  # a whole study, on the real recordings


@pytest.fixture(scope="module")
def real_study(tmp_path_factory, cwru_dir):
    root = tmp_path_factory.mktemp("real-study")
    result = run_tiny_study(
        root,
        "data=cwru",
        f"data.path={cwru_dir}",
        "data.duration_s=0.35",  # simulated recordings that hold one window of the rule's (sim_to_real)
        "study.arms=[physics_adaptive,envelope_rule]",
        "study.training_sets=[sim_to_real,ood_location]",
        "study.snr_db=[]",
    )
    yield result, study_runs(result.run_id)


def test_every_run_finishes_with_one_cell_per_set(real_study):
    result, table = real_study
    assert sorted(zip(table["arm"], table["split"])) == [
        ("envelope_rule", "ood_location"),
        ("envelope_rule", "sim_to_real"),
        ("physics_adaptive", "ood_location"),
        ("physics_adaptive", "sim_to_real"),
    ]
    runs = mlflow.search_runs(experiment_names=["av-pino-study"], output_format="list")
    assert runs and all(run.info.status == "FINISHED" for run in runs)


def test_sim_to_real_is_scored_on_classes_and_locations(real_study):
    _, table = real_study
    cell = table[(table["split"] == "sim_to_real") & (table["arm"] == "physics_adaptive")].iloc[0]
    assert 0.0 <= cell["test/accuracy"] <= cell["test/location_accuracy"] <= 1.0  # a right class has a right location
    assert 0.0 <= cell["test/recording_accuracy"] <= 1.0
    assert 0.0 <= cell["test/ece"] <= 1.0 and 0.0 <= cell["test/ece_uncalibrated"] <= 1.0
    assert "test/shift_auroc" not in table or cell[["test/shift_auroc"]].isna().all()  # no real validation windows


def test_the_rule_names_the_locations_of_the_recordings(real_study):
    result, table = real_study
    cell = table[(table["split"] == "sim_to_real") & (table["arm"] == "envelope_rule")].iloc[0]
    assert 0.0 <= cell["test/location_accuracy"] <= 1.0 and cell[["test/accuracy", "test/ece"]].isna().all()
    scored = mlflow.get_run(cell["run_id"])
    assert scored.data.params["data.window"] == "4096"
    windows = load_prepared(scored.data.tags["dataset_dir"])
    assert windows.manifest["window"] == 4096 and windows.manifest["hop"] == 4096  # every window, one apart


def test_the_held_out_location_is_scored_for_ood_detection(real_study):
    _, table = real_study
    cell = table[table["split"] == "ood_location"].iloc[0]
    assert 0.0 <= cell["test/ood_auroc"] <= 1.0 and 0.0 <= cell["test/uncertainty_auroc"] <= 1.0
    assert (
        headline_table(table).loc["physics_adaptive", "OOD AUROC, held-out location"] == f"{cell['test/ood_auroc']:.3g}"
    )
