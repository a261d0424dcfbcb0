"""Stage 1, prepare: write (or reuse) the versioned dataset a data config describes.

Its run records the dataset by content hash and data config (`log_dataset`), so the workflow can reuse it on any
machine, rebuilding the dataset where it is missing.
"""

from __future__ import annotations

from pathlib import Path

import mlflow

from pipeline.config import ExperimentConfig
from pipeline.data.prepared import dataset_dir_for, prepare_dataset
from pipeline.tracking.contract import DATASET_DIR_TAG
from pipeline.tracking.datasets import log_dataset
from pipeline.tracking.run import stage_run


def prepare(config: ExperimentConfig) -> Path:
    """Build the dataset `config.data` describes (or find it cached) and record it in MLflow."""
    cache_root = Path(config.data.cache_dir).resolve()
    cached = (dataset_dir_for(config.data, cache_root) / "manifest.json").is_file()
    with stage_run(
        "prepare",
        config.data,
        experiment=config.tracking.experiment,
        run_name=f"prepare-{config.data.source}",
        tags={"cache_hit": str(cached).lower()},
    ):
        dataset_dir = prepare_dataset(config.data, cache_root)
        manifest = log_dataset(dataset_dir)
        mlflow.set_tag(DATASET_DIR_TAG, str(dataset_dir))
        print(
            f"dataset: {dataset_dir} ({manifest['n_windows']} windows, {manifest['content_hash']}, "
            f"{'reused' if cached else 'written'})"
        )
    return dataset_dir
