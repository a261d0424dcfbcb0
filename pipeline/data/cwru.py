"""Reader for the Case Western Reserve University bearing data set as users have it: a folder tree of .mat files.

It reads the ten classes' 12 kHz drive-end recordings by official number or descriptive name, sets aside the
other CWRU sets with the reason, and resolves the quirks of real files once, noting every guess on the record
(docs/data.md#cwru-datacwru)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import scipy.io
import scipy.signal

from pipeline.common.progress import Progress
from pipeline.data.bearing import NOMINAL_RPM

SAMPLE_RATE = 12000  # the rate of the drive-end files this reader returns
NORMAL_SAMPLE_RATE = 48000  # the normal baseline was recorded at 48 kHz only

# First file number of each class; the class's four files are loads 0, 1, 2, 3 in order.
_FIRST_FILE = {
    "normal": 97,
    "ball_007": 118,
    "ball_014": 185,
    "ball_021": 222,
    "inner_007": 105,
    "inner_014": 169,
    "inner_021": 209,
    "outer_007": 130,
    "outer_014": 197,
    "outer_021": 234,
}
FILE_TABLE: dict[int, tuple[str, int]] = {
    first + load: (label, load) for label, first in _FIRST_FILE.items() for load in range(4)
}
_SIZES_MILS = (7, 14, 21)
_OTHER_SETS = "another CWRU set: 48 kHz or fan-end recordings, outer race @3/@12 o'clock or 0.028 in faults"

_DE_KEY = re.compile(r"^X(\d+)_DE_time$")
_DESCRIPTIVE = re.compile(
    r"(?:^|_)(?:(?P<code>IR|B|OR)(?P<mils>\d{3})(?:@(?P<clock>\d{1,2}))?|(?P<normal>normal))"
    r"_(?P<load>\d)(?:_(?P<number>\d+))?$",
    re.IGNORECASE,
)
_TRAILING_NUMBER = re.compile(r"(\d{2,})$")  # CWRU numbers have 2+ digits; a lone digit is more likely a load
_LOCATION_CODES = {"IR": "inner", "B": "ball", "OR": "outer"}


class CwruError(ValueError):
    """A CWRU file cannot be used; the message names the file and the reason."""


class CwruIgnored(CwruError):
    """A CWRU file outside the ten classes: set aside (listed with the reason), not an error in a folder."""


@dataclass(frozen=True)
class CwruRecord:
    signal: np.ndarray  # float32 [T], drive-end acceleration at 12 kHz
    label: str
    load_hp: int
    rpm: float
    rpm_source: str  # 'file' or 'nominal'
    sample_rate: int
    source: str  # path of the .mat file
    key: str  # the .mat key the signal was read from
    number: int  # the CWRU file number of the recording
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CwruFolder:
    records: list[CwruRecord]
    skipped: list[dict[str, str]]  # bad files of the ten classes, lenient runs only: {'file', 'error'}
    ignored: list[dict[str, str]]  # files of other CWRU sets: {'file', 'reason'}


@dataclass(frozen=True)
class _Name:
    """What a file name says: the recording (class, load) and/or the file number, each when given."""

    recording: Optional[tuple[str, int]]
    number: Optional[int]


def read_cwru_file(path: str | Path, min_samples: int = 1024) -> CwruRecord:
    """Read one CWRU .mat file into a 12 kHz drive-end record.

    Raises CwruIgnored for a file of another CWRU set, CwruError (naming the file) for a file that is bad.
    """
    path = Path(path)
    name = _parse_name(path)
    if name.number is not None:
        _check_number(path, name, name.number, "file number")
    try:
        mat = scipy.io.loadmat(str(path))
    except Exception as err:  # loadmat raises many unrelated types for a damaged file; all mean "unreadable"
        raise CwruError(f"{path}: cannot read .mat file ({type(err).__name__}: {err})") from None

    notes: list[str] = []
    key, number = _drive_end_key(path, name, mat, notes)
    label, load = FILE_TABLE[number]
    signal = _as_channel(path, key, mat[key])
    if label == "normal":
        signal = scipy.signal.resample_poly(signal, 1, NORMAL_SAMPLE_RATE // SAMPLE_RATE)
    if len(signal) < min_samples:
        raise CwruError(f"{path}: recording has {len(signal)} samples at 12 kHz, fewer than {min_samples}")
    rpm, rpm_source = _rpm(key, load, mat, notes)
    return CwruRecord(
        signal=signal.astype(np.float32),
        label=label,
        load_hp=load,
        rpm=rpm,
        rpm_source=rpm_source,
        sample_rate=SAMPLE_RATE,
        source=str(path),
        key=key,
        number=number,
        notes=notes,
    )


def read_cwru_folder(path: str | Path, strict: bool = True, min_samples: int = 1024) -> CwruFolder:
    """Read every .mat file under a folder (nested folders too), in sorted order of their relative paths.

    Files of other CWRU sets are listed in `ignored` and never stop a run. Bad files of the ten classes:
    strict, one CwruError listing each; lenient, skipped and listed in `skipped`. A second file for the same
    recording (e.g. `105.mat` and `IR007_0.mat`) is bad too, since it would put one recording into two splits.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise CwruError(f"CWRU folder {str(folder)!r} does not exist")
    files = sorted(
        (p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() == ".mat"),
        key=lambda p: p.relative_to(folder).as_posix(),
    )
    if not files:
        raise CwruError(f"CWRU folder {str(folder)!r} holds no .mat files")

    records: list[CwruRecord] = []
    problems: list[dict[str, str]] = []
    ignored: list[dict[str, str]] = []
    seen: dict[tuple[str, int], str] = {}
    progress = Progress(len(files), "CWRU files read")
    for file in files:
        progress.step(file.name)
        try:
            record = read_cwru_file(file, min_samples=min_samples)
            first = seen.get((record.label, record.load_hp))
            if first is not None:
                raise CwruError(f"{file}: same recording ({record.label}, load {record.load_hp}) as {first}")
        except CwruIgnored as err:
            ignored.append({"file": str(file), "reason": str(err).removeprefix(f"{file}: ")})
            continue
        except CwruError as err:
            problems.append({"file": str(file), "error": str(err)})
            continue
        seen[(record.label, record.load_hp)] = str(file)
        records.append(record)

    if problems and strict:
        listing = "\n".join(f"  {p['file']}: {p['error']}" for p in problems)
        raise CwruError(f"CWRU folder {str(folder)!r}: {len(problems)} bad file(s):\n{listing}")
    if not records:
        raise CwruError(
            f"CWRU folder {str(folder)!r}: no readable recording of the ten classes among "
            f"{len(files)} file(s) ({len(ignored)} of other CWRU sets)"
        )
    return CwruFolder(records, problems, ignored)


def _parse_name(path: Path) -> _Name:
    """The recording and file number a name gives; a name of another CWRU set raises CwruIgnored."""
    match = _DESCRIPTIVE.search(path.stem)
    if match is None:
        number = _TRAILING_NUMBER.search(path.stem)
        return _Name(None, int(number.group(1)) if number else None)
    load = int(match["load"])
    if load not in NOMINAL_RPM:
        raise CwruError(f"{path}: the name gives load {load} HP; CWRU loads are {sorted(NOMINAL_RPM)}")
    number = int(match["number"]) if match["number"] else None
    if match["normal"]:
        return _Name(("normal", load), number)
    location, mils = _LOCATION_CODES[match["code"].upper()], int(match["mils"])
    if mils not in _SIZES_MILS:
        raise CwruIgnored(f"{path}: a {mils / 1000:.3f} in fault; the ten classes hold 0.007, 0.014 and 0.021 in")
    if location == "outer" and match["clock"] not in (None, "6", "06"):
        raise CwruIgnored(f"{path}: outer race @{match['clock']} o'clock; the ten classes hold outer race @6 only")
    return _Name((f"{location}_{mils:03d}", load), number)


def _check_number(path: Path, name: _Name, number: int, what: str) -> None:
    """A number outside the ten-class table is another CWRU set; one that contradicts the name is a bad file."""
    if number not in FILE_TABLE:
        raise CwruIgnored(
            f"{path}: {what} {number} is not a 12 kHz drive-end recording of the ten classes ({_OTHER_SETS})"
        )
    if name.recording is not None and FILE_TABLE[number] != name.recording:
        (label, load), (named_label, named_load) = FILE_TABLE[number], name.recording
        raise CwruError(
            f"{path}: the name says {named_label} at {named_load} HP but {what} {number} is {label} at {load} HP"
        )


def _drive_end_key(path: Path, name: _Name, mat: dict, notes: list[str]) -> tuple[str, int]:
    """The `X<n>_DE_time` key of this file's recording and its file number.

    With a number in the name, the key of that number; a lone key of another number is taken with a note.
    Without one, the key whose number is the named recording's, else the lone key, whose number decides.
    """
    keys = sorted(k for k in mat if _DE_KEY.match(k))
    numbers = {k: int(_DE_KEY.match(k).group(1)) for k in keys}
    found = ", ".join(keys) if keys else "none"
    if name.number is not None:
        matching = [k for k in keys if numbers[k] == name.number]
        if matching:
            return matching[0], name.number
        if len(keys) == 1:
            notes.append(f"no drive-end key for file number {name.number}; guessed {keys[0]!r}, the only one present")
            return keys[0], name.number
        raise CwruError(f"{path}: no drive-end channel for file number {name.number} (drive-end keys: {found})")
    matching = [k for k in keys if FILE_TABLE.get(numbers[k]) == name.recording] if name.recording else []
    if matching:
        return matching[0], numbers[matching[0]]
    if len(keys) != 1:
        why = "no drive-end channel" if not keys else "several drive-end keys and no file number in the name"
        raise CwruError(f"{path}: {why} (drive-end keys: {found})")
    _check_number(path, name, numbers[keys[0]], f"drive-end key {keys[0]}, file number")
    return keys[0], numbers[keys[0]]


def _as_channel(path: Path, key: str, value: object) -> np.ndarray:
    """The stored [N, 1] array as a finite float64 vector."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise CwruError(f"{path}: {key} is not a numeric array") from None
    if sum(n > 1 for n in array.shape) > 1:
        raise CwruError(f"{path}: {key} has shape {array.shape}, expected a single channel")
    signal = array.reshape(-1)
    bad = int(np.count_nonzero(~np.isfinite(signal)))
    if bad:
        raise CwruError(f"{path}: {key} holds {bad} NaN/inf value(s)")
    return signal


def _rpm(de_key: str, load: int, mat: dict, notes: list[str]) -> tuple[float, str]:
    """Shaft speed from the recording's RPM key, else the nominal speed of its load (with a note)."""
    rpm_key = de_key.removesuffix("_DE_time") + "RPM"
    if rpm_key in mat:
        try:
            value = np.asarray(mat[rpm_key], dtype=np.float64).ravel()
        except (TypeError, ValueError):
            value = np.empty(0)
        if value.size == 1 and np.isfinite(value[0]) and value[0] > 0:
            return float(value[0]), "file"
        notes.append(f"{rpm_key} is not a positive number; used nominal {NOMINAL_RPM[load]} rpm")
    else:
        notes.append(f"no {rpm_key} key; used nominal {NOMINAL_RPM[load]} rpm for load {load} HP")
    return float(NOMINAL_RPM[load]), "nominal"
