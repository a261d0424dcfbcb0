"""A user's own recordings, as files of every supported type with a manifest: simulated bearings, written at
24 kHz (so preparing them resamples), one file type per load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import scipy.io
import scipy.io.wavfile

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
