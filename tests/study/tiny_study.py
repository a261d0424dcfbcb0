"""The study's config composed the way `python -m pipeline.study` composes it, shrunk by `study=tiny`
(imported by the study tests and the notebook test)."""

from __future__ import annotations

from pipeline.study.config import StudyExperimentConfig, compose_study_config


def study_config(*overrides: str) -> StudyExperimentConfig:
    """conf/study.yaml with `study=tiny` and `overrides`, validated."""
    return compose_study_config("study=tiny", *overrides)
