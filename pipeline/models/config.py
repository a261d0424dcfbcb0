"""The `model` config section: which network, and its sizes. A model built by hand takes these defaults too."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from pipeline.common.config_section import Section, check_setting


@dataclass
class ModelConfig(Section):
    name: str = "agt_no"
    input_dim: int = 1
    hidden_dim: int = 32
    output_dim: Optional[int] = None  # None: the number of classes of the dataset trained on
    n_modes: int = 16  # Fourier modes (quefrencies) of the spectrum operator's blocks
    n_layers: int = 2
    n_heads: int = 4
    patch_size: int = 8  # spectrum bins per patch of the attention between frequency bands
    dropout: float = 0.0
    latent_dim: int = 16
    spectrum_view: bool = True  # read the log spectrum beside the fault orders (machine-specific: sizes, known rigs)

    def __post_init__(self) -> None:
        p = "model."
        check_setting(
            bool(self.name.strip()), p + "name", self.name, "must name a model (pipeline/training/model_factory.py)"
        )
        for key in ("input_dim", "hidden_dim", "n_modes", "n_layers", "n_heads", "patch_size", "latent_dim"):
            check_setting(getattr(self, key) > 0, p + key, getattr(self, key), "must be positive")
        check_setting(
            self.output_dim is None or self.output_dim > 1,
            p + "output_dim",
            self.output_dim,
            "must be at least 2 classes (or unset: the dataset's number of classes)",
        )
        check_setting(
            self.hidden_dim % self.n_heads == 0,
            p + "hidden_dim",
            self.hidden_dim,
            f"must be divisible by model.n_heads={self.n_heads}",
        )
        check_setting(0.0 <= self.dropout < 1.0, p + "dropout", self.dropout, "must be in [0, 1)")
