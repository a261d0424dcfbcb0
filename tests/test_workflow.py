"""The front door: `mlflow run .` runs prepare -> train -> evaluate -> register on a tiny config; a second run
reuses every finished stage; the champion pulls in a fresh process without pickle and serves over HTTP."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pytest

from pipeline.config import to_experiment_config
from pipeline.data.classes import CLASS_NAMES
from pipeline.workflow import run_pipeline

REPO = Path(__file__).resolve().parents[1]
TINY = ["data.window=256", "data.hop=256", "data.duration_s=0.3", "data.recordings_per_load=3",
        "model.hidden_dim=8", "model.n_layers=1", "model.n_modes=8", "model.n_heads=2", "model.patch_size=32"]


@pytest.fixture(scope="module")
def pipeline_store(tmp_path_factory):
    """A store holding one whole pipeline run started the way the README does, with `mlflow run .`."""
    root = tmp_path_factory.mktemp("pipeline")
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}", "OMP_NUM_THREADS": "1"}
    overrides = " ".join(TINY + [f"data.cache_dir={root / 'data'}", f"hydra.run.dir={root / 'hydra'}"])
    result = subprocess.run(
        ["mlflow", "run", ".", "--env-manager", "local", "--experiment-name", "av-pino",
         "-P", "epochs=2", "-P", f"overrides={overrides}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return {"root": root, "env": env, "uri": env["MLFLOW_TRACKING_URI"], "stdout": result.stdout}


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
    assert train.data.params["loss.physics_weight"] == "0.1"
    assert train.data.params["training.epochs"] == "2"
    for name in ("train/loss", "train/data_loss", "train/physics_loss", "train/consistency_loss",
                 "train/variational_loss", "physics/equation_of_motion", "physics/measurement",
                 "physics/kinematics", "loss_weight/data", "val/loss", "val/accuracy", "val/macro_f1"):
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
    config = to_experiment_config(compose_config(*TINY, "training.epochs=2", f"data.cache_dir={root / 'data'}"))
    result = run_pipeline(config)
    assert result.reused == ["prepare", "train", "evaluate", "register"]
    first = by_stage(pipeline_store["uri"])
    assert result.stage_runs["train"] == first["train"].info.run_id


def test_champion_loads_in_a_fresh_process_without_pickle(pipeline_store):
    code = ("import mlflow, numpy as np; m = mlflow.pyfunc.load_model('models:/av-pino@champion'); "
            "print(m.predict(np.zeros((3, 256), dtype=np.float32)).to_json())")
    env = {**pipeline_store["env"], "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    table = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(table) >= {"class", "uncertainty", "prob_normal", "prob_outer_021"}
    assert len(table["class"]) == 3


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(port, body):
    request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def test_served_champion_answers_good_and_bad_requests(pipeline_store):
    port = _free_port()
    server = subprocess.Popen(
        ["mlflow", "models", "serve", "-m", "models:/av-pino@champion", "--env-manager", "local",
         "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
        env=pipeline_store["env"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2)
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "server did not start"
                time.sleep(1)
        windows = np.random.default_rng(0).normal(size=(2, 256)).astype(np.float32)
        status, body = _post(port, json.dumps({"inputs": windows.tolist()}).encode())
        assert status == 200 and len(body["predictions"]) == 2
        assert all(row["class"] in CLASS_NAMES for row in body["predictions"])
        assert all(abs(sum(row[f"prob_{n}"] for n in CLASS_NAMES) - 1) < 1e-4 for row in body["predictions"])
        for bad in (json.dumps({"inputs": [[1.0, 2.0]]}), json.dumps({"inputs": [["a"] * 256]}),
                    json.dumps({"inputs": []}), "{not json"):
            status, body = _post(port, bad.encode())
            assert 400 <= status < 500, (bad[:40], status, body)
            assert body.get("message"), body
        assert _post(port, json.dumps({"inputs": windows.tolist()}).encode())[0] == 200  # still serving
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
