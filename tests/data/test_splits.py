"""Splits by recording or by time block, never by window: each rule (including the split and group a manifest
names), its fallbacks, and the errors of a split that cannot be made. Plans are made from recording facts alone
(class, load, length, the manifest's split or group), as `prepare_dataset` does."""

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


def own_config(tmp_path, **config) -> DataConfig:
    """A data=files config; a plan never reads the manifest, so an empty file stands in for it."""
    manifest = tmp_path / "manifest.csv"
    manifest.touch()
    return DataConfig(source="files", manifest=str(manifest), window=WINDOW, hop=WINDOW // 2, **config)


def test_a_manifest_split_puts_each_recording_whole_where_its_row_says(tmp_path):
    labels, loads, lengths = ["inner_007"] * 3 + ["outer_007"] * 3, [0, 1, 2] * 2, [12_000] * 6
    named = ["train", "val", "test", "test", "train", "val"]
    result = plan_splits(own_config(tmp_path, split="manifest"), labels, loads, lengths, named_splits=named)
    assert [(s.recording, s.split, s.start, s.stop) for s in result.segments] == [
        (i, split, 0, 12_000) for i, split in enumerate(named)
    ]
    assert result.validation == "whole recordings: those whose manifest row says val" and result.fallbacks == []
    assert result.held_out == "the recordings whose manifest row says test"


def test_without_val_rows_validation_comes_from_the_training_side(tmp_path):
    labels, loads, lengths = recordings(per_load=3)  # 3 per class and load: 2 train, 1 test
    named = ["test" if i % 3 == 0 else "train" for i in range(len(labels))]
    result = plan_splits(own_config(tmp_path, split="manifest"), labels, loads, lengths, named_splits=named)
    assert all((s.start, s.stop) == (0, 12_000) for s in result.segments)  # whole recordings, each in one split
    assert sorted(s.recording for s in result.segments) == list(range(len(labels)))
    for s in result.segments:
        assert (s.split == "test") == (named[s.recording] == "test")
    assert result.validation.startswith("whole recordings: a val_fraction share")
    assert sum(s.split == "val" for s in result.segments) == 10  # 8 training recordings per class: 1 each

    one_each = recordings(per_load=2)  # one training recording per class and load: its end validates
    named = ["test" if i % 2 == 0 else "train" for i in range(len(one_each[0]))]
    result = plan_splits(own_config(tmp_path, split="manifest"), *one_each, named_splits=named)
    assert_no_window_can_leak(result, one_each[2])
    assert all(splits_of(result, i) == (["test"] if i % 2 == 0 else ["train", "val"]) for i in range(len(named)))
    assert result.validation.startswith("time: the last 0.15 of each training recording")


def machines(groups=("pump_a", "pump_b", "pump_c"), per_group: int = 4):
    """Two classes recorded `per_group` times on each machine, loads 0..3."""
    rows = [(label, load % 4, group) for group in groups for label in ("inner", "outer") for load in range(per_group)]
    return [r[0] for r in rows], [r[1] for r in rows], [12_000] * len(rows), [r[2] for r in rows]


def test_a_group_split_tests_on_the_held_out_machines_and_validates_on_the_others(tmp_path):
    labels, loads, lengths, groups = machines()
    cfg = own_config(tmp_path, split="group", test_groups=["pump_c"])
    result = plan_splits(cfg, labels, loads, lengths, classes=labels, sizes=[0.0] * len(labels), groups=groups)
    assert all((s.start, s.stop) == (0, 12_000) for s in result.segments)
    assert sorted(s.recording for s in result.segments) == list(range(len(labels)))  # none in two splits
    tested = {groups[s.recording] for s in result.segments if s.split == "test"}
    validated = {groups[s.recording] for s in result.segments if s.split == "val"}
    assert tested == {"pump_c"} and validated <= {"pump_a", "pump_b"}
    assert sum(s.split == "test" for s in result.segments) == 8 and sum(s.split == "val" for s in result.segments) == 2
    assert result.held_out == "group(s) ['pump_c'], whole; training on group(s) ['pump_a', 'pump_b']"
    assert result.validation.startswith("whole recordings") and result.fallbacks == []


def test_a_class_missing_from_the_held_out_machines_is_cut_in_time_and_one_only_there_cannot_be_learnt(tmp_path):
    labels, loads, lengths, groups = machines()
    labels = ["normal" if g == "pump_a" and label == "inner" else label for label, g in zip(labels, groups)]
    cfg = own_config(tmp_path, split="group", test_groups=["pump_c"])
    sizes = [0.0] * len(labels)
    result = plan_splits(cfg, labels, loads, lengths, classes=labels, sizes=sizes, groups=groups)
    assert [f.split(":")[0] for f in result.fallbacks] == ["normal"]  # normal only on pump_a: cut in time
    assert all(splits_of(result, i) == ["train", "val", "test"] for i, label in enumerate(labels) if label == "normal")
    with pytest.raises(DatasetError) as err:
        plan_splits(
            own_config(tmp_path, split="group", test_groups=["pump_a"]),
            labels,
            loads,
            lengths,
            labels,
            sizes,
            groups=groups,
        )
    assert str(err.value) == (
        "data.split=group: class 'normal' has no recording on the training side (4 recording(s), all in "
        "data.test_groups=['pump_a']); nothing to learn it from"
    )
