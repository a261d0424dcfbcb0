"""Serving benchmark: a real `mlflow models serve` on 127.0.0.1 under concurrent clients, of the model and of a
trivial pyfunc served the same way, side by side: the trivial one is the server's own limit on this machine.

`served` and `run_load` are also what the serving tests use (tests/conftest.py, tests/tracking/), so the load
test asserts on the very traffic this benchmark measures.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import mlflow
import numpy as np
import torch
from common import benchmark, emit

from pipeline.config import compose_experiment_config
from pipeline.tracking.model_logging import PIP_REQUIREMENTS, log_pyfunc_model
from pipeline.tracking.store import ensure_experiment
from pipeline.training.model_factory import untrained_model


@contextlib.contextmanager
def served(model_uri: str, env: dict[str, str], log: Path, start_timeout_s: float = 180) -> Iterator[int]:
    """`mlflow models serve` of `model_uri` with one worker on a free 127.0.0.1 port; yields the port.

    The server runs in its own process group, stopped as a whole on exit; its output goes to `log`.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with open(log, "w") as out:
        server = subprocess.Popen(
            [
                "mlflow",
                "models",
                "serve",
                "-m",
                model_uri,
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-w",
                "1",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + start_timeout_s
        while invoke(port, None, path="/ping")[0] != 200:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mlflow models serve did not start; see {log}")
            time.sleep(0.5)
        yield port
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def invoke(
    port: int,
    body: bytes | None,
    path: str = "/invocations",
    content_type: str = "application/json",
    connection: http.client.HTTPConnection | None = None,
) -> tuple[int, dict | str]:
    """POST `body` (GET when None); (status, parsed JSON or text), or (0, error) if nobody answered."""
    conn = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("GET" if body is None else "POST", path, body, {"Content-Type": content_type})
        response = conn.getresponse()
        text = response.read().decode(errors="replace")
    except OSError as err:
        conn.close()
        return 0, f"{type(err).__name__}: {err}"
    finally:
        if connection is None:
            conn.close()
    with contextlib.suppress(ValueError):
        return response.status, json.loads(text)
    return response.status, text


@dataclass
class Load:
    latencies_s: list[float]  # of the answered requests, in completion order
    errors: list[str]  # one line per request that did not get 200 with one prediction per window
    seconds: float

    @property
    def throughput(self) -> float:
        return len(self.latencies_s) / self.seconds

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.latencies_s, q) * 1e3)


def run_load(port: int, body: bytes, windows: int, requests: int = 1000, clients: int = 8) -> Load:
    """`requests` POSTs of `body` (holding `windows` windows) shared by `clients` threads, each on its own
    keep-alive connection, all started together."""
    latencies, errors, lock = [], [], threading.Lock()
    counts = [requests // clients + (i < requests % clients) for i in range(clients)]
    start = threading.Barrier(clients + 1)

    def client(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        start.wait()
        for _ in range(n):
            began = time.perf_counter()
            status, answer = invoke(port, body, connection=conn)
            took = time.perf_counter() - began
            ok = status == 200 and isinstance(answer, dict) and len(answer.get("predictions", ())) == windows
            with lock:
                (latencies.append(took) if ok else errors.append(f"{status}: {str(answer)[:200]}"))
        conn.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in counts]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return Load(latencies, errors, time.perf_counter() - began)


def merged(loads: list[Load]) -> Load:
    """One Load of several runs: their requests together, over their summed time."""
    return Load(
        [t for load in loads for t in load.latencies_s],
        [e for load in loads for e in load.errors],
        sum(load.seconds for load in loads),
    )


# The trivial pyfunc, as "models from code" like the model: it answers one row of the model's columns per window.
TRIVIAL_MODEL = """
import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

CLASSES = {classes!r}


class Trivial(PythonModel):
    def predict(self, context, model_input, params=None):
        rows = len(model_input)
        columns = {{"class": [CLASSES[0]] * rows}}
        columns.update({{f"prob_{{name}}": [1 / len(CLASSES)] * rows for name in CLASSES}})
        columns["uncertainty"] = [0.0] * rows
        return pd.DataFrame(columns)


mlflow.models.set_model(Trivial())
"""


def log_trivial_model(class_names: list[str], model_uri: str, example: np.ndarray, folder: Path) -> str:
    """Log the trivial pyfunc with the model's signature and input example, so MLflow parses, checks and
    serialises the same payloads for both; return its model URI."""
    code = folder / "trivial_model.py"
    code.write_text(TRIVIAL_MODEL.format(classes=list(class_names)))
    info = mlflow.pyfunc.log_model(
        name="trivial",
        python_model=str(code),
        input_example=example,
        signature=mlflow.models.get_model_info(model_uri).signature,
        pip_requirements=PIP_REQUIREMENTS,
    )
    return info.model_uri


@benchmark
def serving_load(requests: int = 1000, clients: int = 8, rounds: int = 4) -> None:
    """The default model (untrained weights: same cost) and a trivial pyfunc, both behind `mlflow models serve`
    at once, one window per request: `requests` requests each from `clients` concurrent clients after a
    warm-up, in `rounds` alternating rounds so both see the same machine; throughput and latency of both, and
    ratio = model throughput / trivial throughput."""
    config = compose_experiment_config()
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        mlflow.set_tracking_uri(uri)
        model, settings = untrained_model(config)
        with mlflow.start_run(experiment_id=ensure_experiment("serving-benchmark")):
            example = np.zeros((2, config.data.window), dtype=np.float32)
            model_uri = log_pyfunc_model(model, settings, example)
            trivial_uri = log_trivial_model(settings["class_names"], model_uri, example, Path(tmp))
        window = torch.randn(1, config.data.window, generator=torch.Generator().manual_seed(0)).numpy()
        body = json.dumps({"inputs": window.tolist()}).encode()
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
        ports = {
            "model": stack.enter_context(served(model_uri, env, Path(tmp) / "model.log")),
            "trivial": stack.enter_context(served(trivial_uri, env, Path(tmp) / "trivial.log")),
        }
        loads = {name: [] for name in ports}
        for name, port in ports.items():
            run_load(port, body, windows=1, requests=50, clients=clients)  # warm-up
        for round_ in range(rounds):
            for name in ports if round_ % 2 == 0 else reversed(ports):
                count = requests // rounds + (round_ < requests % rounds)
                loads[name].append(run_load(ports[name], body, windows=1, requests=count, clients=clients))
    model_load, trivial_load = merged(loads["model"]), merged(loads["trivial"])
    extra = dict(requests=requests, clients=clients, window=config.data.window)
    for prefix, load in (("serving", model_load), ("serving/trivial", trivial_load)):
        emit(f"{prefix}/throughput", load.throughput, "requests/s", errors=len(load.errors), **extra)
        emit(f"{prefix}/latency_p50", load.percentile_ms(50), "ms", **extra)
        emit(f"{prefix}/latency_p99", load.percentile_ms(99), "ms", **extra)
    ratio = model_load.throughput / trivial_load.throughput
    emit("serving/throughput_ratio", ratio, "ratio", ratio=ratio, **extra)
