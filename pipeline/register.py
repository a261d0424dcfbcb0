"""Stage 4, register: `python -m pipeline.register [registry.evaluation_run_id=<id>] [registry.rollback=true]`
promotes an evaluated model, or rolls the champion back (pipeline.stages.register)."""

import hydra
from omegaconf import DictConfig

from pipeline.stages.command_line import run_hydra, run_stage
from pipeline.stages.register import register_or_rollback


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    run_stage(register_or_rollback, cfg)


if __name__ == "__main__":
    run_hydra(main)
