"""Fixtures of the tracking tests: a team's tracking server, started as the README's team section does."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator

import pytest


@pytest.fixture
def tracking_server(postgres_database, tmp_path) -> Iterator[str]:
    """`mlflow server` on a fresh PostgreSQL database with artifacts proxied to a folder (its background job runner,
    which the pipeline does not use, off); yields its URL once its /health answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "server.log"
    with open(log, "w") as out:
        server = subprocess.Popen(["mlflow", "server", "--backend-store-uri", postgres_database,
                                   "--artifacts-destination", str(tmp_path / "server-artifacts"),
                                   "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                                  env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
                                  stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
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


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False
