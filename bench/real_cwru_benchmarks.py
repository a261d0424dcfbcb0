"""Real CWRU recordings, the reference for any claim about the model: `python bench/run.py real_cwru`.

Protocols (each a prepared dataset of the pipeline's own `data=cwru` source):
  * load_shift: ten classes, train 0-2 HP, test 3 HP (a new operating point on bearings seen in training);
  * unseen_<size>: fault location, every recording of one fault size held out (bearings never seen);
  * time: ten classes, each recording cut in time into train/val/test blocks (optimistic: same bearings, loads).
Arms: AGT-NO as `data=cwru` configures it (default model and training), the same with physics weights 0, the same
with training windows through a random transfer path (`data.augment_spread_db=10`), WDCNN trained with its own
recipe (Adam, batch 64, lr 1e-3) until its validation loss stops improving, WDCNN with that recipe and the random
transfer path, and the envelope-spectrum rule (no training; its one threshold fitted on the training windows; it
needs windows of 4,096 samples and names fault locations only, so on the ten-class protocols it is scored on
location). Protocols run in parallel, one process per core, each on one thread; the arms of a protocol run one
after another in its process, so their epoch times are comparable. Every trained arm runs seeds 0-2 on the same
windows; model choices are made on validation data only, and each test split is scored once per trained model.
Prints one JSON line per (protocol, arm) with the mean and the per-seed values, then a Markdown table.
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
from pipeline.config import DataConfig, ExperimentConfig, LossConfig, ModelConfig, TrainingConfig
from pipeline.data.bearing import BearingGeometry
from pipeline.data.prepared import load_prepared, prepare_dataset
from pipeline.evaluation import classification_metrics, predict_windows
from pipeline.model_factory import build_from_settings, model_settings
from pipeline.stages.train import make_loaders
from pipeline.training.training_engine import TrainingEngine

SEEDS = (0, 1, 2)
CACHE = REPO / "data" / "prepared" / "bench"
PROTOCOLS = {
    "load_shift": dict(split="load_shift", task="fault_class"),
    **{
        f"unseen_{size:.3f}": dict(split="fault_size", task="fault_location", test_fault_size=size)
        for size in (0.007, 0.014, 0.021)
    },
    "time": dict(split="time", task="fault_class"),
}
WDCNN_RECIPE = TrainingConfig(epochs=40, patience=5, weight_decay=0.0)
NO_PHYSICS = LossConfig(physics_weight=0.0, consistency_weight=0.0)
TRANSFER_PATH = {"augment_spread_db": 10.0}
ARMS = {  # model, loss, training, data choices on top of data=cwru's
    "agt_no": (ModelConfig(), LossConfig(), TrainingConfig(), {}),
    "agt_no_physics_0": (ModelConfig(), NO_PHYSICS, TrainingConfig(), {}),
    "agt_no_transfer_path": (ModelConfig(), LossConfig(), TrainingConfig(), TRANSFER_PATH),
    "wdcnn": (ModelConfig(name="wdcnn"), NO_PHYSICS, WDCNN_RECIPE, {}),
    "wdcnn_transfer_path": (ModelConfig(name="wdcnn"), NO_PHYSICS, WDCNN_RECIPE, TRANSFER_PATH),
}
RULE_WINDOW = 4096


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


def train_and_score(data: DataConfig, arm: str, seed: int) -> dict[str, float]:
    """Train one arm on the protocol's training split (validation for early stopping), score its test split."""
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
    epoch_s = (time.perf_counter() - start) / engine.epoch
    test = dataset.subset("test")
    outputs = predict_windows(engine.model, test.windows, shaft_hz=test.shaft_hz)
    metrics, _ = classification_metrics(test.labels, outputs["probs"], dataset.manifest["class_names"])
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


def protocol_rows(protocol: str) -> list[tuple[str, str, dict[str, float], list[float]]]:
    """(protocol, arm, mean metrics, per-seed accuracies) of every arm on one protocol, on one thread."""
    torch.set_num_threads(1)
    data = cwru_config(**PROTOCOLS[protocol])
    results = {arm: [train_and_score(data, arm, seed) for seed in SEEDS] for arm in ARMS}
    results["envelope_rule"] = [envelope_rule_score(data)]
    return [
        (protocol, arm, {key: float(np.mean([r[key] for r in runs])) for key in runs[0]}, [r["accuracy"] for r in runs])
        for arm, runs in results.items()
    ]


@benchmark
def real_cwru() -> None:
    for protocol in PROTOCOLS:  # datasets first, once, so parallel workers only read them
        prepare_dataset(cwru_config(**PROTOCOLS[protocol]), CACHE)
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        rows = [row for rows in pool.map(protocol_rows, PROTOCOLS) for row in rows]
    for protocol, arm, summary, accuracies in rows:
        emit(
            f"real_cwru/{protocol}/{arm}",
            summary["accuracy"],
            "accuracy",
            protocol=protocol,
            arm=arm,
            accuracy_std=round(float(np.std(accuracies)), 4),
            **{k: round(v, 4) for k, v in summary.items() if k != "accuracy"},
            per_seed_accuracy=[round(a, 4) for a in accuracies],
        )
    print("\n| protocol | arm | accuracy (mean ± sd, 3 seeds) | macro-F1 | ECE | epoch s |")
    print("|---|---|---|---|---|---|")
    for protocol, arm, s, accuracies in rows:
        ece = f"{s['ece']:.3f}" if "ece" in s else "n/a"
        epoch = f"{s['epoch_s']:.1f}" if "epoch_s" in s else "n/a"
        print(
            f"| {protocol} | {arm} | {s['accuracy']:.3f} ± {np.std(accuracies):.3f} | {s['macro_f1']:.3f} | {ece} "
            f"| {epoch} |"
        )
