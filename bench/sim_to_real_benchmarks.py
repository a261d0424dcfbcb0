"""Simulation to real machines: `python bench/run.py sim_to_real`.

Every arm of `real_cwru_benchmarks.ARMS` named in SIM_ARMS trains on the simulator alone (the embedded default
data, `conf/data/synthetic.yaml`: its training split, its validation split for early stopping) and is scored on
every window of every real CWRU recording (the 37 files, windows of the training length, one hop apart = one
window, so no two overlap). No real recording is used for training or for any choice. The envelope rule fits its
one threshold on the simulator's training windows (at its own window length) and is scored the same way.

Reported per arm: ten-class accuracy, fault-location accuracy (a predicted class counts when its location is the
recording's), recall per true location; mean and spread over SEEDS. The physics question is answered paired:
per seed, AGT-NO's location accuracy minus the same model trained with physics weights 0 (same seed, same
initialisation, same batches), and minus WDCNN; mean ± sd of the differences.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
import torch
from common import benchmark, emit
from real_cwru_benchmarks import CACHE, RULE_WINDOW, cwru_dir, train_arm

from pipeline.baselines.envelope_rule import EnvelopeRule
from pipeline.calibration import expected_calibration_error
from pipeline.config import DataConfig
from pipeline.data.bearing import BearingGeometry
from pipeline.data.classes import FAULT_LOCATIONS, fault_location
from pipeline.data.cwru import read_cwru_folder
from pipeline.data.prepared import load_prepared, prepare_dataset
from pipeline.data.windows import frame
from pipeline.evaluation import predict_windows
from pipeline.readout import fit_readout

SEEDS = tuple(range(5))
SIM_ARMS = ("agt_no", "agt_no_physics_0", "wdcnn")
SIMULATOR = DataConfig()  # the embedded default: what `mlflow run .` trains on


@dataclass(frozen=True)
class RealWindows:
    """Non-overlapping windows of every real recording, with their ten-class label and shaft speed."""

    windows: np.ndarray  # float32 [N, L]
    labels: np.ndarray  # [N] class names
    shaft_hz: np.ndarray  # float32 [N]

    @property
    def locations(self) -> np.ndarray:
        return np.array([fault_location(label) for label in self.labels])


def real_windows(window: int) -> RealWindows:
    """Every real recording cut into windows of `window` samples, one window apart."""
    records = read_cwru_folder(cwru_dir(), min_samples=window).records
    parts = [frame(r.signal, window, window) for r in records]
    return RealWindows(
        np.concatenate(parts).astype(np.float32),
        np.concatenate([[r.label] * len(p) for r, p in zip(records, parts)]),
        np.concatenate([np.full(len(p), r.rpm / 60, dtype=np.float32) for r, p in zip(records, parts)]),
    )


def scores(real: RealWindows, predicted_locations: np.ndarray) -> dict[str, float]:
    """Location accuracy and recall per true location."""
    hit = predicted_locations == real.locations
    return {
        "location_accuracy": float(np.mean(hit)),
        **{f"recall/{loc}": float(np.mean(hit[real.locations == loc])) for loc in FAULT_LOCATIONS},
    }


def arm_scores(job: tuple[str, int]) -> tuple[str, int, dict[str, float]]:
    """Train `arm` with `seed` on the simulator, on one thread, and fit its temperature on the simulator's
    validation windows; score it on every real window (ten-class ECE before and after the temperature)."""
    torch.set_num_threads(1)
    arm, seed = job
    engine, dataset, epoch_s = train_arm(SIMULATOR, arm, seed)
    readout = fit_readout(engine.model, dataset)
    real = real_windows(dataset.manifest["window"])
    outputs = predict_windows(engine.model, real.windows, readout=readout, shaft_hz=real.shaft_hz)
    names = list(dataset.manifest["class_names"])
    labels = np.array([names.index(label) for label in real.labels])
    predicted = np.asarray(names)[outputs["probs"].argmax(axis=1)]
    return (
        arm,
        seed,
        {
            **scores(real, np.array([fault_location(name) for name in predicted])),
            "accuracy": float(np.mean(predicted == real.labels)),
            "ece": expected_calibration_error(outputs["probs"], labels),
            "ece_uncalibrated": expected_calibration_error(outputs["probs_uncalibrated"], labels),
            "epochs": engine.epoch,
            "epoch_s": epoch_s,
            "windows": len(real.labels),
        },
    )


def envelope_rule_scores() -> dict[str, float]:
    """The envelope rule, its threshold fitted on the simulator's training windows, scored on the real ones."""
    located = replace(SIMULATOR, window=RULE_WINDOW, hop=RULE_WINDOW // 2)
    dataset = load_prepared(prepare_dataset(located, CACHE))
    train = dataset.subset("train")
    rule = EnvelopeRule(
        sample_rate=dataset.manifest["sample_rate"], bearing=BearingGeometry(**dataset.manifest["bearing"])
    )
    names = np.asarray(dataset.manifest["class_names"])
    rule.fit(train.windows, train.shaft_hz, [fault_location(n) for n in names[train.labels]])
    real = real_windows(RULE_WINDOW)
    predicted = rule.predict(real.windows, real.shaft_hz)
    return scores(real, np.asarray(predicted))  # the rule names locations only


def paired(results: dict[str, dict[int, dict]], arm: str, other: str, key: str = "location_accuracy") -> np.ndarray:
    """Per seed, `arm`'s `key` minus `other`'s."""
    return np.array([results[arm][s][key] - results[other][s][key] for s in SEEDS])


@benchmark
def sim_to_real() -> None:
    prepare_dataset(SIMULATOR, CACHE)  # once, so parallel workers only read it
    jobs = [(arm, seed) for arm in SIM_ARMS for seed in SEEDS]
    results: dict[str, dict[int, dict]] = {arm: {} for arm in SIM_ARMS}
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for arm, seed, result in pool.map(arm_scores, jobs):
            results[arm][seed] = result
    rule = envelope_rule_scores()

    columns = {
        "location_accuracy": "location accuracy",
        "accuracy": "ten classes",
        **{f"recall/{loc}": f"recall {loc}" for loc in FAULT_LOCATIONS},
        "ece_uncalibrated": "ECE before",
        "ece": "ECE after temperature",
    }
    print(f"\n| arm | {' | '.join(columns.values())} |")
    print("|---|" + "---|" * len(columns))
    for arm, per_seed in [*results.items(), ("envelope_rule", {0: rule})]:
        runs = list(per_seed.values())
        emit(
            f"sim_to_real/{arm}",
            float(np.mean([r["location_accuracy"] for r in runs])),
            "location accuracy",
            per_seed={key: [round(float(r[key]), 4) for r in runs] for key in runs[0]},
        )
        cells = []
        for key in columns:
            values = [r[key] for r in runs if key in r]
            spread = f" ± {np.std(values):.3f}" if len(values) > 1 else ""
            cells.append(f"{np.mean(values):.3f}{spread}" if values else "n/a")
        print(f"| {arm} | {' | '.join(cells)} |")
    print()
    for other in ("agt_no_physics_0", "wdcnn"):
        diff = paired(results, "agt_no", other)
        emit(
            f"sim_to_real/agt_no_minus_{other}",
            float(diff.mean()),
            "location accuracy, paired by seed",
            std=round(float(diff.std()), 4),
            per_seed=[round(float(d), 4) for d in diff],
        )
        print(
            f"AGT-NO minus {other}, location accuracy, {len(SEEDS)} seeds paired: {diff.mean():+.3f} ± {diff.std():.3f}"
        )
    print(f"scored on {results[SIM_ARMS[0]][SEEDS[0]]['windows']} real windows of {SIMULATOR.window} samples")
