"""The config sections of a training job: its losses (`loss`), its loop (`training`) and its ranks
(`distributed`)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Optional, Protocol

from pipeline.common.config_section import Section, check_setting
from pipeline.data.config import DataConfig

DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


@dataclass
class LossConfig(Section):
    physics_weight: float = 0.1
    consistency_weight: float = 0.05
    variational_weight: float = 0.02
    adaptive_weighting: bool = True

    def __post_init__(self) -> None:
        for key in ("physics_weight", "consistency_weight", "variational_weight"):
            value = getattr(self, key)
            check_setting(math.isfinite(value) and value >= 0.0, "loss." + key, value, "must be a finite number >= 0")


@dataclass
class TrainingConfig(Section):
    epochs: int = 8
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    mixed_precision: bool = False
    compile: bool = False
    grad_clip: float = 1.0
    patience: int = 10
    max_bad_steps: int = 5  # consecutive non-finite losses before the run stops
    checkpoint_every: int = 1
    num_workers: int = 0
    seed: int = 0
    resume: str = "auto"  # auto: continue the newest interrupted run of this config; never; or a train run id
    heartbeat_s: float = 60.0  # seconds between a train run's heartbeats; another host takes it over after 3 missed
    device: str = "auto"  # auto (the local GPU when there is one, else the CPU), cpu, cuda or cuda:<index>

    def __post_init__(self) -> None:
        p = "training."
        for key in ("epochs", "batch_size", "patience", "max_bad_steps", "checkpoint_every"):
            check_setting(getattr(self, key) > 0, p + key, getattr(self, key), "must be positive")
        check_setting(
            math.isfinite(self.learning_rate) and self.learning_rate > 0,
            p + "learning_rate",
            self.learning_rate,
            "must be a finite number > 0",
        )
        check_setting(self.weight_decay >= 0, p + "weight_decay", self.weight_decay, "must be >= 0")
        check_setting(self.grad_clip > 0, p + "grad_clip", self.grad_clip, "must be > 0")
        check_setting(
            math.isfinite(self.heartbeat_s) and self.heartbeat_s > 0,
            p + "heartbeat_s",
            self.heartbeat_s,
            "must be a finite number of seconds > 0",
        )
        check_setting(self.num_workers >= 0, p + "num_workers", self.num_workers, "must be >= 0")
        check_setting(
            bool(DEVICE.match(self.device)), p + "device", self.device, "must be auto, cpu, cuda or cuda:<index>"
        )

        check_setting(
            self.resume in ("auto", "never") or (len(self.resume) == 32 and self.resume.isalnum()),
            p + "resume",
            self.resume,
            "must be auto, never or an MLflow run id (32 hex digits)",
        )


@dataclass
class DistributedConfig(Section):
    """Ranks per training job. With nproc_per_node > 1 the train stage launches itself through torch's
    elastic launcher (what torchrun runs); under torchrun the launcher's WORLD_SIZE wins. Whether this machine
    has the cores or GPUs asked for is checked before a stage starts (pipeline/training/device.py)."""

    nproc_per_node: int = 1
    backend: str = "auto"  # gloo on CPU, nccl on CUDA
    rdzv_endpoint: Optional[str] = None  # host:port of the rendezvous; default a free port on 127.0.0.1

    def __post_init__(self) -> None:
        p = "distributed."
        check_setting(self.nproc_per_node >= 1, p + "nproc_per_node", self.nproc_per_node, "must be at least 1")
        check_setting(
            self.backend in ("auto", "gloo", "nccl"), p + "backend", self.backend, "must be one of auto, gloo, nccl"
        )
        if self.rdzv_endpoint is not None:
            host, _, port = self.rdzv_endpoint.rpartition(":")
            check_setting(
                bool(host) and port.isdigit() and 0 < int(port) < 65536,
                p + "rdzv_endpoint",
                self.rdzv_endpoint,
                "must be host:port",
            )


class TrainingJobConfig(Protocol):
    """What the training engine reads of a config (an ExperimentConfig has it): the loop, the losses, and the
    data section's augmentation."""

    data: DataConfig
    loss: LossConfig
    training: TrainingConfig
