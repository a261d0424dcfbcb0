"""One vibration signal out of a recording file in the format its user keeps it (.wav, .npy, .csv, .parquet, .mat
v5 or v7.3, .tdms), so recordings are used as they come, with no conversion step; where a file holds several
signals, `variable` names the one to read."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

import h5py
import numpy as np
import pandas as pd
import scipy.io
import scipy.io.wavfile
from nptdms import TdmsFile

FORMATS = (".wav", ".npy", ".csv", ".parquet", ".mat", ".tdms")


class SignalFileError(ValueError):
    """A file holds no readable signal; the message says why (the caller adds which file)."""


def read_signal(path: Path, variable: Optional[str] = None) -> tuple[np.ndarray, Optional[int]]:
    """The float64 samples `[T]` of one channel of `path`, and the sampling rate the file states (.wav only)."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise SignalFileError(f"unsupported file type {suffix or '(none)'!r}; expected one of {', '.join(FORMATS)}")
    with _reading(suffix):
        if suffix == ".wav":
            rate, data = scipy.io.wavfile.read(path)
            return _one_channel(_scaled(data), variable), int(rate)
        if suffix == ".npy":
            return _one_channel(np.load(path, allow_pickle=False), variable), None
        if suffix == ".tdms":
            return _tdms_channel(path, variable), None
        if suffix == ".mat":
            with _mat_contents(path) as contents:
                return _mat_signal(contents, variable), None
        table = pd.read_parquet(path) if suffix == ".parquet" else _csv_table(path)
        return _column(table, variable), None


def read_number(path: Path, field_path: str) -> float:
    """The single finite number a .mat file holds at `field_path` (`rpm`, `bearing.sr`): a recording's sampling
    rate or speed kept beside its signal."""
    if path.suffix.lower() != ".mat":
        raise SignalFileError(f"only a .mat file's fields can be read, not a {path.suffix or '(none)'} file's")
    with _reading(".mat"), _mat_contents(path) as contents:
        value = _numeric(_field(contents, field_path), field_path)
    if value.size != 1 or not np.isfinite(value).all():
        raise SignalFileError(f"{field_path!r} is not a single finite number (shape {list(value.shape)})")
    return float(value.reshape(-1)[0])


@contextmanager
def _reading(suffix: str) -> Iterator[None]:
    """Any failure of a format's reader as a SignalFileError with the reader's reason."""
    try:
        yield
    except SignalFileError:
        raise
    except Exception as err:  # each reader has its own errors for a truncated or foreign file
        raise SignalFileError(f"unreadable {suffix} file ({type(err).__name__}: {err})") from None


def _scaled(data: np.ndarray) -> np.ndarray:
    """Integer .wav samples scaled to [-1, 1), the convention of audio tools, since a .wav carries no unit."""
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


def _csv_table(path: Path) -> pd.DataFrame:
    """A CSV's cells as text, its first row taken as the header when it holds no number."""
    table = pd.read_csv(path, header=None, dtype=str, skipinitialspace=True)
    if len(table) > 1 and table.iloc[0].apply(pd.to_numeric, errors="coerce").isna().all():
        table.columns = table.iloc[0].str.strip().tolist()
        table = table.iloc[1:]
    return table


def _column(table: pd.DataFrame, variable: Optional[str]) -> np.ndarray:
    """One column of a table: the only one, or the one whose header is `variable`."""
    columns = [str(c) for c in table.columns]
    if variable is None and len(columns) != 1:
        raise SignalFileError(f"{len(columns)} columns {columns}; the manifest's variable must name the one to read")
    if variable is not None and variable not in columns:
        raise SignalFileError(f"no column {variable!r}; columns: {columns}")
    column = table.iloc[:, columns.index(variable) if variable is not None else 0]
    return _finite(pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64))


def _tdms_channel(path: Path, variable: Optional[str]) -> np.ndarray:
    """The channel `variable` (`group/channel`) of a TDMS file, or its only channel."""
    file = _read_tdms(path)
    channels = {f"{group.name}/{channel.name}": channel for group in file.groups() for channel in group.channels()}
    if variable is None and len(channels) != 1:
        raise SignalFileError(
            f"{len(channels)} channels {list(channels)}; the manifest's variable must name one as group/channel"
        )
    if variable is not None and variable not in channels:
        raise SignalFileError(f"no channel {variable!r}; channels (group/channel): {list(channels)}")
    name = variable if variable is not None else next(iter(channels))
    data = channels[name][:]
    if data.dtype.kind not in "fiu":
        raise SignalFileError(f"channel {name!r} holds {data.dtype} values, not numbers")
    return _finite(data)


def _read_tdms(path: Path) -> TdmsFile:
    """A whole TDMS file; npTDMS reads what it can of a truncated one and only logs a warning, here an error."""
    warnings = _Recorded()
    logger = logging.getLogger("nptdms")
    logger.addHandler(warnings)
    try:
        file = TdmsFile.read(path)
    finally:
        logger.removeHandler(warnings)
    if warnings.messages:
        raise SignalFileError(f"damaged .tdms file (npTDMS: {warnings.messages[0]})")
    return file


class _Recorded(logging.Handler):
    """Keeps the warnings logged to it."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _mat_contents(path: Path) -> Iterator[Any]:
    """A .mat file's top level: a mapping of names to arrays and structs, structs being mappings too. A v7.3
    file is HDF5 (struct = group, array = dataset), read lazily while the file is open; older ones are read whole."""
    if h5py.is_hdf5(path):
        with h5py.File(path, "r") as file:
            yield file
    else:
        yield scipy.io.loadmat(path, simplify_cells=True)  # a 1x1 struct as a dict, a column as a 1-D array


def _mat_signal(contents: Any, variable: Optional[str]) -> np.ndarray:
    """The numeric array at `variable` (a dotted field path) of a .mat file, or its only top-level one."""
    if variable is None:
        arrays = [name for name in _names(contents) if getattr(_as_array(contents[name]), "size", 0) > 1]  # not scalars
        if len(arrays) != 1:
            raise SignalFileError(
                f"{len(arrays)} numeric variables {arrays}; the manifest's variable must name the one to read"
            )
        variable = arrays[0]
    data = _numeric(_field(contents, variable), variable)
    if data.ndim == 2 and min(data.shape) > 1:
        raise SignalFileError(f"{variable!r} is a matrix of shape {list(data.shape)}; expected one signal [T]")
    return _one_channel(data.astype(np.float64), None)


def _field(contents: Any, field_path: str) -> Any:
    """What a .mat file holds at `field_path` (`acc`, `bearing.gs`, any depth)."""
    node, where = contents, None
    for name in field_path.split("."):
        if not _is_struct(node):
            raise SignalFileError(f"{where!r} is not a struct, so it has no field {name!r}")
        if name not in _names(node):
            raise SignalFileError(
                f"no field {name!r} in {where!r}; fields: {_names(node)}"
                if where
                else f"no variable {name!r}; variables: {_names(node)}"
            )
        node, where = node[name], f"{where}.{name}" if where else name
    return node


def _numeric(node: Any, field_path: str) -> np.ndarray:
    data = _as_array(node)
    if data is None:
        raise SignalFileError(
            f"{field_path!r} is a struct, not an array; fields: {_names(node)}"
            if _is_struct(node)
            else f"{field_path!r} is not a numeric array"
        )
    return data


def _as_array(node: Any) -> Optional[np.ndarray]:
    """A numeric leaf as an array (a v7.3 dataset transposed back to MATLAB's order), None for anything else: a
    struct, a struct array or cell (a list or object array), text, logicals."""
    if _is_struct(node) or isinstance(node, list):
        return None
    if isinstance(node, h5py.Dataset):
        if node.attrs.get("MATLAB_class") == b"char":
            return None
        node = node[()].T
    data = np.asarray(node)
    return data if data.dtype.kind in "fiu" else None


def _is_struct(node: Any) -> bool:
    return isinstance(node, (dict, h5py.Group))


def _names(struct: Any) -> list[str]:
    """A struct's fields, or a file's variables, without what the file format adds (`__header__`, `#refs#`)."""
    return sorted(name for name in struct if not name.startswith(("__", "#")))


def _finite(signal: np.ndarray) -> np.ndarray:
    signal = np.asarray(signal, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(signal))
    if len(bad):
        raise SignalFileError(f"{len(bad)} sample(s) not a finite number, the first at index {bad[0]}")
    return signal
