"""`python -m pipeline.study [overrides]`: the ablation study (conf/study.yaml; `study=tiny` runs in seconds)."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from pipeline.stages.command_line import run_hydra, run_stage
from pipeline.study.config import StudyExperimentConfig
from pipeline.study.runner import run_study


@hydra.main(version_base="1.3", config_path="../../conf", config_name="study")
def main(cfg: DictConfig) -> None:
    run_stage(run_study, cfg, StudyExperimentConfig)


if __name__ == "__main__":
    run_hydra(main, StudyExperimentConfig)
