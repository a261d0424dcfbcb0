"""A prepared dataset as a run records it, and back: what any machine on the store can find again.

A run records the dataset it read by what the dataset is, not only by where it was: an MLflow input whose digest
is the content hash and whose source is the data config it is built from, the manifest as an artifact, and the
hashes as tags (`dataset.content_hash`, `dataset.config_hash`) that runs can be searched by.
`dataset_of_run` turns that record into a folder on this machine.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
from mlflow.data.code_dataset_source import CodeDatasetSource
from mlflow.data.meta_dataset import MetaDataset
from mlflow.entities import Run
from mlflow.exceptions import MlflowException

from pipeline.data.errors import DatasetError
from pipeline.data.locate import locate_dataset
from pipeline.data.prepared import MANIFEST
from pipeline.tracking.contract import CONFIG_HASH_TAG, CONTENT_HASH_TAG, DATASET_DIR_TAG

MANIFEST_ARTIFACT = f"dataset/{MANIFEST}"


def log_dataset(dataset_dir: str | Path, context: str = "training") -> dict:
    """Log the dataset in `dataset_dir` as an input of the active run; return its manifest."""
    dataset_dir = Path(dataset_dir).resolve()
    manifest = json.loads((dataset_dir / MANIFEST).read_text())
    # MLflow keeps the source of the first run logging a (name, digest): it must mean the same on every machine.
    source = CodeDatasetSource(
        {
            "content_hash": manifest["content_hash"],
            "config_hash": manifest["config_hash"],
            "format_version": manifest["format_version"],
            "data_config": {k: v for k, v in manifest["data_config"].items() if k != "cache_dir"},
        }
    )
    dataset = MetaDataset(source=source, name=dataset_dir.name, digest=manifest["content_hash"][:20])
    try:
        mlflow.log_input(dataset, context=context)
    except MlflowException as err:
        # two runs logging a new (name, digest) at once: both found no row, the other inserted it first, so
        # this insert broke the store's unique key; logging again finds the row and links this run to it
        if "UNIQUE constraint failed" not in str(err) and "duplicate key" not in str(err):
            raise
        mlflow.log_input(dataset, context=context)
    mlflow.log_dict(manifest, MANIFEST_ARTIFACT)
    mlflow.set_tags({CONTENT_HASH_TAG: manifest["content_hash"], CONFIG_HASH_TAG: manifest["config_hash"]})
    return manifest


def dataset_of_run(run: Run, cache_root: str | Path) -> Path:
    """The dataset `run` logged, on this machine: where the run found it if it is there, else rebuilt under
    `cache_root` from the logged manifest and checked against its content hash (`locate_dataset`)."""
    try:
        recorded = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/{MANIFEST_ARTIFACT}")
    except mlflow.exceptions.MlflowException:
        raise DatasetError(
            f"run {run.info.run_id} logged no dataset ({MANIFEST_ARTIFACT} is not among its artifacts)"
        ) from None
    return locate_dataset(recorded, cache_root, run.data.tags.get(DATASET_DIR_TAG))
