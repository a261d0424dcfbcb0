"""Build the network a `model` config names, sized and informed by the dataset it is trained on.

The one place that maps config names to classes. What a model needs from the data (how many classes, the
fault location each class stands for, the bearing's geometry, the sampling rate) comes from the prepared
dataset's manifest and is stored with a logged model, so the served model is built exactly as trained.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, is_dataclass
from typing import Any, Mapping, Optional, Sequence

from torch import nn

from pipeline.common.config_section import ConfigError
from pipeline.data.bearing import BearingGeometry
from pipeline.data.prepared import dataset_description
from pipeline.models.wdcnn import WDCNN
from pipeline.physics.agt_no_architecture import NOMINAL_SHAFT_HZ, AGTNOArchitecture

MODELS = {"agt_no": AGTNOArchitecture, "wdcnn": WDCNN}


def model_class(name: str) -> type[nn.Module]:
    """The class `model.name` names; a ConfigError naming the choices otherwise."""
    if name not in MODELS:
        raise ConfigError(f"model.name={name!r}: must be one of {sorted(MODELS)}")
    return MODELS[name]


def build_model(
    model_config: Mapping[str, Any] | Any,
    sample_rate: float,
    *,
    class_locations: Optional[Sequence[Optional[str]]] = None,
    bearing: Optional[Mapping[str, Any]] = None,
) -> nn.Module:
    """`model_config` is a ModelConfig or its dict (as stored with a registered model), with `output_dim` set
    (see `model_settings`); `bearing` is a BearingGeometry's fields."""
    kwargs = dict(asdict(model_config) if is_dataclass(model_config) else model_config)
    model = model_class(kwargs.pop("name"))
    if kwargs.get("output_dim") is None:
        raise ValueError("model.output_dim is not set: take it from the dataset with model_settings()")
    if class_locations is not None:
        kwargs["class_locations"] = list(class_locations)
    if bearing is not None:
        kwargs["bearing"] = BearingGeometry(**bearing)
    return model(sample_rate=float(sample_rate), **kwargs)


def model_settings(model_config: Any, manifest: Mapping[str, Any]) -> dict[str, Any]:
    """What building and serving the model needs, from its config and the dataset's manifest: the model config
    with `output_dim` = the dataset's class count, and the dataset's class names, their fault locations, the
    bearing, window, sampling rate and typical shaft speed. A set `model.output_dim` that disagrees with the
    dataset is an error."""
    model = dict(asdict(model_config) if is_dataclass(model_config) else model_config)
    classes = list(manifest["class_names"])
    if model.get("output_dim") not in (None, len(classes)):
        raise ValueError(
            f"model.output_dim={model['output_dim']}, but the dataset has {len(classes)} classes "
            f"({', '.join(classes)}): leave model.output_dim unset to take the dataset's"
        )
    model["output_dim"] = len(classes)
    speeds = [r["rpm"] / 60 for r in manifest.get("recordings", []) if "train" in r.get("split", "")]
    return {
        "model": model,
        "class_names": classes,
        "class_locations": manifest.get("class_locations"),
        "bearing": manifest.get("bearing"),
        "task": manifest.get("task"),
        "window": manifest["window"],
        "sample_rate": manifest["sample_rate"],
        # the speed a served window is read at unless the request says otherwise: the training data's median
        "shaft_hz": float(statistics.median(speeds)) if speeds else NOMINAL_SHAFT_HZ,
    }


def untrained_model(config: Any) -> tuple[nn.Module, dict[str, Any]]:
    """A freshly initialised model for an ExperimentConfig, sized for the data its `data` section describes,
    and its settings: what the train stage builds before it has seen a batch."""
    settings = model_settings(config.model, dataset_description(config.data))
    return build_from_settings(settings), settings


def build_from_settings(settings: Mapping[str, Any]) -> nn.Module:
    """The network `model_settings` describes (as stored with a logged model)."""
    return build_model(
        settings["model"],
        settings["sample_rate"],
        class_locations=settings.get("class_locations"),
        bearing=settings.get("bearing"),
    )
