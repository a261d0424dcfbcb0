"""Data loss + physics residual losses, balanced over epochs with SoftAdapt: total = w_data * data +
physics_weight * sum_i w_i * mean(r_i^2), where the weights w move towards the terms that fall slowest and keep a
mean of 1 (docs/how-it-works.md#training). A model without residuals trains on the data loss alone."""

from __future__ import annotations

import math
from typing import Any, Mapping, Optional

import torch
from torch import Tensor, nn

DATA = "data"


class PhysicsInformedLoss(nn.Module):
    """Physics-informed loss: data loss plus the mean squared physics residuals, SoftAdapt-weighted.

    `weights` maps "data" and each residual name to its SoftAdapt weight (all 1.0 until the first update;
    residual names are learnt from the first forward that has them). With `adaptive_weighting=False` they
    never change.
    """

    def __init__(
        self,
        data_loss_fn: nn.Module = nn.CrossEntropyLoss(),
        physics_weight: float = 0.1,
        adaptive_weighting: bool = True,
        beta: float = 1.0,
    ):
        super().__init__()
        self.data_loss_fn = data_loss_fn
        self.physics_weight = float(physics_weight)
        self.adaptive_weighting = adaptive_weighting
        self.beta = float(beta)  # SoftAdapt temperature: 0 keeps weights equal, larger reacts harder
        self.weights: dict[str, float] = {DATA: 1.0}
        self._previous: dict[str, float] = {}  # each term's loss at the last update

    def forward(
        self, predictions: Tensor, targets: Tensor, physics_residuals: Optional[Mapping[str, Tensor]] = None
    ) -> dict[str, Tensor]:
        """`total_loss` and `data_loss`; with residuals also `physics_loss` and one unweighted `physics/<name>`
        term per residual."""
        data_loss = self.compute_data_loss(predictions, targets)
        losses = {"total_loss": self.weights[DATA] * data_loss, "data_loss": data_loss}
        if not physics_residuals:
            return losses
        terms = self._residual_terms(physics_residuals)
        physics_loss = self._weighted_sum(terms)
        losses["total_loss"] = losses["total_loss"] + self.physics_weight * physics_loss
        return {**losses, "physics_loss": physics_loss, **{f"physics/{name}": term for name, term in terms.items()}}

    def compute_data_loss(self, predictions: Tensor, targets: Tensor) -> Tensor:
        """The data-fit term (cross-entropy on logits by default)."""
        return self.data_loss_fn(predictions, targets)

    def compute_physics_loss(self, physics_residuals: Mapping[str, Tensor]) -> Tensor:
        """Sum over residuals of weight * mean squared residual (before the `physics_weight` scale)."""
        return self._weighted_sum(self._residual_terms(physics_residuals))

    @property
    def multipliers(self) -> dict[str, float]:
        """The factor each term is multiplied by in `total_loss` (what `loss_weight/<term>` logs)."""
        return {name: w if name == DATA else self.physics_weight * w for name, w in self.weights.items()}

    def update_weights(self, epoch: int, data_loss: float, physics_loss: float | Mapping[str, float]) -> None:
        """One SoftAdapt step from this epoch's losses (see the module docstring).

        `physics_loss` is either each residual's mean squared value by name (every residual balanced on its
        own; what TrainingEngine passes, empty for a model without residuals) or one float for all of them,
        in which case the residual weights move together. The first call only records the losses; non-finite
        losses are ignored. `epoch` keeps the documented call signature: SoftAdapt needs only consecutive losses.
        """
        if not self.adaptive_weighting:
            return
        if isinstance(physics_loss, Mapping):
            current = {DATA: float(data_loss), **{k: float(v) for k, v in physics_loss.items()}}
        else:
            current = {name: float(physics_loss) for name in self.weights}
            current[DATA] = float(data_loss)
        if not all(math.isfinite(v) for v in current.values()):
            return
        previous, self._previous = self._previous, current
        if set(previous) != set(current):
            return
        rates = torch.tensor([(current[k] - previous[k]) / max(abs(previous[k]), 1e-12) for k in current])
        slopes = rates / rates.abs().sum().clamp_min(1e-12)
        weights = len(current) * torch.softmax(self.beta * slopes.double(), dim=0)
        self.weights = dict(zip(current, weights.tolist()))

    def get_extra_state(self) -> dict[str, Any]:
        """Weights and last losses go into `state_dict()`, so a checkpoint resumes the balancing exactly."""
        return {"weights": dict(self.weights), "previous": dict(self._previous)}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.weights, self._previous = dict(state["weights"]), dict(state["previous"])

    def _residual_terms(self, physics_residuals: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Each residual's mean square, in float32 even under bf16 autocast."""
        for name in physics_residuals:
            self.weights.setdefault(name, 1.0)
        return {name: r.float().pow(2).mean() for name, r in physics_residuals.items()}

    def _weighted_sum(self, terms: Mapping[str, Tensor]) -> Tensor:
        if not terms:
            raise ValueError("physics_residuals is empty: the model returned no residual to constrain")
        return sum(self.weights[name] * term for name, term in terms.items())
