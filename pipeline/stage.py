"""What every Hydra entry point shares: validate the composed config, run the stage, fail cleanly."""
from __future__ import annotations

import shlex
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


def split_packed_overrides(argv: list[str]) -> list[str]:
    """Unpack an argument holding several overrides, as MLproject's quoted `{overrides}` parameter arrives.

    `["a=1 b=2"]` -> `["a=1", "b=2"]`; an empty argument (the parameter's default) is dropped; an argument
    whose pieces are not all overrides (a value with a space, `name=my run`) is left whole.
    """
    unpacked = []
    for arg in argv:
        if not arg.strip():
            continue
        parts = shlex.split(arg) if " " in arg else [arg]
        is_overrides = len(parts) > 1 and all("=" in p or p.startswith(("~", "+")) for p in parts)
        unpacked.extend(parts if is_overrides else [arg])
    return unpacked


def main_with_packed_overrides(main: Callable[[], Any]) -> None:
    """Run a Hydra main after unpacking MLproject's `{overrides}` argument."""
    sys.argv = [sys.argv[0], *split_packed_overrides(sys.argv[1:])]
    main()
