"""Stage 2, train: `python -m pipeline.train [overrides]` trains a model on a prepared dataset and logs it
(pipeline.stages.train); `-m hparams_search=...` sweeps it with Optuna (hydra_plugins/av_pino_sweeper)."""

import hydra
from omegaconf import DictConfig

from pipeline.stages.command_line import run_hydra, run_stage
from pipeline.stages.train import train


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """Returns the final validation accuracy: the value a generic Hydra sweeper would optimise."""
    result = run_stage(train, cfg)
    return result.metrics.get("val/accuracy", float("nan")) if result is not None else float("nan")


if __name__ == "__main__":
    run_hydra(main)
