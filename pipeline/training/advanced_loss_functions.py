"""The two losses beyond data and residuals: the mode's energy balance Delta(E_kin + E_pot) = W_in - W_diss must
close (it ties the velocity field to the others), and the KL term of the latent the classifier reads, warmed up
over the first epochs (docs/how-it-works.md#training). A term the model cannot have is left out, not reported
as zero."""

from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor

from pipeline.physics.residuals import energy_balance_residual


class AdvancedLossManager:
    """Weighted consistency and variational losses; `weights` holds the multipliers in use this epoch."""

    def __init__(
        self,
        consistency_weight: float = 0.05,
        variational_weight: float = 0.02,
        enable_adaptive: bool = True,
        kl_warmup_epochs: int = 5,
    ):
        if kl_warmup_epochs < 1:
            raise ValueError(f"kl_warmup_epochs must be >= 1, got {kl_warmup_epochs}")
        self.consistency_weight = float(consistency_weight)
        self.variational_weight = float(variational_weight)
        self.enable_adaptive = enable_adaptive
        self.kl_warmup_epochs = kl_warmup_epochs
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Tell the KL warm-up which (0-based) epoch is starting."""
        self.epoch = epoch

    @property
    def weights(self) -> dict[str, float]:
        """Multipliers of the consistency and variational losses for the current epoch."""
        ramp = min(1.0, (self.epoch + 1) / self.kl_warmup_epochs) if self.enable_adaptive else 1.0
        return {"consistency": self.consistency_weight, "variational": self.variational_weight * ramp}

    def compute_consistency_loss(self, coupled_fields: Mapping[str, Tensor]) -> Tensor:
        """Mean squared normalised energy-balance residual."""
        return energy_balance_residual(coupled_fields).float().pow(2).mean()

    def compute_variational_loss(self, mean: Tensor, log_var: Tensor) -> Tensor:
        """Closed-form KL(N(mean, diag exp(log_var)) || N(0, I)), summed over latent dims, mean over batch."""
        mean, log_var = mean.float(), log_var.float()
        return 0.5 * (log_var.exp() + mean.pow(2) - 1.0 - log_var).sum(dim=-1).mean()

    def compute_losses(self, outputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """`consistency_loss` when `outputs` carry coupled_fields, `variational_loss` when they carry mean and
        log_var (both unweighted), and `advanced_loss`, the weighted sum of those present (0 with neither)."""
        terms = {}
        if "coupled_fields" in outputs:
            terms["consistency"] = self.compute_consistency_loss(outputs["coupled_fields"])
        if "mean" in outputs and "log_var" in outputs:
            terms["variational"] = self.compute_variational_loss(outputs["mean"], outputs["log_var"])
        w = self.weights
        total = sum((w[name] * term for name, term in terms.items()), torch.zeros(()))
        return {**{f"{name}_loss": term for name, term in terms.items()}, "advanced_loss": total}

    def get_total_advanced_loss(self, outputs: Mapping[str, Tensor]) -> Tensor:
        """Weighted sum of the consistency and variational losses of a model's output dict."""
        return self.compute_losses(outputs)["advanced_loss"]
