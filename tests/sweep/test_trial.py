"""A trial's objective is a metric its train stage logged; `val/physics_residual` is the mean of the
validation residuals, and a model that returns none cannot be swept on it."""

import pytest

from pipeline.sweep.trial import objective_value


def test_the_objective_is_a_logged_metric_or_the_mean_physics_residual():
    metrics = {"val/accuracy": 0.9, "val/physics/kinematics": 0.2, "val/physics/energy": 0.4}
    assert objective_value(metrics, "val/accuracy") == 0.9
    assert objective_value(metrics, "val/physics_residual") == pytest.approx(0.3)


@pytest.mark.parametrize(
    "name, message",
    [
        ("val/physics_residual", "no val/physics/\\* residual .* the model returns none"),
        ("val/macro_f1", "the trial logged no 'val/macro_f1'"),
    ],
)
def test_an_objective_the_trial_did_not_log_is_an_error_naming_it(name, message):
    with pytest.raises(KeyError, match=message):
        objective_value({"val/accuracy": 0.9}, name)
