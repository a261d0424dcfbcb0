"""Who is doing a piece of work (`host:pid`), and whether that process is gone.

A restarted job uses this to tell work a killed process left behind (a trial or an MLflow run still marked
RUNNING) from work another live process is doing. Only owners on this host can be checked; an owner on
another host is never declared gone.
"""
from __future__ import annotations

import os
import socket


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def is_gone(owner: str) -> bool:
    host, _, pid = str(owner).rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by another user
        return False
    return False
