"""`python -m pipeline.study [overrides]`: the ablation study (conf/study.yaml; `study=tiny` runs in seconds)."""
from __future__ import annotations

import hydra
from omegaconf import DictConfig

from pipeline.config import register_configs
from pipeline.stage import main_with_packed_overrides, run_stage
from pipeline.study.runner import run_study

register_configs()


@hydra.main(version_base="1.3", config_path="../../conf", config_name="study")
def main(cfg: DictConfig) -> None:
    run_stage(run_study, cfg)


if __name__ == "__main__":
    main_with_packed_overrides(main)
