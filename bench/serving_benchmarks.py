"""Serving benchmark: a real `mlflow models serve` on 127.0.0.1 under concurrent clients.

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
from pipeline.config import ExperimentConfig
from pipeline.model_factory import untrained_model
from pipeline.tracking.model_logging import log_pyfunc_model
from pipeline.tracking.store import ensure_experiment


@contextlib.contextmanager
def served(model_uri: str, env: dict[str, str], log: Path, start_timeout_s: float = 180) -> Iterator[int]:
    """`mlflow models serve` of `model_uri` with one worker on a free 127.0.0.1 port; yields the port.

    The server runs in its own process group, stopped as a whole on exit; its output goes to `log`.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with open(log, "w") as out:
        server = subprocess.Popen(["mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local",
                                   "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
                                  env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
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


def invoke(port: int, body: bytes | None, path: str = "/invocations", content_type: str = "application/json",
           connection: http.client.HTTPConnection | None = None) -> tuple[int, dict | str]:
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


@benchmark
def serving_load(requests: int = 1000, clients: int = 8) -> None:
    """The default model (untrained weights: same cost) behind `mlflow models serve`, one window per request,
    `requests` requests from `clients` concurrent clients after a warm-up; throughput and latency."""
    config = ExperimentConfig()
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        mlflow.set_tracking_uri(uri)
        model, settings = untrained_model(config)
        with mlflow.start_run(experiment_id=ensure_experiment("serving-benchmark")):
            model_uri = log_pyfunc_model(model, settings, np.zeros((2, config.data.window), dtype=np.float32))
        window = torch.randn(1, config.data.window, generator=torch.Generator().manual_seed(0)).numpy()
        body = json.dumps({"inputs": window.tolist()}).encode()
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
        with served(model_uri, env, Path(tmp) / "server.log") as port:
            run_load(port, body, windows=1, requests=50, clients=clients)  # warm-up
            load = run_load(port, body, windows=1, requests=requests, clients=clients)
    extra = dict(requests=requests, clients=clients, errors=len(load.errors), window=config.data.window)
    emit("serving/throughput", load.throughput, "requests/s", **extra)
    emit("serving/latency_p50", load.percentile_ms(50), "ms", **extra)
    emit("serving/latency_p99", load.percentile_ms(99), "ms", **extra)
