"""Stage 1, prepare: `python -m pipeline.prepare [overrides]` writes (or reuses) a versioned dataset
(pipeline.stages.prepare)."""

import hydra
from omegaconf import DictConfig

from pipeline.stages.command_line import run_hydra, run_stage
from pipeline.stages.prepare import prepare


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    run_stage(prepare, cfg)


if __name__ == "__main__":
    run_hydra(main)
