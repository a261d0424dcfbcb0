"""The registered model as MLflow "models from code": this file is logged with the model and run at load time.

Nothing is unpickled: the weights are a torch state dict read with `weights_only=True`, the architecture and
preprocessing come from `model_config.json`, and so does the readout (temperature, ood threshold) but for the
arrays of its Gaussians, a torch file of tensors read with `weights_only=True` too (pipeline.readout.readout). So the
model loads with MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Optional

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel

from pipeline.data.bearing import BearingGeometry
from pipeline.data.config import DataConfig
from pipeline.data.files import parse_bearing
from pipeline.models.outputs import window_readings
from pipeline.readout.readout import load_readout
from pipeline.training.model_factory import build_from_settings

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
        raise _bad_input(
            f"input holds {array.shape[0]} windows of {window} samples; the limit per request is "
            f"{MAX_SAMPLES // window} windows ({MAX_SAMPLES} samples): send them in smaller requests"
        )
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


def validate_bearing(value) -> tuple[float, ...]:
    """The request's bearing, a preset name or a geometry `n_balls/ball/pitch[/contact_angle]`, as the geometry row
    the model reads `(n_balls, ball, pitch, angle)`, or an error that says what is wrong with it."""
    try:
        geometry = parse_bearing(str(value).strip())
    except ValueError as err:
        raise _bad_input(f"params.bearing: {err}") from None
    return geometry.row


@dataclass
class _Request:
    windows: torch.Tensor
    conditions: tuple
    outputs: Optional[dict] = None
    error: Optional[Exception] = None


class Batcher:
    """Runs `forward(windows, conditions)` one call at a time, over the windows of all the requests waiting for it
    (`conditions`: anything hashable the windows were recorded under, e.g. shaft speed and bearing).

    The scoring server calls predict from several threads at once. Concurrent forwards would only fight over
    the GIL and the cores, so they run one after another, and whichever request gets to run takes along the
    requests queued behind the previous forward, oldest first, up to MAX_SAMPLES in all: a one-window forward is
    almost all per-op overhead, so k windows cost little more than one. Windows do not influence each other, so
    each request gets what it would get alone (to float rounding).
    """

    def __init__(self, forward: Callable[[torch.Tensor, Any], dict]):
        self._forward = forward
        self._queue: list[_Request] = []
        self._queue_lock, self._run_lock = threading.Lock(), threading.Lock()

    def __call__(self, windows: torch.Tensor, conditions: Hashable) -> dict:
        request = _Request(windows, conditions)
        with self._queue_lock:
            self._queue.append(request)
        with self._run_lock:
            while request.outputs is None and request.error is None:  # not yet run along with earlier requests
                self._run(self._take())
        if request.error is not None:
            raise request.error
        return request.outputs

    def _take(self) -> list[_Request]:
        """The oldest queued requests that fit MAX_SAMPLES together (at least one)."""
        with self._queue_lock:
            taken, samples = 0, 0
            for request in self._queue:
                samples += request.windows.numel()
                if taken and samples > MAX_SAMPLES:
                    break
                taken += 1
            batch, self._queue = self._queue[:taken], self._queue[taken:]
        return batch

    def _run(self, batch: list[_Request]) -> None:
        """One forward per set of conditions in `batch`; each request gets its rows of the outputs, or the error."""
        for conditions in dict.fromkeys(request.conditions for request in batch):
            group = [request for request in batch if request.conditions == conditions]
            windows = group[0].windows if len(group) == 1 else torch.cat([request.windows for request in group])
            try:
                outputs = self._forward(windows, conditions)
            except Exception as err:  # every request of the group answers with it
                for request in group:
                    request.error = err
                continue
            start = 0
            for request in group:
                end = start + len(request.windows)
                request.outputs = {key: value[start:end] for key, value in outputs.items()}
                start = end


class AVPinoModel(PythonModel):
    """Windows (N x L float32) -> a table, one row per window: class name, per-class probabilities `prob_<class>`
    (temperature-scaled by the model's readout) and what else the model reads per window
    (`pipeline.models.outputs.window_readings`), by name: `uncertainty` for a model that returns uncertainties,
    `ood_score` (float) and `out_of_distribution` (bool) for one that returns features and was logged with a
    fitted readout."""

    def load_context(self, context) -> None:
        """Build the network from its config and weights. Unless OMP_NUM_THREADS says otherwise, torch gets one
        intra-op thread: a server runs requests in concurrent threads, and a thread team per request fights the
        others (and the server) for the cores, a batch-1 forward waiting on a descheduled helper thread."""
        with open(context.artifacts["model_config"]) as f:
            self.config = json.load(f)
        self.class_names = self.config["class_names"]
        self.columns = [f"prob_{name}" for name in self.class_names]
        self.window = int(self.config["window"])
        self.model = build_from_settings(self.config)
        state = torch.load(context.artifacts["weights"], map_location="cpu", weights_only=True)
        self.model.load_state_dict(state)
        self.model.eval()
        self.readout = load_readout(self.config.get("readout"), context.artifacts.get("readout"))
        self.batcher = Batcher(self._forward)
        if "OMP_NUM_THREADS" not in os.environ:
            torch.set_num_threads(1)

    def predict(self, context, model_input: np.ndarray, params: Optional[dict] = None) -> pd.DataFrame:  # noqa: ARG002
        """`params={"shaft_hz": f, "bearing": b}` reads the windows at shaft speed f (Hz) in bearing b (a preset name
        or a geometry `n_balls/ball/pitch[/contact_angle]`): where its fault lines lie. Defaults: the training
        data's median speed and its bearing.

        The tensor signature hands MLflow's callers' windows over as an ndarray, hence the hint; an ndarray hint
        is one MLflow infers no schema from and validates nothing against, so the logged signature and
        `validate_windows` (which also takes DataFrames and lists, for direct calls) stay the checks."""
        windows = torch.from_numpy(validate_windows(model_input, self.window))
        params = {**default_params(self.config), **(params or {})}
        conditions = (validate_shaft_hz(params["shaft_hz"]), validate_bearing(params["bearing"]))
        readings = self.readout.apply({key: value.numpy() for key, value in self.batcher(windows, conditions).items()})
        probs = readings.pop("probs")
        del readings["probs_uncalibrated"]
        # one dict of columns: building the frame at once costs half of inserting columns into it
        columns = {
            "class": [self.class_names[i] for i in probs.argmax(axis=1)],
            **dict(zip(self.columns, probs.T)),
            **readings,
        }
        return pd.DataFrame(columns)

    def _forward(self, windows: torch.Tensor, conditions: tuple) -> dict:
        """The window readings of windows `[N, window]` on the serving path (`physics=False`: no fields), recorded
        at shaft speed and in the bearing `conditions`."""
        shaft_hz, bearing = conditions
        with torch.inference_mode():
            return window_readings(self.model(windows, physics=False, shaft_hz=shaft_hz, bearing=torch.tensor(bearing)))


def default_params(settings: dict) -> dict:
    """The request params a model answers with when a request gives none: its training data's median speed and
    its bearing (DataConfig's where the data named none)."""
    bearing = settings.get("bearing")
    return {
        "shaft_hz": float(settings["shaft_hz"]),
        "bearing": BearingGeometry(**bearing).text if bearing else DataConfig.bearing,
    }


mlflow.models.set_model(AVPinoModel())
