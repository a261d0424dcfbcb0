"""BearingWindows: right items and batches, and no copy of the whole array."""

import tracemalloc

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from pipeline.data.dataset import BearingWindows


def arrays(n: int = 40, length: int = 64):
    windows = np.arange(n * length, dtype=np.float32).reshape(n, length)
    labels = np.arange(n) % 10
    return windows, labels, np.arange(n) // 4, (np.arange(n) // 10).astype(np.int8)


def test_items_and_accessors_follow_the_index():
    windows, labels, recordings, loads = arrays()
    indices = np.array([3, 17, 25])
    ds = BearingWindows(windows, labels, indices, recording_ids=recordings, loads=loads)
    assert len(ds) == 3
    window, label = ds[1]
    assert window.dtype == torch.float32 and window.shape == (64,) and label.dtype == torch.int64
    np.testing.assert_array_equal(window.numpy(), windows[17])
    assert int(label) == 7
    np.testing.assert_array_equal(ds.labels, labels[indices])
    np.testing.assert_array_equal(ds.recording_ids, [0, 4, 6])
    np.testing.assert_array_equal(ds.loads, [0, 1, 2])
    assert len(BearingWindows(windows, labels)) == 40
    with pytest.raises(ValueError, match="N labels"):
        BearingWindows(windows, labels[:-1])


def test_items_carry_their_conditions_when_given():
    windows, labels, _, _ = arrays()
    shaft_hz = np.linspace(28.0, 30.0, 40, dtype=np.float32)
    ds = BearingWindows(windows, labels, np.array([3, 17]), shaft_hz=shaft_hz)
    window, label, conditions = ds[1]
    assert int(label) == 7 and conditions["shaft_hz"].dtype == torch.float32
    assert float(conditions["shaft_hz"]) == pytest.approx(shaft_hz[17])
    x, y, batch = next(iter(DataLoader(ds, batch_size=2)))
    assert x.shape == (2, 64) and batch["shaft_hz"].shape == (2,)
    with pytest.raises(ValueError, match="one shaft_hz per window"):
        BearingWindows(windows, labels, shaft_hz=shaft_hz[:-1])


@pytest.mark.filterwarnings("error")  # e.g. torch's warning about non-writable arrays
def test_dataloader_batches_from_a_read_only_memmap(tmp_path):
    windows, labels, _, _ = arrays()
    np.save(tmp_path / "w.npy", windows)
    mapped = np.load(tmp_path / "w.npy", mmap_mode="r")
    ds = BearingWindows(mapped, labels, np.arange(0, 40, 2))
    batches = list(DataLoader(ds, batch_size=8, shuffle=False))
    assert [len(b[0]) for b in batches] == [8, 8, 4]
    x, y = batches[0]
    assert x.shape == (8, 64) and x.dtype == torch.float32 and y.dtype == torch.int64
    np.testing.assert_array_equal(x.numpy(), windows[0:16:2])
    np.testing.assert_array_equal(y.numpy(), labels[0:16:2])


def test_an_epoch_does_not_copy_the_whole_array():
    windows = np.zeros((1000, 1024), dtype=np.float32)  # 4 MB
    labels = np.zeros(1000, dtype=np.int64)
    tracemalloc.start()
    try:
        ds = BearingWindows(windows, labels)
        for i in range(len(ds)):
            ds[i]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < windows.nbytes / 10
