"""Where the `physics_tuned` arm's weights come from: the study config, or a sweep the study runs first.

The sweep is the project's Optuna sweeper (`pipeline.sweep`) with the search space of
conf/hparams_search/physics_weights.yaml and SweepConfig's objective, sampler and pruner, run on the first
seed's `recording` data with the arm's settings and scored on its validation split, never on a test split. Its
trials are child runs of the study run.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import mlflow
from omegaconf import OmegaConf

from pipeline.study.config import StudyExperimentConfig
from pipeline.study.design import ARMS, arm_config
from pipeline.sweep.config import SweepConfig
from pipeline.sweep.sweeper import run_sweep
from pipeline.tracking.store import checkpoint_root

SWEEP_CONFIG = Path(__file__).resolve().parents[2] / "conf" / "hparams_search" / "physics_weights.yaml"
TUNED = {"loss.physics_weight": "tuned_physics_weight", "loss.consistency_weight": "tuned_consistency_weight"}


def with_tuned_weights(config: StudyExperimentConfig, study_run_id: str) -> StudyExperimentConfig:
    """`config` with `study.tuned_*` set by a sweep when `study.tune_with_sweep`, else as it is.

    The weights in use are logged on the active (study) run as `tuned.<key>` params either way.
    """
    study = config.study
    if study.tune_with_sweep:
        name = f"av-pino-study-{study_run_id[:12]}"
        declared = OmegaConf.to_container(OmegaConf.load(SWEEP_CONFIG).hydra.sweeper)
        sweep = SweepConfig(
            **{
                **declared,
                "study_name": name,
                "n_trials": study.sweep_trials,
                "storage": str(checkpoint_root().parent / "optuna" / f"{name}.log"),
            }
        )
        result = run_sweep(arm_config(config, ARMS["physics_tuned"], study.seeds[0]), sweep)
        study = replace(study, **{field: float(result.best_params[key]) for key, field in TUNED.items()})
        mlflow.set_tag("tuned_by_sweep", result.parent_run_id)
    mlflow.log_params({f"tuned.{key}": getattr(study, field) for key, field in TUNED.items()})
    return replace(config, study=study)
