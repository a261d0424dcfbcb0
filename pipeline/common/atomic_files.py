"""What atomic writes (write a temporary, then rename it over the target) share: temporaries named after the
writing process, and the sweep of those a killed writer left behind.

`kill -9` gives a writer no chance to delete its temporary, so each one carries the writer's pid; the next
writer of the same target removes those whose process is gone, and leaves alone those of live writers.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path


def temp_path(final: Path) -> Path:
    """`.<name>.<pid>-<random>.tmp` beside `final`: hidden, unique, and traceable to this process."""
    return final.with_name(f".{final.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")


def remove_abandoned(final: Path) -> list[Path]:
    """Delete the temporaries of `final` whose writing process no longer exists; return what was deleted."""
    removed = []
    prefix = f".{final.name}."
    for tmp in final.parent.glob(".*.tmp") if final.parent.is_dir() else ():
        pid = tmp.name[len(prefix) :].split("-", 1)[0] if tmp.name.startswith(prefix) else ""
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (POSIX; directories cannot be opened on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True
