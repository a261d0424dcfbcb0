"""The random transfer path changes a window's spectrum envelope and level, never where its impacts repeat."""

import math

import pytest
import torch

from pipeline.training.augmentation import random_transfer_path


def impact_train(length: int = 4096, period: int = 100) -> torch.Tensor:
    """A decaying 3 kHz ring every `period` samples, at 12 kHz."""
    t = torch.arange(length)
    phase = t % period
    return torch.exp(-phase / 15.0) * torch.sin(2 * math.pi * 3000 / 12000 * phase)


def test_each_window_gets_its_own_filter_and_the_impacts_stay_put():
    torch.manual_seed(0)
    windows = impact_train().expand(4, -1).clone()
    filtered = random_transfer_path(windows, spread_db=10.0, gain_db=10.0)
    assert filtered.shape == windows.shape and filtered.dtype == windows.dtype
    rms = filtered.pow(2).mean(dim=1).sqrt()
    assert rms.max() / rms.min() > 1.5  # levels differ window to window
    # the squared envelope still repeats every 100 samples: its autocorrelation peaks at that lag
    energy = filtered.pow(2) - filtered.pow(2).mean(dim=1, keepdim=True)
    lags = torch.arange(60, 140)
    correlation = torch.stack([(energy[:, :-lag] * energy[:, lag:]).mean(dim=1) for lag in lags], dim=1)
    assert (lags[correlation.argmax(dim=1)] == 100).all()


def test_zero_spread_and_gain_leave_the_window_unchanged():
    windows = torch.randn(3, 512, 1)
    torch.testing.assert_close(random_transfer_path(windows, 0.0, 0.0), windows, atol=1e-5, rtol=1e-5)


def test_negative_spreads_are_refused():
    with pytest.raises(ValueError, match="spread_db and gain_db must be >= 0"):
        random_transfer_path(torch.randn(2, 64), -1.0, 0.0)
