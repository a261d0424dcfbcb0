"""One signal out of each file type users keep recordings in, and errors that say what is wrong with a file."""

import re

import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.io.wavfile

from pipeline.data.signal_files import SignalFileError, read_signal

SIGNAL = np.sin(np.linspace(0, 40 * np.pi, 2000)) * 0.5


def test_every_format_gives_the_same_samples(tmp_path):
    np.save(tmp_path / "a.npy", SIGNAL)
    pd.DataFrame({"acc": SIGNAL}).to_csv(tmp_path / "a.csv", index=False)
    scipy.io.savemat(tmp_path / "a.mat", {"acc": SIGNAL})
    scipy.io.wavfile.write(tmp_path / "a.wav", 24000, SIGNAL.astype(np.float32))
    for name in ("a.npy", "a.csv", "a.mat"):
        samples, rate = read_signal(tmp_path / name)
        np.testing.assert_allclose(samples, SIGNAL, rtol=1e-12)
        assert rate is None  # only a .wav states its rate
    samples, rate = read_signal(tmp_path / "a.wav")
    np.testing.assert_allclose(samples, SIGNAL, atol=1e-7)
    assert rate == 24000


def test_integer_wav_is_scaled_to_plus_minus_one(tmp_path):
    scipy.io.wavfile.write(tmp_path / "pcm.wav", 12000, (SIGNAL * 32767).astype(np.int16))
    samples, _ = read_signal(tmp_path / "pcm.wav")
    np.testing.assert_allclose(samples, SIGNAL, atol=1 / 32768 * 1.5)


def test_the_variable_picks_a_channel_column_or_mat_variable(tmp_path):
    pd.DataFrame({"time": np.arange(2000) / 12000, "acc": SIGNAL}).to_csv(tmp_path / "two.csv", index=False)
    scipy.io.savemat(tmp_path / "two.mat", {"X097_DE_time": SIGNAL, "X097_FE_time": -SIGNAL})
    scipy.io.wavfile.write(tmp_path / "stereo.wav", 12000, np.stack([SIGNAL, -SIGNAL], axis=1).astype(np.float32))
    np.testing.assert_allclose(read_signal(tmp_path / "two.csv", "acc")[0], SIGNAL)
    np.testing.assert_allclose(read_signal(tmp_path / "two.mat", "X097_FE_time")[0], -SIGNAL)
    np.testing.assert_allclose(read_signal(tmp_path / "stereo.wav", "1")[0], -SIGNAL, atol=1e-7)


@pytest.mark.parametrize(
    "name, write, variable, message",
    [
        (
            "two.csv",
            lambda p: pd.DataFrame({"t": SIGNAL, "acc": SIGNAL}).to_csv(p, index=False),
            None,
            "2 columns ['t', 'acc']; the manifest's variable must name the one to read",
        ),
        (
            "two.csv",
            lambda p: pd.DataFrame({"t": SIGNAL, "acc": SIGNAL}).to_csv(p, index=False),
            "velocity",
            "no column 'velocity'",
        ),
        ("two.mat", lambda p: scipy.io.savemat(p, {"a": SIGNAL, "b": SIGNAL}), None, "2 numeric variables ['a', 'b']"),
        ("stereo.npy", lambda p: np.save(p, np.zeros((100, 3))), None, "3 channels"),
        ("gap.npy", lambda p: np.save(p, np.array([0.0, np.nan, 1.0])), None, "1 sample(s) not a finite number"),
        ("broken.mat", lambda p: p.write_bytes(b"MATLAB 5.0 but cut short"), None, "unreadable .mat file"),
        ("signal.txt", lambda p: p.write_text("1\n2\n"), None, "unsupported file type '.txt'"),
    ],
)
def test_a_bad_file_says_what_is_wrong(tmp_path, name, write, variable, message):
    write(tmp_path / name)
    with pytest.raises(SignalFileError, match=re.escape(message)):
        read_signal(tmp_path / name, variable)
