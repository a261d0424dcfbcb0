"""The config sections of tracking: the MLflow experiment (`tracking`) and the registry's promotion gate
(`registry`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from pipeline.common.config_section import Section, check_setting


@dataclass
class TrackingConfig(Section):
    experiment: str = "av-pino"

    def __post_init__(self) -> None:
        check_setting(bool(self.experiment.strip()), "tracking.experiment", self.experiment, "must not be empty")


@dataclass
class RegistryConfig(Section):
    model_name: str = "av-pino"
    evaluation_run_id: Optional[str] = None  # default: the newest finished evaluate run
    metric: str = "test/macro_f1"  # higher is better
    max_residual_increase: float = 0.25  # relative increase of test/physics_residual allowed
    max_ece_increase: float = 0.02  # absolute increase of test/ece allowed
    rollback: bool = False

    def __post_init__(self) -> None:
        p = "registry."
        check_setting(bool(self.model_name.strip()), p + "model_name", self.model_name, "must not be empty")
        check_setting(
            self.metric.startswith("test/"),
            p + "metric",
            self.metric,
            "must be a test/ metric logged by the evaluate stage (e.g. test/macro_f1)",
        )
        check_setting(
            self.max_residual_increase >= 0, p + "max_residual_increase", self.max_residual_increase, "must be >= 0"
        )
        check_setting(self.max_ece_increase >= 0, p + "max_ece_increase", self.max_ece_increase, "must be >= 0")
