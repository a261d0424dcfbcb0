"""What a sweep is: its study, storage, objectives, sampler, pruner and search space, validated up front.

The search space is written in Hydra's sweep grammar (`tag(log, interval(0.001, 1.0))`, `choice(16, 32)`,
`range(1, 4)`), the grammar hydra-optuna-sweeper users already know. The defaults are the shipped search's, so
a search in conf/hparams_search/ writes only what it changes (its space, and its sampler's and pruner's
arguments, pinned there as written because Optuna's defaults change between versions), and the sweeper
plugin's schema is SweepConfig itself. Hydra imports that plugin at every startup, so this module imports no
Optuna: pipeline/sweep/samplers.py builds the sampler and pruner.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional

from pipeline.config import ConfigError

# What a trial can be scored on: the train stage's last-epoch metrics, plus the mean validation residual.
OBJECTIVE_METRICS = ("val/accuracy", "val/macro_f1", "val/loss", "val/physics_residual", "train/loss")
SAMPLERS = ("tpe", "gp", "random", "nsga2")
PRUNERS = ("median", "percentile", "successive_halving", "hyperband", "threshold", "nop")
DIRECTIONS = ("maximize", "minimize")
STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def _check(ok: bool, key: str, value: Any, why: str) -> None:
    if not ok:
        raise ConfigError(f"hydra.sweeper.{key}={value!r}: {why}")


@dataclass
class SamplerConfig:
    name: str = "tpe"
    seed: int = 0
    kwargs: dict[str, Any] = field(default_factory=dict)  # the Optuna sampler's arguments

    def __post_init__(self) -> None:
        _check(self.name in SAMPLERS, "sampler.name", self.name, f"must be one of {SAMPLERS}")


@dataclass
class PrunerConfig:
    name: str = "median"
    kwargs: dict[str, Any] = field(default_factory=dict)  # the Optuna pruner's arguments

    def __post_init__(self) -> None:
        _check(self.name in PRUNERS, "pruner.name", self.name, f"must be one of {PRUNERS}")


@dataclass
class SweepConfig:
    study_name: str = "av-pino-physics-weights"
    storage: Optional[str] = None  # an Optuna RDB URL (postgresql://...), a journal file path, or None:
    # the journal file mlruns/optuna/<study_name>.log
    n_trials: int = 8  # finished (complete or pruned) trials the study should reach, over all workers
    directions: list[str] = field(default_factory=lambda: ["minimize"])
    # val/loss, not val/accuracy: on the default data most trials tie on accuracy (docs/sweeps.md)
    metrics: list[str] = field(default_factory=lambda: ["val/loss"])  # one per direction
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    pruner: PrunerConfig = field(default_factory=PrunerConfig)
    params: dict[str, str] = field(default_factory=dict)  # config key -> Hydra sweep expression

    def __post_init__(self) -> None:
        if isinstance(self.sampler, dict):
            self.sampler = SamplerConfig(**self.sampler)
        if isinstance(self.pruner, dict):
            self.pruner = PrunerConfig(**self.pruner)
        _check(
            bool(STUDY_NAME.match(self.study_name)),
            "study_name",
            self.study_name,
            "must be 1-128 letters, digits, '_', '.' or '-', starting with a letter or digit",
        )
        _check(self.n_trials > 0, "n_trials", self.n_trials, "must be positive")
        for direction in self.directions:
            _check(direction in DIRECTIONS, "directions", self.directions, f"each must be one of {DIRECTIONS}")
        for metric in self.metrics:
            _check(
                metric in OBJECTIVE_METRICS,
                "metrics",
                self.metrics,
                f"{metric!r} is not a metric a trial reports; choose from {OBJECTIVE_METRICS}",
            )
        _check(
            len(self.metrics) == len(self.directions) > 0,
            "metrics",
            self.metrics,
            f"needs one metric per direction ({len(self.directions)} directions)",
        )
        _check(
            len(self.directions) == 1 or self.pruner.name == "nop",
            "pruner.name",
            self.pruner.name,
            "Optuna prunes single-objective studies only; use pruner.name=nop for a multi-objective sweep",
        )
        _check(
            self.sampler.name != "gp" or len(self.directions) == 1,
            "sampler.name",
            self.sampler.name,
            "gp searches single-objective studies; use tpe or nsga2 for a multi-objective sweep",
        )
        _check(bool(self.params), "params", self.params, "the search space is empty")
        if self.storage is not None:
            _check(bool(str(self.storage).strip()), "storage", self.storage, "must not be empty")

    @property
    def multi_objective(self) -> bool:
        return len(self.directions) > 1
