"""The sweep loop: open or join a study, run trials until it holds `n_trials` finished ones, mirror it in MLflow.

Trials run through Optuna's own ask/tell loop (`Study.optimize`): a crashing trial is told FAIL with its
error and the loop goes on (a failed trial does not count towards `n_trials`, and a worker stops after
`n_trials` failures of its own); on RDB storages Optuna's heartbeat runs beside each trial. Several workers with
the same study name and storage share the study: the first creates it with the sampler's seed and opens the
sweep's parent MLflow run; a worker that joins opens a worker run under it (its trials nest there), and draws
its own seed (recorded on its run), so workers do not propose the same points, and TPE's constant liar keeps
them apart while trials run. Starting a worker again continues the study, after failing trials a killed worker
left RUNNING.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any, Callable, Optional

import mlflow
import optuna
from optuna.trial import TrialState

from pipeline.config import ConfigError, ExperimentConfig
from pipeline.stages.command_line import check_before_work
from pipeline.sweep.config import SweepConfig
from pipeline.sweep.samplers import build_pruner, build_sampler
from pipeline.sweep.space import search_space
from pipeline.sweep.storage import fail_stale_trials, open_storage, storage_url
from pipeline.sweep.trial import run_trial
from pipeline.sweep.views import log_study_summary, mirror_trial_state, trial_counts
from pipeline.tracking.records import run_exists
from pipeline.tracking.run import stage_run
from pipeline.tracking.store import shown_uri

PARENT_ATTR = "mlflow_parent_run_id"
STORE_ATTR = "mlflow_tracking_uri"  # the tracking store the parent run is in
PARENT_WAIT_S = 60  # how long a joining worker waits for the creator to record the parent run


@dataclass
class SweepResult:
    study_name: str
    storage: str
    parent_run_id: str
    best_trials: list[optuna.trial.FrozenTrial]  # the best trial, or the Pareto front when multi-objective
    states: dict[str, int]  # trials of the study per state, e.g. {"COMPLETE": 5, "PRUNED": 3}

    @property
    def best_params(self) -> dict:
        """The (first) best trial's parameters, keyed like the config (`loss.physics_weight`)."""
        return dict(self.best_trials[0].params) if self.best_trials else {}


def run_sweep(config: ExperimentConfig, sweep: SweepConfig) -> SweepResult:
    """Run (or continue, or join) the study `sweep.study_name`; every trial trains `config` with the trial's
    values as a child MLflow run of the sweep's parent run. Bad settings raise ConfigError before any trial."""
    check_before_work(config)
    space = search_space(sweep.params, config)
    url = storage_url(sweep.storage, sweep.study_name)
    storage = open_storage(url)
    study, created, seed = _open_study(sweep, storage)
    stale = fail_stale_trials(study, storage)
    parent_id = None if created else _wait_for_parent(study)
    moved = {}
    if parent_id is not None and not run_exists(parent_id):
        moved = _moved_study(study, url)
        parent_id = None
    with stage_run(
        "sweep",
        {**asdict(config), "sweep": asdict(sweep)},
        experiment=config.tracking.experiment,
        run_name=sweep.study_name if parent_id is None else f"{sweep.study_name}-worker",
        tags=_run_tags(sweep, url, seed, is_parent=parent_id is None) | moved,
        parent_run_id=parent_id,
    ) as run:
        if parent_id is None:
            parent_id = run.info.run_id
            study.set_user_attr(PARENT_ATTR, parent_id)
            study.set_user_attr(STORE_ATTR, shown_uri(mlflow.get_tracking_uri()))
        experiment_id = run.info.experiment_id  # trials nest here, whatever experiment `mlflow run` chose
        for number in stale:
            print(f"trial {number} of a worker that is gone was marked FAIL")
            mirror_trial_state(experiment_id, sweep.study_name, number, TrialState.FAIL)
        try:
            _run_trials(study, sweep, experiment_id, lambda trial: run_trial(trial, config, sweep, space, url))
        finally:
            best = _log_summary(study, parent_id, sweep.metrics)
            if not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)) and parent_id != run.info.run_id:
                mlflow.tracking.MlflowClient().set_terminated(parent_id, "FINISHED")  # the study is idle
    return SweepResult(
        sweep.study_name, url, parent_id, best, {state: count for state, count in trial_counts(study).items() if count}
    )


def _run_tags(sweep: SweepConfig, url: str, seed: int, is_parent: bool) -> dict[str, str]:
    return {
        "sweep.study": sweep.study_name,
        "sweep.storage": shown_uri(url),
        "sweep.sampler_seed": str(seed),
        "sweep.role": "parent" if is_parent else "worker",
    }


def _run_trials(
    study: optuna.Study, sweep: SweepConfig, experiment_id: str, objective: Callable[[optuna.Trial], Any]
) -> None:
    """Optimise until the study holds `sweep.n_trials` finished trials (or this worker failed as many), each
    trial's end mirrored on its MLflow run in `experiment_id`."""
    failures = []

    def on_trial_end(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        mirror_trial_state(experiment_id, sweep.study_name, trial.number, trial.state)
        print(f"trial {trial.number}: {trial.state.name} {trial.values or ''} {trial.params}", flush=True)
        if trial.state == TrialState.FAIL:
            failures.append(trial.number)
        if _finished(study) >= sweep.n_trials or len(failures) >= sweep.n_trials:
            study.stop()  # enough finished trials; or this worker keeps failing: stop, do not loop forever

    if _finished(study) < sweep.n_trials:
        study.optimize(objective, catch=(Exception,), gc_after_trial=True, callbacks=[on_trial_end])


def _log_summary(study: optuna.Study, parent_id: str, metrics: list[str], attempts: int = 3) -> list:
    """Workers that finish together both write the parent's summary, and MLflow's SQL store can refuse the
    second insert of the same tag (UNIQUE constraint): the summary is of one study, so writing it again wins."""
    for attempt in range(attempts):
        try:
            return log_study_summary(study, parent_id, metrics)
        except mlflow.exceptions.MlflowException:
            if attempt + 1 == attempts:
                raise
            time.sleep(1 + attempt)


def _open_study(sweep: SweepConfig, storage) -> tuple[optuna.Study, bool, int]:
    """Create the study, or join it: a joining worker samples with a seed of its own (returned)."""
    pruner = build_pruner(sweep.pruner)
    try:
        study = optuna.create_study(
            study_name=sweep.study_name,
            storage=storage,
            directions=sweep.directions,
            sampler=build_sampler(sweep.sampler, sweep.sampler.seed),
            pruner=pruner,
        )
        return study, True, sweep.sampler.seed
    except optuna.exceptions.DuplicatedStudyError:
        pass
    seed = sweep.sampler.seed + 1 + uuid.uuid4().int % 1_000_000
    study = optuna.load_study(
        study_name=sweep.study_name, storage=storage, sampler=build_sampler(sweep.sampler, seed), pruner=pruner
    )
    directions = [d.name.lower() for d in study.directions]
    if directions != list(sweep.directions):
        raise ConfigError(
            f"hydra.sweeper.directions={list(sweep.directions)!r}: study {sweep.study_name!r} "
            f"already exists with directions {directions}; choose another study_name"
        )
    return study, False, seed


def _moved_study(study: optuna.Study, url: str) -> dict[str, str]:
    """A study whose parent run the tracking store in force does not hold (the store was deleted, or this sweep
    now reports to another one): it continues under a new parent run here, said in one line; returns the tags
    that link the new parent to the old one. The finished trials are summarised on the new parent."""
    old_parent, old_store = study.user_attrs[PARENT_ATTR], study.user_attrs.get(STORE_ATTR, "another store")
    store = shown_uri(mlflow.get_tracking_uri())
    print(
        f"study {study.study_name!r} ({shown_uri(url)}) was tracked under MLflow run {old_parent} in {old_store}, "
        f"which {store} does not hold: continuing it under a new parent run in {store} "
        f"({_finished(study)} finished trials summarised there)",
        flush=True,
    )
    return {"sweep.previous_parent_run_id": old_parent, "sweep.previous_tracking_uri": old_store}


def _wait_for_parent(study: optuna.Study) -> Optional[str]:
    """The parent run the study's creator recorded; a creator that just started may need a moment."""
    deadline = time.monotonic() + PARENT_WAIT_S
    while PARENT_ATTR not in study.user_attrs and time.monotonic() < deadline:
        time.sleep(0.5)
    return study.user_attrs.get(PARENT_ATTR)


def _finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))
