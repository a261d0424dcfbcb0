"""Stage 3, evaluate: score a logged model on the test split of the dataset it was trained on (by default the
newest finished train run's), with the probabilities the served model gives, and log `test/` metrics on its run
and against the logged model (so MLflow ranks models by them), a confusion matrix, a reliability diagram and a
per-class table (docs/how-it-works.md). The model and its dataset are found or rebuilt on this machine."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import mlflow
import numpy as np
import pandas as pd
from torch import nn

from pipeline.config import ExperimentConfig
from pipeline.data.prepared import PreparedDataset, load_prepared, prepare_dataset
from pipeline.readout.calibration import ece_sampling_floor, expected_calibration_error
from pipeline.readout.config import EvaluateConfig
from pipeline.readout.figures import confusion_matrix_figure, reliability_figure
from pipeline.readout.metrics import auroc, classification_metrics, recording_accuracy
from pipeline.readout.readout import Readout, predict_windows
from pipeline.readout.recording_figures import recording_figures
from pipeline.tracking.contract import DATASET_DIR_TAG, MODEL_URI_TAG, TRAIN_RUN_TAG, latest_finished_run
from pipeline.tracking.datasets import dataset_of_run, log_dataset
from pipeline.tracking.model_logging import load_logged_model
from pipeline.tracking.records import recorded_run
from pipeline.tracking.registry import CLASS_NAMES_TAG
from pipeline.tracking.run import browse_hint, stage_run
from pipeline.tracking.store import shown_uri, use_store

log = logging.getLogger(__name__)


class EvaluationError(RuntimeError):
    """There is nothing to evaluate, or the model and the dataset do not fit together."""


@dataclass
class EvaluationResult:
    run_id: str
    metrics: dict[str, float]  # everything logged, by metric name (`test/accuracy`, ...)


@dataclass(frozen=True)
class Target:
    """What one evaluation scores: a logged model, the run that trained it (if known), a prepared dataset."""

    model_uri: str
    train_run_id: Optional[str]
    dataset_dir: Path


def newest_train_run_id(experiment: str) -> str:
    """Id of the most recently started FINISHED run tagged `stage=train` in `experiment`."""
    found = mlflow.get_experiment_by_name(experiment)
    run = None if found is None else latest_finished_run([found.experiment_id], "train")
    if run is None:
        raise EvaluationError(
            f"no finished train run in experiment {experiment!r} of {mlflow.get_tracking_uri()}; "
            "run `python -m pipeline.train` first or pass evaluate.model_uri=<model uri>"
        )
    return run.info.run_id


def resolve_target(
    config: ExperimentConfig,
    model_uri: Optional[str] = None,
    dataset_dir: Optional[str | Path] = None,
    train_run_id: Optional[str] = None,
) -> Target:
    """Explicit arguments first, then `config.evaluate.model_uri`, then the newest finished train run.

    The dataset is the one the model was trained on (its train run's logged dataset, on this machine) unless
    given; only when neither is known is it prepared from `config.data`.
    """
    model_uri = model_uri or config.evaluate.model_uri
    if model_uri is None and train_run_id is None:
        train_run_id = newest_train_run_id(config.tracking.experiment)
    if train_run_id is None:
        try:  # the run that logged the model, to find its dataset
            train_run_id = mlflow.models.get_model_info(model_uri).run_id
        except mlflow.exceptions.MlflowException as err:
            store = shown_uri(mlflow.get_tracking_uri())
            raise EvaluationError(
                f"cannot read model {model_uri!r} in the tracking store {store}: {err.message}"
            ) from None
    read_from = f"model {model_uri!r}" if model_uri else "train_run_id"
    train_run = recorded_run(train_run_id, read_from) if train_run_id else None
    model_uri = model_uri or (train_run.data.tags.get(MODEL_URI_TAG) if train_run else None)
    if not model_uri:
        raise EvaluationError(f"train run {train_run_id} has no model_uri tag; pass evaluate.model_uri=<model uri>")
    if dataset_dir is None:
        cache_root = Path(config.data.cache_dir).resolve()
        dataset_dir = (
            dataset_of_run(train_run, cache_root)
            if train_run and train_run.inputs.dataset_inputs
            else prepare_dataset(config.data, cache_root)
        )
    return Target(model_uri, train_run_id, Path(dataset_dir).resolve())


def logged_metrics(
    metrics: dict[str, float],
    per_class: pd.DataFrame,
    outputs: dict[str, np.ndarray],
    labels: np.ndarray,
    ece_bins: int,
    recordings: Optional[np.ndarray] = None,
) -> dict[str, float]:
    """The `test/` metrics from classification metrics and the model outputs `predict_windows` returned for
    windows of `labels`: `test/ece_uncalibrated` of the plain softmax, `test/ece_sampling_floor` the ECE a
    perfectly calibrated model would show on this many windows, a recall per class that has test windows, and
    with the windows' `recordings`, `test/recording_accuracy` (a recording's windows vote); physics,
    uncertainty and ood metrics only for a model that returns residuals, uncertainties and ood scores."""
    logged = {f"test/{name}": value for name, value in metrics.items()}
    logged["test/ece_uncalibrated"] = expected_calibration_error(outputs["probs_uncalibrated"], labels, ece_bins)
    logged["test/ece_sampling_floor"] = ece_sampling_floor(outputs["probs"], ece_bins)
    present = per_class[per_class["support"] > 0]  # a class with no test window has no recall to log
    logged.update({f"test/recall/{name}": float(recall) for name, recall in present["recall"].items()})
    if recordings is not None:
        logged["test/recording_accuracy"] = recording_accuracy(labels, outputs["probs"].argmax(axis=1), recordings)
    physics = {key: float(values.mean()) for key, values in outputs.items() if key.startswith("physics/")}
    logged.update({f"test/{key}": value for key, value in physics.items()})
    if physics:
        logged["test/physics_residual"] = float(np.mean(list(physics.values())))
    if "uncertainty" in outputs:
        logged["test/mean_uncertainty"] = float(outputs["uncertainty"].mean())
    if "ood_score" in outputs:
        logged["test/ood_score_mean"] = float(outputs["ood_score"].mean())
    return logged


def evaluate(
    config: ExperimentConfig,
    model_uri: Optional[str] = None,
    dataset_dir: Optional[str | Path] = None,
    train_run_id: Optional[str] = None,
) -> EvaluationResult:
    """Score a logged model on the test split inside an MLflow run of stage `evaluate` (see `resolve_target`)."""
    store = use_store()
    target = resolve_target(config, model_uri, dataset_dir, train_run_id)
    tags = {
        MODEL_URI_TAG: target.model_uri,
        TRAIN_RUN_TAG: target.train_run_id or "",
        DATASET_DIR_TAG: str(target.dataset_dir),
    }
    # Only the sections this stage reads: the evaluated model's own config lives on its train run.
    params = {"evaluate": asdict(config.evaluate), "tracking": asdict(config.tracking)}
    with stage_run(
        "evaluate",
        params,
        experiment=config.tracking.experiment,
        run_name=f"evaluate-{target.model_uri.rsplit('/', 1)[-1]}",
        tags=tags,
    ) as run:
        model, model_config, readout = load_logged_model(target.model_uri)
        dataset = load_prepared(target.dataset_dir)
        class_names = _check_compatible(model_config, dataset.manifest, target)
        mlflow.set_tag(CLASS_NAMES_TAG, ",".join(class_names))  # the registry compares models of one task only
        log_dataset(target.dataset_dir, context="evaluation")
        scored = _score(model, readout, dataset, class_names, target, config.evaluate)
        _log_against_model(scored.metrics, target.model_uri, run.info.run_id)
        _log_reports(scored, config.evaluate.ece_bins)
        _log_recording_figures(scored, dataset, config.evaluate.diagnosis_figures)
    logged = scored.metrics
    print(
        f"evaluate run {run.info.run_id}: {len(scored.labels)} test windows, accuracy {logged['test/accuracy']:.4f}, "
        f"macro-F1 {logged['test/macro_f1']:.4f}, ECE {logged['test/ece']:.4f}\n"
        f"browse: {browse_hint(store, run.info.experiment_id)}"
    )
    return EvaluationResult(run.info.run_id, logged)


@dataclass(frozen=True)
class _Scored:
    """A model's scores on the test windows: what the run logs."""

    labels: np.ndarray
    probs: np.ndarray  # [windows, classes], through the model's readout
    class_names: list[str]
    per_class: pd.DataFrame
    metrics: dict[str, float]  # the `test/` metrics (`logged_metrics`, and `test/ood_auroc_vs_val`)


def _score(
    model: nn.Module,
    readout: Readout,
    dataset: PreparedDataset,
    class_names: list[str],
    target: Target,
    settings: EvaluateConfig,
) -> _Scored:
    """Predict the test windows and score them; for a model with an ood score, also how well it tells them from
    the validation windows."""
    test = dataset.subset("test")
    labels = test.labels
    if len(labels) == 0:
        raise EvaluationError(f"{target.dataset_dir} has no test windows")
    batch_size = settings.batch_size
    outputs = predict_windows(model, test.windows, batch_size, readout=readout, **test.conditions())
    probs = outputs["probs"]
    if probs.shape[1] != len(class_names):
        raise EvaluationError(
            f"model {target.model_uri} scores {probs.shape[1]} classes, dataset "
            f"{target.dataset_dir} lists {len(class_names)}: {class_names}"
        )
    metrics, per_class = classification_metrics(labels, probs, class_names, settings.ece_bins)
    logged = logged_metrics(metrics, per_class, outputs, labels, settings.ece_bins, test.recording_ids)
    val = dataset.subset("val")
    if "ood_score" in outputs and len(val):
        val_scores = predict_windows(model, val.windows, batch_size, readout=readout, **val.conditions())
        logged["test/ood_auroc_vs_val"] = auroc(in_scores=val_scores["ood_score"], out_scores=outputs["ood_score"])
    return _Scored(labels, probs, class_names, per_class, logged)


def _log_against_model(metrics: dict[str, float], model_uri: str, run_id: str) -> None:
    """Log `metrics` on run `run_id` and against the logged model, on the dataset input just logged: MLflow then
    ranks models by them."""
    model_id = mlflow.models.get_model_info(model_uri).model_id
    if model_id is None:
        log.warning(
            "model %s has no model id (logged before MLflow 3): its test metrics go on evaluate run %s only",
            model_uri,
            run_id,
        )
    mlflow.log_metrics(metrics, model_id=model_id, dataset=mlflow.get_run(run_id).inputs.dataset_inputs[0].dataset)


def _log_reports(scored: _Scored, ece_bins: int) -> None:
    """The confusion matrix, the reliability diagram and the per-class table, as run artifacts."""
    predicted = scored.probs.argmax(axis=1)
    mlflow.log_figure(
        confusion_matrix_figure(scored.labels, predicted, scored.class_names), "plots/confusion_matrix.html"
    )
    mlflow.log_figure(reliability_figure(scored.probs, scored.labels, ece_bins), "plots/reliability.html")
    mlflow.log_text(scored.per_class.to_csv(), "per_class.csv")


def _log_recording_figures(scored: _Scored, dataset: PreparedDataset, per_class: int) -> None:
    """`diagnosis/<class>-recording-<id>.html`: a few test recordings per class, the evidence for their diagnoses."""
    manifest = dataset.manifest
    figures = recording_figures(
        dataset.subset("test"), scored.probs, scored.class_names, per_class, manifest["sample_rate"], manifest["hop"]
    )
    for key, figure in figures.items():
        mlflow.log_figure(figure, f"diagnosis/{key}.html")


def _check_compatible(model_config: dict, manifest: dict, target: Target) -> list[str]:
    """The dataset's class names, once the model and the dataset agree on window length, sample rate and
    classes."""
    if model_config["window"] != manifest["window"]:
        raise EvaluationError(
            f"model {target.model_uri} takes windows of {model_config['window']} samples, "
            f"dataset {target.dataset_dir} has {manifest['window']}"
        )
    if float(model_config["sample_rate"]) != float(manifest["sample_rate"]):
        raise EvaluationError(
            f"model {target.model_uri} was built for {model_config['sample_rate']} Hz, "
            f"dataset {target.dataset_dir} is sampled at {manifest['sample_rate']} Hz"
        )
    class_names = list(manifest["class_names"])
    if list(model_config["class_names"]) != class_names:
        raise EvaluationError(
            f"model {target.model_uri} classifies {model_config['class_names']}, dataset "
            f"{target.dataset_dir} lists {class_names}"
        )
    return class_names
