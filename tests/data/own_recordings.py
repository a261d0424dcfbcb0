"""A user's own recordings, as .wav, .npy, .csv and .mat files with a manifest: simulated bearings, written at
24 kHz (so preparing them resamples), one file type per load; and writers for the formats that need a library
call or a layout to mimic (MATLAB v7.3, TDMS)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
import scipy.io
import scipy.io.wavfile
from nptdms import ChannelObject, TdmsWriter

from pipeline.data.bearing import BEARINGS
from pipeline.data.simulator import simulate_recording

RATE = 24000
FORMATS = ("wav", "npy", "csv", "mat")  # by load
LABELS = ("normal", "inner_007", "outer_007", "ball_007")


def write_recordings(
    folder: Path, duration_s: float = 0.5, recordings_per_load: int = 1, bearing: str = "skf_6205"
) -> Path:
    """Write every label x load 0..3 x `recordings_per_load`, and a manifest naming each file's label (the fault
    location), speed, rate, load, bearing, variable and fault size; returns the manifest's path."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed, (label, load, rep) in enumerate(
        (label, load, rep) for label in LABELS for load in range(4) for rep in range(recordings_per_load)
    ):
        sim = simulate_recording(
            label, load, seed, duration_s=duration_s, snr_db=20.0, sample_rate=RATE, bearing=BEARINGS[bearing]
        )
        name, variable = f"{label}_{load}_{rep}.{FORMATS[load]}", _write(folder, label, load, rep, sim.signal)
        location = label.split("_")[0]
        rows.append(
            {
                "path": name,
                "label": location,
                "rpm": sim.params["rpm"],
                "sample_rate": RATE,
                "load": load,
                "bearing": bearing,
                "variable": variable,
                "location": location,
                "fault_size": 0.0 if label == "normal" else 0.007,
            }
        )
    manifest = folder / "manifest.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    return manifest


def _write(folder: Path, label: str, load: int, rep: int, signal: np.ndarray) -> str:
    """Write one recording in its load's file type; returns the variable the manifest must name ('' if none)."""
    path = folder / f"{label}_{load}_{rep}.{FORMATS[load]}"
    if path.suffix == ".wav":
        scipy.io.wavfile.write(path, RATE, (signal / np.abs(signal).max() * 0.9 * 32767).astype(np.int16))
        return ""
    if path.suffix == ".npy":
        np.save(path, signal)
        return ""
    if path.suffix == ".csv":
        pd.DataFrame({"time_s": np.arange(len(signal)) / RATE, "acceleration": signal}).to_csv(path, index=False)
        return "acceleration"
    scipy.io.savemat(path, {"acc": signal, "rpm": np.array([[1797.0]])})
    return "acc"


def save_mat73(path: Path, variables: dict[str, Any]) -> None:
    """Write `variables` as MATLAB's `save -v7.3` does: an HDF5 file behind a 512-byte MATLAB header, a struct
    (a dict here, nested at will) as a group, an array as a dataset in column-major order (so transposed), a 1-D
    array as a column."""
    with h5py.File(path, "w", userblock_size=512) as file:
        _write_group(file, variables)
    with open(path, "r+b") as file:
        file.write(b"MATLAB 7.3 MAT-file, written by the tests".ljust(116) + bytes(8) + b"\x00\x02IM")


def _write_group(group: h5py.Group, variables: dict[str, Any]) -> None:
    for name, value in variables.items():
        if isinstance(value, dict):
            _write_group(group.create_group(name), value)
            group[name].attrs["MATLAB_class"] = np.bytes_("struct")
        else:
            array = np.asarray(value, dtype=np.float64)
            group[name] = (array.reshape(-1, 1) if array.ndim < 2 else array).T
            group[name].attrs["MATLAB_class"] = np.bytes_("double")


def save_tdms(path: Path, channels: dict[str, np.ndarray]) -> None:
    """Write each `group/channel` of `channels` to one TDMS file, as a National Instruments logger would."""
    with TdmsWriter(path) as writer:
        writer.write_segment([ChannelObject(*name.split("/"), data) for name, data in channels.items()])
