"""What a model returns, and what the pipeline reads from it: a model plugs in by its outputs, never by its class.

Windows `[B, L]` go in with the recording conditions it may ignore (`shaft_hz`, `bearing`, `physics=False`);
out comes a dict with the class logits "predictions" and, optionally, "features", "uncertainties",
"physics_residuals" and "physical_params", each read by name where present (docs/api.md). AGT-NO and WDCNN share
the variational head here, so an uncertainty means the same for both: the class distribution's entropy (the
classes compete) plus the latent's mean variance (the encoder is unsure where the window sits)."""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import torch
from torch import nn

from pipeline.data.classes import CLASS_NAMES

# A model's class count comes from the dataset (ModelConfig.output_dim is None until then); built on its own, a
# model scores the ten CWRU classes.
DEFAULT_CLASSES = len(CLASS_NAMES)

# Initial bias of the log-variance head: a small latent variance (e^-4 ~ 0.02), so early training is not
# drowned in sampling noise and the variance grows only where the KL term and the data allow.
INITIAL_LOG_VAR = -4.0


def predictive_uncertainty(logits: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """`[B]`: softmax entropy of `logits` `[B, C]` (logits or log-probabilities) plus the mean of
    exp(`log_var`) `[B, latent]`."""
    entropy = torch.special.entr(logits.softmax(dim=-1)).sum(dim=-1)  # -p log p, 0 where p = 0
    return entropy + log_var.exp().mean(dim=-1)


def variational_outputs(
    logits: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor, features: torch.Tensor
) -> dict:
    """The outputs of a variational classifier reading the hidden vector `features`: the engine's KL term reads
    mean and log_var."""
    return {
        "predictions": logits,
        "mean": mean,
        "log_var": log_var,
        "uncertainties": predictive_uncertainty(logits, log_var),
        "features": features,
    }


class VariationalClassifier(nn.Module):
    """A classifier that reads a variational latent of its encoder's hidden vector.

    `latent_head` maps the hidden vector to the latent's mean and log-variance, `classifier` the latent to class
    logits. A subclass builds the two with `build_head` where its own layers put them (the order of the
    parameters fixes seeded initialisation and the optimizer state of checkpoints), and turns its hidden vector
    into the outputs with `decide`. The attribute names are the state-dict keys of every logged model.
    """

    latent_head: nn.Linear
    classifier: nn.Linear

    def build_head(self, hidden_dim: int, latent_dim: int, output_dim: int) -> None:
        self.latent_head = nn.Linear(hidden_dim, 2 * latent_dim)
        self.classifier = nn.Linear(latent_dim, output_dim)
        with torch.no_grad():
            self.latent_head.bias[latent_dim:].fill_(INITIAL_LOG_VAR)

    def decide(self, hidden: torch.Tensor, combine: Optional[Callable[[torch.Tensor], torch.Tensor]] = None) -> dict:
        """predictions, mean, log_var, uncertainties and, as `features`, the hidden vector `[B, hidden]` itself.
        Training samples the latent (reparameterised); eval reads its mean, so predictions are deterministic. The
        outputs are cast back to the parameters' dtype from bf16 autocast: the losses need full precision.
        `combine` turns the head's logits `[B, C]` into the model's (another part of the model has its say)."""
        dtype = self.classifier.weight.dtype
        mean, log_var = self.latent_head(hidden).to(dtype).chunk(2, dim=-1)
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * log_var) if self.training else mean
        logits = self.classifier(z).to(dtype)
        if combine is not None:
            logits = combine(logits).to(dtype)
        return variational_outputs(logits, mean, log_var, hidden.to(dtype))


def window_readings(outputs: dict) -> dict[str, torch.Tensor]:
    """Per window, in float32: `logits` `[B, C]` and, for what the model returned, `features` `[B, hidden]`,
    `uncertainty`, `physics/<name>` (the window's mean squared residual: residuals are normalised, so a relative
    squared error) and `params/<name>` (an inferred physical parameter). A model that returns only predictions
    gets only `logits`. Probabilities come from a readout (pipeline.readout.readout), which may rescale the logits."""
    logits = outputs["predictions"].float()
    readings = {"logits": logits}
    if "features" in outputs:
        readings["features"] = outputs["features"].float()
    if "uncertainties" in outputs:
        readings["uncertainty"] = outputs["uncertainties"].float()
    for name, residual in outputs.get("physics_residuals", {}).items():
        readings[f"physics/{name}"] = residual.float().reshape(len(logits), -1).pow(2).mean(dim=1)
    for name, value in outputs.get("physical_params", {}).items():
        readings[f"params/{name}"] = value.float()
    return readings


def batch_readings(
    model: nn.Module, windows: np.ndarray, batch_size: int = 256, **conditions: Optional[np.ndarray]
) -> dict[str, np.ndarray]:
    """`window_readings` of windows [N, L], run in batches on the model's device in eval mode (latent mean, no
    dropout). `conditions`, one value per window (`shaft_hz` [N], `bearing` [N, 4]: what
    `BearingWindows.conditions()` gives), reach the model as `model(x, shaft_hz=..., bearing=...)`."""
    conditions = {
        name: np.asarray(values, dtype=np.float32) for name, values in conditions.items() if values is not None
    }
    for name, values in conditions.items():
        if len(values) != len(windows):
            raise ValueError(f"{name} has {len(values)} values for {len(windows)} windows: give one per window")
    model.eval()
    device = next(model.parameters(), torch.empty(0)).device
    chunks: dict[str, list[np.ndarray]] = {}
    with torch.inference_mode():
        for start in range(0, len(windows), batch_size):
            batch = torch.as_tensor(np.asarray(windows[start : start + batch_size], dtype=np.float32), device=device)
            out = model(
                batch,
                **{
                    name: torch.as_tensor(values[start : start + batch_size], device=device)
                    for name, values in conditions.items()
                },
            )
            for key, value in window_readings(out).items():
                chunks.setdefault(key, []).append(value.cpu().numpy())
    return {key: np.concatenate(parts) for key, parts in chunks.items()}
