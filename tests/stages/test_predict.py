"""`pipeline.predict` with a tiny untrained model logged into a private store: a CWRU-layout .mat, CSVs of samples
and of windows, the command line with the champion alias, and the input errors a user can make."""

import os
import re
import subprocess
from pathlib import Path

import mlflow
import numpy as np
import pytest
import scipy.io
import torch
from mlflow.exceptions import MlflowException

from pipeline.config import DataConfig, ExperimentConfig, ModelConfig
from pipeline.data.classes import CLASS_NAMES
from pipeline.stages.predict import PredictError, predict_file, read_windows
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


@pytest.mark.slow
def test_command_line_uses_the_champion_and_prints_a_table_and_a_summary(model_uri, mlflow_store, tmp_path):
    version = mlflow.register_model(model_uri, "av-pino").version
    mlflow.MlflowClient().set_registered_model_alias("av-pino", "champion", version)
    mat = write_mat(tmp_path, 1300)
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_store, "OMP_NUM_THREADS": "1"}

    def cli(*args: str) -> subprocess.CompletedProcess:
        """`python -m pipeline.predict <args>`, forked from a warm interpreter (tests/entry_zygote.py)."""
        return run_entry_point("predict", *args, env=env, folder=tmp_path)

    result = cli(f"input={mat}")
    assert result.returncode == 0, result.stderr[-2000:]
    header, *rows, last = result.stdout.strip().splitlines()
    assert header.split() == ["window", "class", "probability", "uncertainty"]
    assert [row.split()[0] for row in rows] == ["0", "1", "2", "3", "4"]
    assert {row.split()[1] for row in rows} <= set(CLASS_NAMES)
    assert last.startswith("5 windows: majority class ")

    missing = cli(f"input={tmp_path / 'missing.mat'}")
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.strip().endswith(f"predict: {tmp_path / 'missing.mat'}: no such file")


def test_unusable_input_is_a_clear_error_naming_the_file(mlflow_store, tmp_path):
    def fails(message, call, *args, **kwargs):
        with pytest.raises(PredictError, match=re.escape(message)):
            call(*args, **kwargs)

    # Checked before any model is loaded (the temp store has none).
    (tmp_path / "notes.txt").write_text("1\n")
    (tmp_path / "samples.csv").write_text("1\n2\n")
    fails(f"{tmp_path / 'absent.csv'}: no such file", predict_file, tmp_path / "absent.csv")
    fails(f"{tmp_path / 'notes.txt'}: unknown extension '.txt'; expected .mat", predict_file, tmp_path / "notes.txt")
    fails("hop=0: must be a positive whole number", predict_file, tmp_path / "samples.csv", hop=0)

    # Reading needs the model's window length only.
    def read(path):
        return read_windows(path, WINDOW, RATE, hop=WINDOW)

    short = tmp_path / "short.csv"
    short.write_text("\n".join(["0.5"] * 100))
    for path in (short, write_mat(tmp_path, 100)):
        fails(f"{path}: 100 samples, too short for one window of 256", read, path)
    cases = {
        "text.csv": ("x\n1.0\nabc\n2.0\n", "row 3, column 1 holds 'abc', not a finite number"),
        "gap.csv": ("1.0,2.0\n3.0,\n", "row 2, column 2 holds '', not a finite number"),
        "infinite.csv": ("1.0\ninf\n", "row 2, column 1 holds 'inf', not a finite number"),
        "wide.csv": ("1,2,3\n4,5,6\n", "3 columns; expected 1 (a signal) or 256 (one window per row)"),
        "empty.csv": ("", "the CSV holds no samples"),
    }
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        fails(f"{tmp_path / name}: {message}", read, tmp_path / name)
    not_cwru = tmp_path / "recording.mat"  # neither its name nor its keys say which CWRU recording it is
    scipy.io.savemat(not_cwru, {"vibration": np.zeros((1300, 1))})
    fails(f"{not_cwru}: no drive-end channel", read, not_cwru)


def test_a_request_may_say_at_which_shaft_speed_its_windows_were_recorded(model_uri):
    """The envelope view reads fault lines in shaft orders, so the speed is part of the request; without it the
    model uses the training data's typical speed, recorded in the model's signature."""
    model = mlflow.pyfunc.load_model(model_uri)
    assert {p.name: p.default for p in model.metadata.signature.params.params} == {"shaft_hz": pytest.approx(29.95)}
    windows = np.random.default_rng(0).standard_normal((3, WINDOW)).astype(np.float32)
    default, slower = model.predict(windows), model.predict(windows, params={"shaft_hz": 20.0})
    assert not np.allclose(default.filter(like="prob_").to_numpy(), slower.filter(like="prob_").to_numpy())
    with pytest.raises(MlflowException, match="params.shaft_hz must be a positive number of Hz"):
        model.predict(windows, params={"shaft_hz": -1.0})


def test_a_cwru_file_is_read_at_the_shaft_speed_it_records(tmp_path):
    windows, shaft_hz = read_windows(write_mat(tmp_path, 1300), WINDOW, RATE, hop=WINDOW)
    assert windows.shape == (5, WINDOW) and shaft_hz == pytest.approx(1797.0 / 60)
    csv = tmp_path / "samples.csv"
    csv.write_text("\n".join(["0.5"] * 300))
    assert read_windows(csv, WINDOW, RATE, hop=WINDOW)[1] is None  # a CSV says nothing: the model's default
