"""Stage 3, evaluate: `python -m pipeline.evaluate [evaluate.model_uri=...]` scores a logged model on the test
split (pipeline.stages.evaluate)."""

import sys

import hydra
from omegaconf import DictConfig

from pipeline.stages.command_line import run_hydra, run_stage
from pipeline.stages.evaluate import EvaluationError, evaluate


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    try:
        run_stage(evaluate, cfg)
    except EvaluationError as err:
        print(f"evaluate: {err}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    run_hydra(main)
