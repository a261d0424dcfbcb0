"""The torch view of a prepared dataset: one split's windows and labels, read from memory-mapped arrays."""

from __future__ import annotations

from typing import Union

import numpy as np
import torch
from torch.utils.data import Dataset

Item = Union[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]]


class BearingWindows(Dataset):
    """Windows selected by `indices` from arrays that may be memory-mapped.

    Each item copies only its own window out of the (read-only) array, so an epoch never materialises the
    whole array and the page cache is shared by every DataLoader worker. With `shaft_hz` (per window, Hz) and
    optionally `bearing` (per window, the geometry n_balls, ball and pitch diameter, contact angle) an item also
    carries the conditions the window was recorded under, `(window, label, {"shaft_hz": ..., "bearing": ...})`,
    which a model takes as keyword arguments; without, it is `(window, label)`.
    """

    def __init__(
        self,
        windows: np.ndarray,
        labels: np.ndarray,
        indices: np.ndarray | None = None,
        recording_ids: np.ndarray | None = None,
        loads: np.ndarray | None = None,
        shaft_hz: np.ndarray | None = None,
        bearing: np.ndarray | None = None,
    ) -> None:
        if windows.ndim != 2 or len(labels) != len(windows):
            raise ValueError(f"need windows [N, L] and N labels, got {windows.shape} and {len(labels)} labels")
        for name, values in (("shaft_hz", shaft_hz), ("bearing", bearing)):
            if values is not None and len(values) != len(windows):
                raise ValueError(f"need one {name} per window, got {len(values)} for {len(windows)} windows")
        if bearing is not None and shaft_hz is None:
            raise ValueError("a window's bearing is read at its shaft speed: give shaft_hz too")
        self._windows = windows
        self._indices = np.arange(len(windows)) if indices is None else np.asarray(indices, dtype=np.int64)
        self.labels = np.asarray(labels[self._indices], dtype=np.int64)
        self.recording_ids = None if recording_ids is None else np.asarray(recording_ids[self._indices])
        self.loads = None if loads is None else np.asarray(loads[self._indices])
        self.shaft_hz = None if shaft_hz is None else np.asarray(shaft_hz[self._indices], dtype=np.float32)
        self.bearing = None if bearing is None else np.asarray(bearing[self._indices], dtype=np.float32)

    @property
    def windows(self) -> np.ndarray:
        """The selected windows `[N, L]` as one array (a copy): for scoring a whole split at once."""
        return np.asarray(self._windows[self._indices], dtype=np.float32)

    def __len__(self) -> int:
        return len(self._indices)

    def __getitem__(self, i: int) -> Item:
        window = np.array(self._windows[self._indices[i]], dtype=np.float32)  # own, writable copy of one row
        x, y = torch.from_numpy(window), torch.tensor(self.labels[i])
        if self.shaft_hz is None:
            return x, y
        return x, y, {name: torch.as_tensor(value) for name, value in self.conditions(i).items()}

    def conditions(self, selection: int | slice | np.ndarray = slice(None)) -> dict[str, np.ndarray]:
        """The recording conditions (`shaft_hz`, `bearing`) of the selected windows, for `model(x, **conditions)`."""
        given = {"shaft_hz": self.shaft_hz, "bearing": self.bearing}
        return {name: values[selection] for name, values in given.items() if values is not None}
