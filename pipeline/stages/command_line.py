"""What every Hydra entry point shares: register the schema, validate the composed config against it and
against this machine, run the stage, fail cleanly."""

from __future__ import annotations

import os
import shlex
import sys
from typing import Any, Callable

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from pipeline.config import ConfigError, ExperimentConfig, register_configs, to_experiment_config
from pipeline.data.cwru import CwruError
from pipeline.data.prepared import DatasetError
from pipeline.tracking.registry import RegistryError
from pipeline.tracking.store import StoreError, check_store
from pipeline.training.checkpoint import CheckpointError
from pipeline.training.device import check_hardware
from pipeline.training.model_factory import model_class
from pipeline.training.training_engine import TrainingDivergedError

# Failures whose message already says what went wrong and what to do: the command line shows the message
# alone, not a traceback.
EXPLAINED_FAILURES = (CheckpointError, CwruError, DatasetError, RegistryError, TrainingDivergedError)


def check_before_work(config: ExperimentConfig) -> None:
    """What the schema cannot check without torch: the model is one the factory builds, and this machine has
    the cores, GPUs and backend the config asks for. Raises ConfigError."""
    model_class(config.model.name)
    check_hardware(config.distributed, config.training)


def run_stage(
    stage: Callable[[ExperimentConfig], Any], cfg: DictConfig, schema: type[ExperimentConfig] = ExperimentConfig
) -> Any:
    """Validate `cfg` (`check_before_work` too) and reach the tracking store before any work, then run the stage.

    A bad config value or an unusable store exits with status 2 and a message naming the key (or URI) and the
    value. On the command line (a single Hydra run) an explained failure exits with status 1 and its message;
    anywhere else (tests, sweeps) it propagates. The stage's MLflow run has already ended FAILED by then.
    """
    try:
        config = to_experiment_config(cfg, schema)
        check_before_work(config)
        if int(os.environ.get("RANK", "0")) == 0:  # under torchrun only rank 0 tracks (and may create the store)
            check_store()
    except (ConfigError, StoreError) as err:
        print(f"{'config' if isinstance(err, ConfigError) else 'tracking store'} error: {err}", file=sys.stderr)
        sys.exit(2)
    try:
        return stage(config)
    except (ConfigError, *EXPLAINED_FAILURES) as err:  # a ConfigError here: a value only the stage can check
        if not (HydraConfig.initialized() and HydraConfig.get().mode == RunMode.RUN):
            raise
        bad_config = isinstance(err, ConfigError)
        print(f"{'config error' if bad_config else type(err).__name__}: {err}", file=sys.stderr)
        sys.exit(2 if bad_config else 1)


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


def run_hydra(main: Callable[[], Any], schema: type[ExperimentConfig] = ExperimentConfig) -> None:
    """Start a Hydra main (`python -m pipeline.<stage>`): register the schema (ExperimentConfig, or one that extends
    it), unpack MLproject's `{overrides}` argument, run."""
    register_configs(schema)
    sys.argv = [sys.argv[0], *split_packed_overrides(sys.argv[1:])]
    main()
