"""The recordings of each data source (`data.source`), read into one shape for the dataset writer: the
simulator's, a CWRU folder's, or those a manifest of the user's own files lists."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from pipeline.data import files as user_files
from pipeline.data.bearing import BEARINGS, NOMINAL_RPM, RANDOM_BEARING, BearingGeometry, random_bearing
from pipeline.data.classes import CLASS_NAMES, class_index, fault_size_in
from pipeline.data.config import DataConfig
from pipeline.data.cwru import read_cwru_folder
from pipeline.data.simulator import simulate_recording
from pipeline.data.tasks import class_names, task_label

GROUND_TRUTH = ("natural_freq_hz", "damping_ratio")  # synthetic only: targets for system identification
Skipped = list[dict[str, str]]  # files left out, each with the reason


@dataclass
class Recording:
    """One recording as read from its source, with the facts a dataset records per window."""

    signal: np.ndarray
    label: str  # CWRU and simulator: one of the ten CLASS_NAMES, whatever the task; files: the manifest's label
    load_hp: int
    rpm: float
    source: str
    notes: list[str]
    truth: dict[str, float]  # GROUND_TRUTH values (synthetic only)
    klass: str  # the class the model learns, one of the dataset's class_names
    fault_size: float  # 0 for none
    bearing_name: str
    named_split: Optional[str] = None  # files: the split the manifest row names (data.split=manifest)
    group: Optional[str] = None  # files: the manifest row's group (data.split=group)


def read_recordings(cfg: DataConfig) -> tuple[list[Recording], Skipped, Skipped]:
    """The recordings of `cfg.source`, with the files skipped (bad) and ignored (not of the ten classes)."""
    return {"synthetic": _synthetic, "cwru": _cwru, "files": _files}[cfg.source](cfg)


def _synthetic(cfg: DataConfig) -> tuple[list[Recording], Skipped, Skipped]:
    """Every class x load 0..3 x recordings_per_load, each with its own seed drawn from cfg.seed, in the bearing
    `cfg.bearing` names or, for `random`, in a bearing of its own drawn from that seed."""
    recordings = []
    for label in CLASS_NAMES:
        for load in sorted(NOMINAL_RPM):
            for rep in range(cfg.recordings_per_load):
                seed = int(np.random.SeedSequence([cfg.seed, class_index(label), load, rep]).generate_state(1)[0])
                bearing_name, bearing = _simulated_bearing(cfg.bearing, seed)
                sim = simulate_recording(
                    label,
                    load,
                    seed,
                    duration_s=cfg.duration_s,
                    snr_db=_simulated_snr(cfg, seed),
                    sample_rate=cfg.sample_rate,
                    bearing=bearing,
                )
                klass, size, _ = _ten_class_facts(cfg, label)
                recordings.append(
                    Recording(
                        sim.signal,
                        label,
                        load,
                        sim.params["rpm"],
                        f"simulator seed={seed}",
                        [],
                        {key: sim.params[key] for key in GROUND_TRUTH},
                        klass,
                        size,
                        bearing_name,
                    )
                )
    return recordings, [], []


def _simulated_snr(cfg: DataConfig, seed: int) -> float:
    """`cfg.snr_db`, or a draw from `cfg.snr_range_db` made from the recording's own seed."""
    if cfg.snr_range_db is None:
        return cfg.snr_db
    return float(np.random.default_rng([seed, 2]).uniform(*cfg.snr_range_db))


def _simulated_bearing(named: str, seed: int) -> tuple[str, BearingGeometry]:
    """The preset `named` and its geometry, or for `random` a bearing drawn from the recording's own seed, named by
    its geometry."""
    if named == RANDOM_BEARING:
        drawn = random_bearing(np.random.default_rng([seed, 1]))
        return drawn.text, drawn
    return named, BEARINGS[named]


def _cwru(cfg: DataConfig) -> tuple[list[Recording], Skipped, Skipped]:
    folder = read_cwru_folder(cfg.path, strict=cfg.strict, min_samples=cfg.window)
    recordings = [
        Recording(r.signal, r.label, r.load_hp, r.rpm, r.source, r.notes, {}, *_ten_class_facts(cfg, r.label))
        for r in folder.records
    ]
    return recordings, folder.skipped, folder.ignored


def _ten_class_facts(cfg: DataConfig, label: str) -> tuple[str, float, str]:
    """The class, fault size and bearing of a CWRU-named recording: what its name and `cfg` say."""
    return class_names(cfg.task)[task_label(cfg.task, label)], fault_size_in(label), cfg.bearing


def _files(cfg: DataConfig) -> tuple[list[Recording], Skipped, Skipped]:
    rows = manifest_rows(cfg)
    recordings = [
        Recording(
            r.signal,
            r.row.label,
            r.row.load,
            r.row.rpm,
            str(r.row.path),
            r.notes,
            {},
            user_files.class_of(r.row, cfg.task),
            r.row.fault_size,
            r.row.bearing_name,
            r.row.split,
            r.row.group,
        )
        for r in user_files.read_recordings(cfg.manifest, rows, cfg.sample_rate, cfg.window)
    ]
    return recordings, [], []


def manifest_rows(cfg: DataConfig) -> list[user_files.ManifestRow]:
    rows = user_files.read_manifest(cfg.manifest, cfg.bearing)
    user_files.check_task(cfg.manifest, rows, cfg.task)
    user_files.check_split(cfg.manifest, rows, cfg.split, list(cfg.test_groups))
    return rows
