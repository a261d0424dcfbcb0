"""One trial: sample the search space, train on `distributed.nproc_per_node` ranks, report every epoch to
the pruner, and return the objective value(s)."""

from __future__ import annotations

from typing import Mapping, Optional

import optuna

from pipeline.config import ExperimentConfig
from pipeline.stages.train import train
from pipeline.sweep.config import PrunerConfig, SweepConfig
from pipeline.sweep.samplers import build_pruner
from pipeline.sweep.space import apply_params
from pipeline.sweep.storage import WORKER_ATTR, open_storage
from pipeline.tracking.contract import MODEL_URI_TAG
from pipeline.tracking.liveness import this_process
from pipeline.training.training_engine import StopTraining


def objective_value(metrics: Mapping[str, float], name: str) -> float:
    """A metric of the train stage by tracking name; `val/physics_residual` is the mean validation residual."""
    if name == "val/physics_residual":
        residuals = [v for k, v in metrics.items() if k.startswith("val/physics/")]
        if not residuals:  # an objective of NaN would fail every trial without saying why
            raise KeyError(
                "the trial logged no val/physics/* residual to average for val/physics_residual: the "
                "model returns none (WDCNN, or AGT-NO on data whose class locations are unknown)"
            )
        return sum(residuals) / len(residuals)
    if name not in metrics:
        raise KeyError(f"the trial logged no {name!r}; it logged {sorted(metrics)}")
    return float(metrics[name])


class PruningReporter:
    """Training callback (rank 0): report the objective each epoch and stop all ranks when the pruner says so.

    It holds names and URLs only, so it can cross into ranks started by the launcher, and reopens the trial
    from the storage where it runs: the rank that trains talks to Optuna, not the process that launched it.
    """

    def __init__(self, study_name: str, storage: str, trial_number: int, metric: str, pruner: PrunerConfig):
        self.study_name, self.storage, self.trial_number = study_name, storage, trial_number
        self.metric, self.pruner = metric, pruner
        self._trial: Optional[optuna.Trial] = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_trial": None}

    def __call__(self, epoch: int, metrics: Mapping[str, float]) -> None:
        if self._trial is None:
            storage = open_storage(self.storage)
            study = optuna.load_study(study_name=self.study_name, storage=storage, pruner=build_pruner(self.pruner))
            trial_id = storage.get_trial_id_from_study_id_trial_number(
                storage.get_study_id_from_name(self.study_name), self.trial_number
            )
            self._trial = optuna.Trial(study, trial_id)
        self._trial.report(objective_value(metrics, self.metric), epoch)
        if self._trial.should_prune():
            raise StopTraining(f"pruned by Optuna after epoch {epoch + 1}")


def suggest(trial: optuna.Trial, space: Mapping[str, optuna.distributions.BaseDistribution]) -> dict:
    """The trial's values for every distribution in the search space."""
    values = {}
    for key, dist in space.items():
        if isinstance(dist, optuna.distributions.FloatDistribution):
            values[key] = trial.suggest_float(key, dist.low, dist.high, log=dist.log, step=dist.step)
        elif isinstance(dist, optuna.distributions.IntDistribution):
            values[key] = trial.suggest_int(key, dist.low, dist.high, log=dist.log, step=dist.step)
        else:
            values[key] = trial.suggest_categorical(key, dist.choices)
    return values


def run_trial(
    trial: optuna.Trial, base: ExperimentConfig, sweep: SweepConfig, space: Mapping, storage: str
) -> float | list[float]:
    """Train the trial's config as a child of the active (sweep) run; raise TrialPruned when pruned.

    Any other failure is recorded on the trial (`error` user attribute) and re-raised, so Optuna marks the
    trial FAIL and the sweep goes on.
    """
    trial.set_user_attr(WORKER_ATTR, this_process())
    try:
        config = apply_params(base, suggest(trial, space))
        trial.set_user_attr("world_size", config.distributed.nproc_per_node)
        reporters = (
            []
            if sweep.multi_objective
            else [PruningReporter(sweep.study_name, storage, trial.number, sweep.metrics[0], sweep.pruner)]
        )
        result = train(
            config,
            run_name=f"{sweep.study_name}-trial-{trial.number}",
            callbacks=reporters,
            tags=trial_tags(sweep.study_name, trial.number, config),
        )
    except Exception as err:
        trial.set_user_attr("error", f"{type(err).__name__}: {err}"[:2000])
        raise
    trial.set_user_attr("mlflow_run_id", result.run_id)
    if result.stop_reason is not None:
        raise optuna.TrialPruned(result.stop_reason)
    trial.set_user_attr(MODEL_URI_TAG, result.model_uri)
    values = [objective_value(result.metrics, name) for name in sweep.metrics]
    return values if sweep.multi_objective else values[0]


def trial_tags(study_name: str, number: int, config: ExperimentConfig) -> dict[str, str]:
    return {
        "sweep.study": study_name,
        "sweep.trial": str(number),
        "sweep.trial_state": "RUNNING",
        "sweep.world_size": str(config.distributed.nproc_per_node),
    }
