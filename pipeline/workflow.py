"""The whole pipeline, `mlflow run .` or `python -m pipeline.workflow [overrides]`: prepare -> train -> evaluate ->
register as child runs of one parent, reusing finished stages (pipeline.stages.workflow)."""

import hydra
from omegaconf import DictConfig

from pipeline.stages.command_line import run_hydra, run_stage
from pipeline.stages.workflow import run_pipeline


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    run_stage(run_pipeline, cfg)


if __name__ == "__main__":
    run_hydra(main)
