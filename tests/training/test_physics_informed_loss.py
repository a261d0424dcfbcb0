"""PhysicsInformedLoss: the loss terms it returns and its SoftAdapt weight balancing."""

import math

import pytest
import torch
from torch import nn

from pipeline.training.physics_informed_loss import PhysicsInformedLoss

NAMES = ("equation_of_motion", "measurement", "kinematics")


def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(8, 10, generator=g, requires_grad=True)
    targets = torch.randint(0, 10, (8,), generator=g)
    residuals = {
        "equation_of_motion": torch.randn(8, 30, generator=g, requires_grad=True),
        "measurement": 0.1 * torch.randn(8, 30, generator=g),
        "kinematics": torch.rand(8, generator=g),
    }
    return logits, targets, residuals


def test_forward_returns_every_term_and_their_weighted_total():
    loss_fn = PhysicsInformedLoss(physics_weight=0.3)
    logits, targets, residuals = batch()
    out = loss_fn(predictions=logits, targets=targets, physics_residuals=residuals)

    assert set(out) == {"total_loss", "data_loss", "physics_loss", *(f"physics/{n}" for n in NAMES)}
    assert torch.allclose(out["data_loss"], nn.functional.cross_entropy(logits, targets))
    for name in NAMES:
        assert torch.allclose(out[f"physics/{name}"], residuals[name].pow(2).mean())
    assert torch.allclose(out["physics_loss"], sum(residuals[n].pow(2).mean() for n in NAMES))
    assert torch.allclose(out["total_loss"], out["data_loss"] + 0.3 * out["physics_loss"])
    out["total_loss"].backward()
    # d(cross-entropy)/d(logits) = (softmax - one-hot) / batch; d(0.3 mean r^2)/dr = 0.3 * 2r / r.numel()
    one_hot = nn.functional.one_hot(targets, 10)
    torch.testing.assert_close(logits.grad, (logits.softmax(dim=1) - one_hot).detach() / len(targets))
    motion = residuals["equation_of_motion"]
    torch.testing.assert_close(motion.grad, 0.3 * 2 * motion.detach() / motion.numel())


def test_a_model_without_residuals_gets_the_data_loss_alone():
    loss_fn = PhysicsInformedLoss(physics_weight=0.3)
    logits, targets, _ = batch()
    for residuals in (None, {}):
        out = loss_fn(logits, targets, residuals)
        assert set(out) == {"total_loss", "data_loss"}  # no physics term, not a zero one
        assert torch.allclose(out["total_loss"], nn.functional.cross_entropy(logits, targets))
    loss_fn.update_weights(0, 2.0, {})
    loss_fn.update_weights(1, 1.0, {})
    assert loss_fn.weights == {"data": 1.0} and loss_fn.multipliers == {"data": 1.0}


def test_compute_methods_match_forward_and_use_the_weights():
    loss_fn = PhysicsInformedLoss()
    logits, targets, residuals = batch()
    loss_fn(logits, targets, residuals)
    loss_fn.weights.update(equation_of_motion=2.0, measurement=0.5, kinematics=0.5)
    expected = sum(loss_fn.weights[n] * residuals[n].pow(2).mean() for n in NAMES)
    assert torch.allclose(loss_fn.compute_physics_loss(residuals), expected)
    assert torch.allclose(loss_fn.compute_data_loss(logits, targets), nn.functional.cross_entropy(logits, targets))
    assert loss_fn.multipliers == {"data": 1.0, "equation_of_motion": 0.2, "measurement": 0.05, "kinematics": 0.05}


def test_softadapt_gives_more_weight_to_the_term_falling_slower():
    loss_fn = PhysicsInformedLoss(physics_weight=0.1)
    loss_fn(*batch())  # learns the residual names
    loss_fn.update_weights(0, 2.0, {"equation_of_motion": 1.0, "measurement": 1.0, "kinematics": 1.0})
    assert loss_fn.weights == {"data": 1.0, **{n: 1.0 for n in NAMES}}  # first call only records
    # data halves, equation_of_motion barely moves, measurement falls 20 %, kinematics rises
    loss_fn.update_weights(1, 1.0, {"equation_of_motion": 0.99, "measurement": 0.8, "kinematics": 1.1})
    w = loss_fn.weights
    assert w["kinematics"] > w["equation_of_motion"] > w["measurement"] > w["data"] > 0
    assert math.isclose(sum(w.values()), 4.0)  # positive, summing to the number of terms


def test_softadapt_is_scale_free_and_neutral_when_all_terms_fall_alike():
    loss_fn = PhysicsInformedLoss()
    loss_fn.update_weights(0, 100.0, {"a": 1e-3})
    loss_fn.update_weights(1, 50.0, {"a": 5e-4})
    assert loss_fn.weights == pytest.approx({"data": 1.0, "a": 1.0})


def test_seed_call_with_one_physics_float_moves_residual_weights_together():
    loss_fn = PhysicsInformedLoss()
    loss_fn(*batch())
    loss_fn.update_weights(0, 1.0, 1.0)
    loss_fn.update_weights(1, 0.5, 0.9)  # physics falls slower than data
    w = loss_fn.weights
    assert w["equation_of_motion"] == w["measurement"] == w["kinematics"] > w["data"]
    assert math.isclose(sum(w.values()), 4.0)


def test_without_adaptive_weighting_the_weights_never_change():
    loss_fn = PhysicsInformedLoss(adaptive_weighting=False)
    loss_fn(*batch())
    for epoch, (data, physics) in enumerate([(2.0, 1.0), (1.0, 0.99), (0.1, 5.0)]):
        loss_fn.update_weights(epoch, data, {n: physics for n in NAMES})
    assert loss_fn.weights == {"data": 1.0, **{n: 1.0 for n in NAMES}}


def test_non_finite_losses_leave_the_weights_alone():
    loss_fn = PhysicsInformedLoss()
    loss_fn.update_weights(0, 1.0, {"a": 1.0})
    loss_fn.update_weights(1, float("nan"), {"a": 0.5})
    loss_fn.update_weights(2, 0.5, {"a": 0.9})
    assert loss_fn.weights["a"] > loss_fn.weights["data"]  # compared with epoch 0, not the NaN epoch


def test_weights_travel_in_the_state_dict():
    loss_fn = PhysicsInformedLoss()
    loss_fn.update_weights(0, 1.0, {"a": 1.0})
    loss_fn.update_weights(1, 0.5, {"a": 0.9})
    restored = PhysicsInformedLoss()
    restored.load_state_dict(loss_fn.state_dict())
    assert restored.weights == loss_fn.weights
    loss_fn.update_weights(2, 0.4, {"a": 0.8})
    restored.update_weights(2, 0.4, {"a": 0.8})
    assert restored.weights == loss_fn.weights


def test_bf16_residuals_are_reduced_in_float32():
    loss_fn = PhysicsInformedLoss()
    logits, targets, residuals = batch()
    out = loss_fn(logits, targets, {k: v.detach().bfloat16() for k, v in residuals.items()})
    assert out["physics_loss"].dtype == torch.float32
