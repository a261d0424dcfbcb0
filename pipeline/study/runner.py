"""The ablation study as MLflow runs: a `study` parent run, and under it, for every seed, arm and training set,
one `train` run (none for the envelope rule, which trains nothing) and one `study_cell` run per evaluation set
of that training set (tags: arm, split, seed, training_set).

Seeds are the outer loop, so a study stopped early still holds every arm for its first seeds. An arm the data
cannot serve (the envelope rule, on simulated recordings shorter than its window) is skipped, and the study run
says why in its `skipped.<arm>` tag.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Callable

import mlflow
import numpy as np

from pipeline.common.config_section import ConfigError
from pipeline.data.prepared import PreparedDataset, load_prepared
from pipeline.readout.readout import Readout
from pipeline.stages.train import train
from pipeline.study.config import StudyExperimentConfig
from pipeline.study.design import ARMS, SIMULATED_SETS, Arm, arm_config, rule_data
from pipeline.study.envelope_arm import fit_rule, score_rule
from pipeline.study.report import headline_table, paired_table, study_runs, summary, to_markdown
from pipeline.study.scoring import score
from pipeline.study.sets import EvaluationSet, TrainingSet, simulator_data, training_sets
from pipeline.study.tuning import with_tuned_weights
from pipeline.tracking.contract import DATASET_DIR_TAG, MODEL_URI_TAG, TRAIN_RUN_TAG
from pipeline.tracking.datasets import log_dataset
from pipeline.tracking.model_logging import load_logged_model
from pipeline.tracking.run import browse_hint, stage_run
from pipeline.tracking.store import use_store

EPOCH_SECONDS = "time/epoch_s"  # what the train stage logs once per epoch

Scorer = Callable[[PreparedDataset, EvaluationSet], dict[str, float]]


@dataclass
class Cell:
    arm: str
    split: str
    seed: int
    run_id: str
    metrics: dict[str, float]


@dataclass
class StudyResult:
    run_id: str
    cells: list[Cell]


def run_study(config: StudyExperimentConfig) -> StudyResult:
    """Train (or fit) and score every arm x training set x seed of `config.study`; returns the parent run and
    its cells."""
    store = use_store()
    study = config.study
    arms = [ARMS[name] for name in study.arms]
    cells: list[Cell] = []
    with stage_run("study", config, experiment=config.tracking.experiment, run_name="study") as parent:
        mlflow.log_dict({arm.name: asdict(arm) for arm in arms}, "arms.json")
        if "physics_tuned" in study.arms:
            config = with_tuned_weights(config, parent.info.run_id)
        bases = _arm_bases(config, arms)
        for seed in study.seeds:
            for arm in arms:
                if arm.name in bases:
                    arm_cfg = arm_config(bases[arm.name], arm, seed)
                    for training in training_sets(arm_cfg, seed):
                        cells.extend(_arm_cells(arm_cfg, arm, seed, training))
        runs = study_runs(parent.info.run_id)
        mlflow.log_text(summary(runs).to_csv(), "summary.csv")
        mlflow.log_text(to_markdown(headline_table(runs)), "headline.md")
        mlflow.log_text(to_markdown(paired_table(runs)), "paired.md")
    print(
        f"study run {parent.info.run_id}: {len(cells)} scored runs\n{headline_table(runs).to_string()}\n"
        f"browse: {browse_hint(store, parent.info.experiment_id)}"
    )
    return StudyResult(parent.info.run_id, cells)


def _arm_bases(config: StudyExperimentConfig, arms: list[Arm]) -> dict[str, StudyExperimentConfig]:
    """The config each arm starts from: `config`, or for the envelope rule `config` at its window; an arm left
    out (its windows longer than the recordings, or than the simulator's for `SIMULATED_SETS`) is tagged on the
    active (study) run with the reason."""
    bases = {}
    for arm in arms:
        try:
            bases[arm.name] = config if arm.trained else replace(config, data=rule_data(config.data))
            if SIMULATED_SETS & set(config.study.training_sets) and config.data.source != "synthetic":
                simulator_data(bases[arm.name].data)
        except ConfigError as err:
            reason = f"it reads the same recordings in longer windows, and {err}"
            mlflow.set_tag(f"skipped.{arm.name}", reason)
            print(f"study: {arm.name} skipped: {reason}", flush=True)
    return bases


def _arm_cells(config: StudyExperimentConfig, arm: Arm, seed: int, training: TrainingSet) -> list[Cell]:
    """The cells of one arm trained (or, for the envelope rule, fitted) on one training set with one seed."""
    tags = {"arm": arm.name, "seed": str(seed), "training_set": training.name}
    if arm.trained:
        run_name = f"train-{arm.name}-{training.name}-seed{seed}"
        trained = train(config, training.dataset_dir, tags=tags, run_name=run_name)
        model, _, readout = load_logged_model(trained.model_uri)
        facts = _training_facts(trained.run_id, readout)
        tags.update({TRAIN_RUN_TAG: trained.run_id, MODEL_URI_TAG: trained.model_uri})
        reading = {"batch_size": config.evaluate.batch_size, "ece_bins": config.evaluate.ece_bins, "readout": readout}

        def scores(dataset: PreparedDataset, evaluation: EvaluationSet) -> dict[str, float]:
            return {**facts, **score(model, dataset, evaluation, **reading)}

    else:
        rule = fit_rule(load_prepared(training.dataset_dir))

        def scores(dataset: PreparedDataset, evaluation: EvaluationSet) -> dict[str, float]:
            return score_rule(rule, dataset, evaluation)

    return [_scored_cell(config, arm, seed, evaluation, tags, scores) for evaluation in training.evaluations]


def _training_facts(train_run_id: str, readout: Readout) -> dict[str, float]:
    """What training the scored model took and the temperature fitted on it, logged on each of its cells so a
    cell is read alone: `train/epochs`, `train/epoch_s` (mean seconds per epoch), `calibration/temperature`."""
    seconds = [m.value for m in mlflow.MlflowClient().get_metric_history(train_run_id, EPOCH_SECONDS)]
    return {
        "train/epochs": float(len(seconds)),
        "train/epoch_s": float(np.mean(seconds)),
        "calibration/temperature": readout.temperature,
    }


def _scored_cell(
    config: StudyExperimentConfig,
    arm: Arm,
    seed: int,
    evaluation: EvaluationSet,
    tags: dict[str, str],
    scores: Scorer,
) -> Cell:
    """One `study_cell` run: an arm of one training set and seed scored on one evaluation set."""
    name = f"{arm.name}-{evaluation.split}-seed{seed}"
    tags = {**tags, "split": evaluation.split, DATASET_DIR_TAG: str(evaluation.dataset_dir)}
    with stage_run("study_cell", config, experiment=config.tracking.experiment, run_name=name, tags=tags) as run:
        log_dataset(evaluation.dataset_dir, context="evaluation")
        metrics = scores(load_prepared(evaluation.dataset_dir), evaluation)
        mlflow.log_metrics(metrics)
    return Cell(arm.name, evaluation.split, seed, run.info.run_id, metrics)
