"""`python bench/run.py real_cwru` is the study on real recordings with five seeds: the config it runs is the
one the command it prints composes, with the arms, sets and tuned weights of conf/study/real.yaml.
`python bench/run.py unseen_bearings` writes UESTC's recordings as a data=files manifest and runs
conf/study/unseen_bearings.yaml on CWRU and them."""

import os
from pathlib import Path

import pandas as pd
import pytest
import yaml
from omegaconf import OmegaConf

from pipeline.config import CONF_DIR, to_experiment_config
from pipeline.data.files import parse_bearing
from pipeline.study.config import StudyExperimentConfig, compose_study_config
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


def test_the_unseen_bearings_bench_labels_uestc_by_location_with_its_geometry(tmp_path, uestc_dir):
    bench = bench_module("study_benchmarks")
    manifest = pd.read_csv(bench.uestc_files_manifest(uestc_dir, tmp_path / "uestc.csv"))
    assert len(manifest) == 16 and manifest["location"].value_counts().to_dict() == dict.fromkeys(
        ["normal", "inner", "outer", "ball"], 4
    )
    assert (manifest["label"] == manifest["location"]).all() and set(manifest["sample_rate"]) == {20000}
    assert sorted(set(manifest["rpm"])) == [800, 1000, 1200, 1400] and set(manifest["variable"]) == {"Data"}
    assert all(Path(path).is_absolute() and Path(path).parent == uestc_dir.resolve() for path in manifest["path"])
    geometry = parse_bearing(manifest["bearing"][0])
    assert geometry.n_balls == 8 and geometry.contact_angle_deg == 0.0
    assert geometry.ball_diameter_in / geometry.pitch_diameter_in == pytest.approx(7.938 / 33.5, rel=1e-3)


def test_the_unseen_bearings_bench_runs_its_four_sets_on_fault_location(tmp_path):
    bench = bench_module("study_benchmarks")
    manifest = tmp_path / "other-rig.csv"
    manifest.write_text("path,label,rpm,sample_rate\n")  # composing the config reads no recording
    config = compose_study_config(*bench.unseen_bearings_overrides(tmp_path, manifest))
    assert config.study.arms == ["physics_adaptive", "data_only", "wdcnn", "envelope_rule"]
    assert config.study.training_sets == ["unseen_size", "other_rig", "sim_to_real", "sim_to_other_rig"]
    assert config.study.seeds == [0, 1, 2, 3, 4] and config.data.task == "fault_location"
    assert config.study.other_rig_manifest == str(manifest)
