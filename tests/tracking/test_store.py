"""Experiments the pipeline uses (pipeline/tracking/store.py) say they hold model training, so MLflow 3 clients
that read an experiment's kind treat them as such rather than as GenAI (traces) experiments."""

import os

import mlflow

from pipeline.tracking.store import EXPERIMENT_KIND, MODEL_TRAINING, ensure_experiment, use_store


def kind(experiment_id: str) -> str | None:
    return mlflow.get_experiment(experiment_id).tags.get(EXPERIMENT_KIND)


def test_a_new_experiment_is_created_as_model_training(mlflow_store):
    experiment_id = ensure_experiment("av-pino")

    assert kind(experiment_id) == "custom_model_development" == MODEL_TRAINING
    assert ensure_experiment("av-pino") == experiment_id


def test_an_existing_experiment_without_a_kind_gets_it_and_a_stated_kind_is_kept(mlflow_store):
    # as `mlflow run . --experiment-name av-pino` or an older pipeline creates it: no kind
    untagged = mlflow.create_experiment("av-pino")
    chosen = mlflow.create_experiment("agents", tags={EXPERIMENT_KIND: "genai_development"})

    assert ensure_experiment("av-pino") == untagged
    assert kind(untagged) == MODEL_TRAINING
    assert ensure_experiment("agents") == chosen
    assert kind(chosen) == "genai_development"  # a kind someone chose is theirs


def test_a_run_without_a_terminal_gets_no_artifact_progress_bars(mlflow_store, monkeypatch):
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    use_store()  # pytest's stderr is not a terminal, as a log file or CI is not
    assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "false"

    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "true")
    use_store()
    assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "true"  # the user's choice stands
