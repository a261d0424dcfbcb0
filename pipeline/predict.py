"""Diagnose recordings: `python -m pipeline.predict input=<file, folder or manifest> [bearing=...] [rpm=...]
[figure=diagnosis.html|.png] [--windows]` (conf/predict.yaml; the work is pipeline.stages.predict's)."""

import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from pipeline.stages.predict import PredictError, diagnose, write_figures

SHOWN_WINDOW_COLUMNS = ("recording", "class", "probability", "uncertainty", "out_of_distribution")


@hydra.main(version_base="1.3", config_path="../conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    if OmegaConf.is_missing(cfg, "input"):
        print("predict: input=<recording file, folder or manifest> is required", file=sys.stderr)
        sys.exit(2)
    try:
        found = diagnose(cfg.input, cfg.model_uri, cfg.hop, cfg.rpm, cfg.sample_rate, cfg.variable, cfg.bearing)
        figures = write_figures(found, cfg.figure, cfg.bearing) if cfg.figure else []
    except PredictError as err:
        print(f"predict: {err}", file=sys.stderr)
        sys.exit(1)
    table = found.windows if cfg.windows else found.recordings
    if cfg.windows:
        table = table.rename_axis("window").reset_index()
        table = table[[c for c in ("window", *SHOWN_WINDOW_COLUMNS) if c in table]]
    print(table.to_string(index=False, float_format="{:.3f}".format))
    if cfg.output:
        table.to_csv(cfg.output, index=False)
        print(f"wrote {cfg.output}", file=sys.stderr)
    for figure in figures:
        print(f"wrote {figure}", file=sys.stderr)


def _windows_flag(argv: list[str]) -> list[str]:
    """`--windows`, as users of command-line tools write it, is the override `windows=true`."""
    return [("windows=true" if arg == "--windows" else arg) for arg in argv]


if __name__ == "__main__":
    sys.argv = _windows_flag(sys.argv)
    main()
