"""The study's config composed the way `python -m pipeline.study` composes it, shrunk by `study=tiny`
(imported by the study tests and the notebook test)."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir

from pipeline.config import ExperimentConfig, register_configs, to_experiment_config

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def study_config(*overrides: str) -> ExperimentConfig:
    """conf/study.yaml with `study=tiny` and `overrides`, validated."""
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return to_experiment_config(compose(config_name="study", overrides=["study=tiny", *overrides]))
