"""Gated promotion and rollback (pipeline/tracking/registry.py) on a private SQLite store.

Creating a store runs MLflow's migrations (~6 s) and logging a model takes ~2 s, so the session builds one
template store holding one tiny pyfunc, and each test starts from a copy. Evaluation runs are stubs: an
evaluate-tagged run with a `model_uri` tag pointing at that pyfunc and the test/ metrics, logged on the run and
against the logged model as the evaluate stage logs them.
"""

from __future__ import annotations

import functools
import shutil
import threading
import time
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from pipeline.config import RegistryConfig
from pipeline.tracking import registry
from pipeline.tracking.registry import RegistryError, promote, rollback
from pipeline.tracking.store import ensure_experiment

POLICY = RegistryConfig(model_name="bearing-test")
MISSING_RUN = "0123456789abcdef0123456789abcdef"
EXPERIMENT = "av-pino"
TINY_MODEL = """
import mlflow


class Echo(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input: list[str]) -> list[str]:
        return model_input


mlflow.models.set_model(Echo())
"""


@functools.cache
def template_store(root: Path) -> tuple[Path, str]:
    """(db path, model URI) of a migrated store under `root` holding one tiny models-from-code pyfunc.

    A cached function rather than a session fixture: tests/stages/test_register.py imports `model_uri`, and a fixture
    imported into a second module would be built a second time.
    """
    root.mkdir()
    code = root / "tiny_model.py"
    code.write_text(TINY_MODEL)
    db = root / "mlflow.db"
    mlflow.set_tracking_uri(f"sqlite:///{db}")
    experiment = mlflow.create_experiment("models", artifact_location=(root / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment):
        info = mlflow.pyfunc.log_model(name="model", python_model=str(code), pip_requirements=[])
    return db, info.model_uri


@pytest.fixture
def model_uri(tmp_path_factory, mlflow_store) -> str:
    """Fill the test's store (`mlflow_store`) from the template; returns the URI of its logged model."""
    db, uri = template_store(tmp_path_factory.getbasetemp() / "registry-template")
    target = Path(mlflow_store[len("sqlite:///") :])
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(db, target)
    mlflow.set_tracking_uri(mlflow_store)
    return uri


def evaluation_run(
    model_uri: str,
    f1: float = 0.8,
    residual: float = 1.0,
    ece: float = 0.05,
    *,
    stage: str = "evaluate",
    status: str = "FINISHED",
    drop: tuple[str, ...] = (),
    classes: str = "normal,ball,inner,outer",
    on_model: bool = True,
) -> str:
    """A run shaped like the evaluate stage's (stage, model_uri and class_names tags, test/ metrics); returns its id.

    `on_model=False` logs the metrics on the run only, as evaluate did before it logged them against the model."""
    client = MlflowClient()
    run = client.create_run(
        ensure_experiment(EXPERIMENT), tags={"stage": stage, "model_uri": model_uri, "class_names": classes}
    )
    metrics = {"test/accuracy": f1, "test/macro_f1": f1, "test/physics_residual": residual, "test/ece": ece}
    model_id = mlflow.models.get_model_info(model_uri).model_id if on_model else None
    mlflow.log_metrics(
        {key: value for key, value in metrics.items() if key not in drop}, run_id=run.info.run_id, model_id=model_id
    )
    client.set_terminated(run.info.run_id, status)
    return run.info.run_id


def aliases(name: str = POLICY.model_name) -> dict[str, str]:
    return {alias: str(v) for alias, v in MlflowClient().get_registered_model(name).aliases.items()}


def version_tags(version: str, name: str = POLICY.model_name) -> dict[str, str]:
    return MlflowClient().get_model_version(name, version).tags


def test_first_candidate_becomes_champion_and_carries_its_evaluation(model_uri):
    run_id = evaluation_run(model_uri, f1=0.8)
    decision = promote(run_id, POLICY)

    assert decision.promoted and decision.champion_score is None and decision.previous_champion is None
    assert decision.candidate_score == pytest.approx(0.8)
    assert aliases() == {"champion": decision.version, "challenger": decision.version}
    tags = version_tags(decision.version)
    assert tags["evaluation_run_id"] == run_id
    assert float(tags["test/macro_f1"]) == pytest.approx(0.8) and float(tags["test/ece"]) == pytest.approx(0.05)
    assert tags["promotion.decision"] == "promoted" and "no champion" in tags["promotion.reason"]
    assert "promotion.champion_score" not in tags and "promotion.previous_champion" not in tags


def test_better_candidate_replaces_champion_and_records_the_previous_one(model_uri):
    first = promote(evaluation_run(model_uri, f1=0.8), POLICY)
    second = promote(evaluation_run(model_uri, f1=0.9), POLICY)

    assert second.promoted and second.previous_champion == first.version
    assert second.champion_score == pytest.approx(0.8)
    assert aliases() == {"champion": second.version, "challenger": second.version}
    tags = version_tags(second.version)
    assert tags["promotion.previous_champion"] == first.version
    assert float(tags["promotion.champion_score"]) == pytest.approx(0.8)
    assert float(tags["promotion.candidate_score"]) == pytest.approx(0.9)


@pytest.mark.parametrize("f1", [0.7, 0.8], ids=["worse", "equal"])
def test_candidate_not_strictly_better_is_only_challenger(model_uri, f1):
    champion = promote(evaluation_run(model_uri, f1=0.8), POLICY)
    decision = promote(evaluation_run(model_uri, f1=f1), POLICY)

    assert not decision.promoted and decision.previous_champion is None
    assert aliases() == {"champion": champion.version, "challenger": decision.version}
    tags = version_tags(decision.version)
    assert tags["promotion.decision"] == "rejected" and "does not beat champion" in tags["promotion.reason"]
    assert float(tags["promotion.champion_score"]) == pytest.approx(0.8)
    assert "promotion.previous_champion" not in tags


def test_a_model_stating_no_physics_is_compared_on_score_and_calibration_only(model_uri):
    """WDCNN logs no physics residual: the physics guard applies only between models that both state physics."""
    champion = promote(evaluation_run(model_uri, f1=0.8, residual=1.0), POLICY)
    cnn = promote(evaluation_run(model_uri, f1=0.9, drop=("test/physics_residual",)), POLICY)
    assert cnn.promoted and "no physics residual to compare" in cnn.reason
    assert cnn.previous_champion == champion.version
    worse_calibrated = promote(evaluation_run(model_uri, f1=0.95, ece=0.2, drop=("test/physics_residual",)), POLICY)
    assert not worse_calibrated.promoted and "test/ece rose" in worse_calibrated.reason


def test_models_of_different_tasks_do_not_compete(model_uri):
    champion = promote(evaluation_run(model_uri, f1=0.8), POLICY)
    ten_classes = promote(evaluation_run(model_uri, f1=0.99, classes="normal,ball_007,ball_014"), POLICY)
    assert not ten_classes.promoted and "scores on different tasks do not compare" in ten_classes.reason
    assert aliases() == {"champion": champion.version, "challenger": ten_classes.version}


@pytest.mark.parametrize(
    "residual, ece, promoted, why",
    [
        (1.3, 0.05, False, "test/physics_residual rose"),  # +30% > 25% allowed
        (1.0, 0.08, False, "test/ece rose"),  # +0.03 > 0.02 allowed
        (1.25, 0.07, True, "beats"),  # exactly at both tolerances
    ],
)
def test_guards_reject_a_better_score_bought_with_physics_or_calibration(model_uri, residual, ece, promoted, why):
    champion = promote(evaluation_run(model_uri, f1=0.8, residual=1.0, ece=0.05), POLICY)
    decision = promote(evaluation_run(model_uri, f1=0.95, residual=residual, ece=ece), POLICY)

    assert decision.promoted is promoted and why in decision.reason
    assert aliases()["champion"] == (decision.version if promoted else champion.version)


def test_the_gate_compares_the_scores_logged_against_the_models(model_uri):
    """A value logged on an evaluate run afterwards, or a version tag edited by hand, changes neither side's score:
    the gate compares what each evaluation logged against its model, the scores MLflow ranks models by."""
    client = MlflowClient()
    champion = promote(evaluation_run(model_uri, f1=0.8), POLICY)

    inflated = evaluation_run(model_uri, f1=0.7)
    client.log_metric(inflated, "test/macro_f1", 0.95, step=1)
    assert client.get_run(inflated).data.metrics["test/macro_f1"] == 0.95
    decision = promote(inflated, POLICY)
    assert not decision.promoted and decision.candidate_score == pytest.approx(0.7)
    assert "test/macro_f1 0.7000 does not beat" in decision.reason

    client.set_model_version_tag(POLICY.model_name, champion.version, "test/macro_f1", "0.5")
    decision = promote(evaluation_run(model_uri, f1=0.75), POLICY)
    assert not decision.promoted and decision.champion_score == pytest.approx(0.8)
    assert aliases()["champion"] == champion.version


def test_evaluations_logged_on_the_run_only_are_compared_as_before(model_uri, caplog):
    """Versions evaluated before evaluate logged against models: the run's metrics, then the version's tags."""
    first = promote(evaluation_run(model_uri, f1=0.8, on_model=False), POLICY)
    second = promote(evaluation_run(model_uri, f1=0.9, on_model=False), POLICY)
    assert second.promoted and second.previous_champion == first.version
    assert second.champion_score == pytest.approx(0.8)
    assert "the gate reads the run's metrics" in caplog.text and "the gate reads its version tags" in caplog.text

    newer = promote(evaluation_run(model_uri, f1=0.85), POLICY)  # logged against its model, against the old champion
    assert not newer.promoted and newer.champion_score == pytest.approx(0.9)


def test_rollback_restores_the_replaced_champion(model_uri):
    first = promote(evaluation_run(model_uri, f1=0.8), POLICY)
    second = promote(evaluation_run(model_uri, f1=0.9), POLICY)

    assert rollback(POLICY.model_name) == first.version
    assert aliases()["champion"] == first.version
    assert version_tags(second.version)["rollback.replaced_by"] == first.version
    assert version_tags(first.version)["rollback.restored_over"] == second.version
    with pytest.raises(RegistryError, match=f"champion v{first.version} .* nothing to roll back to"):
        rollback(POLICY.model_name)  # the first champion replaced nothing


def test_rollback_without_a_champion_is_a_clear_error(model_uri):
    with pytest.raises(RegistryError, match="'bearing-test' has no `champion` alias"):
        rollback(POLICY.model_name)


def test_concurrent_promotions_end_with_the_better_champion(model_uri, monkeypatch):
    promote(evaluation_run(model_uri, f1=0.5), POLICY)
    better, worse = evaluation_run(model_uri, f1=0.9), evaluation_run(model_uri, f1=0.7)
    read_champion = registry._champion

    def slow_read(*args):  # widen the read-compare-set window an unlocked promote would race in
        champion = read_champion(*args)
        time.sleep(0.3)
        return champion

    monkeypatch.setattr(registry, "_champion", slow_read)
    start, decisions, errors = threading.Barrier(2), {}, []

    def promote_at_once(run_id: str) -> None:
        start.wait()
        try:
            decisions[run_id] = promote(run_id, POLICY)
        except Exception as err:  # surfaced below: a thread's exception would otherwise vanish
            errors.append(err)

    threads = [threading.Thread(target=promote_at_once, args=(run_id,)) for run_id in (better, worse)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    assert aliases()["champion"] == decisions[better].version
    # Serialised, not interleaved: the later promotion compared against the earlier one, not against v1.
    if decisions[worse].promoted:
        assert decisions[better].previous_champion == decisions[worse].version
    else:
        assert decisions[worse].champion_score == pytest.approx(0.9)
    assert MlflowClient().search_model_versions(f"name = '{POLICY.model_name}.promotion-lock'") == []  # queue empty


def test_the_promotion_lock_is_no_model_to_promote_or_roll_back(model_uri):
    """The lock's registered model says what it is, holds no alias or version once promotions are done, and is
    refused as a model name: it can never become a candidate or a champion."""
    promote(evaluation_run(model_uri, f1=0.8), POLICY)
    lock = MlflowClient().get_registered_model(f"{POLICY.model_name}.promotion-lock")
    assert lock.description.startswith("Not a model") and lock.tags["promotion_lock.for"] == POLICY.model_name
    assert lock.aliases == {} and MlflowClient().search_model_versions(f"name = '{lock.name}'") == []

    refused = f"'{lock.name}' is a promotion lock .* not a model: registry.model_name must name the model itself"
    with pytest.raises(RegistryError, match=refused):
        promote(evaluation_run(model_uri, f1=0.9), RegistryConfig(model_name=lock.name))
    with pytest.raises(RegistryError, match=refused):
        rollback(lock.name)
    assert aliases() == {"champion": "1", "challenger": "1"}


@pytest.mark.parametrize(
    "make_run, message",
    [
        (lambda uri: MISSING_RUN, f"evaluation run '{MISSING_RUN}' does not exist"),
        (lambda uri: evaluation_run(uri, stage="train"), "is a train run, not an evaluate run"),
        (lambda uri: evaluation_run(uri, drop=("test/macro_f1",)), "lacks metric.* test/macro_f1"),
        (lambda uri: evaluation_run(uri, status="FAILED"), "is FAILED, not FINISHED"),
    ],
    ids=["missing", "wrong-stage", "no-metric", "failed"],
)
def test_bad_evaluation_runs_are_refused_before_registering(model_uri, make_run, message):
    run_id = make_run(model_uri)
    with pytest.raises(RegistryError, match=message) as caught:
        promote(run_id, POLICY)
    assert run_id in str(caught.value)
    assert MlflowClient().search_registered_models() == []
