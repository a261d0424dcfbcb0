"""The MLflow view of a sweep: each trial's state on its child run, and the study's summary on the parent.

The parent run gets the best trial(s) (`sweep.best.*` tags; `best/*` metrics: the objective and the best
trial's other `val/*` metrics; `model_uri` of the best single-objective trial, so the evaluate and register
stages can take it), the trials table as CSV, and Optuna's own plotly views: optimisation history,
intermediate values (what pruning saw), parallel coordinates, parameter importances, and the Pareto front of
a multi-objective sweep.
"""

from __future__ import annotations

import io
import warnings

import optuna
from mlflow.entities import Run
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from pipeline.tracking.records import run_exists

PLOTS = {
    "optimization_history": optuna.visualization.plot_optimization_history,
    "intermediate_values": optuna.visualization.plot_intermediate_values,
    "parallel_coordinate": optuna.visualization.plot_parallel_coordinate,
    "param_importances": optuna.visualization.plot_param_importances,
}


def mirror_trial_state(experiment_id: str, study_name: str, number: int, state: TrialState) -> None:
    """Tag the trial's run with its final Optuna state; a run its killed worker left RUNNING ends FAILED."""
    client = MlflowClient()
    runs = client.search_runs(
        [experiment_id],
        filter_string=(
            f"tags.`sweep.study` = '{study_name}' AND tags.`sweep.trial` = '{number}' AND tags.stage = 'train'"
        ),
    )
    for run in runs:
        client.set_tag(run.info.run_id, "sweep.trial_state", state.name)
        if run.info.status == "RUNNING" and state == TrialState.FAIL:
            client.set_terminated(run.info.run_id, "FAILED")


def trial_counts(study: optuna.Study) -> dict[str, int]:
    """Trials of the study per state name, zeros included: {"COMPLETE": 5, "PRUNED": 3, "FAIL": 0, ...}."""
    trials = study.get_trials(deepcopy=False)
    return {state.name: sum(t.state == state for t in trials) for state in TrialState}


def log_study_summary(study: optuna.Study, parent_run_id: str, metrics: list[str]) -> list[optuna.trial.FrozenTrial]:
    """Log the best trial(s), the trials table and the study plots to the parent run; returns the best."""
    client = MlflowClient()
    counts = trial_counts(study)
    for state, count in counts.items():
        client.log_metric(parent_run_id, f"trials/{state.lower()}", count)
    best = study.best_trials if counts[TrialState.COMPLETE.name] else []
    multi = len(metrics) > 1
    if best and not multi:
        trial = best[0]
        here = trial_run_here(trial)
        client.set_tag(parent_run_id, "sweep.best_trial", str(trial.number))
        validation = {k: v for k, v in here.data.metrics.items() if k.startswith("val/")} if here else {}
        for name, value in {**validation, metrics[0]: trial.value}.items():
            client.log_metric(parent_run_id, f"best/{name}", value)
        for key, value in trial.params.items():
            client.set_tag(parent_run_id, f"sweep.best.{key}", str(value))
        if here and trial.user_attrs.get("model_uri"):  # a model in another store cannot be evaluated from here
            client.set_tag(parent_run_id, "model_uri", trial.user_attrs["model_uri"])
    if multi:
        client.set_tag(parent_run_id, "sweep.pareto_trials", ",".join(str(t.number) for t in best))
    buffer = io.StringIO()
    study.trials_dataframe().to_csv(buffer, index=False)
    client.log_text(parent_run_id, buffer.getvalue(), "study/trials.csv")
    for name, figure in study_figures(study, metrics).items():
        client.log_figure(parent_run_id, figure, f"study/{name}.html")
    return best


def trial_run_here(trial: optuna.trial.FrozenTrial) -> Run | None:
    """The trial's MLflow run, whose last-epoch `val/*` metrics show the best trial's accuracy beside the loss
    it optimised (and the other way round); None where the trial ran while the sweep reported to another store."""
    run_id = trial.user_attrs.get("mlflow_run_id")
    return MlflowClient().get_run(run_id) if run_id and run_exists(run_id) else None


def study_figures(study: optuna.Study, metrics: list[str]) -> dict:
    """Optuna's plotly figures for the study; a view that needs more finished trials is left out."""
    finished = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if not finished:
        return {}
    figures = {}
    multi = len(metrics) > 1
    for name, plot in PLOTS.items():
        if (multi and name == "intermediate_values") or (name == "param_importances" and len(finished) < 2):
            continue
        kwargs = {"target": lambda t: t.values[0], "target_name": metrics[0]} if multi else {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna warns that these views are experimental
            figures[name] = plot(study, **kwargs) if name != "intermediate_values" else plot(study)
    if multi:
        figures["pareto_front"] = optuna.visualization.plot_pareto_front(study, target_names=metrics)
    return figures
