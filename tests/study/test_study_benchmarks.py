"""`python bench/run.py real_cwru` is the study on real recordings with five seeds: the config it runs is the
one the command it prints composes, with the arms, sets and tuned weights of conf/study/real.yaml."""

import os

import pytest
import yaml
from omegaconf import OmegaConf

from pipeline.config import to_experiment_config
from pipeline.study.config import CONF_DIR, StudyExperimentConfig
from tests.conftest import REPO, bench_module
from tests.entry_zygote import run_entry_point


def test_the_bench_runs_the_real_study_with_five_seeds(tmp_path):
    bench = bench_module("study_benchmarks")
    config = bench.real_study_config(tmp_path)  # a folder stands in for the recordings: nothing is read
    real = yaml.safe_load((CONF_DIR / "study" / "real.yaml").read_text())["study"]
    assert (config.data.source, config.data.path) == ("cwru", str(tmp_path))
    assert config.data.cache_dir == str(REPO / "data" / "prepared")
    assert config.study.seeds == [0, 1, 2, 3, 4]
    assert {key: getattr(config.study, key) for key in real} == real  # the tuned weights live only there
    assert "envelope_rule" in config.study.arms and config.tracking.experiment == "av-pino-study"


@pytest.mark.slow
def test_the_command_the_bench_prints_composes_the_same_config(tmp_path):
    bench = bench_module("study_benchmarks")
    overrides = bench.real_study_overrides(tmp_path)
    # `python -m pipeline.study <overrides> --cfg job`, forked from a warm interpreter (tests/entry_zygote.py)
    composed = run_entry_point("study", *overrides, "--cfg", "job", env=dict(os.environ), folder=tmp_path)
    assert composed.returncode == 0, composed.stderr[-3000:]
    from_command_line = to_experiment_config(OmegaConf.create(composed.stdout), StudyExperimentConfig)
    assert from_command_line == bench.real_study_config(tmp_path)
