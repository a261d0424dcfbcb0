"""AdvancedLossManager: energy-balance consistency, closed-form KL, and the KL warm-up."""

import math

import torch
from torch.distributions import Normal, kl_divergence

from pipeline.physics.residuals import energy_balance, energy_balance_residual
from pipeline.training.advanced_loss_functions import AdvancedLossManager


def coupled_fields(seed=0, batch=4, length=64):
    g = torch.Generator().manual_seed(seed)
    fields = {k: torch.randn(batch, length, generator=g) for k in ("displacement", "velocity", "force")}
    return energy_balance(fields, 12000.0, torch.full((batch,), 3000.0), torch.full((batch,), 0.05))


def test_consistency_loss_is_the_mean_squared_energy_balance_residual():
    fields = coupled_fields()
    loss = AdvancedLossManager().compute_consistency_loss(fields)
    assert loss.ndim == 0 and loss > 0
    assert torch.allclose(loss, energy_balance_residual(fields).pow(2).mean())


def test_variational_loss_matches_torch_kl_divergence():
    g = torch.Generator().manual_seed(1)
    mean, log_var = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    expected = kl_divergence(Normal(mean, (0.5 * log_var).exp()), Normal(0.0, 1.0)).sum(-1).mean()
    assert torch.allclose(AdvancedLossManager().compute_variational_loss(mean, log_var), expected, atol=1e-6)
    zero = AdvancedLossManager().compute_variational_loss(torch.zeros(3, 5), torch.zeros(3, 5))
    assert zero.item() == 0.0  # the prior itself


def test_total_is_the_weighted_sum_of_both_terms():
    manager = AdvancedLossManager(consistency_weight=0.05, variational_weight=0.02, enable_adaptive=False)
    outputs = {"coupled_fields": coupled_fields(), "mean": torch.ones(4, 3), "log_var": torch.zeros(4, 3)}
    total = manager.get_total_advanced_loss(outputs)
    expected = 0.05 * manager.compute_consistency_loss(
        outputs["coupled_fields"]
    ) + 0.02 * manager.compute_variational_loss(outputs["mean"], outputs["log_var"])
    assert isinstance(total, torch.Tensor) and torch.allclose(total, expected)
    parts = manager.compute_losses(outputs)
    assert torch.allclose(parts["variational_loss"], torch.tensor(1.5))  # 0.5 * sum(mean^2) over 3 dims
    assert torch.allclose(parts["advanced_loss"], total)


def test_each_term_applies_only_when_the_model_returns_what_it_needs():
    manager = AdvancedLossManager(consistency_weight=0.05, variational_weight=0.02, enable_adaptive=False)
    latent = {"mean": torch.ones(4, 3), "log_var": torch.zeros(4, 3)}
    parts = manager.compute_losses({"predictions": torch.zeros(4, 2), **latent})
    assert set(parts) == {"variational_loss", "advanced_loss"}
    assert torch.allclose(parts["advanced_loss"], 0.02 * parts["variational_loss"])
    parts = manager.compute_losses({"predictions": torch.zeros(4, 2), "coupled_fields": coupled_fields()})
    assert set(parts) == {"consistency_loss", "advanced_loss"}
    nothing = manager.compute_losses({"predictions": torch.zeros(4, 2)})
    assert set(nothing) == {"advanced_loss"} and nothing["advanced_loss"].item() == 0.0


def test_enable_adaptive_ramps_the_kl_weight_linearly_then_holds_it():
    manager = AdvancedLossManager(variational_weight=0.02, kl_warmup_epochs=4)
    ramp = []
    for epoch in range(6):
        manager.set_epoch(epoch)
        ramp.append(manager.weights["variational"])
        assert manager.weights["consistency"] == 0.05
    assert all(math.isclose(a, b) for a, b in zip(ramp, [0.005, 0.01, 0.015, 0.02, 0.02, 0.02]))


def test_without_adaptive_the_weights_are_constant():
    manager = AdvancedLossManager(enable_adaptive=False)
    for epoch in (0, 3, 100):
        manager.set_epoch(epoch)
        assert manager.weights == {"consistency": 0.05, "variational": 0.02}
