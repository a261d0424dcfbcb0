"""Gated promotion in the MLflow model registry: every evaluated model becomes `challenger`, and `champion` only
when it beats the current one on `registry.metric`, on the same classes, without losing physics consistency or
calibration beyond tolerance. The decision is recorded as `promotion.*` tags, so `rollback` knows where to go
back to. Registering, comparing and moving `champion` happen under the model's promotion lock
(pipeline/tracking/promotion_lock.py), one lock on every store, so two promotions at once never leave `champion`
on the worse version."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Iterator, Optional

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

from pipeline.tracking import promotion_lock
from pipeline.tracking.config import RegistryConfig
from pipeline.tracking.contract import EVALUATION_RUN_TAG, MODEL_URI_TAG, STAGE_TAG

CHAMPION, CHALLENGER = "champion", "challenger"
RESIDUAL, ECE = "test/physics_residual", "test/ece"
CLASS_NAMES_TAG = "class_names"  # the evaluated model's classes, comma-joined: only models of one task compete
PREVIOUS_CHAMPION = "promotion.previous_champion"
_FLOAT_SLACK = 1e-12  # a rise of exactly the allowed amount passes despite float rounding

log = logging.getLogger(__name__)


class RegistryError(RuntimeError):
    """Promotion or rollback cannot proceed; the message names the run, model or version at fault."""


@dataclass(frozen=True)
class Decision:
    """The outcome of one promotion, as recorded in the version's `promotion.*` tags."""

    model_name: str
    version: str
    promoted: bool
    reason: str
    candidate_score: float
    champion_score: Optional[float]  # None when there was no champion (or it had no score to compare)
    previous_champion: Optional[str] = None  # the version this one replaced as champion


def promote(evaluation_run_id: str, policy: RegistryConfig) -> Decision:
    """Register the model of an evaluate run as `challenger`, and as `champion` when it passes the gate."""
    client = MlflowClient()
    name = _model_name(policy.model_name)
    run, metrics = _evaluation_run(client, evaluation_run_id, policy.metric)
    with _promotion_lock(name):
        version = str(mlflow.register_model(run.data.tags[MODEL_URI_TAG], name).version)
        tags = {key: str(value) for key, value in run.data.metrics.items()} | {EVALUATION_RUN_TAG: run.info.run_id}
        if CLASS_NAMES_TAG in run.data.tags:
            tags[CLASS_NAMES_TAG] = run.data.tags[CLASS_NAMES_TAG]
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, value)
        client.set_registered_model_alias(name, CHALLENGER, version)
        champion = _champion(client, name)
        theirs = _champion_metrics(champion, policy.metric) if champion is not None else {}
        decision = _decide(name, version, metrics, champion, theirs, policy, tags.get(CLASS_NAMES_TAG))
        if decision.promoted:
            client.set_registered_model_alias(name, CHAMPION, version)
        _record(client, decision)
    return decision


def rollback(model_name: str) -> str:
    """Move `champion` back to the version the current champion replaced; return that version."""
    client = MlflowClient()
    with _promotion_lock(_model_name(model_name)):
        current = _champion(client, model_name)
        if current is None:
            raise RegistryError(f"model {model_name!r} has no `{CHAMPION}` alias: nothing to roll back")
        now, previous = str(current.version), current.tags.get(PREVIOUS_CHAMPION)
        if previous is None:
            raise RegistryError(
                f"champion v{now} of {model_name!r} did not replace another version (no "
                f"{PREVIOUS_CHAMPION} tag): nothing to roll back to"
            )
        try:
            client.get_model_version(model_name, previous)
        except MlflowException as err:
            if not _not_found(err):
                raise
            raise RegistryError(
                f"cannot roll {model_name!r} back from v{now}: previous champion v{previous} no longer exists"
            ) from None
        client.set_registered_model_alias(model_name, CHAMPION, previous)
        client.set_model_version_tag(model_name, now, "rollback.replaced_by", previous)
        client.set_model_version_tag(model_name, previous, "rollback.restored_over", now)
    return previous


def _evaluation_run(client: MlflowClient, run_id: str, metric: str) -> tuple[Run, dict[str, float]]:
    """The finished evaluate run `run_id`, with a model, and the metrics the gate reads (every one it needs)."""
    try:
        run = client.get_run(run_id)
    except MlflowException as err:
        if not _not_found(err):
            raise
        raise RegistryError(f"evaluation run {run_id!r} does not exist in {mlflow.get_tracking_uri()}") from None
    stage = run.data.tags.get(STAGE_TAG)
    if stage != "evaluate":
        raise RegistryError(
            f"run {run_id} is a {stage or 'untagged'} run, not an evaluate run "
            f"(tag stage={stage!r}); pass the id of an evaluate run"
        )
    if run.info.status != "FINISHED":
        raise RegistryError(f"evaluation run {run_id} is {run.info.status}, not FINISHED; re-run evaluate")
    if MODEL_URI_TAG not in run.data.tags:
        raise RegistryError(f"evaluation run {run_id} has no model_uri tag: it names no model to register")
    metrics = _logged_model_metrics(run.data.tags[MODEL_URI_TAG], run_id)
    if not metrics:
        log.warning(
            "evaluation run %s logged no metrics against its model (an older evaluate or model): the gate "
            "reads the run's metrics",
            run_id,
        )
        metrics = run.data.metrics
    missing = [m for m in _gate_metrics(metric) if m not in metrics]
    if missing:
        raise RegistryError(
            f"evaluation run {run_id} lacks metric(s) {', '.join(missing)} needed to compare; "
            f"it logged: {', '.join(sorted(metrics)) or 'no metrics'}"
        )
    return run, metrics


def _champion_metrics(champion: ModelVersion, metric: str) -> dict[str, float]:
    """The gate metrics of the champion's logged model, else (promoted before evaluate logged them there) of its
    version tags."""
    metrics = _logged_model_metrics(
        f"models:/{champion.name}/{champion.version}", champion.tags.get(EVALUATION_RUN_TAG)
    )
    if metrics:
        return metrics
    log.warning(
        "champion v%s of %r has no evaluation metrics on its logged model: the gate reads its version tags",
        champion.version,
        champion.name,
    )
    return {key: float(champion.tags[key]) for key in (*_gate_metrics(metric), RESIDUAL) if key in champion.tags}


def _logged_model_metrics(model_uri: str, run_id: Optional[str]) -> dict[str, float]:
    """What evaluate run `run_id` logged against the logged model behind `model_uri`, latest value per name;
    empty when the model has no id (logged before MLflow 3) or the run logged nothing against it."""
    model_id = mlflow.models.get_model_info(model_uri).model_id if run_id else None
    if model_id is None:
        return {}
    logged = [m for m in mlflow.get_logged_model(model_id).metrics or [] if m.run_id == run_id]
    return {m.key: m.value for m in sorted(logged, key=lambda m: (m.step, m.timestamp))}


def _gate_metrics(metric: str) -> list[str]:
    """What the gate needs of every model: the policy metric and the calibration guard (once, should the metric be
    the guard). The physics guard is compared only between models that both state physics (log the residual)."""
    return list(dict.fromkeys((metric, ECE)))


def _decide(
    name: str,
    version: str,
    candidate: dict[str, float],
    champion: Optional[ModelVersion],
    theirs: dict[str, float],
    policy: RegistryConfig,
    classes: Optional[str] = None,
) -> Decision:
    """Promote when there is no champion, or when better on the metric and not worse beyond tolerance (the
    champion's metrics: `theirs`), on the same classes (`classes`, comma-joined, compared when both models
    record theirs)."""
    metric, score = policy.metric, candidate[policy.metric]
    if champion is None:
        return Decision(name, version, True, "no champion yet: the first candidate becomes champion", score, None)
    held_by = f"champion v{champion.version}"
    incomparable = _incomparable(champion, theirs, metric, classes)
    if incomparable:
        return Decision(name, version, False, f"{held_by} {incomparable}; move the alias by hand", score, None)
    best = theirs[metric]
    residual = theirs[RESIDUAL] if RESIDUAL in theirs and RESIDUAL in candidate else None
    problems = _shortfalls(candidate, theirs, policy, held_by, residual)
    if problems:
        return Decision(name, version, False, "; ".join(problems), score, best)
    guards = "residual and ECE" if residual is not None else "ECE (no physics residual to compare)"
    return Decision(
        name,
        version,
        True,
        f"{metric} {score:.4f} beats {held_by}'s {best:.4f}, {guards} within tolerance",
        score,
        best,
        previous_champion=str(champion.version),
    )


def _incomparable(
    champion: ModelVersion, theirs: dict[str, float], metric: str, classes: Optional[str]
) -> Optional[str]:
    """Why the champion cannot be compared with the candidate at all (said of the champion), or None."""
    if classes is not None and champion.tags.get(CLASS_NAMES_TAG, classes) != classes:
        return (
            f"classifies {champion.tags[CLASS_NAMES_TAG]}, this model "
            f"{classes}: scores on different tasks do not compare"
        )
    missing = [m for m in _gate_metrics(metric) if m not in theirs]
    if missing:
        return f"has no {', '.join(missing)} tag(s) to compare with (promoted outside this gate?)"
    return None


def _shortfalls(
    candidate: dict[str, float],
    theirs: dict[str, float],
    policy: RegistryConfig,
    held_by: str,
    residual: Optional[float],
) -> list[str]:
    """What keeps the candidate from replacing the champion: not better on the metric, or a physics residual
    (`residual`: the champion's, None when not both models state one) or ECE worse beyond tolerance."""
    metric, score, best, ece = policy.metric, candidate[policy.metric], theirs[policy.metric], theirs[ECE]
    problems = []
    if not score > best:
        problems.append(f"{metric} {score:.4f} does not beat {held_by}'s {best:.4f}")
    if residual is not None and candidate[RESIDUAL] > residual * (1 + policy.max_residual_increase) + _FLOAT_SLACK:
        problems.append(
            f"{RESIDUAL} rose from {residual:.4g} to {candidate[RESIDUAL]:.4g}, more than the "
            f"{policy.max_residual_increase:.0%} allowed"
        )
    if candidate[ECE] > ece + policy.max_ece_increase + _FLOAT_SLACK:
        problems.append(
            f"{ECE} rose from {ece:.4f} to {candidate[ECE]:.4f}, more than the {policy.max_ece_increase:.4f} allowed"
        )
    return problems


def _champion(client: MlflowClient, name: str) -> Optional[ModelVersion]:
    """The version holding `champion`, or None (also when no model of that name is registered)."""
    try:
        return client.get_model_version(name, client.get_registered_model(name).aliases[CHAMPION])
    except KeyError:
        return None
    except MlflowException as err:
        if not _not_found(err):
            raise
        return None


def _not_found(err: MlflowException) -> bool:
    """Whether MLflow said "no such run/model/version", as opposed to failing to answer."""
    return err.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST)


def _record(client: MlflowClient, decision: Decision) -> None:
    """Write the decision on its version, so the registry alone explains every alias move."""
    tags = {
        "promotion.decision": "promoted" if decision.promoted else "rejected",
        "promotion.reason": decision.reason,
        "promotion.candidate_score": str(decision.candidate_score),
    }
    if decision.champion_score is not None:
        tags["promotion.champion_score"] = str(decision.champion_score)
    if decision.previous_champion is not None:
        tags[PREVIOUS_CHAMPION] = decision.previous_champion
    for key, value in tags.items():
        client.set_model_version_tag(decision.model_name, decision.version, key, value)


def _model_name(name: str) -> str:
    """`name`, unless it names a promotion lock: a lock is never a candidate nor a champion."""
    if promotion_lock.is_lock(name):
        raise RegistryError(
            f"{name!r} is a promotion lock (see its description), not a model: registry.model_name "
            f"must name the model itself, {name[: -len(promotion_lock.SUFFIX)]!r}"
        )
    return name


@contextlib.contextmanager
def _promotion_lock(model_name: str) -> Iterator[None]:
    """Take turns with other promotions of `model_name` (module doc); failing to is a RegistryError like any."""
    try:
        with promotion_lock.promotion_lock(model_name):
            yield
    except promotion_lock.PromotionLockError as err:
        raise RegistryError(str(err)) from None
