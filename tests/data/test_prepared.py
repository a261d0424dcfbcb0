"""prepare_dataset / load_prepared on a tiny synthetic data set and on self-written CWRU files."""
import json
from dataclasses import asdict

import numpy as np
import pytest
import scipy.io
from torch.utils.data import DataLoader

from pipeline.config import DataConfig
from pipeline.data import prepared
from pipeline.data.classes import CLASS_NAMES
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
    assert (m["source"], m["class_names"], m["sample_rate"], m["window"], m["hop"], m["split"]) == (
        "synthetic", list(CLASS_NAMES), 12000, 256, 128, "recording")
    assert m["n_windows"] == n and m["n_recordings"] == 120
    assert m["recordings_per_split"] == {"train": 80, "val": 20, "test": 20}
    assert m["windows_per_split"]["test"] == {c: 2 * WINDOWS_PER_RECORDING for c in CLASS_NAMES}
    assert sum(sum(per_class.values()) for per_class in m["windows_per_split"].values()) == n
    assert m["data_config"] == asdict(cfg) and m["skipped_files"] == []
    assert path.name.endswith(m["config_hash"]) and m["content_hash"].startswith("sha256:")
    expected = {"windows": ("float32", (n, 256)), "labels": ("int64", (n,)), "recording": ("int32", (n,)),
                "load": ("int8", (n,)), "split": ("int8", (n,)), "rpm": ("float32", (n,)),
                "natural_freq_hz": ("float32", (n,)), "damping_ratio": ("float32", (n,))}
    assert {k: (str(v.dtype), v.shape) for k, v in a.items()} == expected
    assert isinstance(a["windows"], np.memmap) and not a["windows"].flags.writeable

    first = m["recordings"][0]  # windows are exactly the simulator's signal, framed
    seed = int(first["source"].removeprefix("simulator seed="))
    sim = simulate_recording(first["label"], first["load_hp"], seed, duration_s=0.2, snr_db=cfg.snr_db)
    np.testing.assert_array_equal(a["windows"][1], sim.signal[128:384])
    assert a["natural_freq_hz"][0] == np.float32(sim.params["natural_freq_hz"])
    assert a["damping_ratio"][0] == np.float32(sim.params["damping_ratio"])
    assert a["rpm"][0] == np.float32(sim.params["rpm"])


def test_splits_are_disjoint_by_recording_and_cover_every_class(tiny):
    data = load_prepared(tiny[2])
    recording, split, labels = data.arrays["recording"], data.arrays["split"], data.arrays["labels"]
    for rec in np.unique(recording):
        assert len(np.unique(split[recording == rec])) == 1
    for code in range(3):
        assert set(labels[split == code]) == set(range(10))
    test = data.subset("test")
    assert len(test) == np.count_nonzero(split == 2)
    assert set(test.recording_ids).isdisjoint(data.subset("train").recording_ids)
    with pytest.raises(ValueError, match="unknown split"):
        data.subset("holdout")


def test_second_call_is_a_cache_hit_that_does_no_work(tiny, monkeypatch):
    cfg, root, path = tiny
    mtime = (path / "manifest.json").stat().st_mtime_ns

    def fail(*args, **kwargs):
        raise AssertionError("the simulator ran on a cache hit")

    monkeypatch.setattr(prepared, "simulate_recording", fail)
    assert prepare_dataset(DataConfig(**TINY, cache_dir="elsewhere"), root) == path
    assert (path / "manifest.json").stat().st_mtime_ns == mtime


def test_each_content_changing_field_gives_its_own_folder(tiny):
    cfg, root, path = tiny
    changes = [dict(seed=1), dict(snr_db=10.0), dict(hop=64), dict(split="load_shift"), dict(test_fraction=0.3)]
    changed = [DataConfig(**{**TINY, **change}) for change in changes]
    names = {dataset_dir_for(c, root).name for c in changed} | {path.name}
    assert len(names) == len(changed) + 1


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


def write_cwru_folder(folder, numbers, n=1024):
    """One file per number in the CWRU layout; the normal files (97-100) are 48 kHz, so 4x longer."""
    folder.mkdir()
    for number in numbers:
        length = 4 * n if number < 101 else n
        scipy.io.savemat(folder / f"{number}.mat", {
            f"X{number:03d}_DE_time": np.random.default_rng(number).standard_normal((length, 1)),
            f"X{number:03d}RPM": np.array([[1797.0]]),
        })
    return folder


CWRU_NUMBERS = [*range(97, 101), *range(105, 109), *range(130, 134)]  # normal, inner_007, outer_007


def test_cwru_dataset_with_load_shift(tmp_path):
    folder = write_cwru_folder(tmp_path / "cwru", CWRU_NUMBERS)
    cfg = DataConfig(source="cwru", path=str(folder), window=256, hop=256, split="load_shift")
    data = load_prepared(prepare_dataset(cfg, tmp_path / "cache"), verify=True)
    m, a = data.manifest, data.arrays
    assert m["source"] == "cwru" and m["n_recordings"] == 12 and m["n_windows"] == 12 * 4
    assert set(a["load"][a["split"] == 2]) == {3} and set(a["split"][a["load"] == 3]) == {2}
    assert m["recordings_per_split"] == {"train": 6, "val": 3, "test": 3}
    assert m["windows_per_split"]["test"]["inner_007"] == 4 and m["windows_per_split"]["test"]["ball_007"] == 0
    assert "natural_freq_hz" not in a and m["recordings"][0]["source"].endswith("100.mat")


def test_cwru_strict_fails_lenient_records_skipped_files(tmp_path):
    folder = write_cwru_folder(tmp_path / "cwru", CWRU_NUMBERS)
    (folder / "118.mat").write_bytes(b"broken")
    with pytest.raises(CwruError, match="118.mat"):
        prepare_dataset(DataConfig(source="cwru", path=str(folder), window=256, hop=128), tmp_path / "cache")
    cfg = DataConfig(source="cwru", path=str(folder), window=256, hop=128, strict=False)
    manifest = json.loads((prepare_dataset(cfg, tmp_path / "cache") / "manifest.json").read_text())
    assert [s["file"] for s in manifest["skipped_files"]] == [str(folder / "118.mat")]
    assert "cannot read" in manifest["skipped_files"][0]["error"] and manifest["n_recordings"] == 12
    (folder / "118.mat").unlink()
    assert dataset_dir_for(cfg, tmp_path / "cache").exists() is False  # the folder's files are in the hash


def test_dataloader_over_a_prepared_split(tiny):
    val = load_prepared(tiny[2]).subset("val")
    x, y = next(iter(DataLoader(val, batch_size=16, shuffle=False)))
    assert x.shape == (16, 256) and str(x.dtype) == "torch.float32" and str(y.dtype) == "torch.int64"
    np.testing.assert_array_equal(y.numpy(), val.labels[:16])
