"""Fixtures shared by the training tests (the helpers live in tests/training/tiny_training.py)."""

import pytest
from torch.utils.data import DataLoader, TensorDataset

from tests.training.tiny_training import tone_windows


@pytest.fixture(scope="session")
def train_set() -> TensorDataset:
    return tone_windows(192, seed=0)


@pytest.fixture(scope="session")
def val_set() -> TensorDataset:
    return tone_windows(96, seed=1)


@pytest.fixture
def loaders(train_set, val_set):
    """Shuffled train loader (its order comes from torch's global RNG) and a fixed val loader."""
    return DataLoader(train_set, batch_size=16, shuffle=True), DataLoader(val_set, batch_size=48)
