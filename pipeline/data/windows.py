"""Cutting recordings into windows, and assigning whole recordings to train/val/test.

Splits are decided per recording, never per window: overlapping windows of one recording are near copies, so
a recording that fed both train and test would leak and inflate the test score.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")


def frame(signal: np.ndarray, window: int, hop: int) -> np.ndarray:
    """Windows [n, window] of a 1-D signal, every `hop` samples, as a read-only view (no copy)."""
    signal = np.asarray(signal)
    if signal.ndim != 1:
        raise ValueError(f"frame needs a 1-D signal, got shape {signal.shape}")
    if window <= 0 or hop <= 0:
        raise ValueError(f"window and hop must be positive, got window={window}, hop={hop}")
    if len(signal) < window:
        raise ValueError(f"signal of {len(signal)} samples is shorter than one window of {window}")
    return sliding_window_view(signal, window)[::hop]


def split_by_recording(recording_labels: Sequence[str], recording_loads: Sequence[int], val_fraction: float,
                       test_fraction: float, seed: int) -> np.ndarray:
    """'train'/'val'/'test' per recording, stratified by class and spread over loads.

    Every class needs at least 3 recordings, so that it appears in every split.
    """
    labels, loads = _check_inputs(recording_labels, recording_loads)
    rng = np.random.default_rng(seed)
    splits = np.full(len(labels), "train", dtype="<U5")
    for label in sorted(set(labels.tolist())):
        members = np.flatnonzero(labels == label)
        if len(members) < 3:
            raise ValueError(f"class {label!r} has {len(members)} recording(s); a split by recording needs "
                             "at least 3 (one each for train, val and test)")
        order = _interleave_loads(members, loads, rng)
        n_test, n_val = _held_out_counts(len(members), test_fraction, val_fraction)
        splits[order[:n_test]] = "test"
        splits[order[n_test:n_test + n_val]] = "val"
    return splits


def load_shift_split(recording_labels: Sequence[str], recording_loads: Sequence[int], val_fraction: float,
                     seed: int, test_load: int = 3) -> np.ndarray:
    """Train on the other loads (a seeded `val_fraction` of them for validation), test on `test_load`.

    The standard harder benchmark: the model must generalise to a shaft speed it never saw.
    """
    labels, loads = _check_inputs(recording_labels, recording_loads)
    rng = np.random.default_rng(seed)
    splits = np.where(loads == test_load, "test", "train").astype("<U5")
    for label in sorted(set(labels.tolist())):
        members = np.flatnonzero(labels == label)
        seen = members[loads[members] != test_load]
        if len(seen) == len(members) or len(seen) < 2:
            raise ValueError(f"class {label!r} has {len(members) - len(seen)} recording(s) at load {test_load} "
                             f"and {len(seen)} at other loads; a load-shift split needs at least 1 and 2")
        order = _interleave_loads(seen, loads, rng)
        _, n_val = _held_out_counts(len(seen), 0.0, val_fraction)
        splits[order[:n_val]] = "val"
    return splits


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
    n_val = max(1, round(val_fraction * n))
    while n_test + n_val > n - 1:
        if n_test >= n_val and n_test > 1:
            n_test -= 1
        else:
            n_val -= 1
    return n_test, n_val
