"""Log a trained network as the registry's pyfunc model (weights, config and readout, loaded without pickle),
and load it back as the torch network for evaluation."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Optional

import mlflow
import numpy as np
import torch
from mlflow.models import Model, infer_signature
from torch import nn

from pipeline.readout.readout import Readout, load_readout
from pipeline.tracking.pyfunc_model import AVPinoModel, default_params
from pipeline.training.model_factory import build_from_settings

MODEL_CODE = Path(__file__).with_name("pyfunc_model.py")
PACKAGE_DIR = Path(__file__).resolve().parents[1]
# Explicit requirements: inferring them would import-scan the model for seconds.
PIP_REQUIREMENTS = ["torch==2.13.0", "mlflow==3.17.2", "numpy==2.4.6", "pandas==3.1.1", "scipy==1.17.1"]


def log_pyfunc_model(
    model: nn.Module, settings: dict, example: np.ndarray, name: str = "model", readout: Optional[Readout] = None
) -> str:
    """Log `model` under the active run; return its model URI (`models:/<model id>`).

    `settings` (pipeline.training.model_factory.model_settings) is what the served model needs besides its weights:
    architecture, class names and locations, bearing, window and rate; it is stored as `model_config.json`, with
    the numbers of `readout` (pipeline.readout.readout: temperature, ood threshold; none: the logits as they are)."""
    # Loading the pyfunc (below, and in MLflow's check of the input example) sets the thread count of a server:
    # the caller's, a trainer's, is restored after.
    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            predictor, artifacts = served_model(model, settings, Path(tmp), readout)
            example = np.asarray(example, dtype=np.float32)
            params = default_params(settings)  # a request may pass its machine's speed and bearing
            signature = infer_signature(example, predictor.predict(None, example), params=params)
            info = mlflow.pyfunc.log_model(
                name=name,
                python_model=str(MODEL_CODE),
                artifacts=artifacts,
                code_paths=[str(PACKAGE_DIR)],
                signature=signature,
                input_example=example,
                pip_requirements=PIP_REQUIREMENTS,
            )
        finally:
            torch.set_num_threads(threads)
    return info.model_uri


def served_model(
    model: nn.Module, settings: dict, folder: Path, readout: Optional[Readout] = None
) -> tuple[AVPinoModel, dict[str, str]]:
    """`model` as the registry serves it: its weights, `settings` and `readout` written to `folder` as the
    pyfunc's artifacts (returned too), and loaded from there as MLflow loads them, with the thread count of a
    server."""
    readout = readout or Readout()
    artifacts = {"weights": str(folder / "weights.pt"), "model_config": str(folder / "model_config.json")}
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, artifacts["weights"])
    Path(artifacts["model_config"]).write_text(json.dumps({**settings, "readout": readout.settings()}, indent=2))
    arrays = readout.save_arrays(folder)
    if arrays is not None:
        artifacts["readout"] = str(arrays)
    predictor = AVPinoModel()
    predictor.load_context(_Context(artifacts))
    return predictor, artifacts


class _Context:
    """The slice of mlflow's PythonModelContext that AVPinoModel.load_context reads."""

    def __init__(self, artifacts: dict[str, str]):
        self.artifacts = artifacts


def load_logged_model(model_uri: str) -> tuple[nn.Module, dict, Readout]:
    """The torch network behind a logged `av-pino` pyfunc, in eval mode, its `model_config` dict and its readout
    (temperature 1 and no ood_score for a model logged before readouts).

    Reads the pyfunc's artifacts directly (not `mlflow.pyfunc.load_model`) because evaluation needs the
    raw outputs the pyfunc hides: logits and, when the model has them, physics residuals.
    """
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp))
        artifacts = Model.load(local).flavors["python_function"]["artifacts"]
        config = json.loads((local / artifacts["model_config"]["path"]).read_text())
        state = torch.load(local / artifacts["weights"]["path"], map_location="cpu", weights_only=True)
        arrays = local / artifacts["readout"]["path"] if "readout" in artifacts else None
        readout = load_readout(config.get("readout"), arrays)
    model = build_from_settings(config)
    model.load_state_dict(state)
    return model.eval(), config, readout
