"""Load: 1,000 requests from 8 concurrent clients to a real `mlflow models serve` of the
pipeline's champion on 127.0.0.1, with the load generator of bench/serving_benchmarks.py; none may fail.

Concurrent requests share forwards (pipeline.tracking.pyfunc_model.Batcher); each must still get its own answer.
"""

from __future__ import annotations

import json
import threading
import time

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.config import DataConfig, ExperimentConfig, ModelConfig
from pipeline.tracking import pyfunc_model
from pipeline.tracking.model_logging import log_pyfunc_model, served_model
from pipeline.tracking.pyfunc_model import AVPinoModel, Batcher
from pipeline.training.model_factory import untrained_model


@pytest.mark.slow
def test_the_served_champion_answers_1000_requests_from_8_clients_without_error(served_champion, serving_bench):
    window = np.random.default_rng(0).normal(size=(1, 256)).astype(np.float32)
    body = json.dumps({"inputs": window.tolist()}).encode()

    load = serving_bench.run_load(served_champion, body, windows=1, requests=1000, clients=8)

    assert load.errors == []
    assert len(load.latencies_s) == 1000
    print(
        f"\n1000 requests, 8 clients: {load.throughput:.0f} requests/s, "
        f"p50 {load.percentile_ms(50):.1f} ms, p99 {load.percentile_ms(99):.1f} ms"
    )


class HeldForward:
    """A forward that holds its first call until released, so that requests queue up behind it; it records the
    (windows, speed) of every call and fails on a negative speed."""

    def __init__(self):
        self.calls, self.entered, self.release = [], threading.Event(), threading.Event()

    def __call__(self, windows: torch.Tensor, shaft_hz: float) -> dict:
        self.calls.append((len(windows), shaft_hz))
        if len(self.calls) == 1:
            self.entered.set()
            assert self.release.wait(60)
        if shaft_hz < 0:
            raise ValueError(f"bad speed {shaft_hz}")
        return {"total": windows.sum(dim=1) * shaft_hz}


def ask_while_the_first_runs(requests: list[tuple[torch.Tensor, float]]) -> tuple[list, HeldForward]:
    """Send requests[0], then the others while its forward is held, and release it once all of them are queued;
    each request's answer (or error) in order, and the forward's calls."""
    forward = HeldForward()
    batcher, answers = Batcher(forward), [None] * len(requests)

    def ask(i: int) -> None:
        try:
            answers[i] = batcher(*requests[i])
        except ValueError as err:
            answers[i] = err

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(requests))]
    threads[0].start()
    assert forward.entered.wait(60)
    for thread in threads[1:]:
        thread.start()
    deadline = time.monotonic() + 60
    while len(batcher._queue) < len(requests) - 1:  # white box: all queued behind the held forward
        assert time.monotonic() < deadline
        time.sleep(0.001)
    forward.release.set()
    for thread in threads:
        thread.join(60)
    return answers, forward


def windows(n: int, value: float, length: int = 4) -> torch.Tensor:
    return torch.full((n, length), value)


def test_requests_queued_behind_a_forward_share_the_next_one_per_speed_and_get_their_own_rows():
    requests = [(windows(1, 1.0), 1.0), (windows(1, 2.0), 1.0), (windows(2, 3.0), 2.0), (windows(3, 4.0), 1.0)]

    answers, forward = ask_while_the_first_runs(requests)

    assert forward.calls == [(1, 1.0), (4, 1.0), (2, 2.0)]
    for (batch, speed), answer in zip(requests, answers):
        torch.testing.assert_close(answer["total"], batch.sum(dim=1) * speed)


def test_a_failing_forward_fails_only_the_requests_it_ran():
    requests = [(windows(1, 1.0), 1.0), (windows(1, 2.0), -1.0), (windows(2, 3.0), 1.0), (windows(1, 4.0), -1.0)]

    answers, forward = ask_while_the_first_runs(requests)

    assert sorted(forward.calls) == [(1, 1.0), (2, -1.0), (2, 1.0)]  # the two requests at -1 Hz share one forward
    assert [str(answers[i]) for i in (1, 3)] == ["bad speed -1.0"] * 2
    torch.testing.assert_close(answers[0]["total"], torch.full((1,), 4.0))
    torch.testing.assert_close(answers[2]["total"], torch.full((2,), 12.0))


def test_one_forward_never_takes_more_than_a_request_may_hold(monkeypatch):
    monkeypatch.setattr(pyfunc_model, "MAX_SAMPLES", 12)  # three windows of 4 samples
    requests = [(windows(1, float(i)), 1.0) for i in range(6)]

    answers, forward = ask_while_the_first_runs(requests)

    assert forward.calls == [(1, 1.0), (3, 1.0), (2, 1.0)]
    assert [answer["total"].item() for answer in answers] == [4.0 * i for i in range(6)]


TINY = ExperimentConfig(
    data=DataConfig(window=256, hop=256),
    model=ModelConfig(hidden_dim=8, n_layers=1, n_modes=8, n_heads=2, patch_size=8),
)


def loaded_pyfunc(folder) -> AVPinoModel:
    """The pyfunc of a tiny untrained model, loaded from its weights and config as MLflow loads it."""
    torch.manual_seed(0)
    return served_model(*untrained_model(TINY), folder)[0]


@pytest.fixture
def threads():
    """Restores torch's intra-op thread count after the test."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_concurrent_predictions_equal_one_at_a_time(tmp_path):
    """The pyfunc end to end: requests from 8 threads at once, some at another speed, get the tables they get
    one at a time."""
    predictor = loaded_pyfunc(tmp_path)
    rng = np.random.default_rng(0)
    inputs = [(rng.normal(size=(1 + i % 3, 256)).astype(np.float32), {"shaft_hz": 25.0 + i % 2}) for i in range(16)]
    alone = [predictor.predict(None, batch, params) for batch, params in inputs]

    together = [None] * len(inputs)
    start = threading.Barrier(8)

    def client(k: int) -> None:
        start.wait()
        for i in range(k, len(inputs), 8):
            together[i] = predictor.predict(None, *inputs[i])

    clients = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join(120)
    for expected, got in zip(alone, together):
        pd.testing.assert_frame_equal(got, expected, rtol=1e-5, atol=1e-6)


def test_the_served_model_computes_on_one_thread_unless_omp_num_threads_says(tmp_path, monkeypatch, threads):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    torch.set_num_threads(2)
    loaded_pyfunc(tmp_path)
    assert torch.get_num_threads() == 1

    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    torch.set_num_threads(2)
    loaded_pyfunc(tmp_path)
    assert torch.get_num_threads() == 2


def test_logging_the_model_keeps_the_trainers_thread_count(mlflow_store, monkeypatch, threads):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model, settings = untrained_model(TINY)
    with mlflow.start_run():
        log_pyfunc_model(model, settings, np.zeros((2, 256), dtype=np.float32))
    assert torch.get_num_threads() == 2
