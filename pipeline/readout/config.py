"""The config sections of what is read off a trained model: the readout fitted after training (`readout`) and
the scoring of held-out windows (`evaluate`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from pipeline.common.config_section import Section, check_setting


@dataclass
class ReadoutConfig(Section):
    """What the train stage fits on the trained model, on rank 0 before logging it, and logs with it
    (pipeline/readout/readout.py): a temperature on the validation windows' logits, and, for a model that returns
    `features`, the Gaussians of its training windows' features that score each window's `ood_score`."""

    fit: bool = True  # false: the model is logged as trained (temperature 1, no ood_score)
    # a window is out_of_distribution when its ood_score exceeds this quantile of the validation windows' scores
    ood_quantile: float = 0.95

    def __post_init__(self) -> None:
        check_setting(0.0 < self.ood_quantile < 1.0, "readout.ood_quantile", self.ood_quantile, "must be in (0, 1)")


@dataclass
class EvaluateConfig(Section):
    model_uri: Optional[str] = None  # default: the model of the newest finished train run
    batch_size: int = 256
    ece_bins: int = 15
    diagnosis_figures: int = 2  # test recordings per class whose diagnosis figure the run logs

    def __post_init__(self) -> None:
        check_setting(self.batch_size > 0, "evaluate.batch_size", self.batch_size, "must be positive")
        check_setting(self.ece_bins >= 2, "evaluate.ece_bins", self.ece_bins, "must be at least 2")
        check_setting(self.diagnosis_figures >= 0, "evaluate.diagnosis_figures", self.diagnosis_figures, "must be >= 0")
