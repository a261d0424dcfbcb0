"""Hydra's `--multirun` sweeper for av-pino: `python -m pipeline.train -m hparams_search=physics_weights`.

A thin adapter (Hydra finds sweepers only in the `hydra_plugins` package): it composes the experiment config
from the command line, adds any sweep expressions given there (`loss.physics_weight='interval(0.01, 1)'`) to
the search space, and hands both to `pipeline.sweep.sweeper.run_sweep`. Hydra imports this module at every
startup, so it must not import Optuna, torch or MLflow.
"""

import sys
from dataclasses import dataclass
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig, OmegaConf

from pipeline.config import ConfigError, to_experiment_config
from pipeline.sweep.config import SweepConfig


@dataclass
class AvPinoSweeperConf(SweepConfig):
    """`hydra.sweeper`'s schema: SweepConfig's fields and defaults, so a default changed there changes every
    sweep and overrides are type-checked against them, plus the class Hydra instantiates."""

    _target_: str = "hydra_plugins.av_pino_sweeper.av_pino_sweeper.AvPinoSweeper"


ConfigStore.instance().store(group="hydra/sweeper", name="av_pino_optuna", node=AvPinoSweeperConf, provider="av-pino")


class AvPinoSweeper(Sweeper):
    def __init__(self, **settings: Any):
        self.settings = settings
        self.config: Optional[DictConfig] = None

    def setup(self, *, hydra_context, task_function, config: DictConfig) -> None:  # noqa: ARG002 - Hydra's API
        self.hydra_context, self.config = hydra_context, config

    def sweep_config(self, params: dict[str, str]) -> SweepConfig:
        """The composed `hydra.sweeper` settings, with `params` (the command line's sweep expressions) added."""
        settings = OmegaConf.to_container(OmegaConf.create(self.settings), resolve=True)
        return SweepConfig(**{**settings, "params": {**settings["params"], **params}})

    def sweep(self, arguments: list[str]) -> Any:
        from pipeline.sweep.sweeper import run_sweep  # here, not at the top: it imports torch, Optuna and MLflow

        fixed, params = [], {}
        for override in OverridesParser.create().parse_overrides(arguments):
            if override.is_sweep_override():
                params[override.get_key_element()] = override.input_line.split("=", 1)[1]
            else:
                fixed.append(override.input_line)
        try:
            composed = self.hydra_context.config_loader.load_sweep_config(self.config, fixed)
            sweep = self.sweep_config(params)
            experiment = OmegaConf.masked_copy(composed, [key for key in composed if key != "hydra"])
            result = run_sweep(to_experiment_config(experiment), sweep)
        except ConfigError as err:
            print(f"config error: {err}", file=sys.stderr)
            sys.exit(2)
        print(
            f"study {result.study_name}: {result.states}; best {result.best_params}; "
            f"MLflow parent run {result.parent_run_id}"
        )
        return result
