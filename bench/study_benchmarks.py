"""The ablation study on the real CWRU recordings, the reference for any claim about the model:
`python bench/run.py real_cwru`.

It is `python -m pipeline.study data=cwru data.path=<CWRU> study=real study.seeds=[0,1,2,3,4]` (the command it
prints first), run through the study's own function (`run_study`) into the tracking store in force
(MLFLOW_TRACKING_URI, else the repository's): every arm of conf/study/real.yaml, the envelope rule among them, on
the load shift, each fault size unseen, the simulator-to-real set and the held-out size and location, with the
noisy copies, five seeds. Then it prints what the study's tables (pipeline/study/report.py) read from that run:
one JSON line per arm and split (its value per seed, the mean and sample standard deviation of every metric its
cells logged), one per arm, split and metric of the paired difference to physics weights 0 (per seed), and the
Markdown tables. The bench measures nothing itself, so its numbers and the study's are the same numbers from the
same runs.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd
from common import CACHE, benchmark, cwru_dir, emit, uestc_dir

from pipeline.data.cwru_grades import GRADES
from pipeline.study.config import StudyExperimentConfig, compose_study_config
from pipeline.study.report import (
    headline_table,
    paired_differences,
    paired_table,
    split_table,
    study_runs,
    summary,
    to_markdown,
)
from pipeline.study.runner import run_study

SEEDS = (0, 1, 2, 3, 4)
# The UESTC bearing as its README assumes it (a 204-size insert bearing: 8 balls of 7.938 mm on a 33.5 mm pitch
# circle, 0 degrees), in inches like the presets; only the ball-to-pitch diameter ratio enters the fault rates.
UESTC_BEARING = f"8/{7.938 / 25.4:.4f}/{33.5 / 25.4:.4f}/0"
# UESTC's manifest.csv `class_label` -> location (its `fault_location` column describes the damage in words)
UESTC_LOCATIONS = {"normal": "normal", "ball": "ball", "inner_race": "inner", "outer_race": "outer"}
PAIRED = ("test/accuracy", "test/location_accuracy", "test/recording_accuracy")  # each minus physics weights 0


def real_study_overrides(cwru: Path, seeds: tuple[int, ...] = SEEDS) -> list[str]:
    """The `python -m pipeline.study` overrides of the study this bench runs, on the recordings in `cwru`."""
    return [
        "data=cwru",
        f"data.path={cwru}",
        f"data.cache_dir={CACHE}",
        "study=real",
        f"study.seeds=[{','.join(map(str, seeds))}]",
    ]


def real_study_config(cwru: Path, seeds: tuple[int, ...] = SEEDS) -> StudyExperimentConfig:
    """The study config those overrides compose, validated as the command line validates it."""
    return compose_study_config(*real_study_overrides(cwru, seeds))


@benchmark
def real_cwru() -> None:
    cwru = cwru_dir()
    if not cwru.is_dir():
        raise SystemExit(f"real_cwru needs the CWRU recordings: {cwru} does not exist (set AVPINO_CWRU_DIR)")
    print("python -m pipeline.study " + " ".join(real_study_overrides(cwru)), flush=True)
    result = run_study(real_study_config(cwru))
    emit_study(study_runs(result.run_id), "real_cwru", result.run_id)


@benchmark
def unseen_bearings() -> None:
    """Bearings never trained on: each CWRU fault size held out (per envelope grade too), and UESTC's rig scored
    whole after training on CWRU or on the simulator (conf/study/unseen_bearings.yaml). $AVPINO_BENCH_SEEDS
    (e.g. `0`) runs fewer seeds than the setting's five."""
    cwru, uestc = cwru_dir(), uestc_dir()
    for folder in (cwru, uestc):
        if not folder.is_dir():
            raise SystemExit(f"unseen_bearings needs {folder} (set AVPINO_CWRU_DIR; uestc/ sits beside cwru/)")
    overrides = unseen_bearings_overrides(cwru, uestc_files_manifest(uestc, CACHE / "uestc-manifest.csv"))
    seeds = os.environ.get("AVPINO_BENCH_SEEDS")
    overrides += [f"study.seeds=[{seeds}]"] if seeds else []
    print("python -m pipeline.study " + " ".join(overrides), flush=True)
    result = run_study(compose_study_config(*overrides))
    emit_study(study_runs(result.run_id), "unseen_bearings", result.run_id)


def unseen_bearings_overrides(cwru: Path, other_rig_manifest: Path) -> list[str]:
    """The `python -m pipeline.study` overrides of the unseen-bearings study on CWRU and another rig's manifest."""
    return [
        "data=cwru",
        f"data.path={cwru}",
        f"data.cache_dir={CACHE}",
        "study=unseen_bearings",
        f"study.other_rig_manifest={other_rig_manifest}",
    ]


def uestc_files_manifest(uestc: Path, out: Path) -> Path:
    """A data=files manifest at `out` of the UESTC recordings its `manifest.csv` lists, labelled by location."""
    listed = pd.read_csv(uestc / "manifest.csv")
    unknown = set(listed["class_label"]) - set(UESTC_LOCATIONS)
    if unknown:
        raise SystemExit(f"{uestc / 'manifest.csv'}: class_label(s) {sorted(unknown)} name no fault location")
    location = listed["class_label"].map(UESTC_LOCATIONS)
    manifest = pd.DataFrame(
        {
            "path": [str((uestc / name).resolve()) for name in listed["file"]],
            "label": location,
            "location": location,
            "rpm": listed["nominal_speed_rpm"],
            "sample_rate": listed["fs_hz"],
            "variable": listed["variable"],
            "bearing": UESTC_BEARING,
        }
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    manifest.to_csv(out, index=False)
    return out


def emit_study(runs: pd.DataFrame, prefix: str, study_run_id: str) -> None:
    """The JSON lines and Markdown tables of one study run's cells (`study_runs`)."""
    for (arm, split), row in summary(runs).iterrows():
        present = [metric for metric in row.index.unique(0) if not math.isnan(row[(metric, "mean")])]
        headline = next(m for m in ("test/accuracy", "test/location_accuracy") if m in present)  # the rule: location
        cells = runs[(runs["arm"] == arm) & (runs["split"] == split)]
        emit(
            f"{prefix}/{split}/{arm}",
            row[(headline, "mean")],
            headline,
            std=_number(row[(headline, "std")]),
            per_seed=[_number(value) for value in cells[headline]],
            metrics={m: {"mean": _number(row[(m, "mean")]), "std": _number(row[(m, "std")])} for m in present},
            study_run=study_run_id,
        )
    for metric in PAIRED:
        for (split, arm), rows in paired_differences(runs, metric=metric).groupby(["split", "arm"], sort=False):
            emit(
                f"{prefix}/{split}/{arm}_minus_data_only/{metric}",
                rows[metric].mean(),
                "paired difference",
                std=_number(rows[metric].std()),
                per_seed=[_number(value) for value in rows[metric]],
                study_run=study_run_id,
            )
    tables = {
        "Headline (the study run's headline.md)": headline_table(runs),
        "Accuracy minus physics weights 0, paired by seed (paired.md)": paired_table(runs),
        "Fault location named right, minus physics weights 0": paired_table(runs, metric="test/location_accuracy"),
        "Fault location named right": split_table(runs, "test/location_accuracy"),
        "Recordings diagnosed right (their windows voting)": split_table(runs, "test/recording_accuracy"),
        "ECE before the temperature": split_table(runs, "test/ece_uncalibrated"),
        "ECE after the temperature": split_table(runs, "test/ece"),
        "OOD AUROC of the ood score, test vs validation windows": split_table(runs, "test/shift_auroc"),
        "Seconds per epoch": split_table(runs, "train/epoch_s"),
    }
    by_grade = {f"test/location_accuracy/grade_{g}": f"Fault location named right, envelope grade {g}" for g in GRADES}
    for metric, title in {**by_grade, "test/location_recall/ball": "Ball faults named right"}.items():
        if metric in runs:
            tables[title] = split_table(runs, metric)
    for title, table in tables.items():
        print(f"\n{title}:\n{to_markdown(table)}")


def _number(value: float):
    """`value` rounded for a JSON line, None when undefined (the spread of one seed)."""
    return None if math.isnan(value) else round(float(value), 4)
