"""Framing without copies."""

import numpy as np
import pytest

from pipeline.data.windows import frame


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
