"""Fixtures of the tracking tests: a team's tracking server, started as the README's team section does."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def mlflow_server(database: str, folder: Path) -> Iterator[str]:
    """`mlflow server` on `database` with artifacts proxied to `folder`/server-artifacts (its background job runner,
    which the pipeline does not use, off); yields its URL once its /health answers, stops it on exit."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "server.log"
    with open(log, "w") as out:
        server = subprocess.Popen(
            [
                "mlflow",
                "server",
                "--backend-store-uri",
                database,
                "--artifacts-destination",
                str(folder / "server-artifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while not _healthy(url):
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


@pytest.fixture
def tracking_server(mlflow_postgres_database, tmp_path) -> Iterator[str]:
    """A server of this test's own, on a fresh PostgreSQL database (tests/test_team.py shares one per module)."""
    with mlflow_server(mlflow_postgres_database, tmp_path) as url:
        yield url


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False
