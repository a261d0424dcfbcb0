"""Stage 4, register: promote an evaluated model, or roll the champion back.

Registers an evaluated model as `challenger` and promotes it to `champion` when it passes the gate in
`pipeline/tracking/registry.py`; with `registry.rollback=true`, moves `champion` back to the version it
replaced instead. Either way one MLflow run of stage `register` records what happened.
"""

from __future__ import annotations

from typing import Optional

import mlflow

from pipeline.config import ExperimentConfig
from pipeline.tracking import registry
from pipeline.tracking.contract import EVALUATION_RUN_TAG, MODEL_VERSION_TAG, latest_finished_run
from pipeline.tracking.registry import Decision, RegistryError
from pipeline.tracking.run import stage_run
from pipeline.tracking.store import ensure_experiment


def latest_evaluation_run(experiment: str) -> str:
    """Id of the newest FINISHED evaluate run in `experiment`: what `register` promotes by default."""
    run = latest_finished_run([ensure_experiment(experiment)], "evaluate")
    if run is None:
        raise RegistryError(
            f"experiment {experiment!r} has no FINISHED evaluate run; run `python -m "
            f"pipeline.evaluate` first or set registry.evaluation_run_id"
        )
    return run.info.run_id


def register(config: ExperimentConfig, evaluation_run_id: Optional[str] = None) -> Decision:
    """Promote an evaluate run's model: `evaluation_run_id`, else `registry.evaluation_run_id`, else the newest."""
    name = config.registry.model_name
    with stage_run(
        "register",
        config,
        experiment=config.tracking.experiment,
        run_name=f"register-{name}",
        tags={"registry.action": "promote"},
    ):
        run_id = (
            evaluation_run_id or config.registry.evaluation_run_id or latest_evaluation_run(config.tracking.experiment)
        )
        mlflow.set_tag(EVALUATION_RUN_TAG, run_id)
        decision = registry.promote(run_id, config.registry)
        mlflow.set_tags(
            {
                "model_name": name,
                MODEL_VERSION_TAG: decision.version,
                "promotion.decision": "promoted" if decision.promoted else "rejected",
                "promotion.reason": decision.reason,
            }
        )
        mlflow.log_metrics(
            {"promotion/promoted": float(decision.promoted), "promotion/candidate_score": decision.candidate_score}
        )
        if decision.champion_score is not None:
            mlflow.log_metric("promotion/champion_score", decision.champion_score)
        if decision.previous_champion is not None:
            mlflow.set_tag("promotion.previous_champion", decision.previous_champion)
    outcome = "promoted to champion" if decision.promoted else "registered as challenger, not promoted"
    print(f"register: {name} v{decision.version} {outcome}: {decision.reason}")
    print(f'load the champion: mlflow.pyfunc.load_model("models:/{name}@champion")')
    if not decision.promoted:
        print(f'load this candidate: mlflow.pyfunc.load_model("models:/{name}@challenger")')
    return decision


def rollback(config: ExperimentConfig) -> str:
    """Move `champion` of `registry.model_name` back to the version it replaced; return that version."""
    name = config.registry.model_name
    with stage_run(
        "register",
        config,
        experiment=config.tracking.experiment,
        run_name=f"rollback-{name}",
        tags={"registry.action": "rollback"},
    ):
        version = registry.rollback(name)
        mlflow.set_tags({"model_name": name, MODEL_VERSION_TAG: version})
    print(f"rollback: {name} champion is v{version} again")
    print(f'load it: mlflow.pyfunc.load_model("models:/{name}@champion")')
    return version


def register_or_rollback(config: ExperimentConfig) -> Decision | str:
    """What the command line runs: `rollback` when `registry.rollback=true`, else `register`."""
    return rollback(config) if config.registry.rollback else register(config)
