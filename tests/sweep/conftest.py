"""Tiny sweeps: a few-second training per trial, a journal file per test, a private MLflow store."""

import pytest

from pipeline.config import to_experiment_config
from pipeline.sweep.config import SweepConfig
from tests.tiny import TINY as TINY_DATA_MODEL

TINY = [*TINY_DATA_MODEL, "training.epochs=3", "training.batch_size=32"]
SPACE = {
    "loss.physics_weight": "tag(log, interval(0.001, 1.0))",
    "loss.consistency_weight": "tag(log, interval(0.001, 1.0))",
}


@pytest.fixture
def tiny_experiment(compose_config, tmp_path):
    return to_experiment_config(compose_config(*TINY, f"data.cache_dir={tmp_path / 'data'}"))


@pytest.fixture
def tiny_sweep(tmp_path):
    """tiny_sweep(**settings) -> a SweepConfig on a journal file in tmp_path."""

    def make(**settings):
        defaults = dict(
            study_name="tiny",
            storage=str(tmp_path / "study.log"),
            n_trials=3,
            params=SPACE,
            directions=["maximize"],
            metrics=["val/accuracy"],  # the tests' thresholds are accuracies
            sampler={"name": "tpe", "seed": 0, "kwargs": {"n_startup_trials": 2}},
            pruner={"name": "median", "kwargs": {"n_startup_trials": 1}},
        )
        return SweepConfig(**{**defaults, **settings})

    return make
