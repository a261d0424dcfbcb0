"""`pipeline.predict` with a tiny untrained model logged into a private store: a CWRU-layout .mat, CSVs of samples
and of windows, a folder of recordings in several formats diagnosed one row per recording, and the command line
with the champion alias."""

import os
import subprocess
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.io.wavfile
import torch
from mlflow.exceptions import MlflowException

from pipeline.config import DataConfig, ExperimentConfig, ModelConfig
from pipeline.data.classes import CLASS_NAMES
from pipeline.stages.predict import PredictError, diagnose, predict_file, write_figures
from pipeline.tracking.model_logging import log_pyfunc_model
from pipeline.tracking.store import ensure_experiment
from pipeline.training.model_factory import untrained_model
from tests.entry_zygote import run_entry_point

WINDOW, RATE = 256, 12000
COLUMNS = ["class", "probability", *(f"prob_{name}" for name in CLASS_NAMES), "uncertainty"]


@pytest.fixture
def model_uri(mlflow_store):
    """An untrained tiny model logged the way the train stage logs one: predictions are arbitrary but valid."""
    config = ExperimentConfig(
        data=DataConfig(window=WINDOW, hop=WINDOW),
        model=ModelConfig(hidden_dim=8, n_layers=1, n_modes=8, n_heads=2, patch_size=8),
    )
    torch.manual_seed(0)
    model, settings = untrained_model(config)
    with mlflow.start_run(experiment_id=ensure_experiment("predict-test")):
        return log_pyfunc_model(model, settings, np.zeros((2, WINDOW), dtype=np.float32))


def write_mat(folder: Path, samples: int, number: int = 105) -> Path:
    """A file in the CWRU layout: drive-end channel as [N, 1] float64 and the RPM as [[rpm]]."""
    path = folder / f"{number}.mat"
    signal = np.random.default_rng(number).standard_normal((samples, 1))
    scipy.io.savemat(path, {f"X{number}_DE_time": signal, f"X{number}RPM": np.array([[1797.0]])})
    return path


def check_table(table, rows: int) -> None:
    assert list(table.columns) == COLUMNS and len(table) == rows
    assert set(table["class"]) <= set(CLASS_NAMES)
    probs = table.filter(like="prob_").to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(table["probability"], probs.max(axis=1))


def test_classifies_a_cwru_file_and_csvs_of_samples_and_of_windows(model_uri, tmp_path):
    mat = write_mat(tmp_path, 1300)
    check_table(predict_file(mat, model_uri), rows=5)  # 1300 samples: windows start at 0, 256, ..., 1024
    check_table(predict_file(mat, model_uri, hop=128), rows=9)

    samples = tmp_path / "samples.csv"
    samples.write_text("acceleration\n" + "\n".join(f"{x:.6f}" for x in np.sin(np.arange(700) / 5)))
    check_table(predict_file(samples, model_uri), rows=2)  # a header row is skipped

    windows = np.random.default_rng(1).standard_normal((3, WINDOW)).astype(np.float32)
    rows = tmp_path / "windows.csv"
    np.savetxt(rows, windows, delimiter=",")
    table = predict_file(rows, model_uri)
    check_table(table, rows=3)
    direct = mlflow.pyfunc.load_model(model_uri).predict(np.loadtxt(rows, delimiter=",", dtype=np.float32))
    assert table["class"].tolist() == direct["class"].tolist()  # rows are windows, in file order


def write_mixed_folder(folder: Path) -> Path:
    """Four recordings of one pump as users keep them: a .wav (which states its rate), a .npy, a .parquet and a
    CWRU .mat."""
    folder.mkdir()
    rng = np.random.default_rng(7)
    scipy.io.wavfile.write(folder / "pump_a.wav", RATE, (0.1 * rng.standard_normal(900)).astype(np.float32))
    np.save(folder / "pump_b.npy", rng.standard_normal(700))
    pd.DataFrame({"acceleration": rng.standard_normal(600)}).to_parquet(folder / "pump_c.parquet")
    write_mat(folder, 1300)
    return folder


def test_a_folder_gets_one_diagnosis_per_recording(model_uri, tmp_path):
    found = diagnose(write_mixed_folder(tmp_path / "pumps"), model_uri)

    assert found.recordings["recording"].tolist() == ["105.mat", "pump_a.wav", "pump_b.npy", "pump_c.parquet"]
    assert found.recordings["windows"].tolist() == [5, 3, 2, 2]
    for row in found.recordings.itertuples():
        mine = found.windows[found.windows["recording"] == row.recording]
        assert row.diagnosis == mine["class"].mode()[0] and row.agreement == (mine["class"] == row.diagnosis).mean()
        assert row.probability == pytest.approx(mine[f"prob_{row.diagnosis}"].mean())

    figures = write_figures(found, tmp_path / "diagnosis.html", bearing="nsk_6203")
    assert [f.name for f in figures] == [
        "diagnosis-0-105.mat.html",
        "diagnosis-1-pump_a.wav.html",
        "diagnosis-2-pump_b.npy.html",
        "diagnosis-3-pump_c.parquet.html",
    ]
    assert "BPFI ×1" in figures[0].read_text() and "105.mat" in figures[0].read_text()
    [png] = write_figures(diagnose(tmp_path / "pumps" / "105.mat", model_uri), tmp_path / "one.png")
    assert png == tmp_path / "one.png" and png.read_bytes().startswith(b"\x89PNG")
    with pytest.raises(PredictError, match="figure='x.svg': must end in .html or .png"):
        write_figures(found, "x.svg")
    with pytest.raises(PredictError, match="bearing='9/1': "):
        write_figures(found, tmp_path / "d.html", bearing="9/1")


def test_the_bearing_named_is_the_one_the_model_reads_the_recordings_in(model_uri, tmp_path):
    recording = write_mixed_folder(tmp_path / "pumps") / "105.mat"
    own = diagnose(recording, model_uri).windows.filter(like="prob_").to_numpy()
    fan_end = diagnose(recording, model_uri, bearing="nsk_6203").windows.filter(like="prob_").to_numpy()
    assert not np.allclose(own, fan_end)
    with pytest.raises(PredictError, match="bearing='9/1': "):
        diagnose(recording, model_uri, bearing="9/1")


def test_a_manifest_is_diagnosed_with_its_speeds_and_labels(model_uri, tmp_path):
    folder = write_mixed_folder(tmp_path / "pumps")
    manifest = folder / "manifest.csv"
    manifest.write_text("path,label,rpm,sample_rate\npump_a.wav,normal,1500,12000\npump_b.npy,inner,1800,24000\n")

    found = diagnose(manifest, model_uri)

    assert found.recordings["recording"].tolist() == ["pump_a.wav", "pump_b.npy"]
    assert found.recordings["label"].tolist() == ["normal", "inner"]
    assert [i.shaft_hz for i in found.inputs] == [25.0, 30.0]
    assert found.recordings["windows"].tolist() == [3, 1]  # 700 samples at 24 kHz are 350 at the model's 12 kHz


@pytest.mark.slow
def test_command_line_uses_the_champion_and_prints_one_diagnosis_per_recording(model_uri, mlflow_store, tmp_path):
    version = mlflow.register_model(model_uri, "av-pino").version
    mlflow.MlflowClient().set_registered_model_alias("av-pino", "champion", version)
    folder = write_mixed_folder(tmp_path / "pumps")
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_store, "OMP_NUM_THREADS": "1"}

    def cli(*args: str) -> subprocess.CompletedProcess:
        """`python -m pipeline.predict <args>`, forked from a warm interpreter (tests/entry_zygote.py)."""
        return run_entry_point("predict", *args, env=env, folder=tmp_path)

    result = cli(f"input={folder}", f"output={tmp_path / 'diagnoses.csv'}", f"figure={tmp_path / 'pumps.png'}")
    assert result.returncode == 0, result.stderr[-2000:]
    header, *rows = result.stdout.strip().splitlines()
    assert header.split() == ["recording", "diagnosis", "probability", "agreement", "windows"]
    assert [row.split()[0] for row in rows] == ["105.mat", "pump_a.wav", "pump_b.npy", "pump_c.parquet"]
    assert {row.split()[1] for row in rows} <= set(CLASS_NAMES)
    written = pd.read_csv(tmp_path / "diagnoses.csv")
    assert written["recording"].tolist() == ["105.mat", "pump_a.wav", "pump_b.npy", "pump_c.parquet"]
    assert sorted(p.name for p in tmp_path.glob("pumps-*.png")) == [
        "pumps-0-105.mat.png",
        "pumps-1-pump_a.wav.png",
        "pumps-2-pump_b.npy.png",
        "pumps-3-pump_c.parquet.png",
    ]

    per_window = cli(f"input={folder / '105.mat'}", "--windows", "output=null")
    assert per_window.returncode == 0, per_window.stderr[-2000:]
    header, *rows = per_window.stdout.strip().splitlines()
    assert header.split() == ["window", "recording", "class", "probability", "uncertainty"]
    assert [row.split()[0] for row in rows] == ["0", "1", "2", "3", "4"]

    missing = cli(f"input={tmp_path / 'missing.mat'}")
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.strip().endswith(f"predict: {tmp_path / 'missing.mat'}: no such file")


def test_a_request_says_at_which_speed_and_in_which_bearing_its_windows_were_recorded(model_uri):
    """The model reads fault lines in the bearing's fault orders, so speed and bearing are part of the request;
    without them the model uses the training data's typical speed and its bearing, recorded in its signature."""
    model = mlflow.pyfunc.load_model(model_uri)
    defaults = {p.name: p.default for p in model.metadata.signature.params.params}
    assert defaults == {"shaft_hz": pytest.approx(29.95), "bearing": "9/0.3126/1.537/0"}
    windows = np.random.default_rng(0).standard_normal((3, WINDOW)).astype(np.float32)
    default = model.predict(windows).filter(like="prob_").to_numpy()
    for params in ({"shaft_hz": 20.0}, {"bearing": "nsk_6203"}, {"shaft_hz": 25, "bearing": "8/0.235/1.245/0"}):
        assert not np.allclose(default, model.predict(windows, params=params).filter(like="prob_").to_numpy()), params
    named = model.predict(windows, params={"bearing": "skf_6205"}).filter(like="prob_").to_numpy()
    np.testing.assert_allclose(named, default, rtol=1e-5)
    with pytest.raises(MlflowException, match="params.shaft_hz must be a positive number of Hz"):
        model.predict(windows, params={"shaft_hz": -1.0})
    with pytest.raises(MlflowException, match="ball_diameter_in .* must be smaller than pitch_diameter_in"):
        model.predict(windows, params={"bearing": "8/1.5/1.2/0"})
