"""Ids read from somewhere (a config key, a study's storage, a model) that may point nowhere in the tracking
store in force: the store was deleted, or the command now talks to another one (a laptop's store, then the
team's server). Such an id fails in one line that names it, where it was read, and the store that was asked."""

from __future__ import annotations

import mlflow
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

from pipeline.common.config_section import ConfigError
from pipeline.tracking.store import shown_uri

NOT_FOUND = ErrorCode.Name(RESOURCE_DOES_NOT_EXIST)


class MissingRecordError(ConfigError):
    """A recorded id names nothing in the tracking store in force: a value only the stage can check (the command
    line shows the message alone); it says which id, read from where, and which store was asked."""


def is_not_found(err: MlflowException) -> bool:
    """Whether MLflow answered that what was asked for does not exist (any store type, a server's too)."""
    return err.error_code == NOT_FOUND


def run_exists(run_id: str) -> bool:
    """Whether the tracking store in force holds run `run_id`."""
    try:
        mlflow.tracking.MlflowClient().get_run(run_id)
    except MlflowException as err:
        if is_not_found(err):
            return False
        raise
    return True


def recorded_run(run_id: str, read_from: str) -> Run:
    """Run `run_id`, read from `read_from` (e.g. "training.resume"); MissingRecordError if the store lacks it."""
    try:
        return mlflow.tracking.MlflowClient().get_run(run_id)
    except MlflowException as err:
        if is_not_found(err):
            raise MissingRecordError(missing(f"MLflow run {run_id}", read_from)) from None
        raise


def missing(what: str, read_from: str) -> str:
    """The one line for a record that is not there."""
    return (
        f"{read_from} names {what}, which the tracking store {shown_uri(mlflow.get_tracking_uri())} does not hold "
        "(deleted, or recorded in another store: set MLFLOW_TRACKING_URI to that store)"
    )
