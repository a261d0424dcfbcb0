"""What `pipeline.predict` reads: one recording file in any format `data=files` reads, a folder of them, or a
`data=files` manifest (whose speeds, rates, bearings and variables it honours). Each recording comes out at the
model's sampling rate (resampled where the file's differs), with its shaft speed where anything states it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from pipeline.data.config import DataConfig
from pipeline.data.cwru import CwruError, read_cwru_file
from pipeline.data.errors import DatasetError
from pipeline.data.files import at_rate, read_manifest
from pipeline.data.signal_files import FORMATS, SignalFileError, read_signal


class PredictError(ValueError):
    """The input file or the model cannot be used; the message names which and why."""


@dataclass
class PredictInput:
    """One recording to diagnose: its samples at the model's rate (or, for a CSV of windows, its windows)."""

    name: str
    samples: np.ndarray  # float32 [T], or [N, window] when the file holds one window per row
    shaft_hz: Optional[float]  # None: the model's default speed
    bearing: Optional[str] = None  # a preset name or a geometry, where the manifest names one
    label: Optional[str] = None  # what the manifest says it is
    notes: list[str] = field(default_factory=list)

    @property
    def is_windows(self) -> bool:
        return self.samples.ndim == 2


def check_input(path: str | Path) -> None:
    """What can be said of `path` before any model is loaded: it exists, and a file is of a format we read."""
    path = Path(path)
    if path.is_dir():
        return
    if not path.is_file():
        raise PredictError(f"{path}: no such file")
    if path.suffix.lower() not in FORMATS:
        raise PredictError(f"{path}: unknown extension {path.suffix!r}; expected one of {', '.join(FORMATS)}")


def predict_inputs(
    path: str | Path,
    window: int,
    model_rate: float,
    rpm: Optional[float] = None,
    sample_rate: Optional[float] = None,
    variable: Optional[str] = None,
) -> list[PredictInput]:
    """The recordings of `path`: a file, every recording file in a folder (sorted), or a manifest's rows.
    `rpm`, `sample_rate` and `variable` apply to files that do not state their own."""
    path = Path(path)
    if path.is_dir():
        files = sorted(
            p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in FORMATS and not _is_manifest(p)
        )
        if not files:
            raise PredictError(f"{path}: no recording files ({', '.join(FORMATS)})")
        return [
            _file_input(f, window, model_rate, rpm, sample_rate, variable, name=str(f.relative_to(path))) for f in files
        ]
    check_input(path)
    if path.suffix.lower() == ".csv" and _is_manifest(path):
        return _manifest_inputs(path, model_rate)
    return [_file_input(path, window, model_rate, rpm, sample_rate, variable, name=path.name)]


def _is_manifest(path: Path) -> bool:
    """A CSV whose header names a `path` column lists recordings rather than holding samples."""
    if path.suffix.lower() != ".csv":
        return False
    with open(path, encoding="utf-8", errors="replace") as handle:
        header = handle.readline()
    return "path" in [cell.strip().lower() for cell in header.split(",")]


def _manifest_inputs(manifest: Path, model_rate: float) -> list[PredictInput]:
    try:
        rows = read_manifest(manifest, default_bearing=DataConfig().bearing)
    except DatasetError as err:
        raise PredictError(str(err)) from None
    inputs = []
    for row in rows:
        try:
            signal, _ = read_signal(row.path, row.variable)
        except SignalFileError as err:
            raise PredictError(f"{manifest}: line {row.line}: {row.path.name}: {err}") from None
        signal, notes = at_rate(signal, row.sample_rate, model_rate)
        name = str(row.path.relative_to(manifest.parent)) if row.path.is_relative_to(manifest.parent) else str(row.path)
        inputs.append(PredictInput(name, signal.astype(np.float32), row.rpm / 60, row.bearing_name, row.label, notes))
    return inputs


def _file_input(
    path: Path,
    window: int,
    model_rate: float,
    rpm: Optional[float],
    sample_rate: Optional[float],
    variable: Optional[str],
    name: str,
) -> PredictInput:
    """One file: a CWRU .mat (its drive-end channel and the speed it records), a CSV of samples or of windows,
    or any other recording `read_signal` reads."""
    shaft_hz = None if rpm is None else rpm / 60
    suffix = path.suffix.lower()
    if suffix == ".csv" and variable is None:
        values = read_csv_numbers(path)
        if values.shape[1] == window:
            return PredictInput(name, values, shaft_hz)
        if values.shape[1] != 1:
            raise PredictError(
                f"{path}: {values.shape[1]} columns; expected 1 (a signal) or {window} (one window per row)"
            )
        signal, stated_rate = values[:, 0], None
    elif suffix == ".mat" and variable is None:
        try:
            record = read_cwru_file(path, min_samples=1)  # "too short" is judged against the window below
        except CwruError as err:
            raise PredictError(str(err)) from None
        signal, stated_rate = record.signal, record.sample_rate
        shaft_hz = shaft_hz or record.rpm / 60
    else:
        try:
            signal, stated_rate = read_signal(path, variable)
        except SignalFileError as err:
            raise PredictError(f"{path}: {err}") from None
    rate = stated_rate or sample_rate or model_rate
    signal, notes = at_rate(np.asarray(signal, dtype=np.float64), rate, model_rate)
    if len(signal) < window:
        raise PredictError(f"{path}: {len(signal)} samples, too short for one window of {window} samples")
    return PredictInput(name, signal.astype(np.float32), shaft_hz, notes=notes)


def read_csv_numbers(path: Path) -> np.ndarray:
    """The cells of a CSV as float32 [rows, columns]; a first row without any number is taken as a header."""
    try:
        cells = pd.read_csv(path, header=None, dtype=str, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise PredictError(f"{path}: the CSV holds no samples") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise PredictError(f"{path}: not a CSV table of numbers ({str(err).strip()})") from None
    numbers = cells.apply(pd.to_numeric, errors="coerce").astype(np.float64)
    if len(numbers) > 1 and numbers.iloc[0].isna().all():
        cells, numbers = cells.iloc[1:], numbers.iloc[1:]
    bad = ~np.isfinite(numbers.to_numpy())
    if bad.any():
        row, column = np.argwhere(bad)[0]
        value = cells.iat[row, column]
        raise PredictError(
            f"{path}: row {cells.index[row] + 1}, column {column + 1} holds "
            f"{'' if pd.isna(value) else value!r}, not a finite number"
        )
    return numbers.to_numpy(dtype=np.float32)
