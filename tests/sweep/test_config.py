"""A sweep's settings are checked before any trial runs; samplers and pruners are built as configured, over the
arguments the project pins for them."""

import optuna
import pytest

from pipeline.config import ConfigError
from pipeline.sweep.config import PRUNERS, SAMPLERS, PrunerConfig, SamplerConfig, SweepConfig
from pipeline.sweep.samplers import PRUNER_CLASSES, SAMPLER_CLASSES, build_pruner, build_sampler

SPACE = {"loss.physics_weight": "tag(log, interval(0.001, 1.0))"}


@pytest.mark.parametrize(
    "settings, key",
    [
        (dict(metrics=["val/acc"]), "metrics"),
        (dict(directions=["up"]), "directions"),
        (dict(directions=["maximize", "minimize"]), "metrics"),
        (dict(directions=["maximize", "minimize"], metrics=["val/accuracy", "val/physics_residual"]), "pruner.name"),
        (dict(n_trials=0), "n_trials"),
        (dict(study_name="a study"), "study_name"),
        (dict(sampler={"name": "cmaes"}), "sampler.name"),
        (dict(pruner={"name": "patient"}), "pruner.name"),
        (dict(params={}), "params"),
    ],
)
def test_bad_sweep_settings_name_the_key(settings, key):
    with pytest.raises(ConfigError, match=f"hydra.sweeper.{key}="):
        SweepConfig(**{"params": SPACE, **settings})


def test_multi_objective_sweeps_take_one_metric_per_direction_and_no_pruner():
    sweep = SweepConfig(
        params=SPACE,
        directions=["maximize", "minimize"],
        metrics=["val/accuracy", "val/physics_residual"],
        pruner={"name": "nop"},
        sampler={"name": "nsga2", "seed": 3},
    )
    assert sweep.multi_objective
    assert isinstance(build_sampler(sweep.sampler, 3), optuna.samplers.NSGAIISampler)


def proposals(sampler: optuna.samplers.BaseSampler, n_trials: int = 6) -> list[dict]:
    """The points `sampler` proposes in a study of `n_trials` on a fixed objective of two parameters."""
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1) + trial.suggest_float("y", 0, 1), n_trials=n_trials)
    return [trial.params for trial in study.trials]


def prune_decisions(pruner: optuna.pruners.BasePruner) -> list[bool]:
    """Whether `pruner` stops a trial that reports a loss of 5 at steps 0 and 1, after two trials that ended at 1."""
    study = optuna.create_study(pruner=pruner)
    for _ in range(2):
        trial = study.ask()
        trial.report(1.0, step=0)
        trial.report(1.0, step=1)
        study.tell(trial, 1.0)
    trial, decisions = study.ask(), []
    for step in (0, 1):
        trial.report(5.0, step=step)
        decisions.append(trial.should_prune())
    return decisions


def test_sampler_and_pruner_take_their_arguments_as_written():
    tpe = SamplerConfig("tpe", 7, {"n_startup_trials": 3, "multivariate": True})
    as_written = proposals(optuna.samplers.TPESampler(seed=7, n_startup_trials=3, multivariate=True))
    assert proposals(build_sampler(tpe, 7)) == as_written
    assert proposals(optuna.samplers.TPESampler(seed=7)) != as_written  # the arguments change the points

    pruner = build_pruner(PrunerConfig("median", {"n_startup_trials": 2, "n_warmup_steps": 1}))
    assert prune_decisions(pruner) == [False, True]  # step 0 is warm-up; then two finished trials set the median
    assert prune_decisions(optuna.pruners.MedianPruner()) == [False, False]  # by default, five trials must finish
    with pytest.raises(ConfigError, match="sampler.kwargs"):
        build_sampler(SamplerConfig("tpe", 0, {"n_startup": 3}), 0)
    with pytest.raises(ConfigError, match="pruner.kwargs"):
        build_pruner(PrunerConfig("percentile", {"percentile": 150.0}))


def test_every_sampler_and_pruner_a_config_names_can_be_built():
    assert set(SAMPLER_CLASSES) == set(SAMPLERS) and set(PRUNER_CLASSES) == set(PRUNERS)
