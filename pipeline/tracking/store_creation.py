"""A SQLite tracking store is created once, by whichever process touches it first.

MLflow builds a fresh store's schema in the first process that opens it, and two processes doing so together
fail inside its migrations ("table experiments already exists", "duplicate column name: step"): two
`mlflow run .` or sweep workers started together on a fresh clone. This package registers, through MLflow's
store plugin entry points (pyproject.toml), builders for `sqlite:` URIs that open the store while holding an
inter-process lock on a file beside the database (`mlflow.db.lock`): the first process creates the schema, the
others wait and then open the finished store. The lock is the operating system's (`flock`), so a process that
dies while holding it releases it. Stores of every other scheme are MLflow's own, unchanged.
"""

from __future__ import annotations

import contextlib
import fcntl
from pathlib import Path
from typing import Iterator

import sqlalchemy
from mlflow.tracking._model_registry import utils as registry_stores
from mlflow.tracking._tracking_service import utils as tracking_stores


def tracking_store(store_uri: str, artifact_uri: str | None = None, **_):
    """MLflow's SQLite tracking store, opened under the store's creation lock."""
    with creation_lock(store_uri):
        return tracking_stores._get_sqlalchemy_store(store_uri, artifact_uri)


def registry_store(store_uri: str, **_):
    """MLflow's SQLite model-registry store (same database), opened under the store's creation lock."""
    with creation_lock(store_uri):
        return registry_stores._get_sqlalchemy_store(store_uri)


def lock_path(store_uri: str) -> Path | None:
    """The lock file beside a SQLite database file; None for an in-memory database."""
    database = sqlalchemy.engine.make_url(store_uri).database
    if not database or database == ":memory:":
        return None
    path = Path(database)
    return path.with_name(path.name + ".lock")


@contextlib.contextmanager
def creation_lock(store_uri: str) -> Iterator[None]:
    """Hold the store's lock for the block. Where the lock file cannot be written (a read-only folder), nothing
    can create the store there either, so the block runs without it."""
    path = lock_path(store_uri)
    try:
        handle = open(path, "a") if path is not None else None
    except OSError:
        handle = None
    if handle is None:
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
