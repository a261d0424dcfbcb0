"""Every split prepared from the real CWRU recordings (`cwru_dir`): the windows of train, val and test never
share a recording's samples, and each split's rule holds on the files as CWRU distributes them."""

import numpy as np
import pytest

from pipeline.config import DataConfig
from pipeline.data.prepared import load_prepared, prepare_dataset
from pipeline.data.windows import SPLIT_NAMES

WINDOW = 1024
SPLITS = {
    "load_shift": dict(split="load_shift"),
    "fault_size_0.007": dict(split="fault_size", task="fault_location", test_fault_size=0.007),
    "fault_size_0.014": dict(split="fault_size", task="fault_location", test_fault_size=0.014),
    "fault_size_0.021": dict(split="fault_size", task="fault_location", test_fault_size=0.021),
    "time": dict(split="time"),
    "recording": dict(split="recording"),
}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("real-cwru")


@pytest.fixture(params=list(SPLITS))
def dataset(request, cwru_dir, cache):
    cfg = DataConfig(source="cwru", path=str(cwru_dir), window=WINDOW, hop=512, **SPLITS[request.param])
    return load_prepared(prepare_dataset(cfg, cache), verify=True)


def sample_ranges(dataset, recording: int, split: str) -> list[tuple[int, int]]:
    a = dataset.arrays
    offsets = a["offset"][(a["recording"] == recording) & (a["split"] == SPLIT_NAMES.index(split))]
    return [(int(o), int(o) + WINDOW) for o in offsets]


def test_no_recording_shares_samples_between_splits(dataset):
    m = dataset.manifest
    assert m["n_recordings"] == 37 and m["skipped_files"] == m["ignored_files"] == []
    for i, record in enumerate(m["recordings"]):
        ranges = {split: sample_ranges(dataset, i, split) for split in SPLIT_NAMES}
        for split, other in ((a, b) for a in SPLIT_NAMES for b in SPLIT_NAMES if a < b):
            for start, stop in ranges[split]:
                assert all(stop <= o_start or o_stop <= start for o_start, o_stop in ranges[other]), (
                    record["source"],
                    split,
                    other,
                )
        for segment in record["segments"]:
            inside = [r for r in ranges[segment["split"]] if segment["start"] <= r[0] and r[1] <= segment["stop"]]
            assert len(inside) == segment["windows"] > 0
        assert sum(len(r) for r in ranges.values()) == sum(s["windows"] for s in record["segments"])
    for split in SPLIT_NAMES:  # every class the task names is learnt, tuned and tested
        assert all(count > 0 for count in m["windows_per_split"][split].values()), (split, m["windows_per_split"])


def test_each_rule_holds_on_the_real_recordings(dataset):
    m, a = dataset.manifest, dataset.arrays
    recordings = m["recordings"]
    if m["split"] == "load_shift":
        whole_test = {r["load_hp"] for r in recordings if r["split"] == "test"}
        assert whole_test == {3} and all(
            r["split"] == "train+val" for r in recordings if r["load_hp"] in (0, 1, 2) and r["label"] != "normal"
        )
    if m["split"] == "fault_size":
        size = f"_{round(m['data_config']['test_fault_size'] * 1000):03d}"
        assert {r["label"] for r in recordings if r["split"] == "test"} == {
            f"{location}{size}" for location in ("ball", "inner", "outer")
        }
        assert all(r["split"] == "train+val" for r in recordings if r["label"] != "normal" and size not in r["label"])
        assert m["class_names"] == ["normal", "ball", "inner", "outer"]
    if m["split"] == "time":
        assert all(r["split"] == "train+val+test" for r in recordings)
        assert m["optimistic"] is True and m["optimistic_reason"]
    else:
        assert m["optimistic"] is False
        [fallback] = m["fallbacks"]  # the one normal recording (0 HP) is cut in time
        assert fallback.startswith("normal: no recording on the test side")
        [normal] = [r for r in recordings if r["label"] == "normal"]
        assert [s["split"] for s in normal["segments"]] == ["train", "val", "test"]
    assert np.allclose(a["rpm"], [recordings[i]["rpm"] for i in a["recording"]])
    _, _, conditions = dataset.subset("test")[0]
    assert 1700 / 60 < float(conditions["shaft_hz"]) < 1800 / 60
