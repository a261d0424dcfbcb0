"""Diagnose recordings with a logged model: what `python -m pipeline.predict` runs.

A maintenance engineer asks what is wrong with a bearing once per recording, so the answer is one row per
recording: the class most of its windows name, its mean probability, the share of windows that agree, and
whether the recording looks unlike anything the model was trained on. The per-window table stays available.
Recordings are cut into the window length the model itself records, so the caller never has to know how the
model was trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import Optional

import mlflow
import numpy as np
import pandas as pd

from pipeline.common.progress import Progress
from pipeline.data.bearing import BearingGeometry
from pipeline.data.config import DataConfig
from pipeline.data.files import parse_bearing
from pipeline.data.windows import frame
from pipeline.readout.diagnosis_figure import write_diagnosis_figure
from pipeline.stages.predict_inputs import PredictError, PredictInput, check_input, predict_inputs
from pipeline.tracking.store import use_store

DEFAULT_MODEL_URI = "models:/av-pino@champion"
BATCH = 256  # windows per model call, so a long recording does not run through the network at once
FIGURE_SUFFIXES = (".html", ".png")


@dataclass
class Diagnoses:
    recordings: pd.DataFrame  # one row per recording (`diagnosis_table`)
    windows: pd.DataFrame  # one row per window, `recording` first
    inputs: list[PredictInput]  # what was read, for figures
    model_config: dict  # the model's own record: its rate, default speed and bearing


def diagnose(
    path: str | Path,
    model_uri: str = DEFAULT_MODEL_URI,
    hop: Optional[int] = None,
    rpm: Optional[float] = None,
    sample_rate: Optional[float] = None,
    variable: Optional[str] = None,
    bearing: Optional[str] = None,
) -> Diagnoses:
    """Diagnose every recording of `path` (a file, a folder of recording files, or a `data=files` manifest).

    rpm, sample_rate, variable: for files that do not state their own (default: the model's speed and rate).
    bearing: a preset name or geometry the model reads every recording in (default: a manifest's, else the
    model's own).
    hop: samples between window starts; default the window length (no overlap).
    """
    _check_hop(hop)
    check_input(path)
    if bearing is not None:
        _bearing(bearing, {})
    model, window, model_rate = load_model(model_uri)
    inputs = predict_inputs(path, window, model_rate, rpm, sample_rate, variable)
    progress = Progress(len(inputs), "recordings")
    tables = []
    for recording in inputs:
        params = _params(recording, bearing)
        tables.append(
            _predict_windows(model, recording, params, window, hop or window).assign(recording=recording.name)
        )
        progress.step(recording.name)
    windows = pd.concat(tables, ignore_index=True)
    windows.insert(0, "recording", windows.pop("recording"))
    return Diagnoses(diagnosis_table(windows, inputs), windows, inputs, model.unwrap_python_model().config)


def predict_file(path: str | Path, model_uri: str = DEFAULT_MODEL_URI, hop: Optional[int] = None) -> pd.DataFrame:
    """One row per window of one recording file: `class`, its `probability`, every `prob_<class>`, then what else
    the model serves: `uncertainty` and, for a model logged with an ood score, `ood_score` and
    `out_of_distribution`. A CSV of windows is classified row by row and ignores `hop`."""
    if not Path(path).is_file():
        raise PredictError(f"{path}: no such file")
    table = diagnose(path, model_uri, hop).windows.drop(columns="recording")
    table.index.name = "window"
    return table


def diagnosis_table(windows: pd.DataFrame, inputs: list[PredictInput]) -> pd.DataFrame:
    """Per recording: `diagnosis` (the class most windows name), `probability` (its mean probability over the
    windows), `agreement` (the share of windows naming it), `windows`, and where the model serves an ood flag,
    `out_of_distribution` (most windows flagged); `label` where a manifest stated one."""
    rows = []
    for recording in inputs:
        mine = windows[windows["recording"] == recording.name]
        votes = mine["class"].value_counts()
        diagnosis = votes.index[0]
        row = {
            "recording": recording.name,
            "diagnosis": diagnosis,
            "probability": float(mine[f"prob_{diagnosis}"].mean()),
            "agreement": float(votes.iloc[0] / len(mine)),
            "windows": len(mine),
        }
        if "out_of_distribution" in mine:
            row["out_of_distribution"] = bool(mine["out_of_distribution"].mean() > 0.5)
        if recording.label is not None:
            row["label"] = recording.label
        rows.append(row)
    return pd.DataFrame(rows)


def write_figures(found: Diagnoses, path: str | Path, bearing: Optional[str] = None) -> list[Path]:
    """The diagnosis figure (pipeline.readout.diagnosis_figure: the envelope spectrum with the bearing's fault
    lines, beside the recording's mean class probabilities) of each recording: written to `path` (.html or .png)
    for one recording, to `<stem>-<n>-<recording>.<suffix>` beside it for several. `bearing` (a preset or a
    geometry) overrides the manifest's and the model's."""
    path = Path(path)
    if path.suffix.lower() not in FIGURE_SUFFIXES:
        raise PredictError(f"figure={str(path)!r}: must end in {' or '.join(FIGURE_SUFFIXES)}")
    config, written = found.model_config, []
    for number, recording in enumerate(found.inputs):
        mine = found.windows[found.windows["recording"] == recording.name]
        probabilities = {c.removeprefix("prob_"): float(mine[c].mean()) for c in mine.columns if c.startswith("prob_")}
        target = (
            path
            if len(found.inputs) == 1
            else path.with_name(f"{path.stem}-{number}-{_slug(recording.name)}{path.suffix}")
        )
        written.append(
            write_diagnosis_figure(
                recording.samples.reshape(-1),
                float(config["sample_rate"]),
                recording.shaft_hz or float(config["shaft_hz"]),
                _bearing(bearing or recording.bearing, config),
                probabilities,
                target,
                title=recording.name,
            )
        )
    return written


def _bearing(named: Optional[str], config: dict) -> BearingGeometry:
    """The bearing a name or geometry string states, else the one the model was trained on, else the default."""
    try:
        if named:
            return parse_bearing(named)
    except ValueError as err:
        raise PredictError(f"bearing={named!r}: {err}") from None
    if config.get("bearing"):
        return BearingGeometry(**config["bearing"])
    return parse_bearing(DataConfig().bearing)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def load_model(model_uri: str) -> tuple[mlflow.pyfunc.PyFuncModel, int, float]:
    """The av-pino pyfunc at `model_uri`, with the window length and sample rate it was trained on."""
    use_store()
    try:
        model = mlflow.pyfunc.load_model(model_uri)
    except Exception as err:  # an unknown URI, an unreachable store, weights that no longer fit the code
        raise PredictError(f"cannot load model {model_uri!r} ({type(err).__name__}: {err})") from None
    config = model.unwrap_python_model().config
    return model, int(config["window"]), float(config["sample_rate"])


def _params(recording: PredictInput, bearing: Optional[str]) -> dict:
    """The model's request params for `recording`: its speed and bearing where known, else the model's defaults."""
    named = {"shaft_hz": recording.shaft_hz, "bearing": bearing or recording.bearing}
    return {key: value for key, value in named.items() if value is not None}


def _predict_windows(model, recording: PredictInput, params: dict, window: int, hop: int) -> pd.DataFrame:
    windows = recording.samples if recording.is_windows else np.ascontiguousarray(frame(recording.samples, window, hop))
    table = pd.concat(
        [model.predict(windows[start : start + BATCH], params=params) for start in range(0, len(windows), BATCH)],
        ignore_index=True,
    )
    table.insert(1, "probability", table.filter(like="prob_").max(axis=1))
    return table


def _check_hop(hop) -> None:
    if hop is not None and (isinstance(hop, bool) or not isinstance(hop, Integral) or hop < 1):
        raise PredictError(f"hop={hop!r}: must be a positive whole number of samples")
