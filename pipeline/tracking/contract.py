"""What passes between stages: the tags a stage's run leaves for the next, the params that make two runs
comparable, the digest that says two configs (or datasets, or runs) would compute the same thing, and the
lookup of a stage's newest finished run.

Stages hand results on by run id and content hash, never by path, so a run made on one machine is usable on
any machine that shares the tracking store.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, is_dataclass
from typing import Any, Mapping, Optional

import mlflow
from mlflow.entities import Run

from pipeline.common.digest import config_digest

# Tags every stage run carries, and the results a stage hands on.
STAGE_TAG = "stage"
CODE_VERSION_TAG = "code_version"
FINGERPRINT_TAG = "fingerprint"  # on a finished run of a stage in REUSE_KEYS: `reuse_fingerprint`
CONFIG_DIGEST_TAG = "config_digest"  # on a train run: `training_digest`, which `training.resume=auto` matches
CONTENT_HASH_TAG = "dataset.content_hash"  # the dataset a run read, by content
CONFIG_HASH_TAG = "dataset.config_hash"  # ... and by the data config it is built from
DATASET_DIR_TAG = "dataset_dir"  # where the dataset was on the machine that ran the stage (a hint only)
MODEL_URI_TAG = "model_uri"  # train: the logged model; evaluate: the model it scored
TRAIN_RUN_TAG = "train_run_id"  # evaluate: the run that trained the model
EVALUATION_RUN_TAG = "evaluation_run_id"  # register: the evaluation the promotion was decided on
MODEL_VERSION_TAG = "model_version"  # register: the registered version

MAX_PARAM_LENGTH = 6000  # MLflow's limit on a param value


@dataclass(frozen=True)
class ReuseKey:
    """What a stage's result depends on besides the code: its params under `params` (prefixes) except `ignored`,
    and the inputs named by the tags `inputs`. A reusable run also carries the tag `output`."""

    params: tuple[str, ...]
    inputs: tuple[str, ...]
    output: str
    ignored: tuple[str, ...] = ()


# A model to evaluate or an evaluation to register is named by its run's tag, not by the param that may pick it.
REUSE_KEYS = {
    "prepare": ReuseKey((), (CONFIG_HASH_TAG,), CONTENT_HASH_TAG),
    "train": ReuseKey(
        ("model.", "loss.", "training.", "data.augment_", "readout."),
        (CONTENT_HASH_TAG,),
        MODEL_URI_TAG,
        ("training.resume", "training.heartbeat_s", "training.device"),
    ),
    "evaluate": ReuseKey(("evaluate.",), (TRAIN_RUN_TAG, CONTENT_HASH_TAG), MODEL_URI_TAG, ("evaluate.model_uri",)),
    "register": ReuseKey(("registry.",), (EVALUATION_RUN_TAG,), MODEL_VERSION_TAG, ("registry.evaluation_run_id",)),
}


def flatten_config(config: Any, prefix: str = "") -> dict[str, Any]:
    """`{'loss': {'physics_weight': 0.1}}` -> `{'loss.physics_weight': 0.1}` (dataclasses too)."""
    if is_dataclass(config):
        config = asdict(config)
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) or is_dataclass(value):
            flat.update(flatten_config(value, name + "."))
        else:
            flat[name] = value
    return flat


def param_values(config: Any) -> dict[str, str]:
    """The params a stage run logs for `config`: flattened, as the strings MLflow stores."""
    return {k: str(v)[:MAX_PARAM_LENGTH] for k, v in flatten_config(config).items()}


def shaping_params(stage: str, params: Mapping[str, str]) -> dict[str, str]:
    """The params of `params` that change what `stage` computes (`REUSE_KEYS`)."""
    key = REUSE_KEYS[stage]
    return {k: v for k, v in params.items() if k.startswith(key.params) and k not in key.ignored}


def reuse_fingerprint(stage: str, params: Mapping[str, str], tags: Mapping[str, str]) -> str:
    """Equal for two runs of `stage` that would compute the same result: the shaping params, the inputs its tags
    name, and the code version."""
    inputs = {name: tags.get(name) for name in (*REUSE_KEYS[stage].inputs, CODE_VERSION_TAG)}
    return config_digest([stage, shaping_params(stage, params), inputs])


def training_digest(config: Any, content_hash: str) -> str:
    """What a train run continues from a checkpoint for: what `reuse_fingerprint` hashes for a train run (the
    shaping params and the dataset's content hash) except the code version, so a fix to the code can resume a run."""
    return config_digest(["train", shaping_params("train", param_values(config)), {CONTENT_HASH_TAG: content_hash}])


def latest_finished_run(experiment_ids: list[str], stage: str, where: str = "") -> Optional[Run]:
    """The most recently started FINISHED run of `stage` in `experiment_ids`, optionally also matching the
    MLflow filter `where`; None when there is none."""
    conditions = [f"tags.{STAGE_TAG} = '{stage}'", "attributes.status = 'FINISHED'", *([where] if where else [])]
    runs = mlflow.search_runs(
        experiment_ids,
        filter_string=" and ".join(conditions),
        max_results=1,
        order_by=["attributes.start_time DESC"],
        output_format="list",
    )
    return runs[0] if runs else None
