"""Checkpoint files: atomic writes, safe reads, and RNG state as plain data.

Writes go to a temporary file in the target's folder, are fsynced, then renamed over the target
(`os.replace` is atomic on POSIX and Windows), so a crash or a failed write leaves the previous checkpoint
intact; the next write removes a temporary that a killed writer left. Reads use
`torch.load(weights_only=True)`, which unpickles only tensors and plain containers: a checkpoint cannot run
code, so everything stored here (including RNG states) is tensors, numbers, strings, lists and dicts. Reads
check the zip members' CRC-32s first, so silent corruption is caught too. Any failure to read becomes a
`CheckpointError` that names the file.
"""

from __future__ import annotations

import os
import pickle
import random
import zipfile
import zlib
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from pipeline.common.atomic_files import fsync_dir, remove_abandoned, temp_path

REQUIRED_KEYS = ("epoch", "metrics", "model")


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated, corrupted, unsafe, or does not fit the model."""


def save_atomic(state: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """torch.save `state` to `path` via temp file + fsync + rename; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned(path)
    tmp = temp_path(path)
    try:
        with open(tmp, "xb") as file:
            torch.save(dict(state), file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def load_checkpoint_file(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by `save_atomic`, refusing anything but tensors and plain data."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    damaged = _damaged_member(path)
    if damaged:
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupted: {damaged}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"checkpoint {str(path)!r} was refused: it holds objects other than tensors and plain data, "
            f"which weights_only loading does not execute ({_unpickler_reason(err)})"
        ) from None
    except Exception as err:  # zip, pickle and storage errors all mean the bytes are damaged
        raise CheckpointError(f"checkpoint {str(path)!r} is truncated or corrupted ({described(err)})") from None
    if not isinstance(state, dict) or any(key not in state for key in REQUIRED_KEYS):
        raise CheckpointError(f"checkpoint {str(path)!r} is not a training checkpoint (needs {REQUIRED_KEYS})")
    return state


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch (CPU and CUDA) RNG states as tensors and plain lists."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "python": [version, list(internal), gauss],
    }


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what `rng_state` captured."""
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def _damaged_member(path: Path) -> str | None:
    """What fails the CRC-32 checks of torch's zip format, which torch.load itself skips: a flipped bit in the
    weights would otherwise load silently. None when intact, or when not a zip (torch.load judges those)."""
    if not zipfile.is_zipfile(path):
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as err:
        return f"its zip structure is damaged ({err})"
    return f"{bad} fails its CRC-32 check" if bad else None


def _unpickler_reason(err: BaseException) -> str:
    """torch's refusal message opens with advice; the line naming the refused object is the useful one."""
    lines = [line.strip() for line in str(err).splitlines()]
    return next((line for line in lines if line.startswith("WeightsUnpickler error")), _first_line(err))


def described(err: BaseException) -> str:
    """`TypeName: first line of its message`: a cause that fits in a one-line error message."""
    name, first = type(err).__name__, _first_line(err)
    return name if first == name else f"{name}: {first}"


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
