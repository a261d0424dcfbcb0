"""A prepared dataset: recordings split (see splits.py), windowed, and written once as versioned arrays.

`prepare_dataset` writes `<cache_root>/<source>-<confighash12>/` holding one .npy per array and a
`manifest.json` (counts, config, content hash). The directory appears atomically, so its presence with a
valid manifest means a complete dataset, and preparing the same config again is a free cache hit. A writer
killed mid-write leaves only a hidden temporary folder, which the next write of that dataset removes.
`load_prepared` memory-maps the arrays, so every training process shares one copy in the page cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.common.atomic_files import fsync_dir, remove_abandoned, temp_path
from pipeline.common.digest import config_digest
from pipeline.data import files as user_files
from pipeline.data.bearing import RANDOM_BEARING
from pipeline.data.config import DataConfig
from pipeline.data.dataset import BearingWindows
from pipeline.data.errors import DatasetError
from pipeline.data.simulator import SIMULATOR_VERSION
from pipeline.data.sources import GROUND_TRUTH, Recording, manifest_rows, read_recordings
from pipeline.data.splits import Segment, SplitPlan, plan_splits
from pipeline.data.tasks import class_locations, class_names
from pipeline.data.windows import SPLIT_NAMES, frame

log = logging.getLogger(__name__)

DATASET_FORMAT_VERSION = 4  # bump when the arrays or the manifest change meaning: old caches then miss
MANIFEST = "manifest.json"
REQUIRED_ARRAYS = ("windows", "labels", "recording", "load", "split", "rpm", "bearing", "offset")
_ONLY_FOR = {
    "synthetic": ("recordings_per_load", "duration_s", "snr_db", "snr_range_db"),
    "cwru": ("path", "strict"),
    "files": ("manifest",),
}
_SPLIT_KEYS = {
    "load_shift": ("train_loads", "test_loads"),
    "fault_size": ("test_fault_size",),
    "group": ("test_groups",),
}


@dataclass(frozen=True)
class PreparedDataset:
    path: Path
    manifest: dict[str, Any]
    arrays: dict[str, np.ndarray]  # read-only memory maps, one window per row

    def subset(self, split: str) -> BearingWindows:
        """The windows of one split ('train', 'val' or 'test') as a torch Dataset whose items carry the
        window's shaft speed: `(window, label, {"shaft_hz": rpm / 60})`."""
        if split not in SPLIT_NAMES:
            raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLIT_NAMES)}")
        a = self.arrays
        indices = np.flatnonzero(a["split"] == SPLIT_NAMES.index(split))
        return BearingWindows(
            a["windows"],
            a["labels"],
            indices,
            recording_ids=a["recording"],
            loads=a["load"],
            shaft_hz=a["rpm"] / np.float32(60),
            bearing=self.bearings()[a["bearing"]],
        )

    def bearings(self) -> np.ndarray:
        """`[n_bearings, 4]` float32 geometries (n_balls, ball and pitch diameter, contact angle in degrees) that
        the `bearing` array indexes."""
        return np.array([list(b["geometry"].values()) for b in self.manifest["bearings"]], dtype=np.float32)


def config_hash(cfg: DataConfig) -> str:
    """The digest of the config fields that change the content, the format version, for synthetic data the
    simulator's version and, for CWRU, the folder tree's .mat files (relative path, size, mtime), so edited data
    gives a new dataset; `cache_dir` and the keys of other sources and splits never count."""
    skip = {"cache_dir", "augment_spread_db", "augment_gain_db"} | {
        name for source, names in _ONLY_FOR.items() if source != cfg.source for name in names
    }
    skip |= {name for split, names in _SPLIT_KEYS.items() if split != cfg.split for name in names}
    payload: dict[str, Any] = {f.name: getattr(cfg, f.name) for f in fields(cfg) if f.name not in skip}
    payload["format_version"] = DATASET_FORMAT_VERSION
    if cfg.source == "synthetic":  # a seed's recordings change with the simulator: its data must not be reused
        payload["simulator_version"] = SIMULATOR_VERSION
    if cfg.source == "cwru":
        root = Path(cfg.path)
        files = sorted(
            (p for p in root.rglob("*") if p.is_file() and p.suffix.lower() == ".mat"),
            key=lambda p: p.relative_to(root).as_posix(),
        )
        payload["path"] = [(p.relative_to(root).as_posix(), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    if cfg.source == "files":
        payload["manifest"] = user_files.fingerprint(cfg.manifest)
    return config_digest(payload)


def dataset_dir_for(cfg: DataConfig, cache_root: str | Path) -> Path:
    """Where `prepare_dataset(cfg, cache_root)` puts (or finds) the dataset."""
    return Path(cache_root) / f"{cfg.source}-{config_hash(cfg)}"


def prepare_dataset(cfg: DataConfig, cache_root: str | Path) -> Path:
    """Build the dataset for `cfg` under `cache_root` and return its folder; reuse it if already built."""
    final = dataset_dir_for(cfg, cache_root)
    if _is_complete(final):
        log.info("dataset cache hit: %s", final)
        return final
    start = time.perf_counter()
    recordings, skipped, ignored = read_recordings(cfg)
    plan = plan_splits(
        cfg,
        [r.label for r in recordings],
        [r.load_hp for r in recordings],
        [len(r.signal) for r in recordings],
        classes=[r.klass for r in recordings],
        sizes=[r.fault_size for r in recordings],
        named_splits=[r.named_split for r in recordings],
        groups=[r.group for r in recordings],
    )
    description = dataset_description(cfg)
    bearings = sorted({r.bearing_name for r in recordings})
    arrays = _window_arrays(cfg, recordings, plan.segments, description["class_names"], bearings)
    manifest = _manifest(
        cfg,
        description,
        recordings,
        plan,
        arrays,
        {
            "skipped_files": skipped,
            "ignored_files": ignored,
            "bearings": [{"name": name, "geometry": asdict(user_files.parse_bearing(name))} for name in bearings],
        },
    )
    write_prepared(final, arrays, manifest)
    log.info("prepared %d windows in %.1f s: %s", len(arrays["windows"]), time.perf_counter() - start, final)
    return final


def load_prepared(path: str | Path, verify: bool = False) -> PreparedDataset:
    """Open a prepared dataset: check its manifest and array headers, memory-map the arrays.

    verify=True also recomputes the content hash (reads every byte; catches silent corruption).
    """
    path = Path(path)
    try:
        manifest = json.loads((path / MANIFEST).read_text())
        version, expected_hash = manifest["format_version"], manifest["content_hash"]
        specs = {name: (spec["dtype"], list(spec["shape"])) for name, spec in manifest["arrays"].items()}
        missing = [name for name in REQUIRED_ARRAYS if name not in specs]
        if missing:
            raise KeyError(f"arrays {missing}")
    except (FileNotFoundError, NotADirectoryError):
        raise DatasetError(f"{path}: no {MANIFEST}; not a prepared dataset (run the prepare stage)") from None
    except (ValueError, KeyError, TypeError, AttributeError) as err:  # bad JSON/UTF-8, missing keys, wrong types
        raise DatasetError(f"{path}: {MANIFEST} is corrupt ({type(err).__name__}: {err})") from None
    if version != DATASET_FORMAT_VERSION:
        raise DatasetError(
            f"{path}: format version {version}, this code reads {DATASET_FORMAT_VERSION}; prepare the dataset again"
        )
    arrays = {}
    for name, (dtype, shape) in specs.items():
        try:
            arrays[name] = np.load(path / f"{name}.npy", mmap_mode="r")
        except (OSError, ValueError) as err:
            raise DatasetError(f"{path}: cannot read {name}.npy ({err})") from None
        if str(arrays[name].dtype) != dtype or list(arrays[name].shape) != shape:
            raise DatasetError(
                f"{path}: {name}.npy is {arrays[name].dtype} {arrays[name].shape}, the manifest says {dtype} {shape}"
            )
    if verify and content_hash(arrays) != expected_hash:
        raise DatasetError(f"{path}: arrays do not match the manifest's content hash")
    return PreparedDataset(path, manifest, arrays)


def content_hash(arrays: dict[str, np.ndarray]) -> str:
    """sha256 over every array's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
        digest.update(array.data)
    return "sha256:" + digest.hexdigest()


def split_counts(arrays: dict[str, np.ndarray], names: list[str]) -> dict[str, dict]:
    """Windows per split and class (`names`, the label order), and recordings with a window in each split."""
    split_codes, labels, recording = arrays["split"], arrays["labels"], arrays["recording"]
    return {
        "windows_per_split": {
            split: {name: int(np.count_nonzero((split_codes == code) & (labels == k))) for k, name in enumerate(names)}
            for code, split in enumerate(SPLIT_NAMES)
        },
        "recordings_per_split": {
            split: len(np.unique(recording[split_codes == code])) for code, split in enumerate(SPLIT_NAMES)
        },
    }


def _window_arrays(
    cfg: DataConfig, recordings: list[Recording], segments: list[Segment], names: list[str], bearings: list[str]
) -> dict[str, np.ndarray]:
    """Per-window arrays, windows cut inside each segment; per-recording facts repeat for each window. Labels
    index `names`, the `bearing` array indexes `bearings`."""
    framed = [frame(recordings[s.recording].signal[s.start : s.stop], cfg.window, cfg.hop) for s in segments]
    counts = [len(f) for f in framed]

    def per_window(values: list, dtype: type) -> np.ndarray:
        return np.repeat(np.asarray(values, dtype=dtype), counts)

    owners = [recordings[s.recording] for s in segments]
    arrays = {
        "windows": np.concatenate(framed).astype(np.float32, copy=False),
        "labels": per_window([names.index(r.klass) for r in owners], np.int64),
        "recording": per_window([s.recording for s in segments], np.int32),
        "load": per_window([r.load_hp for r in owners], np.int8),
        "split": per_window([SPLIT_NAMES.index(s.split) for s in segments], np.int8),
        "rpm": per_window([r.rpm for r in owners], np.float32),
        "bearing": per_window([bearings.index(r.bearing_name) for r in owners], np.int16),
        "offset": np.concatenate([s.start + cfg.hop * np.arange(n, dtype=np.int64) for s, n in zip(segments, counts)]),
    }
    if cfg.source == "synthetic":
        arrays.update({name: per_window([r.truth[name] for r in owners], np.float32) for name in GROUND_TRUTH})
    return arrays


def dataset_description(cfg: DataConfig) -> dict[str, Any]:
    """What a dataset prepared from `cfg` tells a model about its windows: the task, its class names (label order)
    and their fault locations, the (most common) bearing's geometry, the sampling rate and the window length.
    A manifest of the user's own recordings is read for it (its rows only, not the files)."""
    names, locations, bearing = list(class_names(cfg.task)), class_locations(cfg.task), cfg.bearing
    if bearing == RANDOM_BEARING:  # every recording has its own: a request naming none is read as CWRU's drive end
        bearing = DataConfig.bearing
    if cfg.source == "files":
        rows = manifest_rows(cfg)
        names, locations = user_files.class_names(rows, cfg.task), user_files.class_locations(rows, cfg.task)
        bearing = user_files.typical_bearing(rows)[0]
    return {
        "task": cfg.task,
        "class_names": names,
        "class_locations": locations,
        "bearing_name": bearing,
        "bearing": asdict(user_files.parse_bearing(bearing)),
        "sample_rate": cfg.sample_rate,
        "window": cfg.window,
    }


def _manifest(
    cfg: DataConfig,
    description: dict[str, Any],
    recordings: list[Recording],
    plan: SplitPlan,
    arrays: dict[str, np.ndarray],
    files: dict[str, list],
) -> dict[str, Any]:
    names = description["class_names"]
    hop, window = cfg.hop, cfg.window
    segments = [[s for s in plan.segments if s.recording == i] for i in range(len(recordings))]
    return {
        "format_version": DATASET_FORMAT_VERSION,
        "source": cfg.source,
        **description,
        "hop": hop,
        "split": cfg.split,
        "test_groups": list(cfg.test_groups) if cfg.split == "group" else [],
        "held_out": plan.held_out,
        "validation": plan.validation,
        "fallbacks": plan.fallbacks,
        "optimistic": plan.optimistic is not None,
        "optimistic_reason": plan.optimistic,
        "n_windows": len(arrays["labels"]),
        "n_recordings": len(recordings),
        **split_counts(arrays, names),
        "recordings": [
            {
                "label": r.label,
                "class": r.klass,
                "load_hp": r.load_hp,
                "rpm": r.rpm,
                "bearing": r.bearing_name,
                "group": r.group,
                "source": r.source,
                "notes": r.notes,
                "n_samples": len(r.signal),
                "split": "+".join(dict.fromkeys(s.split for s in mine)) or "unused",
                "segments": [
                    {
                        "split": s.split,
                        "start": s.start,
                        "stop": s.stop,
                        "windows": 1 + (s.stop - s.start - window) // hop,
                    }
                    for s in mine
                ],
            }
            for r, mine in zip(recordings, segments)
        ],
        **files,
        "arrays": {name: {"dtype": str(a.dtype), "shape": list(a.shape)} for name, a in arrays.items()},
        "data_config": asdict(cfg),
        "config_hash": config_hash(cfg),
        "content_hash": content_hash(arrays),
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _is_complete(folder: Path) -> bool:
    if not folder.is_dir():
        return False
    try:
        load_prepared(folder)
        return True
    except DatasetError as err:
        log.warning("rebuilding %s: %s", folder, err)
        return False


def write_prepared(final: Path, arrays: dict[str, np.ndarray], manifest: dict[str, Any]) -> None:
    """Write a prepared dataset (arrays and manifest) into a hidden sibling folder, fsync, then rename:
    `final` is complete or absent, never partial."""
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned(final)
    tmp = temp_path(final)
    tmp.mkdir()
    try:
        for name, array in arrays.items():
            with open(tmp / f"{name}.npy", "wb") as f:
                np.save(f, array)
                _sync(f)
        with open(tmp / MANIFEST, "w") as f:
            json.dump(manifest, f, indent=2)
            _sync(f)
        fsync_dir(tmp)
        _publish(tmp, final)
        fsync_dir(final.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _publish(tmp: Path, final: Path) -> None:
    """Rename `tmp` to `final`; if `final` exists, keep it when complete (a concurrent build), else replace it."""
    try:
        os.rename(tmp, final)
        return
    except OSError:
        if _is_complete(final):
            shutil.rmtree(tmp)
            return
    stale = temp_path(final)
    os.rename(final, stale)
    os.rename(tmp, final)
    shutil.rmtree(stale, ignore_errors=True)


def _sync(f) -> None:
    f.flush()
    os.fsync(f.fileno())
