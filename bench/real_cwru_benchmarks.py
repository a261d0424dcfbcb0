"""Real CWRU recordings, the reference for any claim about the model: `python bench/run.py real_cwru`.

Protocols (each a prepared dataset of the pipeline's own `data=cwru` source):
  * load_shift: ten classes, train 0-2 HP, test 3 HP (a new operating point on bearings seen in training);
  * unseen_<size>: fault location, every recording of one fault size held out (bearings never seen).
Every test split is scored as recorded and with white noise added at 0 and -5 dB below each window's power.
Arms: AGT-NO as `data=cwru` configures it (default model and training), the same with physics weights 0, the same
with the physics weights the project's sweeper found on the protocols' validation splits (TUNED_PHYSICS), WDCNN
trained with its own recipe (Adam, batch 64, lr 1e-3) until its validation loss stops improving, and the
envelope-spectrum rule (no training; its one threshold fitted on the training windows; it needs windows of 4,096
samples and names fault locations only, so on the ten-class protocol it is scored on location). Every trained arm
runs SEEDS on the same windows, one (protocol, arm, seed) per process and core, each on one thread; model choices
are made on validation data only, and each test split is scored once per trained model. The physics question is
answered paired: per seed, AGT-NO (default or tuned weights) minus the same model with physics weights 0 (same
seed, initialisation and batches). Prints one JSON line per (protocol, arm) with the per-seed values, then two
Markdown tables.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from common import REPO, benchmark, emit
from omegaconf import OmegaConf

from pipeline.baselines.envelope_rule import EnvelopeRule
from pipeline.calibration import expected_calibration_error
from pipeline.config import DataConfig, ExperimentConfig, LossConfig, ModelConfig, TrainingConfig
from pipeline.data.bearing import BearingGeometry
from pipeline.data.noise import with_white_noise
from pipeline.data.prepared import PreparedDataset, load_prepared, prepare_dataset
from pipeline.evaluation import auroc, classification_metrics, predict_windows
from pipeline.model_factory import build_from_settings, model_settings
from pipeline.readout import fit_readout
from pipeline.stages.train import make_loaders
from pipeline.study.config import StudyConfig
from pipeline.study.design import ARMS as STUDY_ARMS
from pipeline.training.training_engine import TrainingEngine

SEEDS = tuple(range(5))
CACHE = REPO / "data" / "prepared" / "bench"
PROTOCOLS = {
    "load_shift": dict(split="load_shift", task="fault_class"),
    **{
        f"unseen_{size:.3f}": dict(split="fault_size", task="fault_location", test_fault_size=size)
        for size in (0.007, 0.014, 0.021)
    },
}
WDCNN_RECIPE = TrainingConfig(epochs=StudyConfig().baseline_epochs, **STUDY_ARMS["wdcnn"].training)
NO_PHYSICS = LossConfig(physics_weight=0.0, consistency_weight=0.0)
# The weights the project's sweeper found on each protocol's validation split: the same best trial (lowest
# val/loss) on all four, 8 trials each, one rank per trial, 2026-11-30:
#   python -m pipeline.train -m hparams_search=physics_weights data=cwru data.path=<CWRU> <the protocol's data.*>
#     distributed.nproc_per_node=1
TUNED_PHYSICS = LossConfig(physics_weight=0.02055, consistency_weight=0.4735)
ARMS = {  # model, loss, training, data choices on top of data=cwru's
    "agt_no": (ModelConfig(), LossConfig(), TrainingConfig(), {}),
    "agt_no_physics_0": (ModelConfig(), NO_PHYSICS, TrainingConfig(), {}),
    "agt_no_tuned": (ModelConfig(), TUNED_PHYSICS, TrainingConfig(), {}),
    "wdcnn": (ModelConfig(name="wdcnn"), NO_PHYSICS, WDCNN_RECIPE, {}),
}
TRAINED_ARMS = tuple(ARMS)
PAIRS = (("agt_no", "agt_no_physics_0"), ("agt_no_tuned", "agt_no_physics_0"), ("agt_no", "wdcnn"))
RULE_WINDOW = 4096
NOISE_SNR_DB = (0.0, -5.0)  # test windows with added white noise, as in the noise-robustness literature


def cwru_config(**choices) -> DataConfig:
    """The data config `data=cwru` composes (conf/data/cwru.yaml), at the CWRU folder, with `choices` on top."""
    recorded = OmegaConf.to_container(OmegaConf.load(REPO / "conf" / "data" / "cwru.yaml"))
    return DataConfig(**{**recorded, "path": str(cwru_dir()), **choices})


def cwru_dir() -> Path:
    """`AVPINO_CWRU_DIR`, else the shared copy beside the repository."""
    path = Path(os.environ.get("AVPINO_CWRU_DIR", REPO.parent / "shared" / "data" / "cwru"))
    if not path.is_dir():
        raise SystemExit(f"real_cwru needs the CWRU recordings: {path} does not exist (set AVPINO_CWRU_DIR)")
    return path


def train_arm(data: DataConfig, arm: str, seed: int) -> tuple[TrainingEngine, PreparedDataset, float]:
    """Train one arm on `data`'s training split (validation for early stopping): the engine holding the trained
    model, the prepared dataset and the mean seconds per epoch."""
    model_cfg, loss_cfg, training_cfg, data_choices = ARMS[arm]
    data = replace(data, **data_choices)
    config = ExperimentConfig(data=data, model=model_cfg, loss=loss_cfg, training=replace(training_cfg, seed=seed))
    dataset = load_prepared(prepare_dataset(data, CACHE))
    torch.manual_seed(seed)
    model = build_from_settings(model_settings(config.model, dataset.manifest))
    engine = TrainingEngine(model, config, device="cpu")
    train_loader, val_loader = make_loaders(dataset, config)
    start = time.perf_counter()
    engine.train(train_loader, val_loader)
    return engine, dataset, (time.perf_counter() - start) / engine.epoch


def train_and_score(data: DataConfig, arm: str, seed: int) -> dict[str, float]:
    """Train one arm on the protocol's training split, fit its readout (temperature on validation, ood score on
    training windows), and score its test split as recorded and with added noise. `ood_auroc`: how well the ood
    score tells test windows from validation windows (held out of training, from the training bearings), which
    on an unseen-size protocol is telling bearings never seen from bearings seen."""
    engine, dataset, epoch_s = train_arm(data, arm, seed)
    readout = fit_readout(engine.model, dataset)
    names = dataset.manifest["class_names"]
    test, val = dataset.subset("test"), dataset.subset("val")
    outputs = predict_windows(engine.model, test.windows, readout=readout, shaft_hz=test.shaft_hz)
    metrics, _ = classification_metrics(test.labels, outputs["probs"], names)
    metrics["ece_uncalibrated"] = expected_calibration_error(outputs["probs_uncalibrated"], test.labels)
    metrics["temperature"] = readout.temperature
    if "ood_score" in outputs:
        val_scores = predict_windows(engine.model, val.windows, readout=readout, shaft_hz=val.shaft_hz)["ood_score"]
        metrics["ood_auroc"] = auroc(val_scores, outputs["ood_score"])
    for snr_db in NOISE_SNR_DB:
        noisy = predict_windows(engine.model, with_white_noise(test.windows, snr_db), shaft_hz=test.shaft_hz)
        metrics[f"noise_{snr_db:g}db_accuracy"] = float(np.mean(noisy["probs"].argmax(axis=1) == test.labels))
    return {**metrics, "epoch_s": epoch_s, "epochs": engine.epoch}


def envelope_rule_score(data: DataConfig) -> dict[str, float]:
    """The envelope rule's fault-location accuracy on the protocol's test blocks, at its own window length."""
    located = replace(data, task="fault_location", window=RULE_WINDOW, hop=RULE_WINDOW // 2)
    dataset = load_prepared(prepare_dataset(located, CACHE))
    names = dataset.manifest["class_names"]

    def split(name):
        part = dataset.subset(name)
        return part.windows, part.shaft_hz, part.labels

    rule = EnvelopeRule(
        sample_rate=dataset.manifest["sample_rate"], bearing=BearingGeometry(**dataset.manifest["bearing"])
    )
    train_x, train_speed, train_y = split("train")
    rule.fit(train_x, train_speed, np.asarray(names)[train_y])
    test_x, test_speed, test_y = split("test")
    predicted = rule.predict(test_x, test_speed)
    probs = np.eye(len(names))[[names.index(p) for p in predicted]]
    metrics, _ = classification_metrics(test_y, probs, names)
    return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]}


def job_scores(job: tuple[str, str, int]) -> tuple[str, str, int, dict[str, float]]:
    """One (protocol, arm, seed) trained and scored, on one thread."""
    torch.set_num_threads(1)
    protocol, arm, seed = job
    return protocol, arm, seed, train_and_score(cwru_config(**PROTOCOLS[protocol]), arm, seed)


def summary_table(results: dict[str, dict[str, list[dict]]]) -> None:
    """Print the Markdown table of every (protocol, arm): mean ± sd over seeds of each column that arm has."""
    columns = {
        "accuracy": "accuracy",
        **{f"noise_{snr:g}db_accuracy": f"{snr:g} dB" for snr in NOISE_SNR_DB},
        "ece_uncalibrated": "ECE before",
        "ece": "ECE after temperature",
        "temperature": "temperature",
        "ood_auroc": "OOD AUROC (test vs val)",
        "epoch_s": "epoch s",
    }
    print(f"\n| protocol | arm | {' | '.join(columns.values())} |")
    print("|---|---|" + "---|" * len(columns))
    for protocol, arms in results.items():
        for arm, runs in arms.items():
            cells = []
            for key in columns:
                values = [r[key] for r in runs if key in r]
                spread = f" ± {np.std(values):.3f}" if len(values) > 1 and key != "epoch_s" else ""
                cells.append(f"{np.mean(values):.3f}{spread}" if values else "n/a")
            print(f"| {protocol} | {arm} | {' | '.join(cells)} |")


def paired_differences(results: dict[str, dict[str, list[dict]]]) -> None:
    """Each of PAIRS' first arm minus its second, per seed (same seed, same windows), for every accuracy column."""
    keys = ["accuracy", *(f"noise_{snr:g}db_accuracy" for snr in NOISE_SNR_DB)]
    print("\n| protocol | paired difference | " + " | ".join(keys) + " |")
    print("|---|---|" + "---|" * len(keys))
    for protocol, arms in results.items():
        for arm, other in PAIRS:
            cells = []
            for key in keys:
                diff = np.array([a[key] - b[key] for a, b in zip(arms[arm], arms[other])])
                emit(
                    f"real_cwru/{protocol}/{arm}_minus_{other}/{key}",
                    diff.mean(),
                    "paired difference",
                    std=round(float(diff.std()), 4),
                    per_seed=[round(float(d), 4) for d in diff],
                )
                cells.append(f"{diff.mean():+.3f} ± {diff.std():.3f}")
            print(f"| {protocol} | {arm} minus {other} | {' | '.join(cells)} |")


@benchmark
def real_cwru() -> None:
    for protocol in PROTOCOLS:  # datasets first, once, so parallel workers only read them
        prepare_dataset(cwru_config(**PROTOCOLS[protocol]), CACHE)
    jobs = [(protocol, arm, seed) for protocol in PROTOCOLS for arm in TRAINED_ARMS for seed in SEEDS]
    results: dict[str, dict[str, list[dict]]] = {p: {arm: [] for arm in TRAINED_ARMS} for p in PROTOCOLS}
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for protocol, arm, seed, scores in pool.map(job_scores, jobs):  # in job order: seeds ascending
            results[protocol][arm].append(scores)
    for protocol in PROTOCOLS:
        results[protocol]["envelope_rule"] = [envelope_rule_score(cwru_config(**PROTOCOLS[protocol]))]
    for protocol, arms in results.items():
        for arm, runs in arms.items():
            emit(
                f"real_cwru/{protocol}/{arm}",
                float(np.mean([r["accuracy"] for r in runs])),
                "accuracy",
                protocol=protocol,
                arm=arm,
                per_seed={key: [round(float(r[key]), 4) for r in runs] for key in runs[0]},
            )
    summary_table(results)
    paired_differences(results)
