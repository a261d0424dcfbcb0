"""The search space: Hydra sweep expressions turned into Optuna distributions, and a trial into a config."""

from __future__ import annotations

from typing import Any

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pipeline.config import ConfigError, ExperimentConfig, to_experiment_config


def distribution(key: str, expression: str) -> optuna.distributions.BaseDistribution:
    """`tag(log, interval(1e-3, 1))` -> FloatDistribution(log=True); `int(interval(1, 8))` -> IntDistribution;
    `range(1, 9, 2)` -> IntDistribution(step=2); `choice(a, b)` or `a,b` -> CategoricalDistribution."""
    try:
        value = OverridesParser.create().parse_override(f"{key}={expression}").value()
    except HydraException as err:
        raise ConfigError(f"hydra.sweeper.params.{key}={expression!r}: not a sweep expression ({err})") from None
    if isinstance(value, IntervalSweep):
        log = "log" in value.tags
        if log and value.start <= 0:
            raise ConfigError(f"hydra.sweeper.params.{key}={expression!r}: a log interval must start above 0")
        if isinstance(value.start, int) and isinstance(value.end, int):
            return optuna.distributions.IntDistribution(value.start, value.end, log=log)
        return optuna.distributions.FloatDistribution(float(value.start), float(value.end), log=log)
    if isinstance(value, RangeSweep):
        return optuna.distributions.IntDistribution(int(value.start), int(value.stop) - 1, step=int(value.step))
    if isinstance(value, ChoiceSweep):
        return optuna.distributions.CategoricalDistribution(value.list)
    raise ConfigError(f"hydra.sweeper.params.{key}={expression!r}: use interval(...), range(...) or choice(...)")


def search_space(params: dict[str, str], base: ExperimentConfig) -> dict[str, optuna.distributions.BaseDistribution]:
    """Distributions for every swept key; each key must exist in the experiment config."""
    space = {key: distribution(key, str(expression)) for key, expression in params.items()}
    for key in space:
        if OmegaConf.select(OmegaConf.structured(base), key, default="<missing>") == "<missing>":
            raise ConfigError(f"hydra.sweeper.params.{key}: no such key in the experiment config")
    return space


def apply_params(base: ExperimentConfig, params: dict[str, Any]) -> ExperimentConfig:
    """The experiment config with the trial's values set, validated like any other config."""
    merged = OmegaConf.structured(base)
    try:
        for key, value in params.items():
            OmegaConf.update(merged, key, value, merge=False)
    except OmegaConfBaseException as err:
        raise ConfigError(f"{key}={value!r}: {str(err).splitlines()[0]}") from None
    return to_experiment_config(merged, schema=type(base))
