"""What `pipeline.predict` reads, checked before any model is loaded: the recording formats `data=files` reads,
a CWRU file at the speed it records, and the input errors a user can make, each naming the file."""

import re

import numpy as np
import pytest
import scipy.io

from pipeline.stages.predict import predict_file
from pipeline.stages.predict_inputs import PredictError, predict_inputs
from tests.stages.test_predict import RATE, WINDOW, write_mat


def read(path, **settings):
    """The one recording of `path`, at the model's window and rate."""
    [recording] = predict_inputs(path, WINDOW, RATE, **settings)
    return recording


def test_unusable_input_is_a_clear_error_naming_the_file(mlflow_store, tmp_path):
    def fails(message, call, *args, **kwargs):
        with pytest.raises(PredictError, match=re.escape(message)):
            call(*args, **kwargs)

    # Checked before any model is loaded (the temp store has none).
    (tmp_path / "notes.txt").write_text("1\n")
    (tmp_path / "samples.csv").write_text("1\n2\n")
    fails(f"{tmp_path / 'absent.csv'}: no such file", predict_file, tmp_path / "absent.csv")
    fails(
        f"{tmp_path / 'notes.txt'}: unknown extension '.txt'; expected one of .wav, .npy",
        predict_file,
        tmp_path / "notes.txt",
    )
    fails("hop=0: must be a positive whole number", predict_file, tmp_path / "samples.csv", hop=0)

    # Reading needs the model's window length and rate only.
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


def test_a_cwru_file_is_read_at_the_shaft_speed_it_records(tmp_path):
    cwru = read(write_mat(tmp_path, 1300))
    assert cwru.samples.shape == (1300,) and cwru.shaft_hz == pytest.approx(1797.0 / 60)
    csv = tmp_path / "samples.csv"
    csv.write_text("\n".join(["0.5"] * 300))
    assert read(csv).shaft_hz is None  # a CSV says nothing: the model's default
    assert read(csv, rpm=1500).shaft_hz == 25.0  # unless the user does


def test_a_file_at_another_rate_is_resampled_to_the_models(tmp_path):
    np.save(tmp_path / "fast.npy", np.sin(np.arange(2400) / 10))
    recording = read(tmp_path / "fast.npy", sample_rate=2 * RATE)
    assert recording.samples.shape == (1200,) and "resampled from 24000 Hz to 12000" in recording.notes[0]
