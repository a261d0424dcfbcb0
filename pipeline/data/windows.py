"""Cutting recordings into windows, and the names of the splits windows are assigned to (see splits.py)."""

from __future__ import annotations

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
