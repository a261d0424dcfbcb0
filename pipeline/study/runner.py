"""The ablation study as MLflow runs: a `study` parent run, and under it, for every seed, arm and training set,
one `train` run and one `study_cell` run per evaluation set of that training set (tags: arm, split, seed).

Seeds are the outer loop, so a study stopped early still holds every arm for its first seeds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import mlflow

from pipeline.config import ExperimentConfig
from pipeline.data.prepared import load_prepared
from pipeline.evaluation import load_logged_model
from pipeline.readout import Readout
from pipeline.stages.contract import DATASET_DIR_TAG, MODEL_URI_TAG, TRAIN_RUN_TAG
from pipeline.stages.train import train
from pipeline.study.design import ARMS, Arm, arm_config
from pipeline.study.report import headline_table, paired_table, study_runs, summary, to_markdown
from pipeline.study.scoring import score
from pipeline.study.sets import EvaluationSet, training_sets
from pipeline.study.tuning import with_tuned_weights
from pipeline.tracking.datasets import log_dataset
from pipeline.tracking.run import browse_hint, stage_run
from pipeline.tracking.store import use_store


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


def run_study(config: ExperimentConfig) -> StudyResult:
    """Train and score every arm x training set x seed of `config.study`; returns the parent run and cells."""
    store = use_store()
    study = config.study
    arms = [ARMS[name] for name in study.arms]
    cells: list[Cell] = []
    with stage_run("study", config, experiment=config.tracking.experiment, run_name="study") as parent:
        mlflow.log_dict({arm.name: asdict(arm) for arm in arms}, "arms.json")
        if "physics_tuned" in study.arms:
            config = with_tuned_weights(config, parent.info.run_id)
        for seed in study.seeds:
            sets = training_sets(config, seed)
            for arm in arms:
                arm_cfg = arm_config(config, arm, seed)
                for training in sets:
                    tags = {"arm": arm.name, "seed": str(seed), "training_set": training.name}
                    trained = train(
                        arm_cfg,
                        training.dataset_dir,
                        tags=tags,
                        run_name=f"train-{arm.name}-{training.name}-seed{seed}",
                    )
                    model, _, readout = load_logged_model(trained.model_uri)
                    for evaluation in training.evaluations:
                        cells.append(
                            _score_cell(
                                arm_cfg,
                                arm,
                                seed,
                                evaluation,
                                model,
                                readout,
                                {**tags, TRAIN_RUN_TAG: trained.run_id, MODEL_URI_TAG: trained.model_uri},
                            )
                        )
        runs = study_runs(parent.info.run_id)
        mlflow.log_text(summary(runs).to_csv(), "summary.csv")
        mlflow.log_text(to_markdown(headline_table(runs)), "headline.md")
        mlflow.log_text(to_markdown(paired_table(runs)), "paired.md")
    print(
        f"study run {parent.info.run_id}: {len(cells)} scored runs\n{headline_table(runs).to_string()}\n"
        f"browse: {browse_hint(store, parent.info.experiment_id)}"
    )
    return StudyResult(parent.info.run_id, cells)


def _score_cell(
    config: ExperimentConfig,
    arm: Arm,
    seed: int,
    evaluation: EvaluationSet,
    model,
    readout: Readout,
    tags: dict[str, str],
) -> Cell:
    """One `study_cell` run: the model of (arm, training set, seed) scored on one evaluation set."""
    name = f"{arm.name}-{evaluation.split}-seed{seed}"
    tags = {**tags, "split": evaluation.split, DATASET_DIR_TAG: str(evaluation.dataset_dir)}
    with stage_run("study_cell", config, experiment=config.tracking.experiment, run_name=name, tags=tags) as run:
        log_dataset(evaluation.dataset_dir, context="evaluation")
        metrics = score(
            model,
            load_prepared(evaluation.dataset_dir),
            evaluation,
            batch_size=config.evaluate.batch_size,
            ece_bins=config.evaluate.ece_bins,
            readout=readout,
        )
        mlflow.log_metrics(metrics)
    return Cell(arm.name, evaluation.split, seed, run.info.run_id, metrics)
