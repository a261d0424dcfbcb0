"""What the ablation study compares: its arms (one model and loss setting each) and its training sets.

Every AGT-NO arm keeps the base config's data, budget (epochs, batch size, learning rate) and seeds; only the
loss weights differ, so a difference between them is the physics' doing. The WDCNN baseline trains with its own
recipe until its validation loss stops improving (up to `study.baseline_epochs`), so it is not judged
undertrained at AGT-NO's budget. The envelope rule trains nothing: it is the floor a learnt model must beat
with one number fitted on the training windows (pipeline/study/envelope_arm.py), read at its own window length
from the same recordings. The training sets are built by pipeline/study/sets.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from pipeline.data.config import DataConfig
from pipeline.models.envelope_rule import MAX_BIN_HZ
from pipeline.training.config import LossConfig


@dataclass(frozen=True)
class Arm:
    name: str
    description: str
    model: str = "agt_no"
    loss: dict[str, Any] = field(default_factory=dict)  # LossConfig fields set by the arm
    tuned: bool = False  # physics and consistency weights come from a sweep (StudyConfig.tuned_*)
    training: dict[str, Any] = field(default_factory=dict)  # TrainingConfig fields of the arm's own recipe
    own_epochs: bool = False  # trains up to study.baseline_epochs, stopped by its validation loss
    trained: bool = True  # False: the envelope rule, whose one threshold is fitted, not trained


# the physics-informed loss's weights, whatever loss the base config (the pipeline's default) trains with
PHYSICS = {"physics_weight": LossConfig.physics_weight, "consistency_weight": LossConfig.consistency_weight}

ARMS = {
    arm.name: arm
    for arm in (
        Arm(
            "data_only",
            "AGT-NO, data loss only (physics and consistency weights 0)",
            loss={"physics_weight": 0.0, "consistency_weight": 0.0, "adaptive_weighting": False},
        ),
        Arm("physics_fixed", "AGT-NO, LossConfig's physics weights", loss={**PHYSICS, "adaptive_weighting": False}),
        Arm(
            "physics_adaptive",
            "AGT-NO, LossConfig's physics weights, SoftAdapt balancing",
            loss={**PHYSICS, "adaptive_weighting": True},
        ),
        Arm(
            "physics_tuned",
            "AGT-NO, physics weights tuned by the sweeper, SoftAdapt balancing",
            loss={"adaptive_weighting": True},
            tuned=True,
        ),
        Arm(
            "wdcnn",
            "WDCNN 1-D CNN (wide first kernel), data loss only",
            model="wdcnn",
            loss={"physics_weight": 0.0, "consistency_weight": 0.0, "adaptive_weighting": False},
            training={"weight_decay": 0.0, "patience": 5},
            own_epochs=True,
        ),
        Arm(
            "envelope_rule",
            "envelope-spectrum rule, no training: its one threshold fitted on the training windows",
            model="envelope_rule",
            trained=False,
        ),
    )
}
TRAINING_SETS = (
    "recording",
    "load_shift",
    "reduced_labels",
    "ood_size",
    "ood_location",
    "unseen_size",
    "sim_to_real",
    "other_rig",
    "sim_to_other_rig",
)
SIMULATED_SETS = {"sim_to_real", "sim_to_other_rig"}  # trained on the simulator whatever data the study reads
SIMULATOR_TRAINING_SETS = TRAINING_SETS[:4]  # the default study; the others are for real recordings
RULE_WINDOW = 4096  # samples: a power of two at least sample_rate / MAX_BIN_HZ at 12 kHz


def rule_data(data: DataConfig) -> DataConfig:
    """`data` at the envelope rule's window: max(RULE_WINDOW, sample_rate / MAX_BIN_HZ) samples (its envelope
    spectrum must resolve the inner comb from the ball comb), half a window apart; the same recordings and
    splits. Raises ConfigError when simulated recordings are shorter than that window."""
    window = max(RULE_WINDOW, math.ceil(data.sample_rate / MAX_BIN_HZ))
    return replace(data, window=window, hop=window // 2)


def arm_config(base: Any, arm: Arm, seed: int) -> Any:
    """`base` (an ExperimentConfig) with the arm's model, loss and recipe and `training.seed=seed`; `replace`
    re-validates each section."""
    loss = dict(arm.loss)
    epochs = {"epochs": base.study.baseline_epochs} if arm.own_epochs else {}
    if arm.tuned:
        loss.update(
            physics_weight=base.study.tuned_physics_weight, consistency_weight=base.study.tuned_consistency_weight
        )
    return replace(
        base,
        model=replace(base.model, name=arm.model),
        loss=replace(base.loss, **loss),
        training=replace(base.training, **arm.training, **epochs, seed=seed),
    )
