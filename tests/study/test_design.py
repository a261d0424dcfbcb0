"""AGT-NO arms share data, budget and seed and differ only in loss; WDCNN trains to its own convergence; the
envelope rule reads the same recordings in its own windows; the study config is validated."""

from dataclasses import replace

import pytest

from pipeline.config import ConfigError, DataConfig
from pipeline.study.config import StudyConfig, StudyExperimentConfig
from pipeline.study.design import ARMS, arm_config, rule_data

TRAINED = [name for name, arm in ARMS.items() if arm.trained]


def test_agt_no_arms_differ_only_in_loss_and_wdcnn_trains_to_its_own_convergence():
    base = StudyExperimentConfig(study=StudyConfig(tuned_physics_weight=0.4, tuned_consistency_weight=0.2))
    configs = {name: arm_config(base, ARMS[name], seed=7) for name in TRAINED}
    for config in configs.values():
        assert config.data == base.data and config.evaluate == base.evaluate and config.training.seed == 7
    wdcnn = configs.pop("wdcnn").training
    assert all(config.training == configs["data_only"].training for config in configs.values())
    assert configs["data_only"].training.epochs == base.training.epochs
    assert (wdcnn.epochs, wdcnn.patience, wdcnn.weight_decay) == (base.study.baseline_epochs, 5, 0.0)
    configs["wdcnn"] = arm_config(base, ARMS["wdcnn"], seed=7)
    loss = {
        name: (c.loss.physics_weight, c.loss.consistency_weight, c.loss.adaptive_weighting)
        for name, c in configs.items()
    }
    assert loss == {
        "data_only": (0.0, 0.0, False),
        "physics_fixed": (0.1, 0.05, False),
        "physics_adaptive": (0.1, 0.05, True),
        "physics_tuned": (0.4, 0.2, True),
        "wdcnn": (0.0, 0.0, False),
    }
    assert {name: c.model.name for name, c in configs.items()} == {**dict.fromkeys(TRAINED, "agt_no"), "wdcnn": "wdcnn"}


def test_the_envelope_rule_reads_the_same_recordings_in_windows_long_enough_for_its_combs():
    data = DataConfig(window=1024, hop=512)
    assert rule_data(data) == replace(data, window=4096, hop=2048)  # 12 kHz: 4096 >= 12000 / 3 Hz bins
    fast = DataConfig(sample_rate=48000, duration_s=0.5)
    assert (rule_data(fast).window, rule_data(fast).hop) == (16000, 8000)  # bins of 3 Hz at 48 kHz


def test_simulated_recordings_shorter_than_the_rules_window_are_refused():
    with pytest.raises(ConfigError, match="data.window=4096"):
        rule_data(DataConfig(window=256, hop=256, duration_s=0.1))  # 1,200 samples


@pytest.mark.parametrize(
    "settings, key",
    [
        ({"arms": ["data_only", "bogus"]}, "study.arms"),
        ({"arms": ["wdcnn", "wdcnn"]}, "study.arms"),
        ({"seeds": []}, "study.seeds"),
        ({"training_sets": ["load_shift"]}, "study.noisy_sets"),  # noisy copies of a set not trained
        ({"noisy_sets": ["recording", "recording"]}, "study.noisy_sets"),
        ({"training_sets": ["bogus"]}, "study.training_sets"),
        ({"snr_db": [-30.0]}, "study.snr_db"),
        ({"label_fraction": 0.0}, "study.label_fraction"),
        ({"ood_fault_size_in": 0.01}, "study.ood_fault_size_in"),
        ({"ood_fault_location": "normal"}, "study.ood_fault_location"),
        ({"unseen_sizes": [0.007, 0.5]}, "study.unseen_sizes"),
        ({"baseline_epochs": 0}, "study.baseline_epochs"),
        ({"tuned_physics_weight": -1.0}, "study.tuned_physics_weight"),
    ],
)
def test_bad_study_settings_name_the_key(settings, key):
    with pytest.raises(ConfigError, match=key):
        StudyConfig(**settings)
