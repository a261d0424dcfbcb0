"""The envelope rule as a study arm: its threshold fitted on the training windows, each read in its own bearing,
scored on the location its classes name and, on a location task, as any model."""

import pytest

from pipeline.data.prepared import PreparedDataset, load_prepared, prepare_dataset
from pipeline.models.envelope_rule import THRESHOLD_GRID
from pipeline.study.design import rule_data
from pipeline.study.envelope_arm import fit_rule, score_rule
from pipeline.study.sets import EvaluationSet
from tests.study.tiny_study import study_config


@pytest.fixture(scope="module")
def rule_datasets(tmp_path_factory):
    """The tiny simulated recordings, 0.35 s long to hold one of the rule's windows, at its window length: labelled
    with the ten classes and with fault locations."""
    root = tmp_path_factory.mktemp("data")

    def prepared(task: str) -> PreparedDataset:
        data = study_config(f"data.task={task}", "data.duration_s=0.35").data
        return load_prepared(prepare_dataset(rule_data(data), root))

    return {task: prepared(task) for task in ("fault_class", "fault_location")}


def test_on_a_location_task_the_rule_is_scored_as_any_model(rule_datasets):
    dataset = rule_datasets["fault_location"]
    assert dataset.manifest["window"] == 4096  # the tiny study's windows are 256 samples
    rule = fit_rule(dataset)
    assert rule.threshold in THRESHOLD_GRID
    logged = score_rule(rule, dataset, EvaluationSet("recording", dataset.path))
    assert logged["test/accuracy"] == logged["test/location_accuracy"]
    assert 0.0 <= logged["test/macro_f1"] <= 1.0 and 0.0 <= logged["test/recording_accuracy"] <= 1.0
    assert len(dataset.manifest["bearings"]) > 10  # the simulator draws a bearing per recording
    assert logged["test/location_accuracy"] >= 0.9  # the simulator's faults strike at each bearing's rates
    assert logged["rule/threshold"] == rule.threshold


def test_on_ten_classes_the_rule_is_scored_on_location_only(rule_datasets):
    dataset = rule_datasets["fault_class"]
    logged = score_rule(fit_rule(dataset), dataset, EvaluationSet("recording", dataset.path))
    assert {"test/location_accuracy", *(f"test/location_recall/{loc}" for loc in ("normal", "ball"))} <= set(logged)
    assert not {"test/accuracy", "test/macro_f1", "test/recording_accuracy", "test/ece"} & set(logged)
