"""The study's config composed the way `python -m pipeline.study` composes it, shrunk by `study=tiny`
(imported by the study tests and the notebook test)."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from pipeline.study.config import StudyExperimentConfig, compose_study_config
from pipeline.study.runner import run_study


def study_config(*overrides: str) -> StudyExperimentConfig:
    """conf/study.yaml with `study=tiny` and `overrides`, validated."""
    return compose_study_config("study=tiny", *overrides)


def run_tiny_study(root: Path, *overrides: str):
    """The tiny study with `overrides` run into a store of its own under `root`, its datasets cached there too;
    MLflow stays pointed at that store, so the caller reads the runs."""
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        return run_study(study_config(f"data.cache_dir={root / 'data'}", *overrides))
