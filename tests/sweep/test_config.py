"""A sweep's settings are checked before any trial runs; samplers and pruners are built as configured."""
import optuna
import pytest

from pipeline.config import ConfigError
from pipeline.sweep.config import PrunerConfig, SamplerConfig, SweepConfig

SPACE = {"loss.physics_weight": "tag(log, interval(0.001, 1.0))"}


@pytest.mark.parametrize("settings, key", [
    (dict(metrics=["val/acc"]), "metrics"),
    (dict(directions=["up"]), "directions"),
    (dict(directions=["maximize", "minimize"]), "metrics"),
    (dict(directions=["maximize", "minimize"], metrics=["val/accuracy", "val/physics_residual"]), "pruner.name"),
    (dict(n_trials=0), "n_trials"),
    (dict(study_name="a study"), "study_name"),
    (dict(sampler={"name": "cmaes"}), "sampler.name"),
    (dict(pruner={"name": "patient"}), "pruner.name"),
    (dict(params={}), "params"),
])
def test_bad_sweep_settings_name_the_key(settings, key):
    with pytest.raises(ConfigError, match=f"hydra.sweeper.{key}="):
        SweepConfig(**{"params": SPACE, **settings})


def test_multi_objective_sweeps_take_one_metric_per_direction_and_no_pruner():
    sweep = SweepConfig(params=SPACE, directions=["maximize", "minimize"],
                        metrics=["val/accuracy", "val/physics_residual"], pruner={"name": "nop"},
                        sampler={"name": "nsga2", "seed": 3})
    assert sweep.multi_objective
    assert isinstance(sweep.sampler.build(3), optuna.samplers.NSGAIISampler)


def test_sampler_and_pruner_take_their_arguments_as_written():
    sampler = SamplerConfig("tpe", 7, {"n_startup_trials": 3, "multivariate": True}).build(7)
    assert isinstance(sampler, optuna.samplers.TPESampler)
    pruner = PrunerConfig("median", {"n_startup_trials": 2, "n_warmup_steps": 1}).build()
    assert isinstance(pruner, optuna.pruners.MedianPruner)
    with pytest.raises(ConfigError, match="sampler.kwargs"):
        SamplerConfig("tpe", 0, {"n_startup": 3}).build(0)
    with pytest.raises(ConfigError, match="pruner.kwargs"):
        PrunerConfig("percentile", {"percentile": 150.0}).build()
