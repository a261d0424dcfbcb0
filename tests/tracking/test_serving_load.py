"""Load (issue 6, item 10): 1,000 requests from 8 concurrent clients to a real `mlflow models serve` of the
pipeline's champion on 127.0.0.1, with the load generator of bench/serving_benchmarks.py; none may fail."""
from __future__ import annotations

import json

import numpy as np


def test_the_served_champion_answers_1000_requests_from_8_clients_without_error(served_champion, serving_bench):
    window = np.random.default_rng(0).normal(size=(1, 256)).astype(np.float32)
    body = json.dumps({"inputs": window.tolist()}).encode()

    load = serving_bench.run_load(served_champion, body, windows=1, requests=1000, clients=8)

    assert load.errors == []
    assert len(load.latencies_s) == 1000
    print(f"\n1000 requests, 8 clients: {load.throughput:.0f} requests/s, "
          f"p50 {load.percentile_ms(50):.1f} ms, p99 {load.percentile_ms(99):.1f} ms")
