"""CWRU reader on small .mat files written here in the exact CWRU layout ([N, 1] float64, RPM as [[rpm]]), named
the way CWRU and common copies name them; and on the real recordings (`cwru_dir`)."""

from pathlib import Path

import numpy as np
import pytest
import scipy.io

from pipeline.data.bearing import NOMINAL_RPM
from pipeline.data.cwru import CwruError, CwruIgnored, read_cwru_file, read_cwru_folder


def write_cwru(
    folder: Path,
    number: int,
    n: int = 2048,
    name: str | None = None,
    rpm: int | None = 1797,
    signal: np.ndarray | None = None,
    keys: tuple[int, ...] | None = None,
) -> Path:
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
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, content)
    return path


@pytest.mark.parametrize(
    "number, label, load",
    [
        (105, "inner_007", 0),
        (171, "inner_014", 2),
        (212, "inner_021", 3),
        (118, "ball_007", 0),
        (186, "ball_014", 1),
        (224, "ball_021", 2),
        (130, "outer_007", 0),
        (200, "outer_014", 3),
        (235, "outer_021", 1),
    ],
)
def test_fault_files_map_to_class_and_load(tmp_path, number, label, load):
    path = write_cwru(tmp_path, number, rpm=1772)
    record = read_cwru_file(path)
    expected = scipy.io.loadmat(path)[f"X{number:03d}_DE_time"].ravel()
    assert (record.label, record.load_hp, record.rpm, record.rpm_source) == (label, load, 1772.0, "file")
    assert record.signal.dtype == np.float32 and record.signal.shape == (2048,)
    np.testing.assert_allclose(record.signal, expected, rtol=1e-6)
    assert record.sample_rate == 12000 and record.key == f"X{number:03d}_DE_time" and record.number == number
    assert record.source == str(path) and record.notes == []


def test_long_names_ending_in_the_number_are_accepted(tmp_path):
    record = read_cwru_file(write_cwru(tmp_path, 209, name="IR021_0_209.mat"))
    assert (record.label, record.load_hp) == ("inner_021", 0)


@pytest.mark.parametrize(
    "name, number, label, load",
    [
        ("IR007_0.mat", 105, "inner_007", 0),
        ("B014_2.mat", 187, "ball_014", 2),
        ("OR021@6_3.mat", 237, "outer_021", 3),
        ("Normal_1.mat", 98, "normal", 1),
        ("12k_Drive_End_OR007@6_1_131.mat", 131, "outer_007", 1),
        ("b021_0.MAT", 222, "ball_021", 0),
    ],
)
def test_descriptive_names_of_common_copies(tmp_path, name, number, label, load):
    """The name gives class and load; the file number comes from the key inside."""
    record = read_cwru_file(write_cwru(tmp_path, number, name=name, n=8192))
    assert (record.label, record.load_hp, record.number) == (label, load, number)
    assert record.key == f"X{number:03d}_DE_time" and record.notes == []


@pytest.mark.parametrize("name", ["recording.mat", "IR014-2.mat"])
def test_a_name_without_class_or_number_takes_both_from_the_key(tmp_path, name):
    record = read_cwru_file(write_cwru(tmp_path, 171, name=name))
    assert (record.label, record.load_hp, record.number) == ("inner_014", 2, 171)


def test_a_normal_copy_holding_its_neighbours_key_picks_its_own(tmp_path):
    record = read_cwru_file(write_cwru(tmp_path, 99, name="Normal_2.mat", n=8192, keys=(98, 99)))
    assert (record.label, record.load_hp, record.key) == ("normal", 2, "X099_DE_time")


@pytest.mark.parametrize(
    "name, number, reason",
    [
        (
            "IR007_0.mat",
            106,
            "the name says inner_007 at 0 HP but drive-end key X106_DE_time, file number 106 is inner_007 at 1 HP",
        ),
        ("B007_1_105.mat", 105, "the name says ball_007 at 1 HP but file number 105 is inner_007 at 0 HP"),
    ],
)
def test_a_name_and_a_number_that_disagree_make_a_bad_file(tmp_path, name, number, reason):
    path = write_cwru(tmp_path, number, name=name)
    with pytest.raises(CwruError) as err:
        read_cwru_file(path)
    assert not isinstance(err.value, CwruIgnored) and str(err.value) == f"{path}: {reason}"


@pytest.mark.parametrize(
    "name, number, reason",
    [
        ("OR007@3_0.mat", 144, "outer race @3 o'clock; the ten classes hold outer race @6 only"),
        ("OR021@12_2.mat", 260, "outer race @12 o'clock"),
        ("IR028_0.mat", 3001, "a 0.028 in fault"),
        (
            "B007_0.mat",
            122,
            "drive-end key X122_DE_time, file number 122 is not a 12 kHz drive-end recording of the ten",
        ),
        ("278.mat", 278, "file number 278 is not a 12 kHz drive-end recording of the ten classes"),
        ("OR007_0.mat", 144, "file number 144 is not"),  # no clock in the name: the key's number decides
    ],
)
def test_files_of_other_cwru_sets_are_recognised(tmp_path, name, number, reason):
    """Outer race @3/@12, 0.028 in, 48 kHz (122: ball 0.007 in at 48 kHz) and fan-end (278) recordings."""
    with pytest.raises(CwruIgnored, match=reason.replace("(", r"\(").replace(")", r"\)")):
        read_cwru_file(write_cwru(tmp_path, number, name=name))


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
    bad_load = write_cwru(tmp_path, 105, name="IR007_5.mat")
    no_de = tmp_path / "106.mat"
    scipy.io.savemat(no_de, {"X106_FE_time": np.zeros((2048, 1)), "X106RPM": np.array([[1772]])})
    two_others = write_cwru(tmp_path, 107, keys=(108, 109))
    short = write_cwru(tmp_path, 118, n=1000)
    nan = write_cwru(tmp_path, 119, signal=np.r_[np.zeros(2000), np.nan, np.inf, np.zeros(46)])
    cases = [
        (corrupt, "cannot read"),
        (bad_load, "load 5 HP"),
        (no_de, "no drive-end channel"),
        (two_others, "drive-end keys: X108_DE_time, X109_DE_time"),
        (short, "fewer than 1024"),
        (nan, "2 NaN/inf"),
    ]
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

    folder = read_cwru_folder(tmp_path, strict=False)
    assert sorted(r.source for r in folder.records) == sorted(str(p) for p in good)
    assert [Path(p["file"]).name for p in folder.skipped] == ["169.mat", "170.mat", "IR007_0_105.mat"]
    assert all(set(p) == {"file", "error"} and p["error"] for p in folder.skipped)


def test_a_tree_of_descriptive_copies_with_other_sets_reads_in_a_strict_run(tmp_path):
    """Nested folders as downloads arrange them; files of other CWRU sets are listed, never fatal."""
    write_cwru(tmp_path, 97, name="Normal/Normal_0.mat", n=8192)
    write_cwru(tmp_path, 105, name="12k_Drive_End/IR007/IR007_0.mat")
    write_cwru(tmp_path, 186, name="12k_Drive_End/B014_1.mat")
    write_cwru(tmp_path, 237, name="12k_Drive_End/OR021@6_3.mat")
    write_cwru(tmp_path, 144, name="12k_Drive_End/OR007@3_0.mat")
    write_cwru(tmp_path, 3005, name="12k_Drive_End/B028_0.mat")
    write_cwru(tmp_path, 109, name="48k_Drive_End/IR007_0.mat")
    write_cwru(tmp_path, 133, name="12k_Drive_End/OR007@6_3.mat", rpm=None)

    folder = read_cwru_folder(tmp_path)
    assert [(r.label, r.load_hp) for r in folder.records] == [  # in the sorted order of relative paths
        ("ball_014", 1),
        ("inner_007", 0),
        ("outer_007", 3),
        ("outer_021", 3),
        ("normal", 0),
    ]
    assert folder.skipped == []
    ignored = {str(Path(i["file"]).relative_to(tmp_path)): i["reason"] for i in folder.ignored}
    assert list(ignored) == ["12k_Drive_End/B028_0.mat", "12k_Drive_End/OR007@3_0.mat", "48k_Drive_End/IR007_0.mat"]
    assert "0.028 in" in ignored["12k_Drive_End/B028_0.mat"] and "@3" in ignored["12k_Drive_End/OR007@3_0.mat"]
    assert "file number 109 is not a 12 kHz drive-end recording" in ignored["48k_Drive_End/IR007_0.mat"]
    missing_rpm = folder.records[2]
    assert missing_rpm.rpm == NOMINAL_RPM[3] and missing_rpm.rpm_source == "nominal"
    assert missing_rpm.notes == ["no X133RPM key; used nominal 1730 rpm for load 3 HP"]


def test_empty_or_missing_folder_is_an_error(tmp_path):
    with pytest.raises(CwruError, match="holds no .mat files"):
        read_cwru_folder(tmp_path)
    with pytest.raises(CwruError, match="does not exist"):
        read_cwru_folder(tmp_path / "nowhere")
    (tmp_path / "105.mat").write_bytes(b"broken")
    write_cwru(tmp_path, 300)
    with pytest.raises(CwruError, match=r"no readable recording of the ten classes among 2 file\(s\) \(1 of other"):
        read_cwru_folder(tmp_path, strict=False)


# Speeds CWRU measured for each recording of the real folder; the normal baseline exists at 0 HP only.
REAL_RPM = {
    97: 1796,
    105: 1797,
    106: 1772,
    107: 1748,
    108: 1721,
    118: 1796,
    119: 1772,
    120: 1748,
    121: 1722,
    130: 1796,
    131: 1773,
    132: 1750,
    133: 1725,
    169: 1796,
    170: 1774,
    171: 1752,
    172: 1728,
    185: 1796,
    186: 1772,
    187: 1749,
    188: 1724,
    197: 1796,
    198: 1772,
    199: 1749,
    200: 1723,
    209: 1797,
    210: 1774,
    211: 1752,
    212: 1728,
    222: 1796,
    223: 1774,
    224: 1754,
    225: 1729,
    234: 1796,
    235: 1771,
    236: 1748,
    237: 1721,
}
REAL_CLASSES = {
    "normal": [97],
    "inner_007": [105, 106, 107, 108],
    "ball_007": [118, 119, 120, 121],
    "outer_007": [130, 131, 132, 133],
    "inner_014": [169, 170, 171, 172],
    "ball_014": [185, 186, 187, 188],
    "outer_014": [197, 198, 199, 200],
    "inner_021": [209, 210, 211, 212],
    "ball_021": [222, 223, 224, 225],
    "outer_021": [234, 235, 236, 237],
}


def test_every_real_recording_reads_with_its_class_load_and_speed(cwru_dir):
    folder = read_cwru_folder(cwru_dir)
    assert folder.skipped == [] and folder.ignored == [] and len(folder.records) == 37
    expected = {number: (label, numbers.index(number)) for label, numbers in REAL_CLASSES.items() for number in numbers}
    for record in folder.records:
        assert Path(record.source).name == f"{record.number}.mat" and record.notes == []
        assert (record.label, record.load_hp) == expected[record.number]
        assert (record.rpm, record.rpm_source, record.sample_rate) == (REAL_RPM[record.number], "file", 12000)
        assert record.signal.dtype == np.float32
        assert record.number == 97 or 121_000 <= len(record.signal) <= 123_000


def test_the_real_normal_baseline_is_decimated_from_48_to_12_khz(cwru_dir):
    record = read_cwru_file(cwru_dir / "97.mat")
    raw = scipy.io.loadmat(cwru_dir / "97.mat")["X097_DE_time"].ravel()
    assert len(raw) == 243_938 and len(record.signal) == -(-243_938 // 4)
    assert record.signal.std() == pytest.approx(raw.std(), rel=0.05)  # a healthy bearing has little above 6 kHz
