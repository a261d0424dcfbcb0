"""Record a prepared dataset as an MLflow input: its folder, content hash and manifest."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import mlflow
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.meta_dataset import MetaDataset


def log_dataset(dataset_dir: str | Path, context: str = "training") -> dict:
    """Log the dataset in `dataset_dir` as an input of the active run; return its manifest."""
    dataset_dir = Path(dataset_dir).resolve()
    manifest = json.loads((dataset_dir / "manifest.json").read_text())
    with warnings.catch_warnings():  # the local-path source is registered twice inside MLflow itself
        warnings.simplefilter("ignore", UserWarning)
        source = resolve_dataset_source(str(dataset_dir))
    dataset = MetaDataset(source=source, name=dataset_dir.name, digest=manifest["content_hash"][:20])
    mlflow.log_input(dataset, context=context)
    mlflow.log_dict(manifest, "dataset/manifest.json")
    return manifest
