"""Search spaces are written in Hydra's sweep grammar and become Optuna distributions."""

import optuna
import pytest

from pipeline.config import ConfigError, ExperimentConfig
from pipeline.sweep.space import apply_params, distribution, search_space


@pytest.mark.parametrize(
    "expression, expected",
    [
        ("tag(log, interval(0.001, 1.0))", optuna.distributions.FloatDistribution(0.001, 1.0, log=True)),
        ("interval(0.0, 0.5)", optuna.distributions.FloatDistribution(0.0, 0.5)),
        ("int(interval(1, 8))", optuna.distributions.IntDistribution(1, 8)),
        ("range(16, 65, 16)", optuna.distributions.IntDistribution(16, 64, step=16)),
        ("choice(16, 32)", optuna.distributions.CategoricalDistribution((16, 32))),
        ("16,32", optuna.distributions.CategoricalDistribution((16, 32))),
    ],
)
def test_sweep_expressions_become_optuna_distributions(expression, expected):
    assert distribution("model.hidden_dim", expression) == expected


@pytest.mark.parametrize(
    "params, message",
    [
        ({"loss.physics_weight": "0.3"}, "use interval"),
        ({"loss.physics_weight": "tag(log, interval(0, 1))"}, "must start above 0"),
        ({"loss.physics_weight": "interval(0.1"}, "not a sweep expression"),
        ({"loss.no_such_weight": "interval(0.1, 1)"}, "no such key"),
    ],
)
def test_a_bad_search_space_names_the_key(params, message):
    with pytest.raises(ConfigError, match=message) as info:
        search_space(params, ExperimentConfig())
    assert next(iter(params)) in str(info.value)


def test_a_trial_config_is_validated_like_any_config():
    config = apply_params(ExperimentConfig(), {"loss.physics_weight": 0.3, "model.hidden_dim": 16})
    assert config.loss.physics_weight == 0.3 and config.model.hidden_dim == 16
    with pytest.raises(ConfigError, match="loss.physics_weight=-1.0"):
        apply_params(ExperimentConfig(), {"loss.physics_weight": -1.0})
