"""The whole pipeline: prepare -> train -> evaluate -> register as child runs of one parent.

MLflow's multistep-workflow pattern: a FINISHED run of a stage with the same fingerprint (the params it depends
on, the run ids and content hashes it consumed, the code version: `pipeline.tracking.contract.REUSE_KEYS`) is reused
instead of run again, whichever machine, workflow or stage command made it. Stages hand results on by run id,
never by path: the dataset a reused prepare run wrote is found, or rebuilt and checked, on this machine.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import mlflow
from mlflow.entities import Run

from pipeline.config import ExperimentConfig
from pipeline.data.prepared import config_hash
from pipeline.stages.evaluate import evaluate
from pipeline.stages.prepare import prepare
from pipeline.stages.register import register
from pipeline.stages.train import train
from pipeline.tracking.contract import (
    CODE_VERSION_TAG,
    CONFIG_HASH_TAG,
    CONTENT_HASH_TAG,
    EVALUATION_RUN_TAG,
    FINGERPRINT_TAG,
    MODEL_URI_TAG,
    REUSE_KEYS,
    STAGE_TAG,
    TRAIN_RUN_TAG,
    latest_finished_run,
    param_values,
    reuse_fingerprint,
)
from pipeline.tracking.datasets import dataset_of_run
from pipeline.tracking.run import browse_hint, code_version, stage_run
from pipeline.tracking.store import tracking_uri


@dataclass
class PipelineResult:
    run_id: str
    stage_runs: dict[str, str]  # stage -> run id (fresh or reused)
    reused: list[str]


def _child_run(parent_id: str, experiment_id: str, stage: str) -> Run:
    runs = mlflow.search_runs(
        [experiment_id],
        output_format="list",
        max_results=1,
        order_by=["attributes.start_time DESC"],
        filter_string=f"tags.mlflow.parentRunId = '{parent_id}' and tags.{STAGE_TAG} = '{stage}'",
    )
    return runs[0]


def run_pipeline(config: ExperimentConfig) -> PipelineResult:
    """Run (or reuse) every stage in order under one parent run; return the run ids."""
    params, code = param_values(config), code_version()
    stage_runs: dict[str, str] = {}
    reused: list[str] = []
    with stage_run("pipeline", config, experiment=config.tracking.experiment, run_name="pipeline") as parent:
        parent_id, experiment_id = parent.info.run_id, parent.info.experiment_id

        def step(stage: str, inputs: dict[str, str], work: Callable[[], object]) -> Run:
            fingerprint = reuse_fingerprint(stage, params, {CODE_VERSION_TAG: code, **inputs})
            done = latest_finished_run(
                [experiment_id],
                stage,
                f"tags.{FINGERPRINT_TAG} = '{fingerprint}' and tags.`{REUSE_KEYS[stage].output}` != ''",
            )
            if done is not None:
                print(f"{stage}: reusing finished run {done.info.run_id}")
                mlflow.set_tag(f"reused.{stage}", done.info.run_id)
                reused.append(stage)
            else:
                work()
                done = _child_run(parent_id, experiment_id, stage)
            stage_runs[stage] = done.info.run_id
            return done

        prepared = step("prepare", {CONFIG_HASH_TAG: config_hash(config.data)}, lambda: prepare(config))
        content = prepared.data.tags[CONTENT_HASH_TAG]
        # Only a stage that runs here reads the dataset: then it is found, or rebuilt, on this machine.
        dataset = functools.cache(lambda: dataset_of_run(prepared, Path(config.data.cache_dir).resolve()))
        trained = step("train", {CONTENT_HASH_TAG: content}, lambda: train(config, dataset()))
        evaluated = step(
            "evaluate",
            {TRAIN_RUN_TAG: trained.info.run_id, CONTENT_HASH_TAG: content},
            lambda: evaluate(
                config,
                model_uri=trained.data.tags[MODEL_URI_TAG],
                dataset_dir=dataset(),
                train_run_id=trained.info.run_id,
            ),
        )
        step(
            "register",
            {EVALUATION_RUN_TAG: evaluated.info.run_id},
            lambda: register(config, evaluation_run_id=evaluated.info.run_id),
        )

    print(
        f"pipeline run {parent_id}: stages {stage_runs}\n"
        f"  compare runs:  {browse_hint(tracking_uri(), experiment_id)}\n"
        f"  pull the model: mlflow.pyfunc.load_model('models:/{config.registry.model_name}@champion')"
    )
    return PipelineResult(parent_id, stage_runs, reused)
