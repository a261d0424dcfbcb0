"""Classify one recording with a logged model: what `python -m pipeline.predict` runs.

The input is a CWRU .mat file (its 12 kHz drive-end channel, read by `pipeline.data.cwru`) or a CSV holding
either one column of samples or one window per row. A signal is cut into the window length the model itself
records in its `model_config`, so the caller never has to know how the model was trained.
"""

from __future__ import annotations

from numbers import Integral
from pathlib import Path
from typing import Optional

import mlflow
import numpy as np
import pandas as pd

from pipeline.data.cwru import CwruError, read_cwru_file
from pipeline.data.windows import frame
from pipeline.tracking.store import use_store

DEFAULT_MODEL_URI = "models:/av-pino@champion"
BATCH = 256  # windows per model call, so a long recording does not run through the network at once


class PredictError(ValueError):
    """The input file or the model cannot be used; the message names which and why."""


def predict_file(path: str | Path, model_uri: str = DEFAULT_MODEL_URI, hop: Optional[int] = None) -> pd.DataFrame:
    """One row per window of `path`: `class`, its `probability`, every `prob_<class>`, then what else the model
    serves: `uncertainty` and, for a model logged with an ood score, `ood_score` and `out_of_distribution`.

    hop: samples between window starts when the file holds a signal; default the window length (no overlap).
    A CSV of windows is classified row by row and ignores `hop`.
    """
    path = Path(path)
    if not path.is_file():
        raise PredictError(f"{path}: no such file")
    if path.suffix.lower() not in (".mat", ".csv"):
        raise PredictError(f"{path}: unknown extension {path.suffix!r}; expected .mat (CWRU) or .csv")
    if hop is not None and (isinstance(hop, bool) or not isinstance(hop, Integral) or hop < 1):
        raise PredictError(f"hop={hop!r}: must be a positive whole number of samples")
    model, window, sample_rate = load_model(model_uri)
    windows, shaft_hz = read_windows(path, window, sample_rate, hop or window)
    params = None if shaft_hz is None else {"shaft_hz": shaft_hz}  # else the model's default speed
    table = pd.concat(
        [model.predict(windows[start : start + BATCH], params=params) for start in range(0, len(windows), BATCH)],
        ignore_index=True,
    )
    table.insert(1, "probability", table.filter(like="prob_").max(axis=1))
    table.index.name = "window"
    return table


def load_model(model_uri: str) -> tuple[mlflow.pyfunc.PyFuncModel, int, float]:
    """The av-pino pyfunc at `model_uri`, with the window length and sample rate it was trained on."""
    use_store()
    try:
        model = mlflow.pyfunc.load_model(model_uri)
    except Exception as err:  # an unknown URI, an unreachable store, weights that no longer fit the code
        raise PredictError(f"cannot load model {model_uri!r} ({type(err).__name__}: {err})") from None
    config = model.unwrap_python_model().config
    return model, int(config["window"]), float(config["sample_rate"])


def read_windows(path: Path, window: int, sample_rate: float, hop: int) -> tuple[np.ndarray, Optional[float]]:
    """float32 windows [N, window] of a .mat recording or a CSV, and the shaft speed (Hz) when the file records
    it (a CWRU file does, a CSV does not: the model reads fault lines in shaft orders); or a PredictError."""
    if path.suffix.lower() == ".mat":
        try:
            record = read_cwru_file(path, min_samples=1)  # "too short" is judged against the window below
        except CwruError as err:
            raise PredictError(str(err)) from None
        if record.sample_rate != sample_rate:
            raise PredictError(f"{path}: sampled at {record.sample_rate} Hz, the model expects {sample_rate:g} Hz")
        signal, shaft_hz = record.signal, record.rpm / 60
    else:
        values, shaft_hz = read_csv_numbers(path), None
        if values.shape[1] == window:
            return values, shaft_hz
        if values.shape[1] != 1:
            raise PredictError(
                f"{path}: {values.shape[1]} columns; expected 1 (a signal) or {window} (one window per row)"
            )
        signal = values[:, 0]
    if len(signal) < window:
        raise PredictError(f"{path}: {len(signal)} samples, too short for one window of {window} samples")
    return np.ascontiguousarray(frame(signal, window, hop)), shaft_hz


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


def summary(table: pd.DataFrame) -> str:
    """The majority class over all windows and its share, e.g. `12 windows: majority class inner_007 on 10 (83%)`."""
    counts = table["class"].value_counts()
    return (
        f"{len(table)} windows: majority class {counts.index[0]} on {counts.iloc[0]} "
        f"({counts.iloc[0] / len(table):.0%})"
    )
