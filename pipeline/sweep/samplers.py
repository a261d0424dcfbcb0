"""The Optuna sampler and pruner a sweep config names; kept out of pipeline.sweep.config, which the sweeper
plugin imports at every Hydra startup, because importing Optuna is slow."""

from __future__ import annotations

import optuna

from pipeline.config import ConfigError
from pipeline.sweep.config import PrunerConfig, SamplerConfig

SAMPLER_CLASSES = {
    "tpe": optuna.samplers.TPESampler,
    "gp": optuna.samplers.GPSampler,
    "random": optuna.samplers.RandomSampler,
    "nsga2": optuna.samplers.NSGAIISampler,
}
PRUNER_CLASSES = {
    "median": optuna.pruners.MedianPruner,
    "percentile": optuna.pruners.PercentilePruner,
    "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
    "hyperband": optuna.pruners.HyperbandPruner,
    "threshold": optuna.pruners.ThresholdPruner,
    "nop": optuna.pruners.NopPruner,
}


def build_sampler(config: SamplerConfig, seed: int) -> optuna.samplers.BaseSampler:
    """The sampler with `seed` (the worker's: see pipeline.sweep.sweeper) and the configured arguments."""
    try:
        return SAMPLER_CLASSES[config.name](seed=seed, **config.kwargs)
    except TypeError as err:
        raise ConfigError(f"hydra.sweeper.sampler.kwargs={config.kwargs!r}: {err}") from None


def build_pruner(config: PrunerConfig) -> optuna.pruners.BasePruner:
    try:
        return PRUNER_CLASSES[config.name](**config.kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"hydra.sweeper.pruner.kwargs={config.kwargs!r}: {err}") from None
