"""The promotion lock (pipeline/tracking/promotion_lock.py) on a private SQLite store: jobs take turns, a dead
holder's ticket is taken over once its lease runs out, and waiting too long ends in an error naming the holder.
(Concurrent register processes through it, over HTTP too: test_registry_processes.py.)"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import pytest
from mlflow import MlflowClient

from pipeline.tracking.promotion_lock import PromotionLockError, lock_name, promotion_lock
from tests.tracking.test_registry import model_uri  # noqa: F401

MODEL = "bearing-test"
REPO = Path(__file__).resolve().parents[2]
# A register job that dies holding the lock: it exits without running any cleanup, as a killed process would.
DIE_HOLDING = """
import os, sys
from pipeline.tracking.promotion_lock import promotion_lock
with promotion_lock(sys.argv[1]) as ticket:
    print(ticket.version, flush=True)
    os._exit(1)
"""


@pytest.fixture
def client(model_uri) -> MlflowClient:  # noqa: F811 - model_uri: a private, already migrated SQLite store
    return MlflowClient()


def tickets(client: MlflowClient) -> list[str]:
    """The live tickets of MODEL's lock, lowest (the holder's) first."""
    return sorted((str(v.version) for v in client.search_model_versions(f"name = '{lock_name(MODEL)}'")), key=int)


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.02)


def in_thread(target: Callable[[], None], errors: list[BaseException]) -> threading.Thread:
    def run() -> None:
        try:
            target()
        except BaseException as err:  # noqa: BLE001 - surfaced by the test: a thread's exception would vanish
            errors.append(err)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_second_job_waits_until_the_holder_is_done(client):
    events, errors, holding, done = [], [], threading.Event(), threading.Event()

    def first() -> None:
        with promotion_lock(MODEL, client):
            events.append("first in")
            holding.set()
            done.wait()
            events.append("first out")

    def second() -> None:
        with promotion_lock(MODEL, client):
            events.append("second in")

    threads = [in_thread(first, errors)]
    holding.wait()
    threads.append(in_thread(second, errors))
    wait_until(lambda: len(tickets(client)) == 2, "the second job queues behind the first")
    assert events == ["first in"]
    done.set()
    for thread in threads:
        thread.join()

    assert not errors and events == ["first in", "first out", "second in"]
    assert tickets(client) == []  # each job deleted its ticket
    lock = client.get_registered_model(lock_name(MODEL))
    assert lock.tags == {"promotion_lock.for": MODEL} and lock.description.startswith("Not a model")


def test_a_dead_holders_ticket_is_taken_over_once_its_lease_runs_out(client, caplog):
    died = subprocess.run(
        [sys.executable, "-c", DIE_HOLDING, MODEL],
        cwd=REPO,
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert died.returncode == 1 and died.stdout.strip(), died.stderr[-3000:]
    dead = died.stdout.strip()
    dead_owner = client.get_model_version(lock_name(MODEL), dead).tags["owner"]
    assert tickets(client) == [dead] and "acquired_at" in client.get_model_version(lock_name(MODEL), dead).tags

    with promotion_lock(MODEL, client, lease_s=1) as ticket:
        assert tickets(client) == [str(ticket.version)] and int(ticket.version) > int(dead)
    assert f"ticket v{dead} of {dead_owner} silent for" in caplog.text and "its job is gone" in caplog.text
    assert tickets(client) == []


def test_waiting_past_the_timeout_is_an_error_naming_the_lock_and_its_holder(client):
    with promotion_lock(MODEL, client) as held:
        with pytest.raises(PromotionLockError) as caught:
            with promotion_lock(MODEL, client, timeout_s=0.2):
                pytest.fail("took a lock another job holds")
        message = str(caught.value)
        assert f"waiting for promotion lock '{lock_name(MODEL)}'" in message
        assert f"register job {socket.gethostname()}:{os.getpid()} holds it (ticket v{held.version}, since" in message
        assert tickets(client) == [str(held.version)]  # the job that gave up left the queue
