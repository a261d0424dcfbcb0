"""Splits by recording or by time block, never by window: each rule, its fallbacks, and the errors of a split
that cannot be made. Plans are made from recording facts alone (class, load, length), as `prepare_dataset` does."""

import numpy as np
import pytest

from pipeline.config import DataConfig
from pipeline.data.classes import CLASS_NAMES
from pipeline.data.errors import DatasetError
from pipeline.data.splits import Segment, SplitPlan, plan_splits, split_by_recording

WINDOW = 256


def recordings(per_load: int = 4, normal_loads=(0, 1, 2, 3), length: int = 12_000):
    """Every class x load 0..3 x `per_load`, like the synthetic data set; per_load=1 is the CWRU layout."""
    combos = [
        (label, load)
        for label in CLASS_NAMES
        for load in range(4)
        for _ in range(per_load)
        if label != "normal" or load in normal_loads
    ]
    return [c[0] for c in combos], [c[1] for c in combos], [length] * len(combos)


def plan(labels, loads, lengths, **config) -> SplitPlan:
    return plan_splits(DataConfig(window=WINDOW, hop=WINDOW // 2, **config), labels, loads, lengths)


def by_recording(plan: SplitPlan) -> dict[int, list[Segment]]:
    mine: dict[int, list[Segment]] = {}
    for segment in plan.segments:
        mine.setdefault(segment.recording, []).append(segment)
    return mine


def assert_no_window_can_leak(plan: SplitPlan, lengths) -> None:
    """Inside each recording, segments hold at least one window, lie in the recording, and blocks of different
    splits are at least one window apart, so no window of one split overlaps a window of another."""
    for recording, segments in by_recording(plan).items():
        segments = sorted(segments, key=lambda s: s.start)
        assert all(0 <= s.start and s.stop - s.start >= WINDOW and s.stop <= lengths[recording] for s in segments)
        for before, after in zip(segments, segments[1:]):
            assert after.start - before.stop >= WINDOW and before.split != after.split


def splits_of(plan: SplitPlan, recording: int) -> list[str]:
    return [s.split for s in sorted(by_recording(plan)[recording], key=lambda s: s.start)]


def test_recording_split_is_stratified_seeded_and_covers_loads():
    labels, loads, _ = recordings()
    splits = split_by_recording(labels, loads, 0.15, 0.2, seed=0)
    np.testing.assert_array_equal(splits, split_by_recording(labels, loads, 0.15, 0.2, seed=0))
    assert not np.array_equal(splits, split_by_recording(labels, loads, 0.15, 0.2, seed=1))
    labels_a, loads_a = np.array(labels), np.array(loads)
    for label in CLASS_NAMES:
        mine = splits[labels_a == label]
        assert [np.sum(mine == s) for s in ("train", "val", "test")] == [11, 2, 3]  # 16 recordings
        test_loads = loads_a[(labels_a == label) & (splits == "test")]
        assert len(set(test_loads)) == 3  # held-out recordings spread over loads


def test_recording_plan_of_many_recordings_assigns_whole_recordings():
    labels, loads, lengths = recordings(per_load=3)
    result = plan(labels, loads, lengths, split="recording")
    expected = split_by_recording(labels, loads, 0.15, 0.2, seed=0)
    assert [s.split for s in result.segments] == list(expected)
    assert all((s.start, s.stop) == (0, 12_000) for s in result.segments)
    assert result.fallbacks == [] and result.validation.startswith("whole recordings") and result.optimistic is None


def test_three_recordings_per_class_is_the_minimum_of_split_by_recording():
    splits = split_by_recording(["a", "a", "a", "b", "b", "b"], [0, 1, 2, 0, 1, 2], 0.15, 0.2, seed=0)
    assert sorted(splits[:3]) == sorted(splits[3:]) == ["test", "train", "val"]
    with pytest.raises(ValueError, match="class 'b' has 2 recording"):
        split_by_recording(["a", "a", "a", "b", "b"], [0, 1, 2, 0, 1], 0.15, 0.2, seed=0)
    with pytest.raises(ValueError, match="one label and one load per recording"):
        split_by_recording(["a", "a", "a"], [0, 1], 0.15, 0.2, seed=0)


def test_load_shift_on_the_cwru_layout_validates_on_the_end_of_each_training_recording():
    labels, loads, lengths = recordings(per_load=1)
    result = plan(labels, loads, lengths, split="load_shift")
    assert_no_window_can_leak(result, lengths)
    for i, load in enumerate(loads):
        assert splits_of(result, i) == (["test"] if load == 3 else ["train", "val"])
    assert result.validation.startswith("time: the last 0.15") and result.fallbacks == []
    train, val = by_recording(result)[0]
    assert val.stop == 12_000 and val.stop - val.start == round(0.15 * (12_000 - WINDOW))


def test_load_shift_with_many_recordings_validates_on_whole_recordings():
    labels, loads, lengths = recordings(per_load=3)
    result = plan(labels, loads, lengths, split="load_shift", train_loads=[0, 1], test_loads=[2, 3])
    splits = np.array([s.split for s in result.segments])
    chosen = np.array(loads)[[s.recording for s in result.segments]]
    assert set(chosen[splits == "test"]) == {2, 3} and set(chosen[splits != "test"]) == {0, 1}
    assert result.validation.startswith("whole recordings") and np.count_nonzero(splits == "val") == 10


def test_a_normal_baseline_at_load_0_only_is_cut_in_time_and_said_so():
    labels, loads, lengths = recordings(per_load=1, normal_loads=(0,))
    result = plan(labels, loads, lengths, split="load_shift")
    assert_no_window_can_leak(result, lengths)
    assert splits_of(result, labels.index("normal")) == ["train", "val", "test"]
    [fallback] = result.fallbacks
    assert fallback.startswith("normal: no recording on the test side (at load(s) [0] HP; data.train_loads=[0, 1, 2]")
    assert "cut in time into train/val/test blocks" in fallback


@pytest.mark.parametrize("size", [0.007, 0.014, 0.021])
def test_fault_size_tests_on_bearings_never_trained_on(size):
    labels, loads, lengths = recordings(per_load=1, normal_loads=(0,))
    result = plan(labels, loads, lengths, split="fault_size", task="fault_location", test_fault_size=size)
    assert_no_window_can_leak(result, lengths)
    held_out = {i for i, label in enumerate(labels) if label.endswith(f"_{round(size * 1000):03d}")}
    for i, segments in by_recording(result).items():
        if i in held_out:
            assert splits_of(result, i) == ["test"]
        elif labels[i] != "normal":
            assert splits_of(result, i) == ["train", "val"]
    assert len(held_out) == 12 and [f.split(":")[0] for f in result.fallbacks] == ["normal"]


def test_fault_size_holds_out_whole_normal_recordings_when_there_are_several():
    labels, loads, lengths = recordings(per_load=3)
    result = plan(labels, loads, lengths, split="fault_size", task="fault_location")
    normal = [s.split for s in result.segments if labels[s.recording] == "normal"]
    assert len(normal) == 12 and normal.count("test") == round(0.2 * 12) and result.fallbacks == []


def test_time_split_cuts_every_recording_and_is_marked_optimistic():
    labels, loads, lengths = recordings(per_load=1)
    result = plan(labels, loads, lengths, split="time")
    assert_no_window_can_leak(result, lengths)
    assert all(splits_of(result, i) == ["train", "val", "test"] for i in range(len(labels)))
    assert "same bearing" in result.optimistic
    train, val, test = by_recording(result)[0]
    assert (test.stop - test.start, val.stop - val.start) == (round(0.2 * 11_488), round(0.15 * 11_488))


def test_the_cwru_layout_split_by_recording_cuts_the_lone_normal_recording_in_time():
    labels, loads, lengths = recordings(per_load=1, normal_loads=(0,))
    result = plan(labels, loads, lengths, split="recording")
    assert_no_window_can_leak(result, lengths)
    for label in CLASS_NAMES[1:]:
        whole = [splits_of(result, i) for i, name in enumerate(labels) if name == label]
        assert sorted(whole) == [["test"], ["train", "val"], ["train", "val"], ["train", "val"]]
    assert [f.split(":")[0] for f in result.fallbacks] == ["normal"]


def test_a_split_that_cannot_be_made_says_why_in_one_line():
    labels, loads, lengths = recordings(per_load=1, normal_loads=(0,))
    with pytest.raises(DatasetError) as err:
        plan(labels, loads, lengths, split="load_shift", train_loads=[1, 2], test_loads=[0])
    assert str(err.value) == (
        "data.split=load_shift: class 'normal' has no recording on the training side (at "
        "load(s) [0] HP; data.train_loads=[1, 2], data.test_loads=[0]); nothing to learn it from"
    )
    with pytest.raises(DatasetError, match="class 'normal' has no recording on the training side"):
        plan(labels, loads, lengths, split="load_shift", train_loads=[1, 2])  # normal (0 HP) on neither side
    with pytest.raises(
        DatasetError,
        match=r"recording normal at 0 HP has 1000 samples, too few for train/val/test "
        r"blocks of at least one window \(256\)",
    ):
        plan(*recordings(per_load=1, length=1000), split="time")
