"""Your own recordings (`data.source=files`): a manifest over .wav, .npy, .csv and .mat files becomes a dataset
whose classes are the labels, whose windows carry their recording's speed and bearing, and which every split
can cut; a bad row is named by its line, and nothing half-prepared is left behind."""

import re

import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.signal

from pipeline.config import ConfigError, DataConfig
from pipeline.data.bearing import BEARINGS
from pipeline.data.errors import DatasetError
from pipeline.data.files import read_manifest, read_recordings
from pipeline.data.prepared import config_hash, load_prepared, prepare_dataset
from tests.data.own_recordings import RATE, write_recordings

WINDOW = 512


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return write_recordings(tmp_path_factory.mktemp("own"), duration_s=0.6, recordings_per_load=2)


def files_config(manifest, **overrides) -> DataConfig:
    return DataConfig(source="files", manifest=str(manifest), window=WINDOW, hop=WINDOW, **overrides)


def test_the_labels_become_the_classes_and_each_window_carries_its_speed_and_bearing(manifest, tmp_path):
    dataset = load_prepared(prepare_dataset(files_config(manifest), tmp_path))
    m = dataset.manifest
    assert m["source"] == "files" and m["n_recordings"] == 32
    assert m["class_names"] == ["ball", "inner", "normal", "outer"]  # the labels, sorted
    assert m["class_locations"] == ["ball", "inner", "normal", "outer"]  # from the location column
    assert all(
        r["notes"] == ["resampled from 24000 Hz to 12000 Hz (x1/2, anti-alias filtered)"] for r in m["recordings"]
    )
    table = pd.read_csv(manifest)
    train = dataset.subset("train")
    window, label, conditions = train[0]
    assert window.shape == (WINDOW,)
    recording = m["recordings"][int(dataset.arrays["recording"][np.flatnonzero(dataset.arrays["split"] == 0)[0]])]
    assert conditions["shaft_hz"].item() == pytest.approx(recording["rpm"] / 60, rel=1e-6)
    assert recording["rpm"] in set(table["rpm"])
    skf = BEARINGS["skf_6205"]
    np.testing.assert_allclose(
        conditions["bearing"].numpy(), [skf.n_balls, skf.ball_diameter_in, skf.pitch_diameter_in, skf.contact_angle_deg]
    )


def test_each_row_may_name_its_own_bearing_preset_or_geometry(manifest, tmp_path):
    table = pd.read_csv(manifest)
    table["bearing"] = np.where(table["load"] < 2, "nsk_6203", "8/0.25/1.2/15")
    mixed = manifest.parent / "mixed.csv"
    table.to_csv(mixed, index=False)
    dataset = load_prepared(prepare_dataset(files_config(mixed), tmp_path))
    assert [b["name"] for b in dataset.manifest["bearings"]] == ["8/0.25/1.2/15", "nsk_6203"]
    conditions = dataset.subset("test").conditions()
    loads = dataset.arrays["load"][dataset.arrays["split"] == 2]
    nsk = BEARINGS["nsk_6203"]
    np.testing.assert_allclose(conditions["bearing"][loads < 2][0], [8, nsk.ball_diameter_in, nsk.pitch_diameter_in, 0])
    np.testing.assert_allclose(conditions["bearing"][loads >= 2][0], [8, 0.25, 1.2, 15])


@pytest.mark.parametrize(
    "split, extra",
    [
        ("recording", {}),
        ("load_shift", {"train_loads": [0, 1], "test_loads": [3]}),
        ("time", {}),
        ("fault_size", {"task": "fault_location", "test_fault_size": 0.014}),
    ],
)
def test_every_split_of_the_cwru_source_works_here(manifest, tmp_path, split, extra):
    table = pd.read_csv(manifest)  # the second recording of each faulty class and load: a larger fault
    table.loc[
        table["path"].str.endswith(("_1.wav", "_1.npy", "_1.csv", "_1.mat")) & (table["fault_size"] > 0), "fault_size"
    ] = 0.014
    sized = manifest.parent / "sized.csv"
    table.to_csv(sized, index=False)
    dataset = load_prepared(prepare_dataset(files_config(sized, split=split, **extra), tmp_path))
    a = dataset.arrays
    assert {0, 1, 2} <= set(np.unique(a["split"]).tolist())
    if split != "time":  # whole test recordings: none also feeds training
        tested = np.unique(a["recording"][a["split"] == 2])
        assert not np.isin(a["recording"][a["split"] != 2], tested).any()
    if split == "fault_size":
        test_sizes = {
            r["source"].rsplit("_", 1)[1][0]
            for r in dataset.manifest["recordings"]
            if r["split"] == "test" and r["class"] != "normal"
        }
        assert test_sizes == {"1"}  # only the larger faults are tested on
    if split == "load_shift":
        assert set(a["load"][a["split"] == 2].tolist()) == {3} and 3 not in set(a["load"][a["split"] == 0].tolist())


def test_fault_location_needs_a_location_on_every_row(manifest, tmp_path):
    table = pd.read_csv(manifest)
    table.loc[3, "location"] = np.nan
    partial = manifest.parent / "partial.csv"
    table.to_csv(partial, index=False)
    with pytest.raises(DatasetError, match="line 5: data.task=fault_location needs a location"):
        prepare_dataset(files_config(partial, task="fault_location"), tmp_path)


def test_resampling_filters_what_the_new_rate_cannot_hold(tmp_path):
    t = np.arange(RATE) / RATE
    kept, aliased = 1000.0, 9000.0  # 9 kHz is above the 6 kHz Nyquist of 12 kHz: it must not fold to 3 kHz
    np.save(tmp_path / "tones.npy", np.sin(2 * np.pi * kept * t) + np.sin(2 * np.pi * aliased * t))
    pd.DataFrame([{"path": "tones.npy", "label": "a", "rpm": 1800, "sample_rate": RATE}]).to_csv(
        tmp_path / "m.csv", index=False
    )
    rows = read_manifest(tmp_path / "m.csv", "skf_6205")
    [recording] = read_recordings(tmp_path / "m.csv", rows, sample_rate=12000, min_samples=WINDOW)
    freqs, power = scipy.signal.welch(recording.signal, fs=12000, nperseg=2048)
    at = {f: power[np.argmin(np.abs(freqs - f))] for f in (kept, 12000 - aliased)}
    assert at[kept] > 1e4 * at[12000 - aliased]


def write_rig(folder, rows):
    """Two .mat recordings keeping their rate and speed in a struct beside the signal, and a manifest of `rows`."""
    signal = np.sin(np.arange(RATE) / RATE * 2 * np.pi * 100)
    for name in ("a.mat", "b.mat"):
        scipy.io.savemat(folder / name, {"rig": {"acc": signal, "sr": float(RATE), "rpm": 1797.0}})
    pd.DataFrame(rows, columns=["path", "label", "rpm", "sample_rate", "variable"]).to_csv(
        folder / "m.csv", index=False
    )
    return folder / "m.csv"


def test_a_rate_or_speed_cell_may_name_the_field_of_the_file_holding_it(tmp_path):
    manifest = write_rig(
        tmp_path, [["a.mat", "x", "rig.rpm", "rig.sr", "rig.acc"], ["b.mat", "y", 1500, RATE, "rig.acc"]]
    )
    rows = read_manifest(manifest, "skf_6205")
    assert [(row.rpm, row.sample_rate) for row in rows] == [(1797.0, RATE), (1500.0, RATE)]
    recordings = read_recordings(manifest, rows, sample_rate=12000, min_samples=WINDOW)
    assert [len(r.signal) for r in recordings] == [12000, 12000]


def test_a_missing_rate_field_is_named_by_its_manifest_line(tmp_path):
    manifest = write_rig(
        tmp_path, [["a.mat", "x", 1797, "rig.sr", "rig.acc"], ["b.mat", "y", 1797, "rig.fs", "rig.acc"]]
    )
    with pytest.raises(DatasetError) as caught:
        read_manifest(manifest, "skf_6205")
    assert str(caught.value).endswith(
        "1 bad row(s):\n  line 3: sample_rate 'rig.fs' is not a number, nor a field of b.mat "
        "(no field 'fs' in 'rig'; fields: ['acc', 'rpm', 'sr'])"
    )


def test_bad_rows_are_named_by_line_and_nothing_is_prepared(manifest, tmp_path):
    table = pd.read_csv(manifest).head(6).astype(object)
    (manifest.parent / "broken.wav").write_bytes(b"RIFF....WAVEfmt not really")
    table.loc[0, "path"] = "missing.npy"
    table.loc[1, "bearing"] = "skf_9999"
    table.loc[2, "rpm"] = 0
    table.loc[3, "path"] = "broken.wav"
    table.loc[4, "sample_rate"] = "fast"
    bad = manifest.parent / "bad.csv"
    table.to_csv(bad, index=False)
    cache = tmp_path / "cache"
    with pytest.raises(DatasetError) as caught:
        prepare_dataset(files_config(bad), cache)
    message = str(caught.value)
    assert "line 2: file 'missing.npy' not found" in message
    assert "line 3: bearing 'skf_9999' is neither a preset" in message
    assert "line 4: rpm '0' must be a positive number" in message
    assert "line 6: sample_rate 'fast' is not a number" in message
    table.loc[[0, 1, 2, 4]] = pd.read_csv(manifest).head(6).astype(object).loc[[0, 1, 2, 4]]
    table.to_csv(bad, index=False)  # only the unreadable file left: found when the files are read
    with pytest.raises(DatasetError, match=re.escape("line 5: broken.wav: unreadable .wav file")):
        prepare_dataset(files_config(bad), cache)
    assert not cache.exists() or not any(cache.iterdir())


def test_a_manifest_without_the_needed_columns_says_which(tmp_path):
    pd.DataFrame([{"file": "a.npy", "label": "x"}]).to_csv(tmp_path / "m.csv", index=False)
    with pytest.raises(
        DatasetError, match=re.escape("missing column(s) ['path', 'rpm', 'sample_rate']; unknown column(s) ['file']")
    ):
        read_manifest(tmp_path / "m.csv", "skf_6205")


def test_an_edited_recording_or_manifest_is_a_new_dataset(manifest, tmp_path):
    cfg = files_config(manifest)
    before = config_hash(cfg)
    assert config_hash(files_config(manifest)) == before
    copy = manifest.parent / "edited.csv"
    copy.write_text(manifest.read_text().replace("inner,", "inner_race,", 1))
    assert config_hash(files_config(copy)) != before


def test_the_config_needs_an_existing_manifest(tmp_path):
    with pytest.raises(ConfigError, match="data.manifest=None: is required when data.source='files'"):
        DataConfig(source="files")
    with pytest.raises(ConfigError, match="is not an existing file"):
        DataConfig(source="files", manifest=str(tmp_path / "nope.csv"))


def copy_with(manifest, name: str, **columns):
    """A copy of the manifest, saved as `name` beside it, with `columns` (one value per row) set."""
    table = pd.read_csv(manifest).assign(**columns)
    table.to_csv(manifest.parent / name, index=False)
    return manifest.parent / name


def loads_and_reps(manifest) -> tuple[pd.Series, pd.Series]:
    table = pd.read_csv(manifest)
    return table["load"], table["path"].str.extract(r"_(\d)\.")[0].astype(int)


def test_a_split_column_sends_each_recording_whole_where_its_row_says(manifest, tmp_path):
    load, rep = loads_and_reps(manifest)
    named = np.where(load == 3, "test", np.where((load == 2) & (rep == 1), "val", "train"))
    cfg = files_config(copy_with(manifest, "named.csv", split=named), split="manifest")
    dataset = load_prepared(prepare_dataset(cfg, tmp_path))
    m, a = dataset.manifest, dataset.arrays
    assert [r["split"] for r in m["recordings"]] == list(named)  # whole recordings, none in two splits
    for code, split in enumerate(("train", "val", "test")):
        assert set(np.unique(a["recording"][a["split"] == code])) == set(np.flatnonzero(named == split))
    assert m["recordings_per_split"] == {"train": 20, "val": 4, "test": 8}
    assert (m["split"], m["held_out"]) == ("manifest", "the recordings whose manifest row says test")
    assert m["validation"] == "whole recordings: those whose manifest row says val"

    no_val = np.where(load == 3, "test", "train")  # validation then comes from the training rows
    cfg = files_config(copy_with(manifest, "no_val.csv", split=no_val), split="manifest")
    dataset = load_prepared(prepare_dataset(cfg, tmp_path))
    splits = [r["split"] for r in dataset.manifest["recordings"]]
    assert [s == "test" for s in splits] == list(no_val == "test")
    assert set(splits) == {"train", "val", "test"} and dataset.manifest["recordings_per_split"]["val"] == 4
    assert dataset.manifest["validation"].startswith("whole recordings: a val_fraction share")


def test_a_group_column_holds_out_whole_machines_for_test(manifest, tmp_path):
    load, _ = loads_and_reps(manifest)
    grouped = copy_with(manifest, "grouped.csv", group=np.where(load.isin([0, 2]), "pump_a", "pump_b"))
    cfg = files_config(grouped, split="group", test_groups=["pump_b"])
    dataset = load_prepared(prepare_dataset(cfg, tmp_path))
    m, a = dataset.manifest, dataset.arrays
    tested = {m["recordings"][i]["group"] for i in np.unique(a["recording"][a["split"] == 2])}
    trained = {m["recordings"][i]["group"] for i in np.unique(a["recording"][a["split"] != 2])}
    assert (tested, trained) == ({"pump_b"}, {"pump_a"})
    assert m["recordings_per_split"] == {"train": 12, "val": 4, "test": 16}  # validation: whole pump_a recordings
    assert all(r["split"] in ("train", "val", "test") for r in m["recordings"])  # never cut in time
    assert (m["split"], m["test_groups"]) == ("group", ["pump_b"])
    assert m["held_out"] == "group(s) ['pump_b'], whole; training on group(s) ['pump_a']"
    assert config_hash(files_config(grouped, split="group", test_groups=["pump_a"])) != config_hash(cfg)


def test_a_split_or_group_column_that_cannot_make_the_split_names_every_problem(manifest, tmp_path):
    load, _ = loads_and_reps(manifest)
    cache = tmp_path / "cache"

    def problems(path, **config) -> str:
        with pytest.raises(DatasetError) as caught:
            prepare_dataset(files_config(path, **config), cache)
        return str(caught.value)

    assert "no row names a split: add a 'split' column" in problems(manifest, split="manifest")
    typos = copy_with(manifest, "typos.csv", split=np.where(load == 3, "tset", "train"))
    typos.write_text(typos.read_text().replace(",train\n", ",\n", 1))  # the first row names no split
    message = problems(typos, split="manifest")
    assert message.startswith(f"{typos}: 10 problem(s) with data.split=manifest:\n  no row says test: nothing to")
    assert "\n  line 2: split '' is not one of train, val, test" in message
    assert "\n  line 8: split 'tset' is not one of train, val, test" in message
    assert "no row names a group" in problems(manifest, split="group", test_groups=["pump_b"])
    grouped = copy_with(manifest, "two_pumps.csv", group=np.where(load < 2, "pump_a", "pump_b"))
    assert "data.test_groups: no row has group(s) ['pump_c']; the groups are ['pump_a', 'pump_b']" in problems(
        grouped, split="group", test_groups=["pump_c"]
    )
    assert "data.test_groups=['pump_a', 'pump_b'] holds out every group: none left to train on" in problems(
        grouped, split="group", test_groups=["pump_a", "pump_b"]
    )
    assert not cache.exists() or not any(cache.iterdir())
    with pytest.raises(ConfigError, match=r"data.test_groups=\[\]: must name the manifest's group"):
        files_config(grouped, split="group")
