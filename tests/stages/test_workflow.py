"""The front door: `mlflow run .` runs prepare -> train -> evaluate -> register on a tiny config; a second run
reuses every finished stage; the champion pulls in a fresh process without pickle. The run itself is the
`pipeline_store` fixture (tests/conftest.py); serving it is tested in tests/tracking/test_serving_*.py."""

import json
import os
import subprocess
import sys

import mlflow
import numpy as np
import pandas as pd
import pytest

from pipeline.config import to_experiment_config
from pipeline.data.prepared import load_prepared
from pipeline.stages.workflow import run_pipeline
from pipeline.tracking.run import browse_hint
from tests.data.own_recordings import write_recordings

pytestmark = pytest.mark.slow  # whole pipelines through `mlflow run .`


def runs(uri):
    mlflow.set_tracking_uri(uri)
    return mlflow.search_runs(experiment_names=["av-pino"], output_format="list")


def by_stage(uri):
    return {run.data.tags["stage"]: run for run in runs(uri)}


def test_every_stage_ran_as_a_child_of_one_finished_parent(pipeline_store):
    stages = by_stage(pipeline_store["uri"])
    assert set(stages) == {"pipeline", "prepare", "train", "evaluate", "register"}
    parent = stages["pipeline"].info.run_id
    for name, run in stages.items():
        assert run.info.status == "FINISHED", name
        if name != "pipeline":
            assert run.data.tags["mlflow.parentRunId"] == parent
    assert "models:/av-pino@champion" in pipeline_store["stdout"]


def test_train_run_logs_config_metrics_and_model(pipeline_store):
    train = by_stage(pipeline_store["uri"])["train"]
    assert train.data.params["loss.physics_weight"] == "0.0"  # physics losses off by default; residuals logged
    assert train.data.params["training.epochs"] == "2"
    for name in (
        "train/loss",
        "train/data_loss",
        "train/physics_loss",
        "train/consistency_loss",
        "train/variational_loss",
        "physics/equation_of_motion",
        "physics/measurement",
        "physics/kinematics",
        "loss_weight/data",
        "val/loss",
        "val/accuracy",
        "val/macro_f1",
    ):
        assert name in train.data.metrics, name
    client = mlflow.MlflowClient()
    history = client.get_metric_history(train.info.run_id, "train/loss")
    assert [m.step for m in history] == [0, 1]  # one value per epoch
    artifacts = {a.path for a in client.list_artifacts(train.info.run_id)}
    assert {"config.yaml", "plots", "dataset"} <= artifacts
    assert train.inputs.dataset_inputs, "the dataset is recorded as a run input"


def test_evaluate_and_register_record_scores_and_aliases(pipeline_store):
    stages = by_stage(pipeline_store["uri"])
    metrics = stages["evaluate"].data.metrics
    assert {"test/accuracy", "test/macro_f1", "test/ece", "test/physics_residual"} <= set(metrics)
    client = mlflow.MlflowClient()
    champion = client.get_model_version_by_alias("av-pino", "champion")
    assert champion.tags["promotion.decision"] == "promoted"
    assert client.get_model_version_by_alias("av-pino", "challenger").version == champion.version


def test_second_run_reuses_every_finished_stage(pipeline_store, monkeypatch, compose_config):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", pipeline_store["uri"])
    root = pipeline_store["root"]
    config = to_experiment_config(
        compose_config(*pipeline_store["overrides"], "training.epochs=2", f"data.cache_dir={root / 'data'}")
    )
    result = run_pipeline(config)
    assert result.reused == ["prepare", "train", "evaluate", "register"]
    first = by_stage(pipeline_store["uri"])
    assert result.stage_runs["train"] == first["train"].info.run_id


def test_the_printed_hint_opens_the_store_in_use(pipeline_store):
    """A tracking server is the UI already; a database store is opened with `mlflow ui`, its password hidden."""
    assert (
        f"compare runs:  mlflow ui --backend-store-uri {pipeline_store['uri']}, then open " in pipeline_store["stdout"]
    )
    assert browse_hint("http://10.0.0.5:5000") == "open http://10.0.0.5:5000"
    assert browse_hint("https://mlflow.example.org") == "open https://mlflow.example.org"
    # with an experiment: straight to its runs table, the UI's Model training view
    assert (
        browse_hint("http://10.0.0.5:5000", "7")
        == "open http://10.0.0.5:5000/#/experiments/7/runs?workflowType=machine_learning"
    )
    assert browse_hint("sqlite:///mlruns/mlflow.db", "7") == (
        "mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db, "
        "then open http://127.0.0.1:5000/#/experiments/7/runs"
        "?workflowType=machine_learning"
    )
    assert browse_hint("postgresql://team:secret@db:5432/mlflow") == (
        "mlflow ui --backend-store-uri postgresql://team:***@db:5432/mlflow"
    )


def test_champion_loads_in_a_fresh_process_without_pickle(pipeline_store):
    code = (
        "import mlflow, numpy as np; m = mlflow.pyfunc.load_model('models:/av-pino@champion'); "
        "print(m.predict(np.zeros((3, 256), dtype=np.float32)).to_json())"
    )
    env = {**pipeline_store["env"], "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    table = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(table) >= {"class", "uncertainty", "prob_normal", "prob_outer"}
    assert len(table["class"]) == 3


def test_your_own_recordings_run_end_to_end(pipeline_store, tmp_path):
    """`mlflow run . -P data=files -P overrides="data.manifest=... data.split=group data.test_groups=[pump_b]"`
    over .wav/.npy/.csv/.mat files, as README shows: trained on one machine's recordings, tested on the other's;
    the champion names the manifest's labels in its predictions."""
    manifest = write_recordings(tmp_path / "recordings", duration_s=0.4, recordings_per_load=2)
    table = pd.read_csv(manifest)
    table["group"] = np.where(table["load"] == 3, "pump_b", "pump_a")  # a second machine, run at load 3
    table.to_csv(manifest, index=False)
    groups = "data.split=group data.test_groups=[pump_b]"
    tiny = " ".join(["data.window=256", "data.hop=256", groups, *pipeline_store["tiny_model"]])
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}", "OMP_NUM_THREADS": "1"}
    overrides = f"data.manifest={manifest} data.cache_dir={tmp_path / 'data'} hydra.run.dir={tmp_path} {tiny}"
    result = subprocess.run(
        [
            "mlflow",
            "run",
            ".",
            "--env-manager",
            "local",
            "--experiment-name",
            "own",
            "-P",
            "data=files",
            "-P",
            "epochs=2",
            "-P",
            f"overrides={overrides}",
        ],
        cwd=pipeline_store["repo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    stages = {run.data.tags["stage"]: run for run in mlflow.search_runs(experiment_names=["own"], output_format="list")}
    assert {name: run.info.status for name, run in stages.items()} == dict.fromkeys(
        ["pipeline", "prepare", "train", "evaluate", "register"], "FINISHED"
    )
    assert {"test/recall/ball", "test/recall/inner", "test/recall/normal", "test/recall/outer"} <= set(
        stages["evaluate"].data.metrics
    )
    assert {"test/balanced_accuracy", "test/recording_accuracy"} <= set(stages["evaluate"].data.metrics)
    dataset = load_prepared(stages["evaluate"].data.tags["dataset_dir"])
    assert set(dataset.subset("test").loads) == {3} and 3 not in set(dataset.subset("train").loads)  # pump_b only
    champion = mlflow.pyfunc.load_model("models:/av-pino@champion")
    table = champion.predict(np.zeros((2, 256), dtype=np.float32))
    assert {"prob_ball", "prob_inner", "prob_normal", "prob_outer"} <= set(table.columns)
