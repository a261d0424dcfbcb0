"""Reader for the Case Western Reserve University bearing data set (numbered .mat files, drive end, 12 kHz).

Each file number stands for one recording: a class and a motor load. The file itself only holds arrays under
keys such as `X105_DE_time`, so the class and load come from the file number (table below), and the quirks of
the real files (keys of a neighbouring recording, a missing RPM key, the 48 kHz normal baseline) are resolved
here, once, with a note on the record whenever the reader had to guess.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.io
import scipy.signal

from pipeline.config import CWRU_SAMPLE_RATE as SAMPLE_RATE
from pipeline.data.bearing import NOMINAL_RPM

NORMAL_SAMPLE_RATE = 48000  # the normal baseline was recorded at 48 kHz only

# First file number of each class; the class's four files are loads 0, 1, 2, 3 in order.
_FIRST_FILE = {
    "normal": 97,
    "ball_007": 118, "ball_014": 185, "ball_021": 222,
    "inner_007": 105, "inner_014": 169, "inner_021": 209,
    "outer_007": 130, "outer_014": 197, "outer_021": 234,
}
FILE_TABLE: dict[int, tuple[str, int]] = {
    first + load: (label, load) for label, first in _FIRST_FILE.items() for load in range(4)
}

_DE_KEY = re.compile(r"^X(\d+)_DE_time$")


class CwruError(ValueError):
    """A CWRU file cannot be used; the message names the file and the reason."""


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
    notes: list[str] = field(default_factory=list)


def file_number(path: str | Path) -> int:
    """The CWRU file number at the end of the file name: `105.mat` and `IR007_0_105.mat` both give 105."""
    match = re.search(r"(\d+)$", Path(path).stem)
    if match is None:
        raise CwruError(f"{path}: file name does not end in a CWRU file number")
    return int(match.group(1))


def read_cwru_file(path: str | Path, min_samples: int = 1024) -> CwruRecord:
    """Read one CWRU .mat file into a 12 kHz drive-end record, or raise CwruError naming the file."""
    path = Path(path)
    number = file_number(path)
    if number not in FILE_TABLE:
        raise CwruError(f"{path}: file number {number} is not a 12 kHz drive-end CWRU recording")
    label, load = FILE_TABLE[number]
    try:
        mat = scipy.io.loadmat(str(path))
    except Exception as err:  # loadmat raises many unrelated types for a damaged file; all mean "unreadable"
        raise CwruError(f"{path}: cannot read .mat file ({type(err).__name__}: {err})") from None

    notes: list[str] = []
    key = _drive_end_key(path, number, mat, notes)
    signal = _as_channel(path, key, mat[key])
    if label == "normal":
        signal = scipy.signal.resample_poly(signal, 1, NORMAL_SAMPLE_RATE // SAMPLE_RATE)
    if len(signal) < min_samples:
        raise CwruError(f"{path}: recording has {len(signal)} samples at 12 kHz, fewer than {min_samples}")
    rpm, rpm_source = _rpm(key, load, mat, notes)
    return CwruRecord(signal=signal.astype(np.float32), label=label, load_hp=load, rpm=rpm,
                      rpm_source=rpm_source, sample_rate=SAMPLE_RATE, source=str(path), key=key, notes=notes)


def read_cwru_folder(path: str | Path, strict: bool = True,
                     min_samples: int = 1024) -> tuple[list[CwruRecord], list[dict[str, str]]]:
    """Read every .mat file of a folder, sorted by name.

    strict: one CwruError listing every bad file. Lenient: bad files are skipped and returned as problems
    ({'file', 'error'}) so the caller can record them. A second file for the same recording (e.g. `105.mat`
    and `IR007_0_105.mat`) is a problem too, since it would put one recording into two splits.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise CwruError(f"CWRU folder {str(folder)!r} does not exist")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".mat")
    if not files:
        raise CwruError(f"CWRU folder {str(folder)!r} holds no .mat files")

    records: list[CwruRecord] = []
    problems: list[dict[str, str]] = []
    seen: dict[tuple[str, int], str] = {}
    for file in files:
        try:
            record = read_cwru_file(file, min_samples=min_samples)
            first = seen.get((record.label, record.load_hp))
            if first is not None:
                raise CwruError(f"{file}: same recording ({record.label}, load {record.load_hp}) as {first}")
        except CwruError as err:
            problems.append({"file": str(file), "error": str(err)})
            continue
        seen[(record.label, record.load_hp)] = str(file)
        records.append(record)

    if problems and strict:
        listing = "\n".join(f"  {p['file']}: {p['error']}" for p in problems)
        raise CwruError(f"CWRU folder {str(folder)!r}: {len(problems)} bad file(s):\n{listing}")
    if not records:
        raise CwruError(f"CWRU folder {str(folder)!r}: no readable recording among {len(files)} file(s)")
    return records, problems


def _drive_end_key(path: Path, number: int, mat: dict, notes: list[str]) -> str:
    """The `X<n>_DE_time` key of this file's recording; a lone key of another number is taken with a note."""
    keys = sorted(k for k in mat if _DE_KEY.match(k))
    matching = [k for k in keys if int(_DE_KEY.match(k).group(1)) == number]
    if matching:
        return matching[0]
    if len(keys) == 1:
        notes.append(f"no drive-end key for file number {number}; guessed {keys[0]!r}, the only one present")
        return keys[0]
    found = ", ".join(keys) if keys else "none"
    raise CwruError(f"{path}: no drive-end channel for file number {number} (drive-end keys: {found})")


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
