"""CWRU reader on small .mat files written here in the exact CWRU layout ([N, 1] float64, RPM as [[rpm]])."""
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from pipeline.data.bearing import NOMINAL_RPM
from pipeline.data.cwru import CwruError, read_cwru_file, read_cwru_folder


def write_cwru(folder: Path, number: int, n: int = 2048, name: str | None = None, rpm: int | None = 1797,
               signal: np.ndarray | None = None, keys: tuple[int, ...] | None = None) -> Path:
    """A CWRU-style file: DE/FE/BA channels and RPM for each recording number in `keys` (default: its own)."""
    rng = np.random.default_rng(number)
    content = {}
    for key in keys or (number,):
        de = rng.standard_normal(n) if signal is None or key != number else signal
        content[f"X{key:03d}_DE_time"] = np.asarray(de, dtype=np.float64).reshape(-1, 1)
        content[f"X{key:03d}_FE_time"] = rng.standard_normal((n, 1))
        content[f"X{key:03d}_BA_time"] = rng.standard_normal((n, 1))
        if rpm is not None:
            content[f"X{key:03d}RPM"] = np.array([[rpm]], dtype=np.float64)
    path = folder / (name or f"{number}.mat")
    scipy.io.savemat(path, content)
    return path


@pytest.mark.parametrize("number, label, load", [
    (105, "inner_007", 0), (171, "inner_014", 2), (212, "inner_021", 3),
    (118, "ball_007", 0), (186, "ball_014", 1), (224, "ball_021", 2),
    (130, "outer_007", 0), (200, "outer_014", 3), (235, "outer_021", 1),
])
def test_fault_files_map_to_class_and_load(tmp_path, number, label, load):
    path = write_cwru(tmp_path, number, rpm=1772)
    record = read_cwru_file(path)
    expected = scipy.io.loadmat(path)[f"X{number:03d}_DE_time"].ravel()
    assert (record.label, record.load_hp, record.rpm, record.rpm_source) == (label, load, 1772.0, "file")
    assert record.signal.dtype == np.float32 and record.signal.shape == (2048,)
    np.testing.assert_allclose(record.signal, expected, rtol=1e-6)
    assert record.sample_rate == 12000 and record.key == f"X{number:03d}_DE_time"
    assert record.source == str(path) and record.notes == []


def test_long_names_ending_in_the_number_are_accepted(tmp_path):
    record = read_cwru_file(write_cwru(tmp_path, 209, name="IR021_0_209.mat"))
    assert (record.label, record.load_hp) == ("inner_021", 0)


def test_normal_is_decimated_from_48khz_with_an_anti_alias_filter(tmp_path):
    fs, n = 48000, 48000
    t = np.arange(n) / fs
    low, high = np.sin(2 * np.pi * 1000 * t), np.sin(2 * np.pi * 9000 * t)  # 9 kHz would alias to 3 kHz
    record = read_cwru_file(write_cwru(tmp_path, 98, n=n, signal=low + high))
    assert (record.label, record.load_hp) == ("normal", 1)
    assert record.signal.shape == (n // 4,)
    middle = record.signal[600:-600]  # 10800 samples: 1 kHz and 3 kHz fall on FFT bins
    amplitude = 2 * np.abs(np.fft.rfft(middle)) / len(middle)
    freqs = np.fft.rfftfreq(len(middle), 1 / 12000)
    assert amplitude[np.argmin(abs(freqs - 1000))] == pytest.approx(1.0, abs=0.02)
    assert amplitude[np.argmin(abs(freqs - 3000))] < 0.01


def test_key_of_a_neighbouring_recording_is_ignored(tmp_path):
    path = write_cwru(tmp_path, 99, n=8192, keys=(98, 99), signal=np.full(8192, 5.0))
    record = read_cwru_file(path)
    assert record.key == "X099_DE_time" and record.notes == []
    np.testing.assert_allclose(record.signal[100:-100], 5.0, rtol=1e-3)


def test_a_lone_key_of_another_number_is_guessed_with_a_note(tmp_path):
    record = read_cwru_file(write_cwru(tmp_path, 120, keys=(121,)))
    assert record.key == "X121_DE_time" and record.rpm_source == "file"
    assert len(record.notes) == 1 and "guessed 'X121_DE_time'" in record.notes[0]


def test_missing_rpm_falls_back_to_the_nominal_speed(tmp_path):
    record = read_cwru_file(write_cwru(tmp_path, 133, rpm=None))
    assert record.rpm == NOMINAL_RPM[3] and record.rpm_source == "nominal"
    assert "nominal" in record.notes[0]


def test_errors_name_the_file_and_the_reason(tmp_path):
    corrupt = tmp_path / "105.mat"
    corrupt.write_bytes(b"MATLAB 5.0 but then garbage" * 10)
    unknown = write_cwru(tmp_path, 300)
    no_de = tmp_path / "106.mat"
    scipy.io.savemat(no_de, {"X106_FE_time": np.zeros((2048, 1)), "X106RPM": np.array([[1772]])})
    two_others = write_cwru(tmp_path, 107, keys=(108, 109))
    short = write_cwru(tmp_path, 118, n=1000)
    nan = write_cwru(tmp_path, 119, signal=np.r_[np.zeros(2000), np.nan, np.inf, np.zeros(46)])
    cases = [(corrupt, "cannot read"), (unknown, "file number 300"), (no_de, "no drive-end channel"),
             (two_others, "drive-end keys: X108_DE_time, X109_DE_time"), (short, "fewer than 1024"),
             (nan, "2 NaN/inf")]
    for path, reason in cases:
        with pytest.raises(CwruError, match=reason) as err:
            read_cwru_file(path)
        assert str(path) in str(err.value)
    assert read_cwru_file(short, min_samples=1000).signal.size == 1000


def test_folder_strict_lists_every_bad_file_lenient_skips_them(tmp_path):
    good = [write_cwru(tmp_path, 105), write_cwru(tmp_path, 97, n=8192)]
    (tmp_path / "169.mat").write_bytes(b"not a mat file")
    write_cwru(tmp_path, 170, n=100)
    write_cwru(tmp_path, 105, name="IR007_0_105.mat")  # the same recording twice
    (tmp_path / "readme.txt").write_text("ignored")

    with pytest.raises(CwruError) as err:
        read_cwru_folder(tmp_path)
    message = str(err.value)
    assert "3 bad file(s)" in message and "169.mat" in message and "170.mat" in message
    assert "IR007_0_105.mat" in message and "same recording" in message

    records, problems = read_cwru_folder(tmp_path, strict=False)
    assert sorted(r.source for r in records) == sorted(str(p) for p in good)
    assert [Path(p["file"]).name for p in problems] == ["169.mat", "170.mat", "IR007_0_105.mat"]
    assert all(set(p) == {"file", "error"} and p["error"] for p in problems)


def test_empty_or_missing_folder_is_an_error(tmp_path):
    with pytest.raises(CwruError, match="holds no .mat files"):
        read_cwru_folder(tmp_path)
    with pytest.raises(CwruError, match="does not exist"):
        read_cwru_folder(tmp_path / "nowhere")
    (tmp_path / "105.mat").write_bytes(b"broken")
    with pytest.raises(CwruError, match="no readable recording"):
        read_cwru_folder(tmp_path, strict=False)
