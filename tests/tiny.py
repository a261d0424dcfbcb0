"""What runs in seconds: Hydra overrides for short simulated recordings, a tiny AGT-NO and one diagnosis figure
per class, and a prepared dataset held in memory."""

from dataclasses import asdict
from pathlib import Path

import numpy as np

from pipeline.data.bearing import SKF_6205_DE
from pipeline.data.classes import CLASS_NAMES
from pipeline.data.prepared import PreparedDataset
from pipeline.data.windows import SPLIT_NAMES
from tests.training.tiny_training import tone_windows

TINY_MODEL = ["model.hidden_dim=8", "model.n_layers=1", "model.n_modes=8", "model.n_heads=2", "model.patch_size=32"]
TINY = [
    "data.window=256",
    "data.hop=256",
    "data.duration_s=0.3",
    "data.recordings_per_load=3",
    "evaluate.diagnosis_figures=1",  # tests/stages/test_evaluate.py checks the default of two per class
    *TINY_MODEL,
]


def tiny_dataset(splits: dict[str, int] | None = None) -> PreparedDataset:
    """A PreparedDataset in memory (path "tiny"): tone windows of 256 samples in three of the ten CWRU classes
    (tests/training/tiny_training.py), as many per split as `splits` says, each at its own shaft speed."""
    splits = {"train": 90, "val": 60, "test": 30} if splits is None else splits
    windows, labels = tone_windows(sum(splits.values())).tensors
    n = len(windows)
    arrays = {
        "windows": windows.numpy(),
        "labels": labels.numpy(),
        "split": np.repeat([SPLIT_NAMES.index(name) for name in splits], list(splits.values())),
        "rpm": np.random.default_rng(0).uniform(1720.0, 1797.0, n).astype(np.float32),
        "recording": np.arange(n),
        "load": np.zeros(n, dtype=np.int8),
        "bearing": np.zeros(n, dtype=np.int8),
    }
    bearings = [{"name": "skf_6205", "geometry": asdict(SKF_6205_DE)}]
    manifest = {"class_names": list(CLASS_NAMES), "sample_rate": 12000.0, "bearings": bearings}
    return PreparedDataset(Path("tiny"), manifest, arrays)
