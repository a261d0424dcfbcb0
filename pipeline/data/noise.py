"""White noise added to recorded windows at a chosen SNR: how noise robustness is tested on real recordings,
which cannot be re-recorded noisier the way the simulator re-simulates them."""

from __future__ import annotations

import numpy as np


def with_white_noise(windows: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    """`windows` [N, L] plus white Gaussian noise at `snr_db` below each window's own power. The noise depends on
    `seed` only, so models compared on the same seed are compared on the same noisy windows."""
    windows = np.asarray(windows, dtype=np.float32)
    power = np.mean(windows.astype(np.float64) ** 2, axis=1, keepdims=True)
    noise = np.random.default_rng(seed).standard_normal(windows.shape) * np.sqrt(power * 10 ** (-snr_db / 10))
    return (windows + noise).astype(np.float32)
