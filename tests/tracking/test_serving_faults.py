"""Bad input at serving time, against a real `mlflow models serve` of the pipeline's champion
on 127.0.0.1 (`served_champion`, tests/conftest.py): every bad request gets a 4xx whose message says what is
wrong, and the same server goes on answering good requests."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.data.classes import FAULT_LOCATIONS
from pipeline.tracking.pyfunc_model import MAX_SAMPLES

pytestmark = pytest.mark.slow  # `mlflow models serve` of a whole pipeline's champion

WINDOW = 256  # the pipeline_store model's window


def windows(n: int) -> list[list[float]]:
    return np.random.default_rng(n).normal(size=(n, WINDOW)).astype(np.float32).tolist()


def huge_batch() -> bytes:
    """One window more than a request may hold, written compactly (~8 MB of zeros)."""
    row = "[" + ",".join(["0"] * WINDOW) + "]"
    return ('{"inputs": [' + ",".join([row] * (MAX_SAMPLES // WINDOW + 1)) + "]}").encode()


def zeros_with(first: str) -> bytes:
    return ('{"inputs": [[' + first + ", 0.0" * (WINDOW - 1) + "]]}").encode()


BAD_REQUESTS = {  # id -> (body, content type, status, what the message must say)
    "wrong-shape": (
        json.dumps({"inputs": [[1.0, 2.0]]}),
        "application/json",
        400,
        "does not match expected shape (-1, 256)",
    ),
    "three-dimensional": (json.dumps({"inputs": [windows(2)]}), "application/json", 400, "expected shape (-1, 256)"),
    "ragged-rows": (json.dumps({"inputs": [[0.0] * WINDOW, [0.0] * 100]}), "application/json", 400, "inhomogeneous"),
    "strings": (
        json.dumps({"inputs": [["a"] * WINDOW]}),
        "application/json",
        400,
        "could not convert string to float: 'a'",
    ),
    "objects": (json.dumps({"inputs": [{"a": 1}]}), "application/json", 400, "tensor-based model signature"),
    "nan": (zeros_with("NaN"), "application/json", 400, "windows [0] contain NaN or inf"),
    "inf": (zeros_with("-Infinity"), "application/json", 400, "windows [0] contain NaN or inf"),
    "empty-batch": (json.dumps({"inputs": []}), "application/json", 400, "Failed to enforce schema of data '[]'"),
    "null-inputs": (json.dumps({"inputs": None}), "application/json", 400, "NoneType"),
    "huge-batch": (
        huge_batch(),
        "application/json",
        400,
        f"limit per request is {MAX_SAMPLES // WINDOW} windows ({MAX_SAMPLES} samples)",
    ),
    "malformed-json": ("{not json", "application/json", 400, "valid JSON"),
    "unknown-field": (json.dumps({"windows": windows(1)}), "application/json", 400, "exactly one of the input fields"),
    "wrong-content-type": ("hello", "text/plain", 415, "only supports the following content types"),
    "negative-shaft-speed": (
        json.dumps({"inputs": windows(1), "params": {"shaft_hz": -3.0}}),
        "application/json",
        400,
        "params.shaft_hz must be a positive number of Hz, got -3.0",
    ),
    "impossible-bearing": (
        json.dumps({"inputs": windows(1), "params": {"bearing": "9/2.0/1.5"}}),
        "application/json",
        400,
        "params.bearing: bearing '9/2.0/1.5' is neither a preset",
    ),
}


def assert_answers_good_requests(serving_bench, port: int) -> None:
    status, body = serving_bench.invoke(port, json.dumps({"inputs": windows(2)}).encode())
    assert status == 200 and len(body["predictions"]) == 2, (status, str(body)[:500])
    for row in body["predictions"]:
        assert row["class"] in FAULT_LOCATIONS  # the embedded default's task
        assert sum(row[f"prob_{name}"] for name in FAULT_LOCATIONS) == pytest.approx(1, abs=1e-4)


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=list(BAD_REQUESTS))
def test_bad_request_gets_a_4xx_that_says_why_and_the_server_keeps_serving(served_champion, serving_bench, case):
    body, content_type, expected_status, says = BAD_REQUESTS[case]
    raw = body if isinstance(body, bytes) else body.encode()
    status, answer = serving_bench.invoke(served_champion, raw, content_type=content_type)

    assert status == expected_status, (status, str(answer)[:1000])
    message = answer["message"] if isinstance(answer, dict) else answer
    assert says in message, message[:2000]
    assert "Traceback" not in message
    assert_answers_good_requests(serving_bench, served_champion)


def test_health_and_a_good_request(served_champion, serving_bench):
    assert serving_bench.invoke(served_champion, None, path="/ping")[0] == 200
    assert_answers_good_requests(serving_bench, served_champion)
