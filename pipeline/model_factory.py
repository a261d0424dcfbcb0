"""Build the network a `model` config names; the one place that maps config names to classes."""
from __future__ import annotations

from dataclasses import asdict, is_dataclass
from typing import Any, Mapping

from torch import nn

from pipeline.baselines.wdcnn import WDCNN
from pipeline.physics.agt_no_architecture import AGTNOArchitecture

MODELS = {"agt_no": AGTNOArchitecture, "wdcnn": WDCNN}


def build_model(model_config: Mapping[str, Any] | Any, sample_rate: float) -> nn.Module:
    """`model_config` is a ModelConfig or its dict (as stored with a registered model)."""
    kwargs = dict(asdict(model_config) if is_dataclass(model_config) else model_config)
    name = kwargs.pop("name")
    if name not in MODELS:
        raise ValueError(f"model.name={name!r}: must be one of {sorted(MODELS)}")
    return MODELS[name](sample_rate=float(sample_rate), **kwargs)
