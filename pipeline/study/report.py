"""The study's tables, rebuilt from its MLflow runs (`mlflow.search_runs`): what the parent run logs, the
notebook shows and the README quotes, so all three agree with the runs.
"""

from __future__ import annotations

from typing import Optional

import mlflow
import numpy as np
import pandas as pd

from pipeline.data.classes import FAULT_LOCATIONS
from pipeline.data.cwru_grades import GRADES
from pipeline.study.design import ARMS
from pipeline.tracking.contract import STAGE_TAG, latest_finished_run

METRICS = (
    "test/accuracy",
    "test/recording_accuracy",
    "test/location_accuracy",
    *(f"test/location_recall/{location}" for location in FAULT_LOCATIONS),
    *(f"test/location_accuracy/grade_{grade}" for grade in GRADES),
    "test/macro_f1",
    "test/ece",
    "test/ece_uncalibrated",
    "test/ece_sampling_floor",
    "calibration/temperature",
    "test/physics_residual",
    "test/mean_uncertainty",
    "test/shift_auroc",
    "test/ood_auroc",
    "test/uncertainty_auroc",
    "train/epochs",
    "train/epoch_s",
    "rule/threshold",
    "sysid/resonance_hz_error_pct",
    "sysid/resonance_hz_baseline_error_pct",
    "sysid/damping_ratio_error_pct",
    "sysid/damping_ratio_baseline_error_pct",
)
# (column, metric, split) of the table of calibration, physics, OOD detection and system identification
QUALITY = (
    ("ECE, held-out", "test/ece", "recording"),
    ("ECE, load shift", "test/ece", "load_shift"),
    ("ECE before the temperature, load shift", "test/ece_uncalibrated", "load_shift"),
    ("ECE floor of the test size, held-out", "test/ece_sampling_floor", "recording"),
    ("location accuracy, held-out", "test/location_accuracy", "recording"),
    ("location accuracy, load shift", "test/location_accuracy", "load_shift"),
    ("location accuracy, sim to real", "test/location_accuracy", "sim_to_real"),
    ("location accuracy, other rig", "test/location_accuracy", "other_rig"),
    ("location accuracy, sim to other rig", "test/location_accuracy", "sim_to_other_rig"),
    ("OOD AUROC, held-out size", "test/ood_auroc", "ood_size"),
    ("OOD AUROC, held-out location", "test/ood_auroc", "ood_location"),
    ("OOD AUROC of the uncertainty, held-out size", "test/uncertainty_auroc", "ood_size"),
    ("physics residual", "test/physics_residual", "recording"),
    ("resonance error %", "sysid/resonance_hz_error_pct", "recording"),
    ("damping error %", "sysid/damping_ratio_error_pct", "recording"),
)


def newest_study_run_id(experiment: str) -> str:
    """The most recently started FINISHED `study` run of `experiment`."""
    found = mlflow.get_experiment_by_name(experiment)
    run = None if found is None else latest_finished_run([found.experiment_id], "study")
    if run is None:
        raise LookupError(f"no finished study run in experiment {experiment!r} of {mlflow.get_tracking_uri()}")
    return run.info.run_id


def study_runs(study_run_id: Optional[str] = None, experiment: str = "av-pino-study") -> pd.DataFrame:
    """One row per `study_cell` run of a study (the newest finished one in `experiment` by default):
    columns arm, split, seed, training_set, run_id and every logged metric under its own name."""
    study_run_id = study_run_id or newest_study_run_id(experiment)
    experiment_id = mlflow.get_run(study_run_id).info.experiment_id
    runs = mlflow.search_runs(
        [experiment_id],
        filter_string=(f"tags.{STAGE_TAG} = 'study_cell' and tags.mlflow.parentRunId = '{study_run_id}'"),
    )
    columns = {f"tags.{tag}": tag for tag in ("arm", "split", "seed", "training_set")}
    columns.update({c: c.removeprefix("metrics.") for c in runs.columns if c.startswith("metrics.")})
    frame = runs.rename(columns=columns)[["run_id", *columns.values()]]
    return frame.astype({"seed": int}).sort_values(["arm", "split", "seed"], key=_order).reset_index(drop=True)


def summary(runs: pd.DataFrame, metrics: tuple[str, ...] = METRICS) -> pd.DataFrame:
    """Mean, sample standard deviation and number of seeds of each metric, per arm and split."""
    present = [m for m in metrics if m in runs.columns]
    grouped = runs.groupby(["arm", "split"], sort=False)[present].agg(["mean", "std", "count"])
    return grouped.sort_index(key=_order)


def split_table(runs: pd.DataFrame, metric: str = "test/accuracy") -> pd.DataFrame:
    """Arms x splits, each cell `mean ± std` of `metric` over seeds; a blank where an arm does not have it (the
    envelope rule names no ten-class accuracy)."""
    table = {split: _cells(runs[runs["split"] == split], metric) for split in _sorted(runs["split"].unique())}
    return pd.DataFrame(table).reindex(_sorted(runs["arm"].unique())).fillna("")


def quality_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Arms x (calibration, OOD detection, physics residual, system identification), `mean ± std`; a blank
    where an arm does not have the metric (the CNN infers no physics); no column for a split not run."""
    table = {column: _cells(runs[runs["split"] == split], metric) for column, metric, split in QUALITY}
    table = {column: cells for column, cells in table.items() if not cells.empty}
    return pd.DataFrame(table, index=_sorted(runs["arm"].unique())).fillna("")


def headline_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Accuracy per split next to the quality columns: the one table a reader needs first."""
    return split_table(runs).join(quality_table(runs)).rename_axis("arm")


def paired_table(runs: pd.DataFrame, reference: str = "data_only", metric: str = "test/accuracy") -> pd.DataFrame:
    """Arms x splits, each cell `mean ± std` over seeds of `paired_differences`: the physics question asked
    paired, which the seeds' spread in the split table hides. Empty when `reference` was not run."""
    differences = paired_differences(runs, reference, metric)
    if differences.empty:
        return pd.DataFrame()
    table = {
        split: _cells(differences[differences["split"] == split], metric)
        for split in _sorted(differences["split"].unique())
    }
    arms = _sorted(differences["arm"].unique())
    return pd.DataFrame(table).reindex(arms).fillna("").rename_axis(f"minus {reference}")


def paired_differences(runs: pd.DataFrame, reference: str = "data_only", metric: str = "test/accuracy") -> pd.DataFrame:
    """One row per split, seed and arm other than `reference`: the arm's `metric` minus `reference`'s on the same
    seed (same data, initialisation and batches), in column `metric`. Empty when `reference` was not run or
    `metric` not logged."""
    if metric not in runs or reference not in set(runs["arm"]):
        return pd.DataFrame(columns=["split", "seed", "arm", metric])
    wide = runs.pivot_table(index=["split", "seed"], columns="arm", values=metric)
    arms = [arm for arm in _sorted(wide.columns) if arm != reference]
    differences = wide[arms].sub(wide[reference], axis=0).stack().rename(metric).reset_index()
    return differences.sort_values(["arm", "split", "seed"], key=_order).reset_index(drop=True)


def to_markdown(table: pd.DataFrame) -> str:
    """A GitHub markdown table, index as the first column."""
    header = [table.index.name or "", *map(str, table.columns)]
    rows = [[str(index), *map(str, values)] for index, values in zip(table.index, table.to_numpy())]
    lines = ["| " + " | ".join(cells) + " |" for cells in (header, ["---"] * len(header), *rows)]
    return "\n".join(lines)


def _cells(runs: pd.DataFrame, metric: str) -> pd.Series:
    if metric not in runs.columns:
        return pd.Series(dtype=object)
    stats = runs.groupby("arm")[metric].agg(["mean", "std", "count"]).dropna(subset=["mean"])
    return pd.Series({arm: _format(row["mean"], row["std"]) for arm, row in stats.iterrows()}, dtype=object)


def _format(mean: float, std: float) -> str:
    return f"{mean:.3g}" if np.isnan(std) else f"{mean:.3g} ± {std:.2g}"


def _split_rank(split: str) -> tuple:
    """recording and load shift, then noisy copies from clean to noisy, then the harder shifts (other rigs
    last), then the sets that hold something out of training."""
    if "snr" in split:
        return (2, -float(split.rsplit("snr", 1)[1]))
    if split.startswith("unseen_"):
        return (3, float(split.removeprefix("unseen_")))
    order = {
        "recording": 0,
        "load_shift": 1,
        "sim_to_real": 4,
        "other_rig": 5,
        "sim_to_other_rig": 6,
        "reduced_labels": 7,
        "ood_size": 8,
        "ood_location": 9,
    }
    return (order.get(split, 10), 0.0)


def _rank(value: str) -> tuple:
    return (0, list(ARMS).index(value), 0.0) if value in ARMS else (1, *_split_rank(value))


def _sorted(values) -> list[str]:
    return sorted(values, key=_rank)


def _order(index: pd.Index | pd.Series) -> pd.Index | pd.Series:
    """Sort key for pandas: arms in study order, splits in reading order, anything else as is."""
    if index.name in ("arm", "split"):
        return index.map(_rank)
    return index
