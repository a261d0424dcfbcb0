"""Untrusted files: a registered model whose weights file was swapped for a malicious pickle
is refused when loaded, and the pickle's code never runs. (Malicious checkpoints are refused by the training
engine: test_training_engine.py; the untampered champion loads without pickle: stages/test_workflow.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch

from pipeline.config import DataConfig, ExperimentConfig, ModelConfig
from pipeline.tracking.model_logging import log_pyfunc_model
from pipeline.tracking.store import ensure_experiment
from pipeline.training.model_factory import untrained_model

pytestmark = pytest.mark.slow  # a fresh Python process loads the registered model


class TouchesAFile:
    """Unpickling this creates `path`: a stand-in for any code a malicious pickle would run."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_a_registered_model_with_a_malicious_weights_file_is_refused_without_running_it(mlflow_store, tmp_path):
    config = ExperimentConfig(
        data=DataConfig(window=256, hop=256),
        model=ModelConfig(hidden_dim=8, n_layers=1, n_modes=8, n_heads=2, patch_size=8),
    )
    with mlflow.start_run(experiment_id=ensure_experiment("untrusted")):
        uri = log_pyfunc_model(*untrained_model(config), np.zeros((2, 256), dtype=np.float32))
    version = mlflow.register_model(uri, "av-pino").version
    [weights] = Path(mlflow_store[len("sqlite:///") :]).parent.glob("artifacts/**/weights.pt")
    marker = tmp_path / "pwned"
    torch.save({"lift.weight": TouchesAFile(marker)}, weights)  # what an attacker with store access writes

    code = f"import mlflow; mlflow.pyfunc.load_model('models:/av-pino/{version}')"
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_store, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)

    assert result.returncode != 0
    assert "UnpicklingError: Weights only load failed" in result.stderr
    assert "Unsupported global" in result.stderr  # refused at the first non-tensor object, before calling it
    assert not marker.exists()
