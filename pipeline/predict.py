"""Classify one recording: `python -m pipeline.predict input=<file> [model_uri=...] [hop=<samples>]`
(conf/predict.yaml; the work is pipeline.stages.predict's)."""

import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from pipeline.stages.predict import PredictError, predict_file, summary

SHOWN_COLUMNS = ("window", "class", "probability", "uncertainty", "out_of_distribution")  # those the model has


@hydra.main(version_base="1.3", config_path="../conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    if OmegaConf.is_missing(cfg, "input"):
        print("predict: input=<file.mat|file.csv> is required", file=sys.stderr)
        sys.exit(2)
    try:
        table = predict_file(cfg.input, cfg.model_uri, cfg.hop)
    except PredictError as err:
        print(f"predict: {err}", file=sys.stderr)
        sys.exit(1)
    table = table.reset_index()
    shown = table[[column for column in SHOWN_COLUMNS if column in table]]
    print(shown.to_string(index=False, float_format="{:.3f}".format))
    print(summary(table))


if __name__ == "__main__":
    main()
