"""The sweeper plugin: the shipped searches compose to the sweeps they have always run, with SweepConfig's
defaults filling what their YAML leaves out, and importing the plugin (Hydra does at every startup) stays light."""

import dataclasses
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from pipeline.config import register_configs
from tests.conftest import CONF_DIR, REPO

SPACE = {
    "loss.physics_weight": "tag(log, interval(0.001, 1.0))",
    "loss.consistency_weight": "tag(log, interval(0.001, 1.0))",
}
SHIPPED = {
    "physics_weights": {
        "study_name": "av-pino-physics-weights",
        "storage": None,
        "n_trials": 8,
        "directions": ["minimize"],
        "metrics": ["val/loss"],
        "sampler": {
            "name": "tpe",
            "seed": 0,
            "kwargs": {
                "n_startup_trials": 4,
                "n_ei_candidates": 24,
                "multivariate": True,
                "group": False,
                "constant_liar": True,
            },
        },
        "pruner": {
            "name": "median",
            "kwargs": {"n_startup_trials": 2, "n_warmup_steps": 2, "interval_steps": 1, "n_min_trials": 1},
        },
        "params": SPACE,
    },
    "physics_weights_pareto": {
        "study_name": "av-pino-physics-weights-pareto",
        "storage": None,
        "n_trials": 8,
        "directions": ["minimize", "minimize"],
        "metrics": ["val/loss", "val/physics_residual"],
        "sampler": {
            "name": "nsga2",
            "seed": 0,
            "kwargs": {"population_size": 8, "crossover_prob": 0.9, "swapping_prob": 0.5},
        },
        "pruner": {"name": "nop", "kwargs": {}},
        "params": SPACE,
    },
}


def compose_search(*overrides: str):
    """What `python -m pipeline.train -m <overrides>` composes, `hydra.sweeper` included."""
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides), return_hydra_config=True)


@pytest.mark.parametrize("search", sorted(SHIPPED))
def test_a_shipped_search_runs_the_sweep_it_always_ran(search):
    config = compose_search(f"hparams_search={search}")
    sweep = instantiate(config.hydra.sweeper).sweep_config({})
    assert dataclasses.asdict(sweep) == SHIPPED[search]
    assert config.distributed.nproc_per_node == 2


def test_a_written_out_argument_is_overridden_without_a_plus():
    config = compose_search("hparams_search=physics_weights", "hydra.sweeper.sampler.kwargs.n_startup_trials=2")
    sweep = instantiate(config.hydra.sweeper).sweep_config({})
    assert sweep.sampler.kwargs == {**SHIPPED["physics_weights"]["sampler"]["kwargs"], "n_startup_trials": 2}


def test_importing_the_plugin_imports_no_optuna_torch_or_mlflow():
    script = (
        "import sys, hydra_plugins.av_pino_sweeper.av_pino_sweeper; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'optuna', 'torch', 'mlflow'}))"
    )
    heavy = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert heavy.strip() == "[]"
