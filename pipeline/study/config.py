"""The ablation study's settings (the `study` config section), checked on construction like every section, and
the study's whole config composed as `python -m pipeline.study` composes it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from pipeline.common.config_section import Section, check_setting
from pipeline.config import ExperimentConfig, compose_experiment_config
from pipeline.data.classes import FAULT_LOCATIONS, FAULT_SIZES_IN
from pipeline.study.design import ARMS, SIMULATOR_TRAINING_SETS, TRAINING_SETS


@dataclass
class StudyConfig(Section):
    """The ablation study (`python -m pipeline.study`): every arm is trained on every training set with every
    seed (pipeline/study/). Arms and training sets are defined in pipeline/study/design.py and sets.py;
    conf/study/real.yaml is the study on real recordings."""

    arms: list[str] = field(default_factory=lambda: list(ARMS))
    training_sets: list[str] = field(default_factory=lambda: list(SIMULATOR_TRAINING_SETS))
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    snr_db: list[float] = field(default_factory=lambda: [10.0, 0.0, -5.0])  # noisy copies of noisy_sets' test windows
    noisy_sets: list[str] = field(default_factory=lambda: ["recording"])  # their models are also scored on noise
    label_fraction: float = 0.1  # reduced_labels: share of each class's training recordings that is kept
    ood_fault_size_in: float = 0.021  # ood_size: never trained on; its test windows are out of distribution
    ood_fault_location: str = "inner"  # ood_location: never trained on; its test windows are out of distribution
    unseen_sizes: list[float] = field(default_factory=lambda: list(FAULT_SIZES_IN))  # unseen_size: one set each
    # other_rig, sim_to_other_rig: a data=files manifest of another rig's recordings, every window of them scored
    other_rig_manifest: Optional[str] = None
    baseline_epochs: int = 40  # the WDCNN arm's epoch limit; its validation loss stops it (design.py)
    # physics_tuned: these weights, or with tune_with_sweep the best of a sweep of sweep_trials trials
    # (conf/hparams_search/physics_weights.yaml) the study runs first
    tuned_physics_weight: float = 0.1
    tuned_consistency_weight: float = 0.05
    tune_with_sweep: bool = False
    sweep_trials: int = 8

    def __post_init__(self) -> None:
        p = "study."
        for key, allowed in (("arms", tuple(ARMS)), ("training_sets", TRAINING_SETS)):
            values = list(getattr(self, key))
            check_setting(
                bool(values) and set(values) <= set(allowed) and len(set(values)) == len(values),
                p + key,
                values,
                f"must be distinct names out of {allowed}",
            )
        check_setting(
            bool(self.seeds) and len(set(self.seeds)) == len(self.seeds),
            p + "seeds",
            self.seeds,
            "must be a non-empty list of distinct integers",
        )
        check_setting(
            all(-20.0 <= snr <= 80.0 for snr in self.snr_db), p + "snr_db", self.snr_db, "each must be in [-20, 80] dB"
        )
        noisy = list(self.noisy_sets)
        distinct_sets = bool(noisy) and set(noisy) <= set(self.training_sets) and len(set(noisy)) == len(noisy)
        check_setting(
            not self.snr_db or distinct_sets,
            p + "noisy_sets",
            noisy,
            "must be distinct names out of study.training_sets (their models are scored on the noisy copies), "
            "or set study.snr_db=[]",
        )
        check_setting(0.0 < self.label_fraction <= 1.0, p + "label_fraction", self.label_fraction, "must be in (0, 1]")
        check_setting(
            self.ood_fault_size_in in FAULT_SIZES_IN,
            p + "ood_fault_size_in",
            self.ood_fault_size_in,
            f"must be one of {FAULT_SIZES_IN}",
        )
        check_setting(
            bool(self.unseen_sizes) and set(self.unseen_sizes) <= set(FAULT_SIZES_IN),
            p + "unseen_sizes",
            self.unseen_sizes,
            f"must be sizes out of {FAULT_SIZES_IN}",
        )
        check_setting(
            self.ood_fault_location in FAULT_LOCATIONS[1:],
            p + "ood_fault_location",
            self.ood_fault_location,
            f"must be a fault location out of {FAULT_LOCATIONS[1:]}",
        )
        other_rig_sets = sorted({"other_rig", "sim_to_other_rig"} & set(self.training_sets))
        check_setting(
            not other_rig_sets or (self.other_rig_manifest is not None and Path(self.other_rig_manifest).is_file()),
            p + "other_rig_manifest",
            self.other_rig_manifest,
            f"must be an existing data=files manifest of another rig's recordings: {other_rig_sets} score on them",
        )
        for key in ("tuned_physics_weight", "tuned_consistency_weight"):
            value = getattr(self, key)
            check_setting(math.isfinite(value) and value >= 0.0, p + key, value, "must be a finite number >= 0")
        for key in ("sweep_trials", "baseline_epochs"):
            check_setting(getattr(self, key) > 0, p + key, getattr(self, key), "must be positive")


@dataclass
class StudyExperimentConfig(ExperimentConfig):
    """The pipeline's config with the `study` section: the schema `python -m pipeline.study` composes into."""

    study: StudyConfig = field(default_factory=StudyConfig)


def compose_study_config(*overrides: str) -> StudyExperimentConfig:
    """conf/study.yaml with Hydra `overrides`, validated: the config `python -m pipeline.study <overrides>` runs."""
    return compose_experiment_config(*overrides, config_name="study", schema=StudyExperimentConfig)
