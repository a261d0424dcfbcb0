"""Which samples of which recording train, validate and test a model (`data.split`: recording, load_shift,
fault_size, time, manifest or group; docs/data.md).

Splits are decided per recording or per time block of a recording, never per window, so no recording leaks from
training into test. The unit of assignment is a segment, the samples [start, stop) of one recording given to one
split; windows are cut inside segments only, and blocks of one recording are at least one window apart.
Validation comes from the training side only (unless a manifest names validation recordings); a class with no
recording on the test side is cut in time instead, and the plan names it in `fallbacks`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np

from pipeline.data.classes import fault_size_in
from pipeline.data.config import DataConfig
from pipeline.data.errors import DatasetError
from pipeline.data.tasks import class_names, task_label
from pipeline.data.windows import SPLIT_NAMES

_WHOLE_VALIDATION = "whole recordings: a val_fraction share of each class's training-side recordings, spread over loads"
TIME_SPLIT_CAVEAT = (
    "test blocks come from the very recordings training saw (same bearing, load and speed), "
    "so the score overstates accuracy on new bearings or conditions"
)


@dataclass(frozen=True)
class Segment:
    recording: int  # index into the recordings the plan was made for
    start: int
    stop: int
    split: str  # one of SPLIT_NAMES


@dataclass(frozen=True)
class SplitPlan:
    segments: list[Segment]
    held_out: str  # what the test side holds, by the split's rule
    validation: str  # how validation was taken
    fallbacks: list[str]  # classes that could not follow the split's rule, and what was done instead
    optimistic: Optional[str] = None  # why test scores overstate generalisation, when they do


def plan_splits(
    cfg: DataConfig,
    labels: Sequence[str],
    loads: Sequence[int],
    lengths: Sequence[int],
    classes: Optional[Sequence[str]] = None,
    sizes: Optional[Sequence[float]] = None,
    named_splits: Optional[Sequence[str]] = None,
    groups: Optional[Sequence[str]] = None,
) -> SplitPlan:
    """The segments of `cfg.split` for recordings of `labels`, `loads` and `lengths` (samples).

    `classes` (what the model learns per recording) and `sizes` (fault size, 0 for none) default to what the
    ten CWRU class names say under `cfg.task`; a manifest of the user's own recordings gives its own, and the
    split (train, val, test) its rows name (`named_splits`, for data.split=manifest) or their group (`groups`,
    for data.split=group)."""
    labels, loads = _check_inputs(labels, loads)
    named_splits, groups = _manifest_columns(cfg, labels, named_splits, groups)
    if classes is None:
        classes = [class_names(cfg.task)[task_label(cfg.task, label)] for label in labels]
    if sizes is None:
        sizes = [fault_size_in(label) for label in labels]
    classes, sizes = np.asarray(classes, dtype=str), np.asarray(sizes, dtype=float)
    lengths = np.asarray(lengths, dtype=np.int64)
    cutter = _Cutter(cfg, labels, loads, lengths)
    if cfg.split == "manifest":
        return _plan_as_named(cfg, cutter, classes, named_splits)
    if cfg.split == "time":
        segments = [s for i in range(len(labels)) for s in cutter.cut(i, cutter.train_val_test)]
        return SplitPlan(
            segments,
            _held_out(cfg, groups),
            f"time: the block of {cfg.val_fraction:g} of each recording between its train "
            f"and test blocks, {cfg.window}-sample gaps",
            [],
            TIME_SPLIT_CAVEAT,
        )
    everything = np.arange(len(labels))
    if (
        cfg.split == "recording"
        and _fewest_per_class(labels, everything) >= 3
        and _fewest_per_condition(labels, loads, everything) >= 2
    ):
        splits = split_by_recording(labels, loads, cfg.val_fraction, cfg.test_fraction, cfg.seed)
        return SplitPlan(
            [Segment(i, 0, int(lengths[i]), str(s)) for i, s in enumerate(splits)],
            _held_out(cfg, groups),
            _WHOLE_VALIDATION,
            [],
        )
    return _plan_by_sides(cfg, cutter, classes, sizes, groups)


def _plan_as_named(cfg: DataConfig, cutter: _Cutter, classes: np.ndarray, named: np.ndarray) -> SplitPlan:
    """Each recording whole in the split its manifest row names; with no row naming val, validation is taken
    from the training side as the other splits take it."""
    _check_every_class_trains(cfg, cutter, classes, named)
    lengths, held_out = cutter.lengths, _held_out(cfg, None)
    if "val" in named:
        segments = [Segment(i, 0, int(lengths[i]), str(s)) for i, s in enumerate(named)]
        return SplitPlan(segments, held_out, "whole recordings: those whose manifest row says val", [])
    rng = np.random.default_rng(cfg.seed)
    train = np.flatnonzero(named == "train")
    validation, train_segments = _validation(cfg, cutter.labels, cutter.loads, train, cutter, rng)
    test = [Segment(int(i), 0, int(lengths[i]), "test") for i in np.flatnonzero(named == "test")]
    return SplitPlan(sorted(test + train_segments, key=lambda s: (s.recording, s.start)), held_out, validation, [])


def _plan_by_sides(
    cfg: DataConfig, cutter: _Cutter, classes: np.ndarray, sizes: np.ndarray, groups: np.ndarray
) -> SplitPlan:
    """Test recordings by the split's rule (`_sides`), validation from the training side; a class with no
    test-side recording is cut in time instead (a fallback the plan names)."""
    labels, loads, lengths = cutter.labels, cutter.loads, cutter.lengths
    rng = np.random.default_rng(cfg.seed)
    sides = _sides(cfg, labels, loads, sizes, groups, rng)
    _check_every_class_trains(cfg, cutter, classes, sides)
    segments, fallbacks, whole_train = [], [], []
    for label in sorted(set(classes.tolist())):
        members = np.flatnonzero(classes == label)
        train, test = members[sides[members] == "train"], members[sides[members] == "test"]
        if len(test) == 0:
            fallbacks.append(
                f"{label}: no recording on the test side ({_where(cfg, labels, loads, members)}); its "
                f"{len(train)} training-side recording(s) cut in time into train/val/test blocks, "
                f"{cfg.window}-sample gaps"
            )
            segments += [s for i in train for s in cutter.cut(i, cutter.train_val_test)]
            continue
        segments += [Segment(int(i), 0, int(lengths[i]), "test") for i in test]
        whole_train.extend(train.tolist())
    validation, train_segments = _validation(cfg, labels, loads, np.array(sorted(whole_train), dtype=int), cutter, rng)
    segments = sorted(segments + train_segments, key=lambda s: (s.recording, s.start))
    return SplitPlan(segments, _held_out(cfg, groups), validation, fallbacks)


def _check_every_class_trains(cfg: DataConfig, cutter: _Cutter, classes: np.ndarray, sides: np.ndarray) -> None:
    """Each class the model learns needs a recording on the training side."""
    for label in sorted(set(classes.tolist())):
        members = np.flatnonzero(classes == label)
        if not np.any(sides[members] == "train"):
            raise DatasetError(
                f"data.split={cfg.split}: class {label!r} has no recording on the training side "
                f"({_where(cfg, cutter.labels, cutter.loads, members)}); nothing to learn it from"
            )


def _sides(
    cfg: DataConfig,
    labels: np.ndarray,
    loads: np.ndarray,
    sizes: np.ndarray,
    groups: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """'train', 'test' or '' (unused) per recording, by the split's rule."""
    if cfg.split == "load_shift":
        return np.select([np.isin(loads, cfg.test_loads), np.isin(loads, cfg.train_loads)], ["test", "train"], "")
    if cfg.split == "group":
        return np.where(np.isin(groups, cfg.test_groups), "test", "train")
    if cfg.split == "fault_size":  # normal has no size: its recordings are held out like the recording split's
        sides = np.where(np.isclose(sizes, cfg.test_fault_size), "test", "train").astype("<U5")
        held_out_by_recording = sorted(set(labels[sizes == 0].tolist()))
    else:
        sides = np.full(len(labels), "train", dtype="<U5")
        held_out_by_recording = sorted(set(labels.tolist()))
    for label in held_out_by_recording:
        members = np.flatnonzero(labels == label)
        if len(members) >= 2:
            n_test, _ = _held_out_counts(len(members), cfg.test_fraction, 0.0)
            sides[_interleave_loads(members, loads, rng)[:n_test]] = "test"
    return sides


def _validation(
    cfg: DataConfig, labels: np.ndarray, loads: np.ndarray, train: np.ndarray, cutter: _Cutter, rng: np.random.Generator
) -> tuple[str, list[Segment]]:
    """Validation segments taken from the whole training recordings `train`, and how they were taken."""
    if len(train) and _fewest_per_condition(labels, loads, train) >= 2:
        splits = {int(i): "train" for i in train}
        for label in sorted(set(labels[train].tolist())):
            members = train[labels[train] == label]
            _, n_val = _held_out_counts(len(members), 0.0, cfg.val_fraction)
            splits.update({int(i): "val" for i in _interleave_loads(members, loads, rng)[:n_val]})
        return _WHOLE_VALIDATION, [Segment(i, 0, int(cutter.lengths[i]), s) for i, s in splits.items()]
    segments = [s for i in train for s in cutter.cut(i, {"train": 1 - cfg.val_fraction, "val": cfg.val_fraction})]
    return (
        f"time: the last {cfg.val_fraction:g} of each training recording, after a gap of {cfg.window} samples "
        "(the training side holds one recording per class and load)"
    ), segments


@dataclass(frozen=True)
class _Cutter:
    """Cuts a recording into consecutive blocks, one per split, with a gap of one window between blocks."""

    cfg: DataConfig
    labels: np.ndarray
    loads: np.ndarray
    lengths: np.ndarray

    @property
    def train_val_test(self) -> dict[str, float]:
        val, test = self.cfg.val_fraction, self.cfg.test_fraction
        return {"train": 1 - val - test, "val": val, "test": test}

    def cut(self, recording: int, fractions: dict[str, float]) -> list[Segment]:
        window, length = self.cfg.window, int(self.lengths[recording])
        usable = length - window * (len(fractions) - 1)
        sizes = {name: round(fraction * usable) for name, fraction in fractions.items() if name != "train"}
        sizes = {"train": usable - sum(sizes.values()), **sizes}
        if min(sizes.values()) < window:
            raise DatasetError(
                f"data.split={self.cfg.split}: recording {self.labels[recording]} at "
                f"{self.loads[recording]} HP has {length} samples, too few for "
                f"{'/'.join(sizes)} blocks of at least one window ({window}) with {window}-sample "
                "gaps; use a shorter data.window"
            )
        segments, start = [], 0
        for name in SPLIT_NAMES:
            if name in sizes:
                segments.append(Segment(recording, start, start + sizes[name], name))
                start += sizes[name] + window
        return segments


def _where(cfg: DataConfig, labels: np.ndarray, loads: np.ndarray, members: np.ndarray) -> str:
    """Where a class's recordings are, in the terms of the split's rule."""
    at = f"at load(s) {sorted(set(loads[members].tolist()))} HP"
    if cfg.split == "load_shift":
        return f"{at}; data.train_loads={list(cfg.train_loads)}, data.test_loads={list(cfg.test_loads)}"
    if cfg.split == "group":
        return f"{len(members)} recording(s), all in data.test_groups={list(cfg.test_groups)}"
    return f"{len(members)} recording(s) {at}"


def _held_out(cfg: DataConfig, groups: Optional[np.ndarray]) -> str:
    """What the test side holds by the split's rule, for the dataset's manifest (`fallbacks` name exceptions)."""
    if cfg.split == "load_shift":
        return f"every recording at load(s) {list(cfg.test_loads)} HP; training on {list(cfg.train_loads)} HP"
    if cfg.split == "fault_size":
        return (
            f"every recording of fault size {cfg.test_fault_size:g}, and a test_fraction ({cfg.test_fraction:g}) "
            "of the normal recordings"
        )
    if cfg.split == "time":
        return f"the last {cfg.test_fraction:g} of every recording"
    if cfg.split == "manifest":
        return "the recordings whose manifest row says test"
    if cfg.split == "group":
        training = sorted(set(groups.tolist()) - set(cfg.test_groups))
        return f"group(s) {list(cfg.test_groups)}, whole; training on group(s) {training}"
    return f"a test_fraction ({cfg.test_fraction:g}) of each class's recordings, spread over loads"


def split_by_recording(
    recording_labels: Sequence[str],
    recording_loads: Sequence[int],
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> np.ndarray:
    """'train'/'val'/'test' per recording, stratified by class and spread over loads.

    Every class needs at least 3 recordings, so that it appears in every split.
    """
    labels, loads = _check_inputs(recording_labels, recording_loads)
    rng = np.random.default_rng(seed)
    splits = np.full(len(labels), "train", dtype="<U5")
    for label in sorted(set(labels.tolist())):
        members = np.flatnonzero(labels == label)
        if len(members) < 3:
            raise ValueError(
                f"class {label!r} has {len(members)} recording(s); a split by recording needs "
                "at least 3 (one each for train, val and test)"
            )
        order = _interleave_loads(members, loads, rng)
        n_test, n_val = _held_out_counts(len(members), test_fraction, val_fraction)
        splits[order[:n_test]] = "test"
        splits[order[n_test : n_test + n_val]] = "val"
    return splits


def _manifest_columns(
    cfg: DataConfig, labels: np.ndarray, named_splits: Optional[Sequence[str]], groups: Optional[Sequence[str]]
) -> tuple[np.ndarray, np.ndarray]:
    """The split and group per recording as arrays (empty when not given); the one `cfg.split` reads is needed."""
    named_splits, groups = (np.asarray([] if given is None else given, dtype=str) for given in (named_splits, groups))
    needed = {"manifest": ("named_splits", named_splits), "group": ("groups", groups)}.get(cfg.split)
    if needed and needed[1].shape != labels.shape:
        raise ValueError(f"data.split={cfg.split} needs one of {needed[0]} per recording, got {needed[1].shape}")
    return named_splits, groups


def _fewest_per_class(labels: np.ndarray, members: np.ndarray) -> int:
    return min(np.unique(labels[members], return_counts=True)[1], default=0)


def _fewest_per_condition(labels: np.ndarray, loads: np.ndarray, members: np.ndarray) -> int:
    """The fewest recordings any (class, load) among `members` has."""
    pairs = np.char.add(labels[members], np.char.mod("@%d", loads[members]))
    return min(np.unique(pairs, return_counts=True)[1], default=0)


def _check_inputs(recording_labels: Sequence[str], recording_loads: Sequence[int]) -> tuple[np.ndarray, ...]:
    labels, loads = np.asarray(recording_labels, dtype=str), np.asarray(recording_loads, dtype=int)
    if labels.shape != loads.shape or labels.ndim != 1:
        raise ValueError(f"need one label and one load per recording, got {labels.shape} and {loads.shape}")
    return labels, loads


def _interleave_loads(members: np.ndarray, loads: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Members shuffled, then dealt round-robin over loads, so the first few held out cover distinct loads."""
    shuffled = rng.permutation(members)
    rank = np.zeros(len(shuffled), dtype=int)  # position of each member among those of its load
    for load in np.unique(loads[shuffled]):
        at_load = loads[shuffled] == load
        rank[at_load] = np.arange(np.count_nonzero(at_load))
    return shuffled[np.argsort(rank, kind="stable")]


def _held_out_counts(n: int, test_fraction: float, val_fraction: float) -> tuple[int, int]:
    """Recordings for test and val: each at least 1 when asked for, always leaving at least 1 for train."""
    n_test = max(1, round(test_fraction * n)) if test_fraction > 0 else 0
    n_val = max(1, round(val_fraction * n)) if val_fraction > 0 else 0
    while n_test + n_val > n - 1:
        if n_test >= n_val and n_test > 1:
            n_test -= 1
        else:
            n_val -= 1
    return n_test, n_val
