"""Who is doing a piece of work (`host:pid`), and whether that process is gone.

A restarted job uses this to tell work a killed process left behind (a trial or an MLflow run still marked
RUNNING) from work another live process is doing. On this host the pid answers. A process on another host
cannot be asked, so it proves it is alive with a heartbeat (a timestamp it refreshes every `interval_s`
seconds, UTC epoch seconds): it counts as gone once its last beat is more than `MISSED_BEATS` intervals old.
Clocks of the hosts are assumed to agree to well within an interval (NTP). An owner on another host without
a heartbeat is never declared gone.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import warnings
from typing import Callable, Optional

from pipeline.training.config import TrainingConfig

HEARTBEAT_S = TrainingConfig.heartbeat_s  # default seconds between heartbeats: `training.heartbeat_s`
MISSED_BEATS = 3  # an owner on another host is gone when its heartbeat is older than this many intervals


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def is_gone(owner: str, heartbeat: Optional[float] = None, interval_s: float = HEARTBEAT_S) -> bool:
    """Same host: the pid no longer exists. Other host: `heartbeat` is older than MISSED_BEATS * interval_s."""
    host, _, pid = str(owner).rpartition(":")
    if host != socket.gethostname():
        return heartbeat is not None and time.time() - heartbeat > MISSED_BEATS * interval_s
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by another user
        return False
    return False


class Heartbeat:
    """Call `beat()` now, then every `interval_s` seconds and at each `poke()`, from a daemon thread, for the
    `with` block.

    A long step (an epoch, logging a model) would otherwise leave the owner silent for longer than the
    staleness allows; beating in the thread also keeps a slow store from holding up the work. A failing beat
    (the store is unreachable) warns once and is tried again at the next one.
    """

    def __init__(self, beat: Callable[[], None], interval_s: float = HEARTBEAT_S):
        self.beat, self.interval_s = beat, interval_s
        self._wake, self._stopping = threading.Event(), False
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout=self.interval_s)

    def poke(self) -> None:
        """Beat now (without waiting for it)."""
        self._wake.set()

    def _run(self) -> None:
        warned = False
        while not self._stopping:
            try:
                self.beat()
            except Exception as err:  # any store error: the next beat may get through
                if not warned:
                    warnings.warn(
                        f"heartbeat failed ({type(err).__name__}: {err}); trying again every {self.interval_s:g} s",
                        RuntimeWarning,
                    )
                warned = True
            self._wake.wait(self.interval_s)
            self._wake.clear()
