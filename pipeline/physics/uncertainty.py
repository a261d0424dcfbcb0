"""The predictive uncertainty every variational classifier of the project reports, so that an uncertainty (and
the OOD AUROC read from it) means the same for AGT-NO and the baselines.

uncertainty = entropy of the class distribution (nats) + mean variance of the latent the classifier reads.
The entropy is high when the classes compete; the latent variance is high when the encoder is unsure where
the window sits, which the entropy of a confident but unfamiliar window does not show.
"""
from __future__ import annotations

import torch

# Initial bias of the log-variance head: a small latent variance (e^-4 ~ 0.02), so early training is not
# drowned in sampling noise and the variance grows only where the KL term and the data allow.
INITIAL_LOG_VAR = -4.0


def predictive_uncertainty(logits: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """`[B]`: softmax entropy of `logits` `[B, C]` (logits or log-probabilities) plus the mean of
    exp(`log_var`) `[B, latent]`."""
    entropy = torch.special.entr(logits.softmax(dim=-1)).sum(dim=-1)  # -p log p, 0 where p = 0
    return entropy + log_var.exp().mean(dim=-1)
