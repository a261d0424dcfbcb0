"""What the study trains on and what it scores: training sets and their evaluation sets.

- `recording`: the pipeline's split by recording; scored on its held-out recordings, and on the same test
  recordings re-simulated at each `study.snr_db` (same seeds and split, only the noise level differs).
- `load_shift`: train on loads 0-2 HP, test on 3 HP (`data.split=load_shift`).
- `reduced_labels`: the `recording` dataset keeping `study.label_fraction` of each class's training
  recordings (drawn per seed); validation and test recordings are unchanged.
- `ood_size`: the `recording` dataset without any training or validation window of the held-out fault size;
  its test windows of that size are the out-of-distribution set, the others the in-distribution set.

Datasets are prepared (or found) by `pipeline.data.prepared`; the two subsets are written beside their source
the same way (atomically, with a manifest that says what was dropped) and reused when present.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import numpy as np

from pipeline.config import ConfigError, ExperimentConfig
from pipeline.data.classes import fault_size_in
from pipeline.data.prepared import (
    MANIFEST,
    DatasetError,
    PreparedDataset,
    content_hash,
    load_prepared,
    prepare_dataset,
    split_counts,
    write_prepared,
)
from pipeline.data.windows import SPLIT_NAMES

TRAIN, VAL = SPLIT_NAMES.index("train"), SPLIT_NAMES.index("val")


@dataclass(frozen=True)
class EvaluationSet:
    split: str  # the `split` tag of the study's runs: recording, snr10, load_shift, ...
    dataset_dir: Path  # its test windows are scored
    ood_fault_size_in: Optional[float] = None  # ood_size: test windows of this size are out of distribution


@dataclass(frozen=True)
class TrainingSet:
    name: str
    dataset_dir: Path
    evaluations: tuple[EvaluationSet, ...]


def training_sets(config: ExperimentConfig, seed: int) -> list[TrainingSet]:
    """The training sets `config.study.training_sets` names, in that order, for one seed."""
    data, study = config.data, config.study
    root = Path(data.cache_dir).resolve()
    recording = load_prepared(prepare_dataset(data, root))
    sets = []
    for name in study.training_sets:
        if name == "recording":
            noisy = [EvaluationSet(f"snr{snr:g}", noisy_dataset(config, recording, snr)) for snr in study.snr_db]
            sets.append(TrainingSet(name, recording.path, (EvaluationSet(name, recording.path), *noisy)))
        elif name == "load_shift":
            path = prepare_dataset(replace(data, split="load_shift"), root)
            sets.append(TrainingSet(name, path, (EvaluationSet(name, path),)))
        elif name == "reduced_labels":
            path = reduced_labels_dataset(recording, study.label_fraction, seed)
            sets.append(TrainingSet(name, path, (EvaluationSet(name, path),)))
        else:
            path = held_out_size_dataset(recording, study.ood_fault_size_in)
            sets.append(TrainingSet(name, path, (EvaluationSet(name, path, study.ood_fault_size_in),)))
    return sets


def noisy_dataset(config: ExperimentConfig, clean: PreparedDataset, snr_db: float) -> Path:
    """The dataset re-simulated at `snr_db`: same recording seeds, so the same recordings in the same splits.

    Only its test windows are ever scored; the check below makes sure they are the clean set's test
    recordings, so no training recording can leak into a noisy test set.
    """
    if config.data.source != "synthetic":
        raise ConfigError(
            f"study.snr_db={config.study.snr_db}: noisy test sets are re-simulated, which needs "
            f"data.source=synthetic (got {config.data.source!r}); set study.snr_db=[]"
        )
    path = prepare_dataset(replace(config.data, snr_db=snr_db), Path(config.data.cache_dir).resolve())
    noisy = load_prepared(path)

    def identity(dataset: PreparedDataset) -> list[tuple]:
        return [(r["label"], r["load_hp"], r["rpm"], r["split"]) for r in dataset.manifest["recordings"]]

    if identity(noisy) != identity(clean):
        raise DatasetError(
            f"{path}: its recordings or splits differ from {clean.path}; a noisy test set would "
            "not hold the same test recordings"
        )
    return path


def reduced_labels_dataset(source: PreparedDataset, fraction: float, seed: int) -> Path:
    """`source` keeping, per class, round(fraction * n) (at least 1) of its n training recordings."""
    a = source.arrays
    rng = np.random.default_rng(seed)
    train_recordings = np.unique(a["recording"][a["split"] == TRAIN])
    recording_label = {int(rec): int(lab) for rec, lab in zip(a["recording"], a["labels"])}
    kept = []
    for label in range(len(source.manifest["class_names"])):
        members = [r for r in train_recordings if recording_label[int(r)] == label]
        if members:
            kept.extend(rng.choice(members, size=max(1, round(fraction * len(members))), replace=False))
    keep = (a["split"] != TRAIN) | np.isin(a["recording"], kept)
    return derived_dataset(
        source,
        keep,
        f"labels{fraction:g}-seed{seed}",
        f"{fraction:g} of each class's training recordings (at least 1), drawn with seed {seed}",
    )


def held_out_size_dataset(source: PreparedDataset, size_in: float) -> Path:
    """`source` without training or validation windows of fault size `size_in` (test windows stay)."""
    a = source.arrays
    held_out = held_out_size_mask(source, size_in)
    keep = ~held_out | ((a["split"] != TRAIN) & (a["split"] != VAL))
    return derived_dataset(
        source, keep, f"without{size_in:g}in", f"no training or validation window of fault size {size_in:g} in"
    )


def held_out_size_mask(dataset: PreparedDataset, size_in: float) -> np.ndarray:
    """True for windows of recordings with fault size `size_in` (inches). Read from each recording's ten-class
    name, since a task's labels may not tell sizes apart (fault_location)."""
    held_out = [fault_size_in(r["label"]) == size_in for r in dataset.manifest["recordings"]]
    return np.asarray(held_out, dtype=bool)[np.asarray(dataset.arrays["recording"])]


def derived_dataset(source: PreparedDataset, keep: np.ndarray, tag: str, selection: str) -> Path:
    """Write the windows of `source` selected by `keep` as a prepared dataset beside it (or reuse it).

    Recordings with no window left are marked `unused` in the manifest's recording list.
    """
    final = source.path.with_name(f"{source.path.name}-{tag}")
    if (final / MANIFEST).is_file():
        try:
            load_prepared(final)
            return final
        except DatasetError:
            pass  # incomplete or stale: write it again
    arrays = {name: np.ascontiguousarray(values[keep]) for name, values in source.arrays.items()}
    used = set(np.unique(arrays["recording"]).tolist())
    recordings = [r if i in used else {**r, "split": "unused"} for i, r in enumerate(source.manifest["recordings"])]
    counts = split_counts(arrays, source.manifest["class_names"])
    counts["recordings_per_split"]["unused"] = sum(r["split"] == "unused" for r in recordings)
    manifest = {
        **source.manifest,
        "n_windows": len(arrays["labels"]),
        **counts,
        "recordings": recordings,
        "arrays": {name: {"dtype": str(a.dtype), "shape": list(a.shape)} for name, a in arrays.items()},
        "content_hash": content_hash(arrays),
        "derived_from": source.path.name,
        "selection": selection,
    }
    write_prepared(final, arrays, manifest)
    return final
