"""The `data` config section: where recordings come from, how they are windowed and split."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from pipeline.common.config_section import Section, check_setting
from pipeline.data.bearing import BEARINGS, NOMINAL_RPM, RANDOM_BEARING
from pipeline.data.classes import FAULT_SIZES_IN
from pipeline.data.cwru import SAMPLE_RATE as CWRU_SAMPLE_RATE
from pipeline.data.tasks import TASKS

DATA_SOURCES = ("synthetic", "cwru", "files")
SPLITS = ("recording", "load_shift", "fault_size", "time", "manifest", "group")
MANIFEST_SPLITS = ("manifest", "group")  # read a column of the manifest, so only data.source=files has them


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
    # synthetic: each recording's SNR drawn uniformly from [low, high] dB instead of snr_db, as machines differ in
    # how far a fault's strikes stand above their noise; None: every recording at snr_db
    snr_range_db: Optional[list[float]] = None
    task: str = "fault_class"  # what a label means: fault_class (ten classes) or fault_location (four)
    # geometry preset of the monitored bearing (pipeline.data.bearing.BEARINGS); the simulator also takes `random`,
    # a bearing of its own for each recording
    bearing: str = "skf_6205"
    split: str = "recording"  # recording, load_shift, fault_size, time, manifest or group (pipeline/data/splits.py)
    train_loads: list[int] = field(default_factory=lambda: [0, 1, 2])  # load_shift: loads (HP) trained on
    test_loads: list[int] = field(default_factory=lambda: [3])  # load_shift: loads (HP) tested on
    test_fault_size: float = 0.021  # fault_size: the size (in) tested on, never trained on
    test_groups: list[str] = field(default_factory=list)  # group: the manifest's groups held out whole for test
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
        self._check_source()
        self._check_windows()
        self._check_labels_and_split()
        self._check_manifest_split()
        self._check_loads_and_sizes()
        self._check_augmentation_and_fractions()

    def _check_source(self) -> None:
        """Where recordings come from: a CWRU folder or a manifest must exist when that source is chosen."""
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

    def _check_windows(self) -> None:
        """Sampling and windowing, and what the simulator records: enough for one window, at a sane SNR."""
        p = "data."
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
        check_setting(
            self.snr_range_db is None
            or (len(self.snr_range_db) == 2 and -20.0 <= self.snr_range_db[0] <= self.snr_range_db[1] <= 80.0),
            p + "snr_range_db",
            self.snr_range_db,
            "must be [low, high] with -20 <= low <= high <= 80 dB, or null",
        )

    def _check_labels_and_split(self) -> None:
        p = "data."
        check_setting(self.task in TASKS, p + "task", self.task, f"must be one of {TASKS}")
        check_setting(
            self.bearing in BEARINGS or (self.bearing == RANDOM_BEARING and self.source == "synthetic"),
            p + "bearing",
            self.bearing,
            f"must be one of the presets {tuple(BEARINGS)}, or {RANDOM_BEARING!r} for the simulator",
        )
        check_setting(self.split in SPLITS, p + "split", self.split, f"must be one of {SPLITS}")

    def _check_manifest_split(self) -> None:
        """The splits a manifest's column decides: only for data=files, and a group split names its test groups."""
        p = "data."
        check_setting(
            self.split not in MANIFEST_SPLITS or self.source == "files",
            p + "split",
            self.split,
            f"reads a column of a manifest, so needs data=files (data.source is {self.source!r})",
        )
        groups = list(self.test_groups)
        check_setting(
            all(str(g).strip() for g in groups) and len(set(groups)) == len(groups),
            p + "test_groups",
            groups,
            "must be distinct, non-empty group names",
        )
        check_setting(
            self.split != "group" or bool(groups),
            p + "test_groups",
            groups,
            "must name the manifest's group(s) to test on when data.split=group, e.g. data.test_groups=[pump_b]",
        )

    def _check_loads_and_sizes(self) -> None:
        """The loads and the fault size a split holds out: CWRU's, unless a manifest of the user's own
        recordings states its own numbers."""
        p = "data."
        own = self.source == "files"
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

    def _check_augmentation_and_fractions(self) -> None:
        p = "data."
        for key in ("augment_spread_db", "augment_gain_db"):
            value = getattr(self, key)
            check_setting(math.isfinite(value) and 0 <= value <= 40, p + key, value, "must be in [0, 40] dB")
        check_setting(0.0 < self.val_fraction < 0.5, p + "val_fraction", self.val_fraction, "must be in (0, 0.5)")
        check_setting(0.0 < self.test_fraction < 0.5, p + "test_fraction", self.test_fraction, "must be in (0, 0.5)")
