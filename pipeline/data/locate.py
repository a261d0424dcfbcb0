"""A recorded dataset, on this machine: found where it was written, or rebuilt here and checked.

Runs on a shared store are made on different machines, so the folder a run wrote its dataset to may exist
only on the machine that made it. What every machine has is the dataset's manifest (logged with the run): its
data config says how to build it again, its content hash says what the result must be.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from pipeline.common.config_section import ConfigError
from pipeline.data.config import DataConfig
from pipeline.data.errors import DatasetError
from pipeline.data.prepared import DATASET_FORMAT_VERSION, load_prepared, prepare_dataset

# The sources read from the user's files: the data config key holding them, and what that key names.
_USER_FILES = {"cwru": ("path", "CWRU folder"), "files": ("manifest", "recordings manifest")}


def locate_dataset(recorded: dict[str, Any], cache_root: str | Path, recorded_dir: Optional[str | Path] = None) -> Path:
    """The folder holding the dataset `recorded` (a prepared dataset's manifest) describes, on this machine.

    `recorded_dir` (where the run found it) when it holds that content; else the dataset is prepared under
    `cache_root` from the recorded data config (a cache hit when built here before), and its content hash must
    equal the recorded one. A dataset of the user's files rebuilds only where those files are.
    """
    expected = recorded["content_hash"]
    if recorded_dir is not None and _content_hash(Path(recorded_dir)) == expected:
        return Path(recorded_dir)
    name = f"dataset {recorded['source']}-{recorded['config_hash']} ({expected})"
    if recorded["format_version"] != DATASET_FORMAT_VERSION:
        raise DatasetError(
            f"{name} was written in format {recorded['format_version']}; this code builds format "
            f"{DATASET_FORMAT_VERSION}, so it cannot be rebuilt here: prepare the dataset again"
        )
    data = _data_config(recorded, cache_root, name)
    rebuilt = prepare_dataset(data, cache_root)
    found = _content_hash(rebuilt)
    if found != expected:
        raise DatasetError(
            f"{name} rebuilt on this machine in {rebuilt} has content hash {found}, not the recorded "
            f"{expected}: this machine's code, libraries or files make different data"
        )
    return rebuilt


def _data_config(recorded: dict[str, Any], cache_root: str | Path, name: str) -> DataConfig:
    """The recorded data config with this machine's cache, once the user's files it reads are here."""
    fields = {**recorded["data_config"], "cache_dir": str(cache_root)}
    if fields["source"] in _USER_FILES:
        key, what = _USER_FILES[fields["source"]]
        if not Path(str(fields[key])).exists():
            raise DatasetError(
                f"{name} is not on this machine and cannot be rebuilt here: its {what} "
                f"{fields[key]} (data.{key}) is missing on this machine; copy it there and run again"
            )
    try:
        return DataConfig(**fields)
    except (ConfigError, TypeError) as err:
        raise DatasetError(f"{name} cannot be rebuilt on this machine from its recorded data config: {err}") from None


def _content_hash(folder: Path) -> Optional[str]:
    """The content hash a prepared dataset's manifest states, or None where there is none."""
    try:
        return load_prepared(folder).manifest["content_hash"]
    except DatasetError:
        return None
