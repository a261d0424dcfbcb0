"""Tiny, fast ingredients for the training tests: a separable data set with resonance physics in it (also with
each window's shaft speed, as a prepared dataset yields it), a small real AGT-NO, a model without physics, and a
validated config shrunk to a few epochs (imported by the tests and conftest)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from pipeline.config import ExperimentConfig, TrainingConfig
from pipeline.data.classes import CLASS_NAMES
from pipeline.physics.agt_no_architecture import AGTNOArchitecture

SAMPLE_RATE = 12000.0
TONES_HZ = (100.0, 300.0, 500.0)  # the k-th class of TONE_CLASSES carries a tone at TONES_HZ[k]
# Classes that differ in fault location only: AGT-NO decides size from the window's level, which is the same
# for every class here, and location from its operator features, which see the tone.
TONE_CLASSES = ("normal", "ball_007", "inner_007")
WINDOW = 256


def tone_windows(n: int, seed: int = 0, length: int = WINDOW) -> TensorDataset:
    """`n` windows: a 3 kHz resonance rung by impacts every 1/160 s (the part the physics residuals can
    explain) plus a class-specific low tone (what makes the classes separable for a tiny model) and noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(length) / SAMPLE_RATE
    tones = np.arange(n) % len(TONES_HZ)
    labels = np.array([CLASS_NAMES.index(TONE_CLASSES[k]) for k in tones])
    windows = 0.05 * rng.standard_normal((n, length))
    for i, label in enumerate(tones):
        lag = (t - rng.uniform(0, 1 / 160)) % (1 / 160)
        windows[i] += np.exp(-0.05 * 2 * np.pi * 3000 * lag) * np.sin(2 * np.pi * 3000 * lag)
        windows[i] += 0.3 * np.sin(2 * np.pi * TONES_HZ[label] * t + rng.uniform(0, 2 * np.pi))
    return TensorDataset(torch.from_numpy(windows).float(), torch.from_numpy(labels).long())


class AtShaftSpeed(Dataset):
    """Items `(window, label, {"shaft_hz": float32 scalar})` of `windows`, each at its own shaft speed."""

    def __init__(self, windows: TensorDataset, seed: int = 0):
        self.windows = windows
        self.shaft_hz = torch.from_numpy(np.random.default_rng(seed).uniform(28.5, 30.0, len(windows))).float()

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int):
        window, label = self.windows[i]
        return window, label, {"shaft_hz": self.shaft_hz[i]}


class SpectrumClassifier(nn.Module):
    """A model that states no physics: logits from the window's log magnitude spectrum, and nothing else."""

    def __init__(self, length: int = WINDOW, n_classes: int = len(CLASS_NAMES)):
        super().__init__()
        self.linear = nn.Linear(length // 2 + 1, n_classes)

    def forward(self, x: torch.Tensor) -> dict:
        return {"predictions": self.linear(torch.fft.rfft(x).abs().log1p())}


def tiny_model(seed: int = 0, **sizes) -> AGTNOArchitecture:
    """A real AGT-NO, small enough for a few CPU epochs in a second or two."""
    torch.manual_seed(seed)
    args = dict(
        hidden_dim=16,
        output_dim=len(CLASS_NAMES),
        n_modes=12,
        n_layers=1,
        n_heads=2,
        patch_size=32,
        latent_dim=8,
        sample_rate=SAMPLE_RATE,
    )
    args.update(sizes)
    return AGTNOArchitecture(**args)


def tiny_config(**training) -> ExperimentConfig:
    """Defaults shrunk for tests; keyword arguments override `training.*`."""
    settings = dict(epochs=4, batch_size=16, learning_rate=1e-2, patience=50, checkpoint_every=1)
    settings.update(training)
    return ExperimentConfig(training=TrainingConfig(**settings))
