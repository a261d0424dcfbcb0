"""The registered model as MLflow "models from code": this file is logged with the model and run at load time.

Nothing is unpickled: the weights are a torch state dict read with `weights_only=True`, the architecture and
preprocessing come from `model_config.json`. So the model loads with MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false.
"""
from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel

from pipeline.model_factory import build_from_settings

# Samples (windows x window length) per request. The network's activations take ~650 bytes per sample, so
# this bounds one request to ~3 GB; 100,000 windows of 1024 would need ~65 GB and take the server down.
MAX_SAMPLES = 2**22


def _bad_input(message: str) -> MlflowException:
    """An error MLflow serving turns into HTTP 400 with this message."""
    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


def validate_windows(model_input, window: int) -> np.ndarray:
    """Windows as a float32 array [N, window], or an error that says what is wrong with the input."""
    if isinstance(model_input, pd.DataFrame):
        model_input = model_input.to_numpy()
    try:
        array = np.asarray(model_input)
        if array.dtype.kind not in "fiu":  # strings, objects, booleans
            raise ValueError(f"dtype {array.dtype}")
        array = array.astype(np.float32)
    except (TypeError, ValueError) as err:
        raise _bad_input(f"input must be numeric windows of {window} samples ({err})") from None
    if array.ndim == 1 and array.shape[0] == window:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != window:
        raise _bad_input(f"input must have shape (n_windows, {window}); got {tuple(array.shape)}")
    if array.shape[0] == 0:
        raise _bad_input("input holds no windows")
    if array.size > MAX_SAMPLES:
        raise _bad_input(f"input holds {array.shape[0]} windows of {window} samples; the limit per request is "
                         f"{MAX_SAMPLES // window} windows ({MAX_SAMPLES} samples): send them in smaller requests")
    finite = np.isfinite(array).all(axis=1)
    if not finite.all():
        raise _bad_input(f"windows {np.flatnonzero(~finite)[:10].tolist()} contain NaN or inf")
    return array


def validate_shaft_hz(value) -> float:
    """The request's shaft speed as a positive finite number of Hz, or an error that says what is wrong."""
    try:
        speed = float(value)
    except (TypeError, ValueError):
        raise _bad_input(f"params.shaft_hz must be a number of Hz, got {value!r}") from None
    if not np.isfinite(speed) or speed <= 0:
        raise _bad_input(f"params.shaft_hz must be a positive number of Hz, got {value!r}")
    return speed


class AVPinoModel(PythonModel):
    """Windows (N x L float32) -> class name, per-class probabilities and an uncertainty per window."""

    def load_context(self, context) -> None:
        with open(context.artifacts["model_config"]) as f:
            self.config = json.load(f)
        self.class_names = self.config["class_names"]
        self.window = int(self.config["window"])
        self.model = build_from_settings(self.config)
        state = torch.load(context.artifacts["weights"], map_location="cpu", weights_only=True)
        self.model.load_state_dict(state)
        self.model.eval()

    def predict(self, context, model_input, params=None) -> pd.DataFrame:  # noqa: ARG002 - pyfunc signature
        """`params={"shaft_hz": f}` reads the windows at shaft speed f (Hz); default: the training data's."""
        windows = torch.from_numpy(validate_windows(model_input, self.window))
        shaft_hz = validate_shaft_hz((params or {}).get("shaft_hz", self.config["shaft_hz"]))
        with torch.inference_mode():  # the serving path: no training-only fields
            outputs = self.model(windows, physics=False, shaft_hz=torch.tensor(shaft_hz))
        probs = torch.softmax(outputs["predictions"].float(), dim=-1).numpy()
        table = pd.DataFrame(probs, columns=[f"prob_{name}" for name in self.class_names])
        table.insert(0, "class", [self.class_names[i] for i in probs.argmax(axis=1)])
        table["uncertainty"] = outputs["uncertainties"].float().numpy()
        return table


mlflow.models.set_model(AVPinoModel())
