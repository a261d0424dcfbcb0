"""WDCNN, the plain 1-D CNN baseline (Zhang et al. 2017, Sensors 17(2)): a wide first kernel as a learnt filter
bank on the raw signal, four small convolutions, a 100-unit dense layer. It reads AGT-NO's variational head, so
both are scored alike, and states no physics: it returns no residuals, so it trains on data and KL alone."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from pipeline.data.config import DataConfig
from pipeline.models.config import ModelConfig
from pipeline.models.outputs import DEFAULT_CLASSES, VariationalClassifier

WIDE_KERNEL, WIDE_STRIDE = 64, 16
CHANNELS = (16, 32, 64, 64, 64)  # the published widths: wide layer, then four 3-tap layers
POOLED_POSITIONS = 2
DENSE_UNITS = 100


def _conv_block(in_channels: int, out_channels: int, kernel: int, stride: int = 1, padding: int = 1) -> nn.Sequential:
    # ceil_mode keeps a length-1 map at length 1, so short windows pass through every block
    return nn.Sequential(
        nn.Conv1d(in_channels, out_channels, kernel, stride, padding),
        nn.BatchNorm1d(out_channels),
        nn.ReLU(),
        nn.MaxPool1d(2, ceil_mode=True),
    )


class WDCNN(VariationalClassifier):
    """Windows `[B, L]` or `[B, L, input_dim]` -> predictions, mean, log_var, uncertainties and features (the
    dense layer's output the head reads).

    Takes the keyword arguments `build_model` passes every model; the sample rate and AGT-NO's own arguments
    (operator sizes, class locations, bearing geometry) do not apply: the baseline keeps its published widths.
    The others default to ModelConfig's, the class count to the ten CWRU classes.
    """

    def __init__(
        self,
        input_dim: int = ModelConfig.input_dim,
        output_dim: int = DEFAULT_CLASSES,
        latent_dim: int = ModelConfig.latent_dim,
        dropout: float = ModelConfig.dropout,
        sample_rate: float = DataConfig.sample_rate,
        **agt_no_only: Any,
    ):  # noqa: ARG002 - see above
        super().__init__()
        self.input_dim = input_dim
        layers = [_conv_block(input_dim, CHANNELS[0], WIDE_KERNEL, WIDE_STRIDE, (WIDE_KERNEL - WIDE_STRIDE) // 2)]
        layers += [_conv_block(c_in, c_out, 3) for c_in, c_out in zip(CHANNELS[:-1], CHANNELS[1:])]
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool1d(POOLED_POSITIONS), nn.Flatten())
        self.dense = nn.Sequential(
            nn.Linear(CHANNELS[-1] * POOLED_POSITIONS, DENSE_UNITS), nn.ReLU(), nn.Dropout(dropout)
        )
        self.build_head(DENSE_UNITS, latent_dim, output_dim)

    def forward(
        self,
        x: torch.Tensor,
        *,
        shaft_hz: torch.Tensor | None = None,
        bearing: torch.Tensor | None = None,
        physics: bool = True,
    ) -> dict:
        """The recording conditions (`shaft_hz`, `bearing`: what AGT-NO's physics needs) are ignored, and so is
        `physics`: the outputs are the same on the training and the serving path. They are accepted so every
        model is called alike."""
        if x.ndim == 2 and self.input_dim == 1:
            x = x.unsqueeze(-1)
        if x.ndim != 3 or x.shape[-1] != self.input_dim:
            raise ValueError(f"WDCNN expects [B, L] or [B, L, {self.input_dim}], got {list(x.shape)}")
        x = x.to(self.classifier.weight.dtype)
        return self.decide(self.dense(self.features(x.transpose(1, 2))))
