"""Log a trained network as the registry's pyfunc model: weights + config, loaded without pickle."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import torch
from mlflow.models import infer_signature
from torch import nn


MODEL_CODE = Path(__file__).with_name("pyfunc_model.py")
PACKAGE_DIR = Path(__file__).resolve().parents[1]
# Explicit requirements: inferring them would import-scan the model for seconds.
PIP_REQUIREMENTS = ["torch==2.13.0", "mlflow==3.17.2", "numpy==2.4.6", "pandas==3.1.1", "scipy==1.17.1"]


def log_pyfunc_model(model: nn.Module, settings: dict, example: np.ndarray, name: str = "model") -> str:
    """Log `model` under the active run; return its model URI (`models:/<model id>`).

    `settings` (pipeline.model_factory.model_settings) is what the served model needs besides its weights:
    architecture, class names and locations, bearing, window and rate; it is stored as `model_config.json`."""
    from pipeline.tracking.pyfunc_model import AVPinoModel

    # Loading the pyfunc (below, and in MLflow's check of the input example) sets the thread count of a server:
    # the caller's, a trainer's, is restored after.
    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "weights.pt"
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, weights)
        cfg_path = Path(tmp) / "model_config.json"
        cfg_path.write_text(json.dumps(settings, indent=2))
        try:
            predictor = AVPinoModel()
            predictor.load_context(_Context({"weights": str(weights), "model_config": str(cfg_path)}))
            example = np.asarray(example, dtype=np.float32)
            params = {"shaft_hz": float(settings["shaft_hz"])}  # a request may pass its machine's speed
            signature = infer_signature(example, predictor.predict(None, example), params=params)
            info = mlflow.pyfunc.log_model(
                name=name, python_model=str(MODEL_CODE), artifacts={"weights": str(weights),
                                                                    "model_config": str(cfg_path)},
                code_paths=[str(PACKAGE_DIR)], signature=signature, input_example=example,
                pip_requirements=PIP_REQUIREMENTS)
        finally:
            torch.set_num_threads(threads)
    return info.model_uri


class _Context:
    """The slice of mlflow's PythonModelContext that AVPinoModel.load_context reads."""

    def __init__(self, artifacts: dict[str, str]):
        self.artifacts = artifacts

