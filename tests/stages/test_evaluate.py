"""The evaluate stage end to end on a private MLflow store: a tiny dataset, a tiny model trained one epoch; the
logged models ranked by their evaluations; and the metrics it logs for a model that returns no physics, and for
one logged before readouts (no temperature, no ood score)."""

import dataclasses
import io
import json
import logging
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.models import Model

from pipeline.config import (
    DataConfig,
    EvaluateConfig,
    ExperimentConfig,
    ModelConfig,
    TrackingConfig,
    TrainingConfig,
)
from pipeline.data.prepared import DatasetError, load_prepared, prepare_dataset
from pipeline.readout.metrics import classification_metrics
from pipeline.stages.command_line import run_stage
from pipeline.stages.evaluate import EvaluationError, evaluate, logged_metrics
from pipeline.stages.train import train
from pipeline.tracking.datasets import CONTENT_HASH_TAG

EXPERIMENT = "evaluate-test"
ARTIFACTS = {"plots/confusion_matrix.html", "plots/reliability.html", "per_class.csv"}


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> ExperimentConfig:
    data = DataConfig(
        window=256, hop=256, duration_s=0.2, recordings_per_load=3, cache_dir=str(tmp_path_factory.mktemp("cache"))
    )
    return ExperimentConfig(
        data=data,
        tracking=TrackingConfig(EXPERIMENT),
        model=ModelConfig(hidden_dim=8, n_layers=1, n_modes=8, n_heads=2, patch_size=32),
        training=TrainingConfig(epochs=1, batch_size=64),
        evaluate=EvaluateConfig(diagnosis_figures=1),  # the default is two; one keeps the suite short
    )


@pytest.fixture(scope="module")
def dataset_dir(config):
    return prepare_dataset(config.data, config.data.cache_dir)


def all_runs():
    return mlflow.search_runs(search_all_experiments=True, output_format="list")


def model_id(model_uri: str) -> str:
    return mlflow.models.get_model_info(model_uri).model_id


def artifact_paths(run_id: str) -> set[str]:
    client = mlflow.MlflowClient()
    found, folders = set(), [None]
    while folders:
        for item in client.list_artifacts(run_id, folders.pop()):
            (folders.append(item.path) if item.is_dir else found.add(item.path))
    return found


def test_evaluates_a_trained_model_and_logs_metrics_and_plots(mlflow_store, config, dataset_dir, tmp_path):
    trained = train(config, dataset_dir, checkpoint_root=tmp_path / "checkpoints")
    class_names = load_prepared(dataset_dir).manifest["class_names"]

    result = evaluate(config)  # nothing named: the newest finished train run
    run = mlflow.get_run(result.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["stage"] == "evaluate"
    assert (run.data.tags["model_uri"], run.data.tags["train_run_id"], run.data.tags["dataset_dir"]) == (
        trained.model_uri,
        trained.run_id,
        str(dataset_dir.resolve()),
    )
    metrics = run.data.metrics
    physics = {name: value for name, value in metrics.items() if name.startswith("test/physics/")}
    expected = {
        "test/accuracy",
        "test/balanced_accuracy",
        "test/recording_accuracy",
        "test/macro_f1",
        "test/ece",
        "test/ece_uncalibrated",
        "test/ece_sampling_floor",
        "test/physics_residual",
        "test/mean_uncertainty",
        "test/ood_score_mean",
        "test/ood_auroc_vs_val",
        *(f"test/recall/{name}" for name in class_names),
        *physics,
    }
    assert physics and set(metrics) == expected and result.metrics == pytest.approx(metrics)
    assert metrics["test/physics_residual"] == pytest.approx(sum(physics.values()) / len(physics))
    assert 0 <= metrics["test/accuracy"] <= 1 and 0 <= metrics["test/ece"] <= 1
    assert 0 <= metrics["test/ood_auroc_vs_val"] <= 1 and metrics["test/ood_score_mean"] > 0

    # The train run fitted the readout the served model applies: a temperature, and the ECE it changed.
    fitted = mlflow.get_run(trained.run_id).data.metrics
    assert fitted["calibration/temperature"] > 0 and fitted["val/ood_threshold"] > 0
    assert {"val/ece_uncalibrated", "val/ece_calibrated"} <= fitted.keys()
    served = mlflow.pyfunc.load_model(trained.model_uri).predict(np.zeros((2, 256), np.float32))
    assert served.columns[-2:].tolist() == ["ood_score", "out_of_distribution"]  # and in its signature:
    assert "out_of_distribution" in mlflow.models.get_model_info(trained.model_uri).signature.outputs.input_names()
    logged = artifact_paths(result.run_id)
    assert ARTIFACTS <= logged
    test = load_prepared(dataset_dir).subset("test")
    expected_figures = {  # the first test recording(s) of each class, each the evidence for its diagnosis
        f"diagnosis/{name}-recording-{recording}.html"
        for label, name in enumerate(class_names)
        for recording in np.unique(test.recording_ids[test.labels == label])[: config.evaluate.diagnosis_figures]
    }
    assert expected_figures and {p for p in logged if p.startswith("diagnosis/")} == expected_figures
    assert "BPFO ×1" in mlflow.artifacts.load_text(f"runs:/{result.run_id}/{sorted(expected_figures)[0]}")
    per_class = pd.read_csv(io.StringIO(mlflow.artifacts.load_text(f"runs:/{result.run_id}/per_class.csv")))
    assert per_class["class"].tolist() == class_names and per_class["support"].sum() > 0

    # The same metrics sit on the logged model, from this run and on its evaluation dataset.
    [evaluated] = run.inputs.dataset_inputs
    model = mlflow.get_logged_model(model_id(trained.model_uri))
    assert [m.model_id for m in run.inputs.model_inputs] == [model.model_id]
    on_model = [m for m in model.metrics if m.run_id == result.run_id]
    assert {m.key: m.value for m in on_model} == pytest.approx(metrics)
    assert {(m.dataset_name, m.dataset_digest) for m in on_model} == {
        (evaluated.dataset.name, evaluated.dataset.digest)
    }

    # An explicit model URI finds its train run and dataset through the model, and scores the same.
    again = evaluate(config, model_uri=trained.model_uri)
    assert mlflow.get_run(again.run_id).data.tags["train_run_id"] == trained.run_id
    assert again.metrics == pytest.approx(result.metrics)

    # A failure after the run started leaves it FAILED, never RUNNING.
    with pytest.raises(DatasetError):
        evaluate(config, model_uri=trained.model_uri, dataset_dir=tmp_path / "missing")
    assert [r.info.status for r in all_runs() if r.data.tags.get("stage") == "evaluate"].count("FAILED") == 1
    assert "RUNNING" not in {r.info.status for r in all_runs()}


def test_a_model_trained_on_another_machine_is_scored_on_its_dataset_rebuilt_here(mlflow_store, config, tmp_path):
    """The train run names a folder only the other machine has: the dataset is rebuilt in this machine's cache
    from the run's record, and has the content the model was trained on."""

    def on(cache):
        return dataclasses.replace(config, data=dataclasses.replace(config.data, cache_dir=str(cache)))

    elsewhere, here = on(tmp_path / "elsewhere"), on(tmp_path / "here")
    trained = train(
        elsewhere, prepare_dataset(elsewhere.data, elsewhere.data.cache_dir), checkpoint_root=tmp_path / "checkpoints"
    )
    shutil.rmtree(tmp_path / "elsewhere")

    result = evaluate(here)
    run, train_run = mlflow.get_run(result.run_id), mlflow.get_run(trained.run_id)
    rebuilt = Path(run.data.tags["dataset_dir"])
    assert rebuilt.parent == tmp_path / "here" and run.data.tags["train_run_id"] == trained.run_id
    assert run.data.tags[CONTENT_HASH_TAG] == train_run.data.tags[CONTENT_HASH_TAG]
    assert load_prepared(rebuilt, verify=True).manifest["content_hash"] == train_run.data.tags[CONTENT_HASH_TAG]


def test_logged_models_rank_by_their_evaluation(mlflow_store, config, dataset_dir, tmp_path):
    """Two models trained with different seeds, each evaluated: MLflow ranks the logged models by test/accuracy,
    as the Models tab of the experiment does."""
    accuracy = {}
    for seed in (0, 1):
        seeded = dataclasses.replace(config, training=dataclasses.replace(config.training, seed=seed))
        trained = train(seeded, dataset_dir, checkpoint_root=tmp_path / "checkpoints")
        accuracy[model_id(trained.model_uri)] = evaluate(seeded, model_uri=trained.model_uri).metrics["test/accuracy"]

    ranked = mlflow.search_logged_models(
        experiment_ids=[mlflow.get_experiment_by_name(EXPERIMENT).experiment_id],
        order_by=[{"field_name": "metrics.test/accuracy", "ascending": False}],
        output_format="list",
    )
    scores = [next(m.value for m in model.metrics if m.key == "test/accuracy") for model in ranked]
    assert dict(zip([model.model_id for model in ranked], scores)) == pytest.approx(accuracy)
    assert scores == sorted(accuracy.values(), reverse=True)


def test_a_model_logged_without_a_model_id_still_evaluates(mlflow_store, config, dataset_dir, tmp_path, caplog):
    """A model logged before MLflow 3 has no model id: its metrics go on the evaluate run only. Logged before
    readouts too, it has no temperature and no ood score: its probabilities are its softmax."""
    trained = train(config, dataset_dir, checkpoint_root=tmp_path / "checkpoints")
    local = Path(mlflow.artifacts.download_artifacts(trained.model_uri, dst_path=str(tmp_path / "old")))
    old = Model.load(local)
    old.model_id = None
    artifacts = old.flavors["python_function"]["artifacts"]
    (local / artifacts.pop("readout")["path"]).unlink()
    settings_file = local / artifacts["model_config"]["path"]
    settings_file.write_text(
        json.dumps({k: v for k, v in json.loads(settings_file.read_text()).items() if k != "readout"})
    )
    old.save(local / "MLmodel")
    with mlflow.start_run(experiment_id=mlflow.get_experiment_by_name(EXPERIMENT).experiment_id) as run:
        mlflow.log_artifacts(str(local), "model")  # as MLflow 2 stored a model: among its run's artifacts

    with caplog.at_level(logging.WARNING, logger="pipeline.stages.evaluate"):
        result = evaluate(config, model_uri=f"runs:/{run.info.run_id}/model")

    evaluated = mlflow.get_run(result.run_id)
    assert evaluated.data.metrics == pytest.approx(result.metrics) and not evaluated.inputs.model_inputs
    assert result.metrics["test/ece"] == result.metrics["test/ece_uncalibrated"]
    assert not any(name.startswith("test/ood") for name in result.metrics)
    served = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model").predict(np.zeros((2, 256), np.float32))
    assert "ood_score" not in served and served.filter(like="prob_").sum(axis=1).to_numpy() == pytest.approx(1.0)
    assert "has no model id" in caplog.text
    everywhere = mlflow.search_logged_models(experiment_ids=[run.info.experiment_id], output_format="list")
    assert all(m.run_id != result.run_id for model in everywhere for m in model.metrics or [])


def test_nothing_to_evaluate_is_a_clear_error_and_starts_no_run(mlflow_store, config, compose_config):
    with pytest.raises(EvaluationError, match="no finished train run .*python -m pipeline.train"):
        run_stage(evaluate, compose_config(f"tracking.experiment={EXPERIMENT}"))  # as the Hydra entry does
    with pytest.raises(
        EvaluationError, match=f"cannot read model 'models:/m-missing' in the tracking store {mlflow_store}"
    ):
        evaluate(config, model_uri="models:/m-missing")
    assert all_runs() == []


def test_a_model_without_physics_uncertainty_or_ood_score_gets_no_such_metric():
    labels, probs = np.array([0, 1, 1]), np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    metrics, per_class = classification_metrics(labels, probs, ["normal", "fault"])
    outputs = {"probs": probs, "probs_uncalibrated": probs}
    logged = logged_metrics(metrics, per_class, outputs, labels, ece_bins=15)
    assert set(logged) == {
        "test/accuracy",
        "test/balanced_accuracy",
        "test/macro_f1",
        "test/ece",
        "test/ece_uncalibrated",
        "test/ece_sampling_floor",
        "test/recall/normal",
        "test/recall/fault",
    }
    assert logged["test/ece_uncalibrated"] == pytest.approx(logged["test/ece"])  # no temperature: the same
    only_normal = np.array([0, 0, 0])  # a test split without a fault window: no fault recall is claimed
    metrics, per_class = classification_metrics(only_normal, probs, ["normal", "fault"])
    logged_normal = logged_metrics(
        metrics, per_class, outputs, only_normal, ece_bins=15, recordings=np.array([0, 0, 1])
    )
    assert "test/recall/fault" not in logged_normal and logged_normal["test/recall/normal"] == pytest.approx(2 / 3)
    assert logged_normal["test/balanced_accuracy"] == pytest.approx(2 / 3)
    assert logged_normal["test/recording_accuracy"] == pytest.approx(
        1 / 2
    )  # recording 0 ties 1:1 (wrong), recording 1 is right
    with_uncertainty = logged_metrics(
        metrics, per_class, {**outputs, "uncertainty": np.array([0.1, 0.2, 0.3])}, labels, ece_bins=15
    )
    assert with_uncertainty["test/mean_uncertainty"] == pytest.approx(0.2)
    with_ood = logged_metrics(metrics, per_class, {**outputs, "ood_score": np.array([1.0, 2.0, 6.0])}, labels, 15)
    assert with_ood["test/ood_score_mean"] == pytest.approx(3.0)
