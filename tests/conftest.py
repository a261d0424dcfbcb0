"""Shared fixtures: a private MLflow store per test, and the Hydra config composed the way the stages do."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from pipeline.config import register_configs

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"

torch.set_num_threads(1)  # two cores are shared by pytest and any subprocess it starts


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch):
    """Point MLflow at a fresh SQLite store in tmp_path; returns its tracking URI."""
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    yield uri
    while mlflow.active_run():
        mlflow.end_run()


@pytest.fixture
def compose_config():
    """compose_config(*overrides) -> the DictConfig the Hydra entry points receive."""
    register_configs()

    def _compose(*overrides: str):
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose(config_name="config", overrides=list(overrides))

    return _compose
