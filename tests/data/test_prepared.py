"""prepare_dataset / load_prepared on a tiny synthetic data set and on self-written CWRU files (the real
recordings are in test_real_cwru.py)."""

import json
from dataclasses import asdict

import numpy as np
import pytest
import scipy.io
import torch
from torch.utils.data import DataLoader

from pipeline.config import ConfigError, DataConfig
from pipeline.data import sources
from pipeline.data.bearing import BALLS_RANGE, BearingGeometry
from pipeline.data.classes import CLASS_NAMES, FAULT_LOCATIONS, fault_location
from pipeline.data.cwru import CwruError
from pipeline.data.prepared import DatasetError, dataset_dir_for, load_prepared, prepare_dataset
from pipeline.data.simulator import simulate_recording

TINY = dict(window=256, hop=128, duration_s=0.2, recordings_per_load=3)
WINDOWS_PER_RECORDING = 1 + (2400 - 256) // 128


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    cfg = DataConfig(**TINY)
    root = tmp_path_factory.mktemp("cache")
    return cfg, root, prepare_dataset(cfg, root)


def test_manifest_arrays_and_ground_truth(tiny):
    cfg, root, path = tiny
    assert path == dataset_dir_for(cfg, root) and path.name.startswith("synthetic-")
    data = load_prepared(path, verify=True)
    m, a = data.manifest, data.arrays
    n = 120 * WINDOWS_PER_RECORDING
    assert (m["source"], m["class_names"], m["sample_rate"], m["window"], m["hop"], m["split"], m["task"]) == (
        "synthetic",
        list(CLASS_NAMES),
        12000,
        256,
        128,
        "recording",
        "fault_class",
    )
    assert m["class_locations"] == [fault_location(name) for name in CLASS_NAMES]
    assert m["bearing_name"] == "skf_6205"
    assert m["bearing"] == {
        "n_balls": 9,
        "ball_diameter_in": 0.3126,
        "pitch_diameter_in": 1.537,
        "contact_angle_deg": 0.0,
    }
    assert (m["fallbacks"], m["optimistic"]) == ([], False) and m["validation"].startswith("whole recordings")
    assert m["n_windows"] == n and m["n_recordings"] == 120
    assert m["recordings_per_split"] == {"train": 80, "val": 20, "test": 20}
    assert m["windows_per_split"]["test"] == {c: 2 * WINDOWS_PER_RECORDING for c in CLASS_NAMES}
    assert sum(sum(per_class.values()) for per_class in m["windows_per_split"].values()) == n
    assert m["data_config"] == asdict(cfg) and m["skipped_files"] == m["ignored_files"] == []
    assert path.name.endswith(m["config_hash"]) and m["content_hash"].startswith("sha256:")
    expected = {
        "windows": ("float32", (n, 256)),
        "labels": ("int64", (n,)),
        "recording": ("int32", (n,)),
        "load": ("int8", (n,)),
        "split": ("int8", (n,)),
        "rpm": ("float32", (n,)),
        "bearing": ("int16", (n,)),
        "offset": ("int64", (n,)),
        "natural_freq_hz": ("float32", (n,)),
        "damping_ratio": ("float32", (n,)),
    }
    assert {k: (str(v.dtype), v.shape) for k, v in a.items()} == expected
    assert isinstance(a["windows"], np.memmap) and not a["windows"].flags.writeable

    first = m["recordings"][0]  # windows are exactly the simulator's signal, framed
    seed = int(first["source"].removeprefix("simulator seed="))
    sim = simulate_recording(first["label"], first["load_hp"], seed, duration_s=0.2, snr_db=cfg.snr_db)
    np.testing.assert_array_equal(a["windows"][1], sim.signal[128:384])
    assert a["natural_freq_hz"][0] == np.float32(sim.params["natural_freq_hz"])
    assert a["damping_ratio"][0] == np.float32(sim.params["damping_ratio"])
    assert a["rpm"][0] == np.float32(sim.params["rpm"]) and a["offset"][1] == 128
    assert first["segments"] == [{"split": first["split"], "start": 0, "stop": 2400, "windows": WINDOWS_PER_RECORDING}]


def test_items_carry_the_shaft_speed_of_their_recording(tiny):
    data = load_prepared(tiny[2])
    train = data.subset("train")
    window, label, conditions = train[5]
    assert window.shape == (256,) and label.dtype == torch.int64
    assert conditions["shaft_hz"].dtype == torch.float32 and conditions["shaft_hz"].shape == ()
    rpm = data.arrays["rpm"][data.arrays["split"] == 0][5]
    assert float(conditions["shaft_hz"]) == pytest.approx(rpm / 60)
    x, y, batch_conditions = next(iter(DataLoader(train, batch_size=8)))
    assert x.shape == (8, 256) and y.shape == (8,) and batch_conditions["shaft_hz"].shape == (8,)
    in_train = data.arrays["split"] == 0
    np.testing.assert_array_equal(train.recording_ids, data.arrays["recording"][in_train])
    np.testing.assert_array_equal(train.loads, data.arrays["load"][in_train])


def test_the_fault_location_task_labels_by_location(tmp_path):
    cfg = DataConfig(**TINY, task="fault_location")
    data = load_prepared(prepare_dataset(cfg, tmp_path))
    m, a = data.manifest, data.arrays
    assert m["class_names"] == m["class_locations"] == list(FAULT_LOCATIONS) and m["task"] == "fault_location"
    per_recording = WINDOWS_PER_RECORDING  # 2 test recordings per ten-class class, so 6 per fault location
    assert m["windows_per_split"]["test"] == {
        "normal": 2 * per_recording,
        "ball": 6 * per_recording,
        "inner": 6 * per_recording,
        "outer": 6 * per_recording,
    }
    for i, record in enumerate(m["recordings"]):
        labels = a["labels"][a["recording"] == i]
        assert set(labels) == {FAULT_LOCATIONS.index(fault_location(record["label"]))}


def test_a_random_bearing_simulator_gives_every_recording_a_bearing_of_its_own(tmp_path):
    """`data.bearing=random`: each recording is simulated in a bearing drawn for it, and each of its windows
    carries that geometry to the model; only the simulator can draw bearings."""
    data = load_prepared(prepare_dataset(DataConfig(**TINY, bearing="random"), tmp_path))
    recordings, geometries = data.manifest["recordings"], data.bearings()
    assert len({r["bearing"] for r in recordings}) == len(recordings) == len(geometries)
    assert data.manifest["bearing_name"] == "skf_6205"  # the default a request naming no bearing is read in
    for i, record in enumerate(recordings):
        rows = geometries[data.arrays["bearing"][data.arrays["recording"] == i]]
        expected = BearingGeometry(*map(float, record["bearing"].split("/")))
        assert len(np.unique(rows, axis=0)) == 1 and np.allclose(rows[0], expected.row)
    n_balls = geometries[:, 0]
    assert n_balls.min() >= BALLS_RANGE[0] and n_balls.max() <= BALLS_RANGE[1] and len(set(n_balls)) > 3
    with pytest.raises(ConfigError, match="data.bearing='random'"):
        DataConfig(source="cwru", path=str(tmp_path), bearing="random")


def test_a_snr_range_draws_each_recordings_noise_from_it(tmp_path):
    """`data.snr_range_db=[a, b]` gives each simulated recording an SNR of its own from [a, b]: [0, 0] is every
    recording at 0 dB, and a range makes recordings noisier or cleaner than that."""
    at_zero = load_prepared(prepare_dataset(DataConfig(**TINY, snr_db=0.0), tmp_path))
    pinned = load_prepared(prepare_dataset(DataConfig(**TINY, snr_range_db=[0.0, 0.0]), tmp_path))
    spread = load_prepared(prepare_dataset(DataConfig(**TINY, snr_range_db=[-20.0, 20.0]), tmp_path))
    np.testing.assert_array_equal(pinned.arrays["windows"], at_zero.arrays["windows"])
    assert not np.array_equal(spread.arrays["windows"], at_zero.arrays["windows"])
    with pytest.raises(ConfigError, match="data.snr_range_db"):
        DataConfig(snr_range_db=[5.0, -5.0])


def test_splits_are_disjoint_by_recording_and_cover_every_class(tiny):
    data = load_prepared(tiny[2])
    recording, split, labels = data.arrays["recording"], data.arrays["split"], data.arrays["labels"]
    for rec in np.unique(recording):
        assert len(np.unique(split[recording == rec])) == 1
    for code in range(3):
        assert set(labels[split == code]) == set(range(10))
    test = data.subset("test")
    assert len(test) == np.count_nonzero(split == 2) == sum(data.manifest["windows_per_split"]["test"].values())
    assert set(test.recording_ids).isdisjoint(data.subset("train").recording_ids)
    with pytest.raises(ValueError, match="unknown split"):
        data.subset("holdout")


def test_second_call_is_a_cache_hit_that_does_no_work(tiny, monkeypatch):
    cfg, root, path = tiny
    mtime = (path / "manifest.json").stat().st_mtime_ns

    def fail(*args, **kwargs):
        raise AssertionError("the simulator ran on a cache hit")

    monkeypatch.setattr(sources, "simulate_recording", fail)
    assert prepare_dataset(DataConfig(**TINY, cache_dir="elsewhere"), root) == path
    assert (path / "manifest.json").stat().st_mtime_ns == mtime


def test_each_content_changing_field_gives_its_own_folder(tiny):
    cfg, root, path = tiny
    changes = [
        dict(seed=1),
        dict(snr_db=10.0),
        dict(hop=64),
        dict(split="load_shift"),
        dict(test_fraction=0.3),
        dict(split="time"),
        dict(task="fault_location"),
        dict(bearing="nsk_6203"),
        dict(split="load_shift", test_loads=[2, 3], train_loads=[0, 1]),
    ]
    changed = [DataConfig(**{**TINY, **change}) for change in changes]
    names = {dataset_dir_for(c, root).name for c in changed} | {path.name}
    assert len(names) == len(changed) + 1
    unused_key = DataConfig(**TINY, train_loads=[1], test_fault_size=0.007)  # keys of splits not chosen
    assert dataset_dir_for(unused_key, root) == path


def test_a_crash_mid_write_leaves_no_dataset_behind(tiny, monkeypatch):
    cfg, root, good = tiny
    calls = []

    def crash(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        return real_save(*args, **kwargs)

    real_save = np.save
    monkeypatch.setattr(np, "save", crash)
    other = DataConfig(**TINY, seed=7)
    with pytest.raises(OSError, match="disk full"):
        prepare_dataset(other, root)
    assert not dataset_dir_for(other, root).exists()
    assert sorted(p.name for p in root.iterdir()) == [good.name]  # no temporary folder left either
    load_prepared(good, verify=True)


def test_corrupt_or_missing_manifest_is_a_clear_error_and_is_rebuilt(tmp_path):
    cfg = DataConfig(**TINY, seed=3)
    path = prepare_dataset(cfg, tmp_path)
    (path / "manifest.json").write_text('{"format_version": 1, "arrays": ')
    with pytest.raises(DatasetError, match=f"{path}: manifest.json is corrupt"):
        load_prepared(path)
    with pytest.raises(DatasetError, match="no manifest.json"):
        load_prepared(tmp_path)
    assert prepare_dataset(cfg, tmp_path) == path  # an invalid folder is not a cache hit: rebuilt in place
    load_prepared(path, verify=True)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_truncated_array_is_detected(tmp_path):
    path = prepare_dataset(DataConfig(**TINY, seed=4), tmp_path)
    windows = path / "windows.npy"
    windows.write_bytes(windows.read_bytes()[:-1000])
    with pytest.raises(DatasetError, match="windows.npy"):
        load_prepared(path)


def write_cwru_folder(folder, numbers, n=4096):
    """One file per number in the CWRU layout; the normal files (97-100) are 48 kHz, so 4x longer."""
    folder.mkdir()
    for number in numbers:
        length = 4 * n if number < 101 else n
        scipy.io.savemat(
            folder / f"{number}.mat",
            {
                f"X{number:03d}_DE_time": np.random.default_rng(number).standard_normal((length, 1)),
                f"X{number:03d}RPM": np.array([[1797.0]]),
            },
        )
    return folder


CWRU_NUMBERS = [*range(97, 101), *range(105, 109), *range(130, 134)]  # normal, inner_007, outer_007


def test_cwru_dataset_with_load_shift(tmp_path):
    folder = write_cwru_folder(tmp_path / "cwru", CWRU_NUMBERS)
    cfg = DataConfig(source="cwru", path=str(folder), window=256, hop=256, split="load_shift")
    data = load_prepared(prepare_dataset(cfg, tmp_path / "cache"), verify=True)
    m, a = data.manifest, data.arrays
    assert m["source"] == "cwru" and m["n_recordings"] == 12 and m["ignored_files"] == []
    assert set(a["load"][a["split"] == 2]) == {3} and set(a["split"][a["load"] == 3]) == {2}
    assert m["recordings_per_split"] == {"train": 9, "val": 9, "test": 3}  # val: the end of each training recording
    assert m["windows_per_split"]["test"]["inner_007"] == 16 and m["windows_per_split"]["test"]["ball_007"] == 0
    assert "natural_freq_hz" not in a and m["recordings"][0]["source"].endswith("100.mat")
    for i, record in enumerate(m["recordings"]):
        mine = a["recording"] == i
        for segment in record["segments"]:  # every window lies inside a segment of its own split
            inside = mine & (a["offset"] >= segment["start"]) & (a["offset"] + 256 <= segment["stop"])
            assert set(a["split"][inside]) == {("train", "val", "test").index(segment["split"])}
            assert np.count_nonzero(inside) == segment["windows"]
        assert sum(s["windows"] for s in record["segments"]) == np.count_nonzero(mine)


def test_a_strict_run_over_a_tree_of_copies_lists_the_files_it_ignored(tmp_path):
    from tests.data.test_cwru import write_cwru

    folder = tmp_path / "download"
    for number, load in ((97, 0), (98, 1), (99, 2), (100, 3)):
        write_cwru(folder, number, name=f"Normal/Normal_{load}.mat", n=16384)
    for code, first in (("IR007", 105), ("OR007@6", 130)):
        for load in range(4):
            write_cwru(folder, first + load, name=f"12k/{code}_{load}.mat", n=4096)
    write_cwru(folder, 144, name="12k/OR007@3_0.mat")
    write_cwru(folder, 3001, name="12k/IR028_0.mat")
    write_cwru(folder, 109, name="48k/IR007_0.mat")
    cfg = DataConfig(source="cwru", path=str(folder), window=256, hop=256, split="time")
    m = load_prepared(prepare_dataset(cfg, tmp_path / "cache")).manifest
    assert m["n_recordings"] == 12 and m["skipped_files"] == []
    assert [entry["file"] for entry in m["ignored_files"]] == [
        str(folder / "12k/IR028_0.mat"),
        str(folder / "12k/OR007@3_0.mat"),
        str(folder / "48k/IR007_0.mat"),
    ]
    assert all(entry["reason"] for entry in m["ignored_files"])
    assert m["optimistic"] is True and "same bearing" in m["optimistic_reason"]


def test_cwru_strict_fails_lenient_records_skipped_files(tmp_path):
    folder = write_cwru_folder(tmp_path / "cwru", CWRU_NUMBERS)
    (folder / "118.mat").write_bytes(b"broken")
    with pytest.raises(CwruError, match="118.mat"):
        prepare_dataset(DataConfig(source="cwru", path=str(folder), window=256, hop=128), tmp_path / "cache")
    cfg = DataConfig(source="cwru", path=str(folder), window=256, hop=128, strict=False)
    manifest = json.loads((prepare_dataset(cfg, tmp_path / "cache") / "manifest.json").read_text())
    assert [s["file"] for s in manifest["skipped_files"]] == [str(folder / "118.mat")]
    assert "cannot read" in manifest["skipped_files"][0]["error"] and manifest["n_recordings"] == 12
    assert manifest["ignored_files"] == []
    (folder / "118.mat").unlink()
    assert dataset_dir_for(cfg, tmp_path / "cache").exists() is False  # the folder's files are in the hash


def test_dataloader_over_a_prepared_split(tiny):
    val = load_prepared(tiny[2]).subset("val")
    x, y, _ = next(iter(DataLoader(val, batch_size=16, shuffle=False)))
    assert x.shape == (16, 256) and str(x.dtype) == "torch.float32" and str(y.dtype) == "torch.int64"
    np.testing.assert_array_equal(y.numpy(), val.labels[:16])
