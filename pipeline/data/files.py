"""Your own recordings (`data=files`): a CSV manifest with one row per recording file (its columns:
docs/data.md#your-own-recordings-datafiles). A bad row is named by its line number in the manifest, all bad rows
at once, before anything is written."""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd
import scipy.signal

from pipeline.common.progress import Progress
from pipeline.data.bearing import BEARINGS, BearingGeometry
from pipeline.data.classes import FAULT_LOCATIONS
from pipeline.data.errors import DatasetError
from pipeline.data.signal_files import SignalFileError, read_number, read_signal
from pipeline.data.windows import SPLIT_NAMES

REQUIRED_COLUMNS = ("path", "label", "rpm", "sample_rate")
OPTIONAL_COLUMNS = ("load", "bearing", "variable", "location", "fault_size", "split", "group")
_MAX_LISTED = 10  # bad rows named in one error


@dataclass(frozen=True)
class ManifestRow:
    line: int  # in the manifest file, the header being line 1
    path: Path
    label: str
    rpm: float
    sample_rate: float
    load: int
    bearing_name: str
    bearing: BearingGeometry
    variable: Optional[str]
    location: Optional[str]
    fault_size: float  # 0 where the row gives none (a healthy bearing has no size)
    split: Optional[str]  # the split the row names, for data.split=manifest (checked by check_split)
    group: Optional[str]  # the machine, bearing or other group the recording belongs to, for data.split=group


@dataclass(frozen=True)
class FileRecording:
    row: ManifestRow
    signal: np.ndarray  # float32 at the configured sampling rate
    notes: list[str]


def read_manifest(manifest: str | Path, default_bearing: str) -> list[ManifestRow]:
    """Every row of the manifest, checked (files exist, numbers are numbers, bearings are known); no signal is read,
    only the fields that rpm or sample_rate cells name (`bearing.sr`: that field of the row's .mat file)."""
    manifest = Path(manifest)
    try:
        table = pd.read_csv(manifest, dtype=str, skipinitialspace=True, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DatasetError(f"{manifest}: not a readable CSV manifest ({str(err).strip()})") from None
    table.columns = [str(c).strip().lower() for c in table.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    unknown = [c for c in table.columns if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if missing or unknown:
        raise DatasetError(
            f"{manifest}: "
            + "; ".join(
                ([f"missing column(s) {missing}"] if missing else [])
                + ([f"unknown column(s) {unknown}"] if unknown else [])
            )
            + f"; columns are {list(REQUIRED_COLUMNS)} and optionally {list(OPTIONAL_COLUMNS)}"
        )
    if table.empty:
        raise DatasetError(f"{manifest}: no recordings listed")
    rows, errors = [], []
    for index, cells in enumerate(table.to_dict("records")):
        try:
            rows.append(
                _row(manifest.parent, index + 2, {k: str(v).strip() for k, v in cells.items()}, default_bearing)
            )
        except ValueError as err:
            errors.append(f"line {index + 2}: {err}")
    _raise_if_any(manifest, errors)
    return rows


def read_recordings(
    manifest: str | Path, rows: list[ManifestRow], sample_rate: int, min_samples: int
) -> list[FileRecording]:
    """Each row's signal at `sample_rate`, resampled where the file's rate differs (anti-aliased polyphase)."""
    recordings, errors = [], []
    progress = Progress(len(rows), "recordings read")
    for row in rows:
        progress.step(row.path.name)
        try:
            signal, stated_rate = read_signal(row.path, row.variable)
            if stated_rate is not None and not math.isclose(stated_rate, row.sample_rate):
                raise SignalFileError(f"the file says {stated_rate} Hz, the manifest {row.sample_rate:g} Hz")
            signal, notes = at_rate(signal, row.sample_rate, sample_rate)
            if len(signal) < min_samples:
                raise SignalFileError(
                    f"{len(signal)} samples at {sample_rate} Hz, fewer than one window ({min_samples})"
                )
        except SignalFileError as err:
            errors.append(f"line {row.line}: {row.path.name}: {err}")
            continue
        recordings.append(FileRecording(row, signal.astype(np.float32), notes))
    _raise_if_any(Path(manifest), errors)
    return recordings


def class_names(rows: list[ManifestRow], task: str) -> list[str]:
    """The classes of a manifest: its labels (fault_class) or the fault locations present (fault_location)."""
    if task == "fault_location":
        return [loc for loc in FAULT_LOCATIONS if any(row.location == loc for row in rows)]
    return sorted({row.label for row in rows})


def class_of(row: ManifestRow, task: str) -> str:
    return row.location if task == "fault_location" else row.label


def class_locations(rows: list[ManifestRow], task: str) -> list[Optional[str]]:
    """Per class, the fault location its rows state (None where they state none)."""
    if task == "fault_location":
        return class_names(rows, task)
    return [next((row.location for row in rows if row.label == label), None) for label in class_names(rows, task)]


def check_task(manifest: str | Path, rows: list[ManifestRow], task: str) -> None:
    """Labels must agree on their location, and fault_location needs one on every row."""
    errors = []
    for label in sorted({row.label for row in rows}):
        stated = {row.location for row in rows if row.label == label}
        if len(stated) > 1:
            lines = [row.line for row in rows if row.label == label]
            errors.append(
                f"lines {lines}: label {label!r} has locations {sorted(map(str, stated))}; one label, "
                "one location (leave location empty on all or none of its rows)"
            )
    if task == "fault_location":
        errors += [f"line {row.line}: data.task=fault_location needs a location" for row in rows if not row.location]
    _raise_if_any(Path(manifest), errors)


def check_split(manifest: str | Path, rows: list[ManifestRow], split: str, test_groups: list[str]) -> None:
    """The column a split reads (`split` for data.split=manifest, `group` for data.split=group) names a value on
    every row, and leaves recordings both to train and to test on; every problem in one error."""
    if split == "manifest":
        problems = _named_split_problems(rows)
    elif split == "group":
        problems = _group_problems(rows, test_groups)
    else:
        return
    _raise_if_any(Path(manifest), problems, f"problem(s) with data.split={split}")


def _named_split_problems(rows: list[ManifestRow]) -> list[str]:
    if all(row.split is None for row in rows):
        return ["no row names a split: add a 'split' column holding train, val or test on every row"]
    named = {row.split for row in rows}
    problems = [f"no row says {side}: nothing to {side} on" for side in ("train", "test") if side not in named]
    return problems + [
        f"line {row.line}: split {row.split or ''!r} is not one of {', '.join(SPLIT_NAMES)}"
        for row in rows
        if row.split not in SPLIT_NAMES
    ]


def _group_problems(rows: list[ManifestRow], test_groups: list[str]) -> list[str]:
    if all(row.group is None for row in rows):
        return ["no row names a group: add a 'group' column (the machine or bearing each recording comes from)"]
    groups = sorted({row.group for row in rows if row.group is not None})
    unknown = [g for g in test_groups if g not in groups]
    problems = []
    if unknown:
        problems.append(f"data.test_groups: no row has group(s) {unknown}; the groups are {groups}")
    elif set(groups) <= set(test_groups):
        problems.append(f"data.test_groups={list(test_groups)} holds out every group: none left to train on")
    return problems + [f"line {row.line}: no group" for row in rows if row.group is None]


def typical_bearing(rows: list[ManifestRow]) -> tuple[str, BearingGeometry]:
    """The bearing most rows name: the model's default for windows that come without one."""
    name, _ = Counter(row.bearing_name for row in rows).most_common(1)[0]
    return name, next(row.bearing for row in rows if row.bearing_name == name)


def fingerprint(manifest: str | Path) -> dict[str, Any]:
    """What identifies a manifest's data: its bytes and each listed file's size and modification time, so an
    edited manifest or recording gives a new dataset."""
    manifest = Path(manifest)
    files = []
    for path in sorted(
        set(
            pd.read_csv(manifest, dtype=str, usecols=lambda c: str(c).strip().lower() == "path", keep_default_na=False)
            .iloc[:, 0]
            .str.strip()
        )
    ):
        target = _resolve(manifest.parent, path)
        files.append([path, *((target.stat().st_size, target.stat().st_mtime_ns) if target.is_file() else ())])
    return {"manifest_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest(), "files": files}


def _row(folder: Path, line: int, cells: dict[str, str], default_bearing: str) -> ManifestRow:
    path = _resolve(folder, cells["path"]) if cells["path"] else None
    if path is None or not path.is_file():
        raise ValueError(f"file {cells['path']!r} not found" + (f" (looked at {path})" if path else ""))
    if not cells["label"]:
        raise ValueError("empty label")
    rpm = _number(cells, "rpm", positive=True, file=path)
    rate = _number(cells, "sample_rate", positive=True, file=path)
    load = _number(cells, "load", default=0.0)
    if load != int(load) or load < 0:
        raise ValueError(f"load {cells['load']!r} is not a whole number >= 0")
    location = cells.get("location") or None
    if location is not None and location not in FAULT_LOCATIONS:
        raise ValueError(f"location {location!r} is not one of {', '.join(FAULT_LOCATIONS)}")
    bearing_name = cells.get("bearing") or default_bearing
    return ManifestRow(
        line,
        path,
        cells["label"],
        rpm,
        rate,
        int(load),
        bearing_name,
        parse_bearing(bearing_name),
        cells.get("variable") or None,
        location,
        _number(cells, "fault_size", default=0.0),
        cells.get("split") or None,
        cells.get("group") or None,
    )


def _number(
    cells: dict[str, str],
    column: str,
    positive: bool = False,
    default: Optional[float] = None,
    file: Optional[Path] = None,
) -> float:
    """The number in a cell; given the row's `file`, the cell may instead name the field of it holding the number."""
    text = cells.get(column, "")
    if not text and default is not None:
        return default
    try:
        value = float(text)
    except ValueError:
        if file is None:
            raise ValueError(f"{column} {text!r} is not a number") from None
        try:
            value = read_number(file, text)
        except SignalFileError as err:
            raise ValueError(f"{column} {text!r} is not a number, nor a field of {file.name} ({err})") from None
        text = f"{text} = {value:g}"
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"{column} {text!r} must be a {'positive' if positive else 'non-negative'} number")
    return value


def parse_bearing(text: str) -> BearingGeometry:
    """A preset's geometry, or the one `text` states as n_balls/ball_diameter/pitch_diameter[/contact_angle_deg]."""
    if text in BEARINGS:
        return BEARINGS[text]
    parts = text.split("/")
    try:
        if len(parts) not in (3, 4):
            raise ValueError("wrong number of fields")
        n_balls = float(parts[0])
        if n_balls != int(n_balls):
            raise ValueError("n_balls is not a whole number")
        return BearingGeometry(int(n_balls), *(float(p) for p in parts[1:]))
    except ValueError as err:
        raise ValueError(
            f"bearing {text!r} is neither a preset ({', '.join(BEARINGS)}) nor a geometry "
            f"n_balls/ball_diameter/pitch_diameter[/contact_angle_deg] ({err})"
        ) from None


def _resolve(folder: Path, path: str) -> Path:
    return Path(path) if Path(path).is_absolute() else folder / path


def at_rate(signal: np.ndarray, source_rate: float, target_rate: int) -> tuple[np.ndarray, list[str]]:
    """`signal` at `target_rate`, polyphase-resampled (anti-aliased) where its rate differs, and a note saying so."""
    if math.isclose(source_rate, target_rate):
        return signal, []
    ratio = (Fraction(target_rate) / Fraction(source_rate)).limit_denominator(1000)  # keeps the filter short
    resampled = scipy.signal.resample_poly(signal, ratio.numerator, ratio.denominator)
    effective = source_rate * ratio
    off = "" if math.isclose(effective, target_rate, rel_tol=1e-9) else f", {effective / target_rate - 1:+.2e} off"
    return resampled, [
        f"resampled from {source_rate:g} Hz to {target_rate} Hz (x{ratio.numerator}/"
        f"{ratio.denominator}{off}, anti-alias filtered)"
    ]


def _raise_if_any(manifest: Path, errors: list[str], what: str = "bad row(s)") -> None:
    if errors:
        listed = errors[:_MAX_LISTED] + (
            [f"... and {len(errors) - _MAX_LISTED} more"] if len(errors) > _MAX_LISTED else []
        )
        raise DatasetError(f"{manifest}: {len(errors)} {what}:\n  " + "\n  ".join(listed))
