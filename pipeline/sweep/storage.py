"""Where a study lives: a journal file under mlruns/ by default, or any Optuna RDB URL (PostgreSQL).

A worker killed mid-trial leaves its trial RUNNING. On an RDB storage Optuna's heartbeat finds it: workers
beat every HEARTBEAT_S seconds and `optuna.storages.fail_stale_trials` fails trials silent for GRACE_S.
Optuna 5's journal storage has no heartbeat, so every trial records the worker running it (host:pid) and a
worker starting on the same host fails RUNNING trials whose process is gone. A journal file is local, so
the workers sharing it share the host.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import optuna
import sqlalchemy.exc
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import TrialState

from pipeline.config import ConfigError
from pipeline.tracking.liveness import is_gone
from pipeline.tracking.store import REPO_ROOT

HEARTBEAT_S = 10
GRACE_S = 30
CREATE_ATTEMPTS = 4
WORKER_ATTR = "worker"


def storage_url(storage: str | None, study_name: str) -> str:
    """The configured storage, or the default journal file `mlruns/optuna/<study_name>.log` (absolute)."""
    if storage:
        return storage if "://" in storage else str(Path(storage).expanduser().resolve())
    return str(REPO_ROOT / "mlruns" / "optuna" / f"{study_name}.log")


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """An RDB storage with heartbeats for a URL, a journal storage for a file path; a clear error otherwise."""
    if "://" not in url:
        path = Path(url)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(path)))
        except OSError as err:
            raise ConfigError(f"hydra.sweeper.storage={url!r}: cannot open the journal file ({err})") from None
    for attempt in range(CREATE_ATTEMPTS):
        try:
            with _heartbeat_is_chosen():
                return optuna.storages.RDBStorage(
                    url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S, engine_kwargs={"pool_pre_ping": True}
                )  # survive dropped links
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            # workers starting together on a fresh database race to create Optuna's tables: the loser
            # finds them made on its next attempt
            if attempt + 1 == CREATE_ATTEMPTS:
                raise
            time.sleep(0.5 * (attempt + 1))
        except (sqlalchemy.exc.SQLAlchemyError, ValueError, ImportError) as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise ConfigError(f"hydra.sweeper.storage={url!r}: cannot use this storage ({reason})") from None


def _heartbeat_is_chosen() -> warnings.catch_warnings:
    """Silence Optuna's ExperimentalWarning for its heartbeat: the project chose the feature (and tests it), so
    the warning would tell every sweep's user about a decision they cannot act on."""
    return warnings.catch_warnings(action="ignore", category=optuna.exceptions.ExperimentalWarning)


def fail_stale_trials(study: optuna.Study, storage: optuna.storages.BaseStorage) -> list[int]:
    """Fail the RUNNING trials of `study` (kept in `storage`) whose worker is gone; returns their numbers."""
    before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    if isinstance(storage, optuna.storages.RDBStorage):
        with _heartbeat_is_chosen():
            optuna.storages.fail_stale_trials(study)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if WORKER_ATTR in trial.user_attrs and is_gone(trial.user_attrs[WORKER_ATTR]):
            study.tell(trial.number, state=TrialState.FAIL)
    after = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    return sorted(before - after)
