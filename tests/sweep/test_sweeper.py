"""A sweep in one process: one child run per trial under the sweep's parent run, pruning, crashing trials."""

import shutil
from dataclasses import replace

import mlflow
import optuna
import pytest
from mlflow.tracking import MlflowClient

import pipeline.sweep.trial
from pipeline.config import DistributedConfig
from pipeline.sweep.sweeper import run_sweep

pytestmark = pytest.mark.slow  # whole sweeps, one on two ranks and one on PostgreSQL


def sweep_runs(parent_run_id):
    runs = mlflow.search_runs(
        search_all_experiments=True, output_format="list", filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'"
    )
    return sorted(runs, key=lambda run: int(run.data.tags["sweep.trial"]))


def test_each_trial_is_a_child_run_and_the_parent_holds_the_best(mlflow_store, tiny_experiment, tiny_sweep):
    # inside a run of another experiment, as under `mlflow run . -e sweep --experiment-name sweeps`
    with mlflow.start_run(experiment_id=mlflow.create_experiment("sweeps")):
        result = run_sweep(tiny_experiment, tiny_sweep(n_trials=3, pruner={"name": "nop"}))

    study = optuna.load_study(
        study_name="tiny",
        storage=optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(result.storage)),
    )
    trials = study.get_trials()
    assert sum(result.states.values()) == len(trials) == 3
    children = sweep_runs(result.parent_run_id)
    assert [run.data.tags["sweep.trial"] for run in children] == ["0", "1", "2"]
    for run, trial in zip(children, trials):
        assert run.info.status == "FINISHED"
        assert run.data.tags["sweep.trial_state"] == trial.state.name
        assert run.data.tags["sweep.study"] == "tiny" and run.data.tags["sweep.world_size"] == "1"
        assert float(run.data.params["loss.physics_weight"]) == trial.params["loss.physics_weight"]
        steps = [m.step for m in MlflowClient().get_metric_history(run.info.run_id, "val/accuracy")]
        assert steps == list(range(len(steps))) and steps  # one value per epoch that ran

    parent = mlflow.get_run(result.parent_run_id)
    best = study.best_trial
    assert parent.info.status == "FINISHED" and parent.data.tags["sweep.best_trial"] == str(best.number)
    assert parent.data.metrics["best/val/accuracy"] == best.value
    best_run = mlflow.get_run(best.user_attrs["mlflow_run_id"])
    assert parent.data.metrics["best/val/loss"] == best_run.data.metrics["val/loss"]  # its other val/* metrics
    assert (
        parent.data.tags["model_uri"] == best.user_attrs["model_uri"] == result.best_trials[0].user_attrs["model_uri"]
    )
    assert float(parent.data.tags["sweep.best.loss.physics_weight"]) == best.params["loss.physics_weight"]
    artifacts = {a.path for a in MlflowClient().list_artifacts(result.parent_run_id, "study")}
    assert {
        "study/trials.csv",
        "study/optimization_history.html",
        "study/parallel_coordinate.html",
        "study/param_importances.html",
        "study/intermediate_values.html",
    } <= artifacts


def test_pruning_stops_both_ranks_of_a_trial_which_keeps_one_run_and_no_model(
    mlflow_store, tiny_experiment, tiny_sweep
):
    never_good_enough = {"name": "threshold", "kwargs": {"lower": 1.01}}  # prunes at the first report
    two_ranks = replace(tiny_experiment, distributed=DistributedConfig(nproc_per_node=2))
    result = run_sweep(two_ranks, tiny_sweep(n_trials=1, pruner=never_good_enough))

    assert result.states == {"PRUNED": 1} and result.best_trials == []
    runs = sweep_runs(result.parent_run_id)
    assert [run.data.tags["sweep.trial"] for run in runs] == ["0"]  # one run per trial, not per rank
    for run in runs:
        assert run.data.tags["sweep.world_size"] == run.data.tags["world_size"] == "2"
        assert run.info.status == "FINISHED" and run.data.tags["sweep.trial_state"] == "PRUNED"
        assert "model_uri" not in run.data.tags and "pruned" in run.data.tags["stopped_early"]
        assert len(MlflowClient().get_metric_history(run.info.run_id, "val/accuracy")) == 1


def test_a_crashing_trial_is_failed_with_its_error_and_the_sweep_goes_on(
    mlflow_store, tiny_experiment, tiny_sweep, monkeypatch
):
    real_train, calls = pipeline.sweep.trial.train, []

    def train_that_crashes_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("injected crash in the first trial")
        return real_train(*args, **kwargs)

    monkeypatch.setattr(pipeline.sweep.trial, "train", train_that_crashes_once)
    result = run_sweep(tiny_experiment, tiny_sweep(n_trials=2, pruner={"name": "nop"}))

    assert result.states == {"FAIL": 1, "COMPLETE": 2}
    study = optuna.load_study(
        study_name="tiny",
        storage=optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(result.storage)),
    )
    failed = study.get_trials(states=(optuna.trial.TrialState.FAIL,))[0]
    assert failed.user_attrs["error"] == "RuntimeError: injected crash in the first trial"
    assert mlflow.get_run(result.parent_run_id).data.metrics["trials/fail"] == 1


def test_a_sweep_on_postgresql_warns_nothing_its_user_cannot_act_on(
    mlflow_store, tiny_experiment, tiny_sweep, postgres_database, recwarn
):
    """Optuna calls its heartbeat experimental; the project chose it, so a sweep does not pass that on."""
    result = run_sweep(tiny_experiment, tiny_sweep(n_trials=1, storage=postgres_database))

    assert result.states == {"COMPLETE": 1}
    assert [f"{w.category.__name__}: {str(w.message)[:80]}" for w in recwarn] == []


def test_a_sweep_pointed_at_another_store_continues_its_study_there(
    mlflow_store, empty_store, tiny_experiment, tiny_sweep, tmp_path, monkeypatch, capsys
):
    one_epoch = replace(tiny_experiment, training=replace(tiny_experiment.training, epochs=1))
    first = run_sweep(one_epoch, tiny_sweep(n_trials=2, pruner={"name": "nop"}))
    team_store = tmp_path / "team" / "mlflow.db"  # as the team's server is to a laptop's store
    team_store.parent.mkdir()
    shutil.copyfile(empty_store, team_store)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{team_store}")
    mlflow.set_tracking_uri(f"sqlite:///{team_store}")

    second = run_sweep(one_epoch, tiny_sweep(n_trials=3, pruner={"name": "nop"}))

    said = capsys.readouterr().out
    assert f"was tracked under MLflow run {first.parent_run_id} in {mlflow_store}, which sqlite:///{team_store}" in said
    parent = mlflow.get_run(second.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["sweep.role"] == "parent"
    assert parent.data.tags["sweep.previous_parent_run_id"] == first.parent_run_id
    assert parent.data.metrics["trials/complete"] == 3  # the two trials tracked elsewhere are summarised too
    assert [run.data.tags["sweep.trial"] for run in sweep_runs(second.parent_run_id)] == ["2"]
    best = second.best_trials[0]
    assert ("model_uri" in parent.data.tags) == (best.number == 2)  # a model in the other store is not offered
    assert len(MlflowClient().list_artifacts(second.parent_run_id, "study")) >= 4  # the study's views, all trials

    third = run_sweep(one_epoch, tiny_sweep(n_trials=3, pruner={"name": "nop"}))
    assert third.parent_run_id == second.parent_run_id  # the study now lives here: no second move
