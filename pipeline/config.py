"""Structured configuration: one dataclass per Hydra config group, validated on construction.

The same schema backs Hydra composition (registered in the ConfigStore, so an unknown key or a wrong type is
rejected by OmegaConf) and `load_experiment_config(path)` for plain YAML files. Value checks live in
`__post_init__`, so every way of building a config ends in the same validation, and every error names the
key and the value.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pipeline.common.config_section import ConfigError, Section
from pipeline.data.config import DataConfig
from pipeline.models.config import ModelConfig
from pipeline.readout.config import EvaluateConfig, ReadoutConfig
from pipeline.tracking.config import RegistryConfig, TrackingConfig
from pipeline.training.config import DistributedConfig, LossConfig, TrainingConfig

__all__ = [
    "ConfigError",
    "DataConfig",
    "DistributedConfig",
    "EvaluateConfig",
    "ExperimentConfig",
    "LossConfig",
    "ModelConfig",
    "ReadoutConfig",
    "RegistryConfig",
    "TrackingConfig",
    "TrainingConfig",
    "compose_experiment_config",
    "load_experiment_config",
    "register_configs",
    "to_experiment_config",
]


@dataclass
class ExperimentConfig(Section):
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    readout: ReadoutConfig = field(default_factory=ReadoutConfig)
    registry: RegistryConfig = field(default_factory=RegistryConfig)


def to_experiment_config(cfg: DictConfig | dict, schema: type[ExperimentConfig] = ExperimentConfig) -> ExperimentConfig:
    """Validate a composed config (Hydra's DictConfig or a plain dict) into an ExperimentConfig (or the `schema`
    that extends it, as the study does).

    Keys outside the schema are rejected; Hydra's own `hydra` node is not part of it.
    """
    raw = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    structured = OmegaConf.structured(schema)
    try:
        merged = OmegaConf.merge(structured, {k: v for k, v in raw.items() if k != "hydra"})
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as err:
        raise ConfigError(_describe(err)) from None


CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def compose_experiment_config(
    *overrides: str, config_name: str = "config", schema: type[ExperimentConfig] = ExperimentConfig
) -> ExperimentConfig:
    """conf/<config_name>.yaml with Hydra `overrides`, validated into `schema`: the config an entry point runs
    (`compose_experiment_config()` is what `mlflow run .` trains on)."""
    register_configs(schema)
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            composed = compose(config_name=config_name, overrides=list(overrides))
    finally:
        register_configs()  # the pipeline's own schema again, for whatever composes `config` next
    return to_experiment_config(composed, schema)


def load_experiment_config(path: str | Path) -> ExperimentConfig:
    """Read a YAML experiment config (same keys as the Hydra groups) and validate it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        raw = OmegaConf.load(path)
    except Exception as err:  # yaml errors come in many classes; all mean the same thing here
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {err}") from None
    if not isinstance(raw, DictConfig):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping, not a list")
    unknown = set(raw.keys()) - {f.name for f in fields(ExperimentConfig)}
    if unknown:
        raise ConfigError(f"config file {str(path)!r} has unknown section(s): {', '.join(sorted(unknown))}")
    return to_experiment_config(raw)


def _describe(err: OmegaConfBaseException) -> str:
    """OmegaConf's message, reduced to the key and the problem."""
    key = getattr(err, "full_key", None)
    first_line = str(err).splitlines()[0]
    return f"{key}: {first_line}" if key else first_line


def register_configs(schema: type[ExperimentConfig] = ExperimentConfig) -> None:
    """Make `schema` Hydra's `base_config`, so composed configs are type-checked and closed to unknown keys.
    Called where Hydra starts (the entry points' `run_hydra`), not on import."""
    ConfigStore.instance().store(name="base_config", node=schema)
