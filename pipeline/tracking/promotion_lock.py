"""The lock that makes promotions of one registered model take turns, kept in the model registry itself: a queue
of tickets (versions of the lock model `M.promotion-lock`), the lowest live one holding it, a dead holder's ticket
expiring with its lease (docs/faults.md#how-two-of-these-hold)."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket
import threading
import time
from datetime import datetime, timezone
from typing import Iterator, Optional

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, RESOURCE_DOES_NOT_EXIST, ErrorCode

SUFFIX = ".promotion-lock"
FOR, OWNER, ACQUIRED_AT = "promotion_lock.for", "owner", "acquired_at"
LEASE_S = 60.0  # a promotion takes seconds; a ticket silent this long belongs to a job that died
TIMEOUT_S = 600.0  # how long a job waits for its turn before giving up
_FIRST_DELAY_S, _MAX_DELAY_S = 0.05, 1.0
DESCRIPTION = (
    "Not a model: the lock that makes promotions of registered model {model!r} take turns "
    "(pipeline/tracking/promotion_lock.py). Each version is one register job's place in the queue, "
    "tagged `owner` (host:pid); the lowest holds the lock (tagged `acquired_at`) and is deleted when "
    "its job is done. A version not updated for {lease:.0f} s belongs to a job that died and is "
    "deleted by the next one. Do not load, alias or delete it."
)

log = logging.getLogger(__name__)


class PromotionLockError(RuntimeError):
    """The lock could not be taken in time, or was lost; the message names the lock and its holder."""


def lock_name(model_name: str) -> str:
    return model_name + SUFFIX


def is_lock(name: str) -> bool:
    """Whether registered model `name` is a promotion lock rather than a model."""
    return name.endswith(SUFFIX)


@contextlib.contextmanager
def promotion_lock(
    model_name: str, client: Optional[MlflowClient] = None, *, lease_s: float = LEASE_S, timeout_s: float = TIMEOUT_S
) -> Iterator[ModelVersion]:
    """Hold the promotion lock of `model_name` for the block; yields this job's ticket."""
    client = client or MlflowClient()
    name = lock_name(model_name)
    try:
        client.create_registered_model(
            name, tags={FOR: model_name}, description=DESCRIPTION.format(model=model_name, lease=lease_s)
        )
    except MlflowException as err:
        if err.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            raise
    owner = f"{socket.gethostname()}:{os.getpid()}"
    ticket = client.create_model_version(
        name,
        f"promotion-lock:/{model_name}",
        tags={OWNER: owner},
        description=f"register job {owner}",
        await_creation_for=0,
    )
    try:
        _wait_for_turn(client, ticket, lease_s, timeout_s)
        client.set_model_version_tag(
            name, ticket.version, ACQUIRED_AT, datetime.now(timezone.utc).isoformat(timespec="seconds")
        )
        with _heartbeat(client, ticket, lease_s):
            yield ticket
    finally:
        _delete(client, ticket)


def _wait_for_turn(client: MlflowClient, ticket: ModelVersion, lease_s: float, timeout_s: float) -> None:
    """Return once no live ticket is ahead of `ticket`, deleting the dead ones; raise after `timeout_s`."""
    deadline, delay = time.monotonic() + timeout_s, _FIRST_DELAY_S
    while True:
        now = _touch(client, ticket).last_updated_timestamp  # the store's clock, as on the other tickets
        ahead = sorted(
            (
                v
                for v in client.search_model_versions(f"name = '{ticket.name}'")
                if int(v.version) < int(ticket.version)
            ),
            key=lambda v: int(v.version),
        )
        live = []
        for other in ahead:
            silent_s = (now - other.last_updated_timestamp) / 1000
            if silent_s <= lease_s:
                live.append(other)
                continue
            log.warning(
                "promotion lock %r: ticket v%s of %s silent for %.0f s (lease %.0f s), its job is gone: deleting it",
                ticket.name,
                other.version,
                other.tags.get(OWNER),
                silent_s,
                lease_s,
            )
            _delete(client, other)
        if not live:
            return
        left = deadline - time.monotonic()
        if left <= 0:
            raise PromotionLockError(_timeout_message(ticket, live, now, lease_s, timeout_s))
        time.sleep(min(random.uniform(delay / 2, delay), left))
        delay = min(delay * 2, _MAX_DELAY_S, lease_s / 4)


def _timeout_message(ticket: ModelVersion, live: list[ModelVersion], now: int, lease_s: float, timeout_s: float) -> str:
    """What a job that gave up tells its user: the lock, who holds it and since when, and what to do."""
    holder = live[0]
    since = f"since {holder.tags[ACQUIRED_AT]}" if ACQUIRED_AT in holder.tags else "about to take it"
    return (
        f"gave up after {timeout_s:.0f} s waiting for promotion lock {ticket.name!r} (a registered model): "
        f"register job {holder.tags.get(OWNER, '?')} holds it (ticket v{holder.version}, {since}, last heard "
        f"from {(now - holder.last_updated_timestamp) / 1000:.0f} s ago), {len(live)} job(s) ahead of this "
        f"one. Retry once it is done; a job that died loses the lock {lease_s:.0f} s after it last updated its "
        f"ticket"
    )


@contextlib.contextmanager
def _heartbeat(client: MlflowClient, ticket: ModelVersion, lease_s: float) -> Iterator[None]:
    """Keep `ticket` live from a thread while the block runs; raise after it if the lock was lost meanwhile."""
    stop, lost = threading.Event(), threading.Event()

    def beat() -> None:
        while not stop.wait(lease_s / 4):
            try:
                _touch(client, ticket)
            except PromotionLockError:
                lost.set()
                return
            except Exception as err:  # noqa: BLE001 - a store that did not answer: the lease allows a few misses
                log.warning("promotion lock %r: could not refresh ticket v%s: %s", ticket.name, ticket.version, err)

    thread = threading.Thread(target=beat, name=f"{ticket.name} heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
    if lost.is_set():
        raise PromotionLockError(
            f"promotion lock {ticket.name!r}: ticket v{ticket.version} was deleted as dead "
            f"while its job still held it (silent for over {lease_s:.0f} s); another "
            f"promotion may have run at the same time: check the model's aliases"
        )


def _touch(client: MlflowClient, ticket: ModelVersion) -> ModelVersion:
    """Update `ticket` so the store stamps it now: proof its job is alive. Raises if it was deleted as dead."""
    try:
        return client.update_model_version(ticket.name, ticket.version, ticket.description)
    except MlflowException as err:
        if err.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            raise
        raise PromotionLockError(
            f"promotion lock {ticket.name!r}: ticket v{ticket.version} of this job was "
            f"deleted by another job that found it silent; retry"
        ) from None


def _delete(client: MlflowClient, ticket: ModelVersion) -> None:
    """Delete `ticket`; another waiter may have deleted it already."""
    try:
        client.delete_model_version(ticket.name, ticket.version)
    except MlflowException as err:
        if err.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            raise
