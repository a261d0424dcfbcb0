"""What every Hydra entry point shares: validate the composed config, run the stage, fail cleanly."""
from __future__ import annotations

import sys
from typing import Any, Callable

from omegaconf import DictConfig

from pipeline.config import ConfigError, ExperimentConfig, to_experiment_config


def run_stage(stage: Callable[[ExperimentConfig], Any], cfg: DictConfig) -> Any:
    """Validate `cfg` before any work; a bad value exits with status 2 and a message naming key and value."""
    try:
        config = to_experiment_config(cfg)
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        sys.exit(2)
    return stage(config)
