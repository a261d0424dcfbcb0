"""One signal out of each file type users keep recordings in, and errors that say what is wrong with a file."""

import re

import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.io.wavfile

from pipeline.data.signal_files import SignalFileError, read_number, read_signal
from tests.data.own_recordings import save_mat73, save_tdms

SIGNAL = (np.sin(np.linspace(0, 40 * np.pi, 2000)) * 0.5).astype(np.float32).astype(np.float64)  # as a .wav holds it
TIME = np.arange(2000) / 24000
RIG = {"rig": {"drive_end": {"acc": SIGNAL, "sr": 24000.0, "rpm": 1797.0}, "fan_end": {"acc": -SIGNAL}}}


@pytest.mark.parametrize(
    "name, write, variable",
    [
        ("a.wav", lambda p: scipy.io.wavfile.write(p, 24000, SIGNAL.astype(np.float32)), None),
        ("a.csv", lambda p: pd.DataFrame({"time": TIME, "acc": SIGNAL}).to_csv(p, index=False), "acc"),
        ("a.parquet", lambda p: pd.DataFrame({"time": TIME, "acc": SIGNAL}).to_parquet(p), "acc"),
        ("plain.mat", lambda p: scipy.io.savemat(p, {"acc": SIGNAL[:, None]}), None),
        ("v5.mat", lambda p: scipy.io.savemat(p, RIG), "rig.drive_end.acc"),  # a struct in a struct
        ("v73.mat", lambda p: save_mat73(p, RIG), "rig.drive_end.acc"),  # MATLAB's save -v7.3: HDF5
        ("one.tdms", lambda p: save_tdms(p, {"accel/de": SIGNAL}), None),
        ("two.tdms", lambda p: save_tdms(p, {"accel/de": SIGNAL, "accel/fe": -SIGNAL}), "accel/de"),
    ],
)
def test_each_format_gives_exactly_the_samples_of_its_npy_twin(tmp_path, name, write, variable):
    np.save(tmp_path / "twin.npy", SIGNAL)
    write(tmp_path / name)
    samples, rate = read_signal(tmp_path / name, variable)
    np.testing.assert_array_equal(samples, read_signal(tmp_path / "twin.npy")[0])  # so the same windows
    assert rate == (24000 if name.endswith(".wav") else None)  # only a .wav states its rate


@pytest.mark.parametrize("write", [scipy.io.savemat, save_mat73])
def test_a_rate_or_speed_kept_in_a_mat_field_is_read_as_a_number(tmp_path, write):
    write(tmp_path / "rig.mat", RIG)
    assert read_number(tmp_path / "rig.mat", "rig.drive_end.sr") == 24000.0
    assert read_number(tmp_path / "rig.mat", "rig.drive_end.rpm") == 1797.0
    with pytest.raises(SignalFileError, match=re.escape("'rig.drive_end.acc' is not a single finite number")):
        read_number(tmp_path / "rig.mat", "rig.drive_end.acc")


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


@pytest.mark.parametrize("write", [scipy.io.savemat, save_mat73])
def test_a_bad_struct_path_names_the_fields_where_it_went_wrong(tmp_path, write):
    write(tmp_path / "rig.mat", RIG)
    for variable, message in [
        ("rig.drive_end.gx", "no field 'gx' in 'rig.drive_end'; fields: ['acc', 'rpm', 'sr']"),
        ("rig.drive", "no field 'drive' in 'rig'; fields: ['drive_end', 'fan_end']"),
        ("rig.fan_end", "'rig.fan_end' is a struct, not an array; fields: ['acc']"),
        ("rig.fan_end.acc.x", "'rig.fan_end.acc' is not a struct, so it has no field 'x'"),
        ("bearing.gs", "no variable 'bearing'; variables: ['rig']"),
    ]:
        with pytest.raises(SignalFileError, match=re.escape(message)):
            read_signal(tmp_path / "rig.mat", variable)


def cut_short(write):
    """`write`, then the file cut to half its bytes, as an interrupted copy leaves it."""

    def write_and_cut(path):
        write(path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    return write_and_cut


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
        (
            "two.parquet",
            lambda p: pd.DataFrame({"t": SIGNAL, "acc": SIGNAL}).to_parquet(p),
            "velocity",
            "no column 'velocity'; columns: ['t', 'acc']",
        ),
        ("two.mat", lambda p: scipy.io.savemat(p, {"a": SIGNAL, "b": SIGNAL}), None, "2 numeric variables ['a', 'b']"),
        ("two.mat", lambda p: scipy.io.savemat(p, {"a": SIGNAL, "b": SIGNAL}), "c", "no variable 'c'; variables: ["),
        (
            "matrix.mat",  # MATLAB's [T, 2], stored transposed in HDF5
            lambda p: save_mat73(p, {"both": np.stack([SIGNAL, -SIGNAL], axis=1)}),
            "both",
            "'both' is a matrix of shape [2000, 2]; expected one signal [T]",
        ),
        (
            "two.tdms",
            lambda p: save_tdms(p, {"accel/de": SIGNAL, "accel/fe": SIGNAL}),
            None,
            "2 channels ['accel/de', 'accel/fe']; the manifest's variable must name one as group/channel",
        ),
        (
            "two.tdms",
            lambda p: save_tdms(p, {"accel/de": SIGNAL, "accel/fe": SIGNAL}),
            "de",
            "no channel 'de'; channels (group/channel): ['accel/de', 'accel/fe']",
        ),
        ("stereo.npy", lambda p: np.save(p, np.zeros((100, 3))), None, "3 channels"),
        ("gap.npy", lambda p: np.save(p, np.array([0.0, np.nan, 1.0])), None, "1 sample(s) not a finite number"),
        ("broken.mat", lambda p: p.write_bytes(b"MATLAB 5.0 but cut short"), None, "unreadable .mat file"),
        ("cut.mat", cut_short(lambda p: save_mat73(p, RIG)), "rig.fan_end.acc", "unreadable .mat file (OSError"),
        ("cut.parquet", cut_short(lambda p: pd.DataFrame({"a": SIGNAL}).to_parquet(p)), None, "unreadable .parquet"),
        ("cut.tdms", cut_short(lambda p: save_tdms(p, {"a/b": SIGNAL})), None, "damaged .tdms file (npTDMS: Last"),
        ("signal.txt", lambda p: p.write_text("1\n2\n"), None, "unsupported file type '.txt'"),
    ],
)
def test_a_bad_file_says_what_is_wrong(tmp_path, name, write, variable, message):
    write(tmp_path / name)
    with pytest.raises(SignalFileError, match=re.escape(message)):
        read_signal(tmp_path / name, variable)
