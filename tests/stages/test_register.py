"""The register stage (pipeline/register.py): which evaluation it promotes, what its run records, rollback.

Stores and evaluation runs come from tests/tracking/test_registry.py (a copied template store, stub runs).
"""

from __future__ import annotations

import time

import pytest
from mlflow import MlflowClient

from pipeline.config import to_experiment_config
from pipeline.stages.command_line import run_stage
from pipeline.stages.register import register, register_or_rollback
from pipeline.tracking.registry import RegistryError
from pipeline.tracking.store import ensure_experiment
from tests.tracking.test_registry import EXPERIMENT, MISSING_RUN, evaluation_run, model_uri  # noqa: F401

NAME = "av-pino"  # registry.model_name's default


def stage_runs(stage: str) -> list:
    """Runs of `stage` in the experiment, newest first."""
    return MlflowClient().search_runs(
        [ensure_experiment(EXPERIMENT)], f"tags.stage = '{stage}'", order_by=["attributes.start_time DESC"]
    )


def champion() -> str:
    return str(MlflowClient().get_registered_model(NAME).aliases["champion"])


def evaluation_runs(model_uri: str, *scores: float, **kwargs) -> list[str]:
    """One evaluate run per score, started in that order (distinct start times, so "newest" is defined)."""
    run_ids = []
    for score in scores:
        run_ids.append(evaluation_run(model_uri, f1=score, **kwargs))
        time.sleep(0.01)
    return run_ids


def test_register_promotes_the_newest_finished_evaluation_and_records_it(model_uri, compose_config, capsys):
    _, newest = evaluation_runs(model_uri, 0.8, 0.9)
    evaluation_runs(model_uri, 0.99, status="FAILED")  # newer still, but not a finished evaluation

    decision = register(to_experiment_config(compose_config()))

    assert decision.promoted and champion() == decision.version
    assert MlflowClient().get_model_version(NAME, decision.version).tags["evaluation_run_id"] == newest
    [run] = stage_runs("register")
    assert run.info.status == "FINISHED"
    assert run.data.tags["evaluation_run_id"] == newest and run.data.tags["model_version"] == decision.version
    assert run.data.tags["promotion.decision"] == "promoted" and run.data.tags["registry.action"] == "promote"
    assert run.data.metrics["promotion/promoted"] == 1.0
    assert run.data.metrics["promotion/candidate_score"] == pytest.approx(0.9)
    assert 'mlflow.pyfunc.load_model("models:/av-pino@champion")' in capsys.readouterr().out


def test_explicit_run_beats_configured_run_beats_newest(model_uri, compose_config, capsys):
    configured, explicit, _ = evaluation_runs(model_uri, 0.7, 0.8, 0.6)
    config = to_experiment_config(compose_config(f"registry.evaluation_run_id={configured}"))
    first = register(config)
    second = register(config, evaluation_run_id=explicit)

    tags = MlflowClient().get_model_version(NAME, first.version).tags
    assert tags["evaluation_run_id"] == configured
    assert MlflowClient().get_model_version(NAME, second.version).tags["evaluation_run_id"] == explicit

    third = register(config)  # the configured 0.7 again: not better than 0.8
    assert not third.promoted and champion() == second.version
    assert stage_runs("register")[0].data.tags["promotion.decision"] == "rejected"
    assert 'load_model("models:/av-pino@challenger")' in capsys.readouterr().out


def test_rollback_through_the_command_line_entry(model_uri, compose_config, capsys):
    first = register(to_experiment_config(compose_config()), evaluation_run(model_uri, f1=0.8))
    register(to_experiment_config(compose_config()), evaluation_run(model_uri, f1=0.9))

    assert run_stage(register_or_rollback, compose_config("registry.rollback=true")) == first.version
    assert champion() == first.version
    run = stage_runs("register")[0]
    assert run.info.status == "FINISHED" and run.data.tags["registry.action"] == "rollback"
    assert f"champion is v{first.version} again" in capsys.readouterr().out


@pytest.mark.parametrize(
    "make_run, message",
    [
        (None, "has no FINISHED evaluate run"),
        (lambda uri: MISSING_RUN, "does not exist"),
        (lambda uri: evaluation_run(uri, stage="train"), "not an evaluate run"),
        (lambda uri: evaluation_run(uri, drop=("test/macro_f1",)), "lacks metric"),
    ],
    ids=["no-evaluation", "missing", "wrong-stage", "no-metric"],
)
def test_bad_inputs_fail_the_register_run_with_a_clear_error(model_uri, compose_config, make_run, message):
    run_id = make_run(model_uri) if make_run else None
    with pytest.raises(RegistryError, match=message):
        register(to_experiment_config(compose_config()), evaluation_run_id=run_id)

    [run] = stage_runs("register")
    assert run.info.status == "FAILED"
    statuses = {r.info.status for r in MlflowClient().search_runs([ensure_experiment(EXPERIMENT)])}
    assert "RUNNING" not in statuses


def test_rollback_with_nothing_to_roll_back_fails_its_run(model_uri, compose_config):
    register(to_experiment_config(compose_config()), evaluation_run(model_uri))
    with pytest.raises(RegistryError, match="nothing to roll back to"):
        run_stage(register_or_rollback, compose_config("registry.rollback=true"))
    assert stage_runs("register")[0].info.status == "FAILED"
