"""Framing without copies, and splits that never share a recording."""
import numpy as np
import pytest

from pipeline.data.classes import CLASS_NAMES
from pipeline.data.windows import frame, load_shift_split, split_by_recording


def recordings(per_load: int = 4) -> tuple[list[str], list[int]]:
    """Every class x load 0..3 x `per_load`, like the synthetic data set."""
    combos = [(label, load) for label in CLASS_NAMES for load in range(4) for _ in range(per_load)]
    return [c[0] for c in combos], [c[1] for c in combos]


def test_frame_shape_hop_and_no_copy():
    signal = np.arange(1000, dtype=np.float32)
    windows = frame(signal, 256, 128)
    assert windows.shape == (1 + (1000 - 256) // 128, 256)
    np.testing.assert_array_equal(windows[2], signal[256:512])
    assert np.shares_memory(windows, signal) and not windows.flags.writeable
    assert frame(signal, 1000, 1).shape == (1, 1000)
    with pytest.raises(ValueError, match="shorter than one window"):
        frame(signal, 1001, 1)
    with pytest.raises(ValueError, match="1-D"):
        frame(signal.reshape(10, 100), 10, 5)


def test_recording_split_is_stratified_seeded_and_covers_loads():
    labels, loads = recordings()
    splits = split_by_recording(labels, loads, 0.15, 0.2, seed=0)
    np.testing.assert_array_equal(splits, split_by_recording(labels, loads, 0.15, 0.2, seed=0))
    assert not np.array_equal(splits, split_by_recording(labels, loads, 0.15, 0.2, seed=1))
    labels_a, loads_a = np.array(labels), np.array(loads)
    for label in CLASS_NAMES:
        mine = splits[labels_a == label]
        assert [np.sum(mine == s) for s in ("train", "val", "test")] == [11, 2, 3]  # 16 recordings
        test_loads = loads_a[(labels_a == label) & (splits == "test")]
        assert len(set(test_loads)) == 3  # held-out recordings spread over loads


def test_no_recording_contributes_windows_to_two_splits():
    labels, loads = recordings(per_load=3)
    splits = split_by_recording(labels, loads, 0.15, 0.2, seed=3)
    windows_per_recording = 5
    window_recording = np.repeat(np.arange(len(labels)), windows_per_recording)
    window_split = splits[window_recording]
    ids = {s: set(window_recording[window_split == s]) for s in ("train", "val", "test")}
    assert ids["train"].isdisjoint(ids["val"]) and ids["train"].isdisjoint(ids["test"])
    assert ids["val"].isdisjoint(ids["test"])
    assert set.union(*ids.values()) == set(range(len(labels)))


def test_three_recordings_per_class_is_the_minimum():
    splits = split_by_recording(["a", "a", "a", "b", "b", "b"], [0, 1, 2, 0, 1, 2], 0.15, 0.2, seed=0)
    assert sorted(splits[:3]) == sorted(splits[3:]) == ["test", "train", "val"]
    with pytest.raises(ValueError, match="class 'b' has 2 recording"):
        split_by_recording(["a", "a", "a", "b", "b"], [0, 1, 2, 0, 1], 0.15, 0.2, seed=0)
    with pytest.raises(ValueError, match="one label and one load per recording"):
        split_by_recording(["a", "a", "a"], [0, 1], 0.15, 0.2, seed=0)


def test_load_shift_tests_on_load_3_only():
    labels, loads = recordings(per_load=1)  # the CWRU layout: one recording per class and load
    splits = load_shift_split(labels, loads, 0.15, seed=0)
    loads_a, labels_a = np.array(loads), np.array(labels)
    assert set(loads_a[splits == "test"]) == {3} and set(splits[loads_a == 3]) == {"test"}
    for label in CLASS_NAMES:
        assert sorted(splits[labels_a == label]) == ["test", "train", "train", "val"]
    np.testing.assert_array_equal(splits, load_shift_split(labels, loads, 0.15, seed=0))
    with pytest.raises(ValueError, match="class 'normal' has 0 recording"):
        load_shift_split(["normal"] * 3, [0, 1, 2], 0.15, seed=0)
