"""The whole pipeline, `mlflow run .`: prepare -> train -> evaluate -> register as child runs of one parent.

MLflow's multistep-workflow pattern: each stage run is tagged with a fingerprint of the parameters it
depends on (including the run ids it consumed) and the code version; a FINISHED run with the same
fingerprint is reused instead of run again. Stages hand results on by run id and the tags their runs
carry (`dataset_dir`, `model_uri`), never by guessed paths.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import asdict, dataclass
from typing import Callable

import hydra
import mlflow
from mlflow.entities import Run
from omegaconf import DictConfig

from pipeline.config import ExperimentConfig, register_configs
from pipeline.evaluate import evaluate
from pipeline.prepare import prepare
from pipeline.register import register
from pipeline.stage import main_with_packed_overrides, run_stage
from pipeline.tracking.run import git_commit, stage_run
from pipeline.tracking.store import REPO_ROOT, tracking_uri
from pipeline.train import train

register_configs()


@dataclass
class PipelineResult:
    run_id: str
    stage_runs: dict[str, str]  # stage -> run id (fresh or reused)
    reused: list[str]


def code_version() -> str:
    """The git commit, plus a digest of uncommitted changes so edited code never reuses old results."""
    commit = git_commit() or "unversioned"
    diff = subprocess.run(["git", "diff", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True).stdout
    return commit if not diff else f"{commit}-dirty-{hashlib.sha256(diff.encode()).hexdigest()[:12]}"


def fingerprint(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _finished_run(experiment_id: str, stage: str, print_: str) -> Run | None:
    runs = mlflow.search_runs(
        [experiment_id], output_format="list", max_results=1, order_by=["attributes.start_time DESC"],
        filter_string=f"tags.stage = '{stage}' and tags.fingerprint = '{print_}' "
                      "and attributes.status = 'FINISHED'")
    return runs[0] if runs else None


def _child_run(parent_id: str, experiment_id: str, stage: str) -> Run:
    runs = mlflow.search_runs(
        [experiment_id], output_format="list", max_results=1, order_by=["attributes.start_time DESC"],
        filter_string=f"tags.mlflow.parentRunId = '{parent_id}' and tags.stage = '{stage}'")
    return runs[0]


def run_pipeline(config: ExperimentConfig) -> PipelineResult:
    """Run (or reuse) every stage in order under one parent run; return the run ids."""
    code = code_version()
    stage_runs: dict[str, str] = {}
    reused: list[str] = []
    with stage_run("pipeline", config, experiment=config.tracking.experiment, run_name="pipeline") as parent:
        parent_id, experiment_id = parent.info.run_id, parent.info.experiment_id

        def step(stage: str, print_: str, work: Callable[[], object]) -> Run:
            done = _finished_run(experiment_id, stage, print_)
            if done is not None:
                print(f"{stage}: reusing finished run {done.info.run_id}")
                mlflow.set_tag(f"reused.{stage}", done.info.run_id)
                reused.append(stage)
            else:
                work()
                done = _child_run(parent_id, experiment_id, stage)
                mlflow.MlflowClient().set_tag(done.info.run_id, "fingerprint", print_)
            stage_runs[stage] = done.info.run_id
            return done

        prepared = step("prepare", fingerprint(asdict(config.data), code), lambda: prepare(config))
        dataset_dir = prepared.data.tags["dataset_dir"]
        trained = step("train", fingerprint(dataset_dir, asdict(config.model), asdict(config.loss),
                                            asdict(config.training), code),
                       lambda: train(config, dataset_dir))
        evaluated = step("evaluate", fingerprint(trained.info.run_id, asdict(config.evaluate), code),
                         lambda: evaluate(config, model_uri=trained.data.tags["model_uri"],
                                          dataset_dir=dataset_dir, train_run_id=trained.info.run_id))
        step("register", fingerprint(evaluated.info.run_id, asdict(config.registry), code),
             lambda: register(config, evaluation_run_id=evaluated.info.run_id))

    print(f"pipeline run {parent_id}: stages {stage_runs}\n"
          f"  compare runs:  mlflow ui --backend-store-uri {tracking_uri()}\n"
          f"  pull the model: mlflow.pyfunc.load_model('models:/{config.registry.model_name}@champion')")
    return PipelineResult(parent_id, stage_runs, reused)


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    run_stage(run_pipeline, cfg)


if __name__ == "__main__":
    main_with_packed_overrides(main)
