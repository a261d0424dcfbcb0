"""Bad data through the real prepare stage: a CWRU folder holding good recordings and one file
of each kind of fault, run as `python -m pipeline.prepare data=cwru data.path=...` (both commands in one warm
interpreter: tests/entry_zygote.py).

Strict (the default) stops with every bad file listed by name and reason, and the run ends FAILED saying so;
lenient (`data.strict=false`) prepares the good files and records each skipped file in the manifest. A file of
another CWRU set is not bad: both runs pass over it, and the manifest lists it under `ignored_files`.
(The reader's own checks per file are in test_cwru.py; here the whole stage is under test.)
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pytest
import scipy.io

from tests.data.test_cwru import write_cwru
from tests.entry_zygote import run_entry_points
from tests.tracking.test_registry import template_store

pytestmark = pytest.mark.slow  # prepare through the entry point

GOOD = [*range(97, 101), *range(105, 109), *range(130, 134)]  # normal, inner_007 and outer_007 at loads 0-3


def write_bad_files(folder: Path) -> dict[str, str]:
    """One file per fault; returns file name -> what the report must say about it."""
    (folder / "118.mat").write_bytes(b"MATLAB 5.0 MAT-file" + b"\x00" * 200)  # unreadable
    whole = write_cwru(folder, 119).read_bytes()
    (folder / "119.mat").write_bytes(whole[: len(whole) // 2])  # truncated mid-write
    scipy.io.savemat(folder / "120.mat", {"X120_FE_time": np.zeros((4096, 1)), "X120RPM": [[1797.0]]})
    write_cwru(folder, 121, n=100)  # shorter than one window
    write_cwru(folder, 185, signal=np.r_[np.zeros(1000), np.nan, np.zeros(1047)])
    return {
        "118.mat": "cannot read .mat file",
        "119.mat": "cannot read .mat file",
        "120.mat": "no drive-end channel for file number 120",
        "121.mat": "recording has 100 samples at 12 kHz, fewer than 256",
        "185.mat": "X185_DE_time holds 1 NaN/inf value(s)",
    }


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("cwru")
    for number in GOOD:
        write_cwru(folder, number, n=8192 if number < 101 else 2048)  # normal files are 48 kHz: 4x longer
    write_cwru(folder, 300)  # not one of the ten classes: ignored, not bad
    return folder, write_bad_files(folder)


@dataclass
class Prepared:
    returncode: int
    stderr: str
    run: mlflow.entities.Run
    tmp: Path


@pytest.fixture(scope="module")
def prepared(folder, tmp_path_factory) -> dict[str, Prepared]:
    """Both commands, strict and lenient, each into its own store (a copy of a migrated one)."""
    root = tmp_path_factory.mktemp("prepare")
    template_db, _ = template_store(tmp_path_factory.getbasetemp() / "registry-template")
    jobs = {}
    for mode in ("strict", "lenient"):
        (root / mode).mkdir()
        shutil.copyfile(template_db, root / mode / "mlflow.db")
        uri = f"sqlite:///{root / mode / 'mlflow.db'}"
        jobs[mode] = {
            "entry": "prepare",
            "env": {**os.environ, "MLFLOW_TRACKING_URI": uri},
            "stdout": str(root / mode / "out.txt"),
            "stderr": str(root / mode / "err.txt"),
            "args": [
                "data=cwru",
                f"data.path={folder[0]}",
                "data.window=256",
                "data.hop=256",
                f"data.cache_dir={root / mode / 'data'}",
                f"hydra.run.dir={root / mode / 'hydra'}",
                *(["data.strict=false"] if mode == "lenient" else []),
            ],
        }
    outcomes = {}
    for mode, job in zip(jobs, run_entry_points(list(jobs.values()))):
        mlflow.set_tracking_uri(job["env"]["MLFLOW_TRACKING_URI"])
        [run] = mlflow.search_runs(experiment_names=["av-pino"], output_format="list")
        outcomes[mode] = Prepared(job["returncode"], Path(job["stderr"]).read_text(), run, root / mode)
    return outcomes


def test_strict_prepare_stops_with_every_bad_file_and_its_reason(folder, prepared):
    (folder, reasons), result = folder, prepared["strict"]
    run = result.run

    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"CwruError: CWRU folder '{folder}': {len(reasons)} bad file(s):" in result.stderr
    for name, reason in reasons.items():
        assert f"{folder / name}: {reason}" in result.stderr, (name, result.stderr[-3000:])
    assert run.info.status == "FAILED"
    assert run.data.tags["failure.reason"].startswith(f"CwruError: CWRU folder '{folder}': 5 bad file(s)")
    assert "300.mat" not in result.stderr
    assert not (result.tmp / "data").exists() or not any((result.tmp / "data").iterdir())


def test_lenient_prepare_skips_them_and_records_them_in_the_manifest(folder, prepared):
    (folder, reasons), result = folder, prepared["lenient"]
    run = result.run
    mlflow.set_tracking_uri(f"sqlite:///{result.tmp / 'mlflow.db'}")

    assert result.returncode == 0, result.stderr[-3000:]
    assert run.info.status == "FINISHED"
    manifest = json.loads(mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/dataset/manifest.json"))
    skipped = {Path(entry["file"]).name: entry["error"] for entry in manifest["skipped_files"]}
    assert set(skipped) == set(reasons)
    for name, reason in reasons.items():
        assert reason in skipped[name]
    assert manifest["ignored_files"] == [
        {
            "file": str(folder / "300.mat"),
            "reason": (
                "file number 300 is not a 12 kHz drive-end recording of the ten classes (another CWRU set: 48 kHz or "
                "fan-end recordings, outer race @3/@12 o'clock or 0.028 in faults)"
            ),
        }
    ]
    assert manifest["n_recordings"] == len(GOOD)
    assert {Path(r["source"]).name for r in manifest["recordings"]} == {f"{n}.mat" for n in GOOD}
