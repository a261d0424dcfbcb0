"""Stage 1, prepare: `python -m pipeline.prepare [overrides]` writes (or reuses) a versioned dataset.

Its run records the dataset by content hash and data config (`log_dataset`), so the workflow can reuse it on any
machine, rebuilding the dataset where it is missing.
"""
from __future__ import annotations

from pathlib import Path

import hydra
import mlflow
from omegaconf import DictConfig

from pipeline.config import ExperimentConfig, register_configs
from pipeline.data.prepared import dataset_dir_for, prepare_dataset
from pipeline.stage import main_with_packed_overrides, run_stage
from pipeline.tracking.datasets import log_dataset
from pipeline.tracking.run import stage_run

register_configs()


def prepare(config: ExperimentConfig) -> Path:
    """Build the dataset `config.data` describes (or find it cached) and record it in MLflow."""
    cache_root = Path(config.data.cache_dir).resolve()
    cached = (dataset_dir_for(config.data, cache_root) / "manifest.json").is_file()
    with stage_run("prepare", config.data, experiment=config.tracking.experiment,
                   run_name=f"prepare-{config.data.source}", tags={"cache_hit": str(cached).lower()}):
        dataset_dir = prepare_dataset(config.data, cache_root)
        manifest = log_dataset(dataset_dir)
        mlflow.set_tag("dataset_dir", str(dataset_dir))
        print(f"dataset: {dataset_dir} ({manifest['n_windows']} windows, {manifest['content_hash']}, "
              f"{'reused' if cached else 'written'})")
    return dataset_dir


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    run_stage(prepare, cfg)


if __name__ == "__main__":
    main_with_packed_overrides(main)
