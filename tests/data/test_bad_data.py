"""Bad data through the real prepare stage (issue 6, item 5): a CWRU folder holding good recordings and one file
of each kind of fault, run as `python -m pipeline.prepare data=cwru data.path=...`.

Strict (the default) stops with every bad file listed by name and reason, and the run ends FAILED saying so;
lenient (`data.strict=false`) prepares the good files and records each skipped file in the manifest.
(The reader's own checks per file are in test_cwru.py; here the whole stage is under test.)
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
import scipy.io

from tests.data.test_cwru import write_cwru

REPO = Path(__file__).resolve().parents[2]
GOOD = [*range(97, 101), *range(105, 109), *range(130, 134)]  # normal, inner_007 and outer_007 at loads 0-3


def write_bad_files(folder: Path) -> dict[str, str]:
    """One file per fault; returns file name -> what the report must say about it."""
    (folder / "118.mat").write_bytes(b"MATLAB 5.0 MAT-file" + b"\x00" * 200)  # unreadable
    whole = write_cwru(folder, 119).read_bytes()
    (folder / "119.mat").write_bytes(whole[: len(whole) // 2])  # truncated mid-write
    write_cwru(folder, 300)  # no such CWRU recording
    scipy.io.savemat(folder / "120.mat", {"X120_FE_time": np.zeros((4096, 1)), "X120RPM": [[1797.0]]})
    write_cwru(folder, 121, n=100)  # shorter than one window
    write_cwru(folder, 185, signal=np.r_[np.zeros(1000), np.nan, np.zeros(1047)])
    return {"118.mat": "cannot read .mat file", "119.mat": "cannot read .mat file",
            "300.mat": "file number 300 is not a 12 kHz drive-end CWRU recording",
            "120.mat": "no drive-end channel for file number 120",
            "121.mat": "recording has 100 samples at 12 kHz, fewer than 256",
            "185.mat": "X185_DE_time holds 1 NaN/inf value(s)"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("cwru")
    for number in GOOD:
        write_cwru(folder, number, n=8192 if number < 101 else 2048)  # normal files are 48 kHz: 4x longer
    return folder, write_bad_files(folder)


def prepare(folder: Path, tmp: Path, *overrides: str) -> tuple[subprocess.CompletedProcess, mlflow.entities.Run]:
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.prepare", "data=cwru", f"data.path={folder}", "data.window=256",
         "data.hop=256", f"data.cache_dir={tmp / 'data'}", f"hydra.run.dir={tmp / 'hydra'}", *overrides],
        cwd=REPO, env={**os.environ, "MLFLOW_TRACKING_URI": uri, "OMP_NUM_THREADS": "1"},
        capture_output=True, text=True, timeout=300)
    mlflow.set_tracking_uri(uri)
    [run] = mlflow.search_runs(experiment_names=["av-pino"], output_format="list")
    return result, run


def test_strict_prepare_stops_with_every_bad_file_and_its_reason(folder, tmp_path):
    folder, reasons = folder
    result, run = prepare(folder, tmp_path)

    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"CwruError: CWRU folder '{folder}': {len(reasons)} bad file(s):" in result.stderr
    for name, reason in reasons.items():
        assert f"{folder / name}: {reason}" in result.stderr, (name, result.stderr[-3000:])
    assert run.info.status == "FAILED"
    assert run.data.tags["failure.reason"].startswith(f"CwruError: CWRU folder '{folder}': 6 bad file(s)")
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())


def test_lenient_prepare_skips_them_and_records_them_in_the_manifest(folder, tmp_path):
    folder, reasons = folder
    result, run = prepare(folder, tmp_path, "data.strict=false")

    assert result.returncode == 0, result.stderr[-3000:]
    assert run.info.status == "FINISHED"
    manifest = json.loads(mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/dataset/manifest.json"))
    skipped = {Path(entry["file"]).name: entry["error"] for entry in manifest["skipped_files"]}
    assert set(skipped) == set(reasons)
    for name, reason in reasons.items():
        assert reason in skipped[name]
    assert manifest["n_recordings"] == len(GOOD)
    assert {Path(r["source"]).name for r in manifest["recordings"]} == {f"{n}.mat" for n in GOOD}
