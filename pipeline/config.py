"""Structured configuration: one dataclass per Hydra config group, validated on construction.

The same schema backs Hydra composition (registered in the ConfigStore, so an unknown key or a wrong type is
rejected by OmegaConf) and `load_experiment_config(path)` for plain YAML files. Value checks live in
`__post_init__`, so every way of building a config ends in the same validation, and every error names the
key and the value.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Optional

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pipeline.config_section import ConfigError, Section, check_setting
from pipeline.data.bearing import BEARINGS, NOMINAL_RPM
from pipeline.data.classes import FAULT_SIZES_IN
from pipeline.data.cwru import SAMPLE_RATE as CWRU_SAMPLE_RATE
from pipeline.data.tasks import TASKS
from pipeline.liveness import HEARTBEAT_S
from pipeline.study.config import StudyConfig

DATA_SOURCES = ("synthetic", "cwru", "files")
SPLITS = ("recording", "load_shift", "fault_size", "time")
DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


@dataclass
class DataConfig(Section):
    source: str = "synthetic"
    path: Optional[str] = None  # folder of CWRU .mat files when source == "cwru"
    manifest: Optional[str] = None  # CSV listing your own recordings when source == "files" (pipeline/data/files.py)
    sample_rate: int = 12000
    window: int = 1024
    hop: int = 512
    recordings_per_load: int = 10  # synthetic: recordings per class and load
    duration_s: float = 0.8  # synthetic: seconds per recording
    snr_db: float = 20.0  # synthetic: measurement noise
    task: str = "fault_class"  # what a label means: fault_class (ten classes) or fault_location (four)
    bearing: str = "skf_6205"  # geometry preset of the monitored bearing (pipeline.data.bearing.BEARINGS)
    split: str = "recording"  # recording, load_shift, fault_size or time (pipeline/data/splits.py)
    train_loads: list[int] = field(default_factory=lambda: [0, 1, 2])  # load_shift: loads (HP) trained on
    test_loads: list[int] = field(default_factory=lambda: [3])  # load_shift: loads (HP) tested on
    test_fault_size: float = 0.021  # fault_size: the size (in) tested on, never trained on
    # how much the recording chain varies between the machines this data stands for: each training window goes
    # through a random transfer path of this spread and gain (pipeline/training/augmentation.py); 0 dB: off
    augment_spread_db: float = 0.0
    augment_gain_db: float = 0.0
    val_fraction: float = 0.15
    test_fraction: float = 0.2
    seed: int = 0
    strict: bool = True  # cwru: stop on a bad file (True) or skip and record it (False)
    cache_dir: str = "data/prepared"

    def __post_init__(self) -> None:
        p = "data."
        check_setting(self.source in DATA_SOURCES, p + "source", self.source, f"must be one of {DATA_SOURCES}")
        if self.source == "cwru":
            check_setting(bool(self.path), p + "path", self.path, "is required when data.source='cwru'")
            check_setting(Path(str(self.path)).is_dir(), p + "path", self.path, "is not an existing folder")
            check_setting(
                self.sample_rate == CWRU_SAMPLE_RATE,
                p + "sample_rate",
                self.sample_rate,
                f"CWRU recordings are read at {CWRU_SAMPLE_RATE} Hz",
            )
        if self.source == "files":
            check_setting(bool(self.manifest), p + "manifest", self.manifest, "is required when data.source='files'")
            check_setting(Path(str(self.manifest)).is_file(), p + "manifest", self.manifest, "is not an existing file")
        check_setting(self.sample_rate > 0, p + "sample_rate", self.sample_rate, "must be positive")
        check_setting(self.window >= 16, p + "window", self.window, "must be at least 16 samples")
        check_setting(0 < self.hop <= self.window, p + "hop", self.hop, "must be in 1..data.window")
        check_setting(
            self.recordings_per_load >= 3,
            p + "recordings_per_load",
            self.recordings_per_load,
            "must be at least 3 (one recording each for train, val and test)",
        )
        check_setting(
            self.source != "synthetic" or self.duration_s * self.sample_rate >= self.window,
            p + "window",
            self.window,
            f"is longer than a recording of data.duration_s={self.duration_s} s at {self.sample_rate} Hz",
        )
        check_setting(
            -20.0 <= self.snr_db <= 80.0 or math.isinf(self.snr_db),
            p + "snr_db",
            self.snr_db,
            "must be in [-20, 80] dB (or inf for no noise)",
        )
        check_setting(self.task in TASKS, p + "task", self.task, f"must be one of {TASKS}")
        check_setting(
            self.bearing in BEARINGS, p + "bearing", self.bearing, f"must be one of the presets {tuple(BEARINGS)}"
        )
        check_setting(self.split in SPLITS, p + "split", self.split, f"must be one of {SPLITS}")
        own = self.source == "files"  # a manifest's loads and fault sizes are the user's own numbers
        loads = tuple(sorted(NOMINAL_RPM))
        for key in ("train_loads", "test_loads"):
            values = list(getattr(self, key))
            check_setting(
                bool(values)
                and (own or set(values) <= set(loads))
                and min(values, default=0) >= 0
                and len(set(values)) == len(values),
                p + key,
                values,
                "must be distinct loads >= 0" + ("" if own else f" out of {loads} (HP)"),
            )
        check_setting(
            not set(self.train_loads) & set(self.test_loads),
            p + "test_loads",
            list(self.test_loads),
            f"must not share a load with data.train_loads={list(self.train_loads)}",
        )
        check_setting(
            self.test_fault_size in FAULT_SIZES_IN or (own and self.test_fault_size > 0),
            p + "test_fault_size",
            self.test_fault_size,
            "must be positive" if own else f"must be one of {FAULT_SIZES_IN} (in)",
        )
        check_setting(
            self.split != "fault_size" or self.task == "fault_location",
            p + "split",
            self.split,
            f"needs data.task=fault_location (got {self.task!r}): a held-out size has no class of its own in training",
        )
        for key in ("augment_spread_db", "augment_gain_db"):
            value = getattr(self, key)
            check_setting(math.isfinite(value) and 0 <= value <= 40, p + key, value, "must be in [0, 40] dB")
        check_setting(0.0 < self.val_fraction < 0.5, p + "val_fraction", self.val_fraction, "must be in (0, 0.5)")
        check_setting(0.0 < self.test_fraction < 0.5, p + "test_fraction", self.test_fraction, "must be in (0, 0.5)")


@dataclass
class ModelConfig(Section):
    name: str = "agt_no"
    input_dim: int = 1
    hidden_dim: int = 32
    output_dim: Optional[int] = None  # None: the number of classes of the dataset trained on
    n_modes: int = 16  # Fourier modes (quefrencies) of the spectrum operator's blocks
    n_layers: int = 2
    n_heads: int = 4
    patch_size: int = 8  # spectrum bins per patch of the attention between frequency bands
    dropout: float = 0.0
    latent_dim: int = 16
    n_bands: int = 4  # resonance bands the envelope view demodulates; 0 leaves the envelope view out

    def __post_init__(self) -> None:
        p = "model."
        check_setting(bool(self.name.strip()), p + "name", self.name, "must name a model (pipeline/model_factory.py)")
        for key in ("input_dim", "hidden_dim", "n_modes", "n_layers", "n_heads", "patch_size", "latent_dim"):
            check_setting(getattr(self, key) > 0, p + key, getattr(self, key), "must be positive")
        check_setting(
            self.output_dim is None or self.output_dim > 1,
            p + "output_dim",
            self.output_dim,
            "must be at least 2 classes (or unset: the dataset's number of classes)",
        )
        check_setting(
            self.hidden_dim % self.n_heads == 0,
            p + "hidden_dim",
            self.hidden_dim,
            f"must be divisible by model.n_heads={self.n_heads}",
        )
        check_setting(0.0 <= self.dropout < 1.0, p + "dropout", self.dropout, "must be in [0, 1)")
        check_setting(self.n_bands >= 0, p + "n_bands", self.n_bands, "must be >= 0")


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
    heartbeat_s: float = (
        HEARTBEAT_S  # seconds between a train run's heartbeats; another host takes it over after 3 missed
    )
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


@dataclass
class TrackingConfig(Section):
    experiment: str = "av-pino"

    def __post_init__(self) -> None:
        check_setting(bool(self.experiment.strip()), "tracking.experiment", self.experiment, "must not be empty")


@dataclass
class EvaluateConfig(Section):
    model_uri: Optional[str] = None  # default: the model of the newest finished train run
    batch_size: int = 256
    ece_bins: int = 15

    def __post_init__(self) -> None:
        check_setting(self.batch_size > 0, "evaluate.batch_size", self.batch_size, "must be positive")
        check_setting(self.ece_bins >= 2, "evaluate.ece_bins", self.ece_bins, "must be at least 2")


@dataclass
class ReadoutConfig(Section):
    """What the train stage fits on the trained model, on rank 0 before logging it, and logs with it
    (pipeline/readout.py): a temperature on the validation windows' logits, and, for a model that returns
    `features`, the Gaussians of its training windows' features that score each window's `ood_score`."""

    fit: bool = True  # false: the model is logged as trained (temperature 1, no ood_score)
    # a window is out_of_distribution when its ood_score exceeds this quantile of the validation windows' scores
    ood_quantile: float = 0.95

    def __post_init__(self) -> None:
        check_setting(0.0 < self.ood_quantile < 1.0, "readout.ood_quantile", self.ood_quantile, "must be in (0, 1)")


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


@dataclass
class ExperimentConfig(Section):
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    readout: ReadoutConfig = field(default_factory=ReadoutConfig)
    registry: RegistryConfig = field(default_factory=RegistryConfig)
    study: StudyConfig = field(default_factory=StudyConfig)


def to_experiment_config(cfg: DictConfig | dict) -> ExperimentConfig:
    """Validate a composed config (Hydra's DictConfig or a plain dict) into an ExperimentConfig.

    Keys outside the schema are rejected; Hydra's own `hydra` node is not part of it.
    """
    raw = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    schema = OmegaConf.structured(ExperimentConfig)
    try:
        merged = OmegaConf.merge(schema, {k: v for k, v in raw.items() if k != "hydra"})
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as err:
        raise ConfigError(_describe(err)) from None


def load_experiment_config(path: str | Path) -> ExperimentConfig:
    """Read a YAML experiment config (same keys as the Hydra groups) and validate it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        raw = OmegaConf.load(path)
    except Exception as err:  # yaml errors come in many classes; all mean the same thing here
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {err}") from None
    if not isinstance(raw, DictConfig):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping, not a list")
    unknown = set(raw.keys()) - {f.name for f in fields(ExperimentConfig)}
    if unknown:
        raise ConfigError(f"config file {str(path)!r} has unknown section(s): {', '.join(sorted(unknown))}")
    return to_experiment_config(raw)


def _describe(err: OmegaConfBaseException) -> str:
    """OmegaConf's message, reduced to the key and the problem."""
    key = getattr(err, "full_key", None)
    first_line = str(err).splitlines()[0]
    return f"{key}: {first_line}" if key else first_line


def register_configs() -> None:
    """Make the schema Hydra's `base_config`, so composed configs are type-checked and closed to unknown keys.
    Called where Hydra starts (the entry points' `run_hydra`), not on import."""
    ConfigStore.instance().store(name="base_config", node=ExperimentConfig)
