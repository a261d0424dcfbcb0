"""One vibration signal out of a file as users keep them: .mat, .npy, .csv or .wav.

A file holds one recording; where it holds several channels or variables, `variable` names the one to read (a
.mat variable, a CSV column header, or a channel number for .npy and .wav). Integer .wav samples are scaled to
[-1, 1), the convention of audio tools, since a .wav carries no physical unit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import scipy.io
import scipy.io.wavfile

FORMATS = (".mat", ".npy", ".csv", ".wav")


class SignalFileError(ValueError):
    """A file holds no readable signal; the message says why (the caller adds which file)."""


def read_signal(path: Path, variable: Optional[str] = None) -> tuple[np.ndarray, Optional[int]]:
    """The float64 samples `[T]` of one channel of `path`, and the sampling rate the file states (.wav only)."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise SignalFileError(f"unsupported file type {suffix or '(none)'!r}; expected one of {', '.join(FORMATS)}")
    try:
        if suffix == ".wav":
            rate, data = scipy.io.wavfile.read(path)
            return _one_channel(_scaled(data), variable), int(rate)
        if suffix == ".npy":
            return _one_channel(np.load(path, allow_pickle=False), variable), None
        if suffix == ".csv":
            return _csv_column(path, variable), None
        return _mat_variable(path, variable), None
    except SignalFileError:
        raise
    except Exception as err:  # each reader has its own errors for a truncated or foreign file
        raise SignalFileError(f"unreadable {suffix} file ({type(err).__name__}: {err})") from None


def _scaled(data: np.ndarray) -> np.ndarray:
    if np.issubdtype(data.dtype, np.integer):
        info = np.iinfo(data.dtype)
        return (data.astype(np.float64) - (info.max + 1 + info.min) / 2) / ((info.max - info.min + 1) / 2)
    return data


def _one_channel(data: np.ndarray, variable: Optional[str]) -> np.ndarray:
    """A 1-D signal, or the channel `variable` (a number) of a `[T, channels]` array."""
    data = np.asarray(data)
    if data.ndim == 2 and 1 in data.shape and variable is None:
        data = data.reshape(-1)
    if data.ndim == 2:
        if variable is None or not str(variable).isdigit() or int(variable) >= data.shape[1]:
            raise SignalFileError(
                f"{data.shape[1]} channels (shape {list(data.shape)}); the manifest's variable "
                f"must name one, 0..{data.shape[1] - 1} (got {variable!r})"
            )
        data = data[:, int(variable)]
    if data.ndim != 1:
        raise SignalFileError(f"an array of shape {list(data.shape)}; expected one signal [T] or [T, channels]")
    return _finite(data)


def _csv_column(path: Path, variable: Optional[str]) -> np.ndarray:
    """One column of a CSV: the only one, or the one whose header is `variable`."""
    table = pd.read_csv(path, header=None, dtype=str, skipinitialspace=True)
    numbers = table.apply(pd.to_numeric, errors="coerce")
    if len(table) > 1 and numbers.iloc[0].isna().all():  # a header row
        table.columns, numbers = table.iloc[0].str.strip().tolist(), numbers.iloc[1:]
        numbers.columns = table.columns
    if variable is not None:
        if variable not in numbers.columns:
            raise SignalFileError(f"no column {variable!r}; columns: {[str(c) for c in numbers.columns]}")
        return _finite(numbers[variable].to_numpy(dtype=np.float64))
    if numbers.shape[1] != 1:
        raise SignalFileError(
            f"{numbers.shape[1]} columns {[str(c) for c in numbers.columns]}; the manifest's "
            "variable must name the one to read"
        )
    return _finite(numbers.iloc[:, 0].to_numpy(dtype=np.float64))


def _mat_variable(path: Path, variable: Optional[str]) -> np.ndarray:
    """The variable `variable` of a .mat file, or its only numeric array."""
    contents = {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}
    arrays = {k: v for k, v in contents.items() if isinstance(v, np.ndarray) and v.dtype.kind in "fiu" and v.size > 1}
    if variable is None:
        if len(arrays) != 1:
            raise SignalFileError(
                f"{len(arrays)} numeric variables {sorted(arrays)}; the manifest's variable must name the one to read"
            )
        variable = next(iter(arrays))
    if variable not in arrays:
        raise SignalFileError(f"no numeric variable {variable!r}; variables: {sorted(contents)}")
    return _one_channel(arrays[variable].astype(np.float64), None)


def _finite(signal: np.ndarray) -> np.ndarray:
    signal = np.asarray(signal, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(signal))
    if len(bad):
        raise SignalFileError(f"{len(bad)} sample(s) not a finite number, the first at index {bad[0]}")
    return signal
