"""What the study trains on and what it scores: its training sets (`recording`, `load_shift`, `reduced_labels`,
`ood_size`, `ood_location`, `unseen_size`, `sim_to_real`, `other_rig`, `sim_to_other_rig`; docs/study.md), each
with its evaluation sets, and the noisy copies of the test windows of `study.noisy_sets`. Datasets are prepared
(or found) by `pipeline.data.prepared`; derived ones are written beside their source the same way and reused when
present."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import numpy as np

from pipeline.config import ConfigError, DataConfig
from pipeline.data.bearing import RANDOM_BEARING
from pipeline.data.classes import CLASS_NAMES, fault_location, fault_size_in
from pipeline.data.noise import with_white_noise
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
from pipeline.study.config import StudyExperimentConfig

TRAIN, VAL, TEST = (SPLIT_NAMES.index(name) for name in ("train", "val", "test"))


@dataclass(frozen=True)
class EvaluationSet:
    split: str  # the `split` tag of the study's runs: recording, snr10, load_shift, ...
    dataset_dir: Path  # its test windows are scored
    ood_classes: tuple[str, ...] = ()  # test windows of recordings of these classes are out of distribution
    graded: bool = False  # CWRU recordings: location accuracy is also logged per grade (data/cwru_grades.py)


@dataclass(frozen=True)
class TrainingSet:
    name: str
    dataset_dir: Path
    evaluations: tuple[EvaluationSet, ...]
    data: DataConfig  # what the set (or the set it is derived from) was prepared from


def training_sets(config: StudyExperimentConfig, seed: int) -> list[TrainingSet]:
    """The training sets `config.study.training_sets` names, in that order, for one seed."""
    sets = []
    for name in config.study.training_sets:
        built = _build(config, name, seed)
        if name in config.study.noisy_sets:
            built = [_with_noisy_copies(config, training) for training in built]
        sets.extend(built)
    return sets


def _build(config: StudyExperimentConfig, name: str, seed: int) -> list[TrainingSet]:
    data, study = config.data, config.study
    root = Path(data.cache_dir).resolve()
    if name == "load_shift":
        shifted = replace(data, split="load_shift")
        return [_scored_on_itself(name, prepare_dataset(shifted, root), shifted)]
    if name == "unseen_size":
        sets = []
        for size in study.unseen_sizes:
            unseen = replace(data, split="fault_size", task="fault_location", test_fault_size=size)
            path, split = prepare_dataset(unseen, root), f"unseen_{size:.3f}"
            graded = EvaluationSet(split, path, graded=data.source == "cwru")
            sets.append(TrainingSet(split, path, (graded,), unseen))
        return sets
    if name == "sim_to_real":
        return [sim_to_real_set(data, root)]
    if name in ("other_rig", "sim_to_other_rig"):
        return [other_rig_set(name, data, root, study.other_rig_manifest)]
    recording = load_prepared(prepare_dataset(data, root))
    if name == "recording":
        return [_scored_on_itself(name, recording.path, data)]
    if name == "reduced_labels":
        return [_scored_on_itself(name, reduced_labels_dataset(recording, study.label_fraction, seed), data)]
    if name == "ood_size":
        held_out = tuple(c for c in CLASS_NAMES if fault_size_in(c) == study.ood_fault_size_in)
        tag = f"without{study.ood_fault_size_in:g}in"
    else:
        held_out = tuple(c for c in CLASS_NAMES if fault_location(c) == study.ood_fault_location)
        tag = f"without-{study.ood_fault_location}"
    return [_scored_on_itself(name, held_out_dataset(recording, held_out, tag), data, held_out)]


def _scored_on_itself(name: str, path: Path, data: DataConfig, ood_classes: tuple[str, ...] = ()) -> TrainingSet:
    return TrainingSet(name, path, (EvaluationSet(name, path, ood_classes),), data)


def _with_noisy_copies(config: StudyExperimentConfig, training: TrainingSet) -> TrainingSet:
    """`training` also scored on a noisy copy of its test windows at each `study.snr_db`, tagged `snr<dB>` when it
    is the first of `study.noisy_sets`, else `<set>_snr<dB>` (each set of `unseen_size` too)."""
    clean = training.evaluations[0].dataset_dir
    prefix = "" if training.name == config.study.noisy_sets[0] else f"{training.name}_"
    noisy = [
        EvaluationSet(f"{prefix}snr{snr:g}", noisy_dataset(training.data, clean, snr)) for snr in config.study.snr_db
    ]
    return replace(training, evaluations=(*training.evaluations, *noisy))


def noisy_dataset(data: DataConfig, clean_dir: Path, snr_db: float) -> Path:
    """A copy of the dataset at `clean_dir` whose test windows are noisier (only they are ever scored).

    Simulated data is re-simulated at `snr_db` from the same recording seeds; the check below makes sure its
    recordings and splits are the clean set's, so no training recording can leak into a noisy test set.
    Recordings get white noise added to their test windows.
    """
    clean = load_prepared(clean_dir)
    if data.source != "synthetic":
        a = clean.arrays
        windows = np.array(a["windows"])
        test = np.asarray(a["split"]) == TEST
        windows[test] = with_white_noise(windows[test], snr_db)
        return derived_dataset(
            clean,
            {**a, "windows": windows},
            f"snr{snr_db:g}",
            f"white noise {snr_db:g} dB below each test window's power",
        )
    path = prepare_dataset(replace(data, snr_db=snr_db), Path(data.cache_dir).resolve())

    def identity(dataset: PreparedDataset) -> list[tuple]:
        return [(r["label"], r["load_hp"], r["rpm"], r["split"]) for r in dataset.manifest["recordings"]]

    if identity(load_prepared(path)) != identity(clean):
        raise DatasetError(
            f"{path}: its recordings or splits differ from {clean.path}; a noisy test set would not hold the same "
            "test recordings (study.noisy_sets may only hold recording and load_shift on the simulator)"
        )
    return path


def sim_to_real_set(data: DataConfig, root: Path) -> TrainingSet:
    """Trained on the simulator at `data`'s window, task and bearing; scored on every window of `data`'s
    recordings, one window apart, all in the test split."""
    if data.source == "synthetic":
        raise ConfigError(
            "study.training_sets: sim_to_real scores a simulator-trained model on real recordings; it needs "
            "recorded data (data=cwru or data=files), not data.source=synthetic"
        )
    simulator = simulator_data(data)
    real = every_window_in_test(data, root)
    return TrainingSet(
        "sim_to_real", prepare_dataset(simulator, root), (EvaluationSet("sim_to_real", real),), simulator
    )


def other_rig_set(name: str, data: DataConfig, root: Path, manifest: Optional[str]) -> TrainingSet:
    """Trained on `data`'s recordings (`other_rig`) or on the simulator (`sim_to_other_rig`), on fault location;
    scored on every window of another rig's recordings (`manifest`, a data=files manifest) read at `data`'s
    window and rate: bearings never trained on, of a geometry the model was never shown."""
    if manifest is None:
        raise ConfigError(f"study.training_sets: {name} needs study.other_rig_manifest (a data=files manifest)")
    located = replace(data, task="fault_location")
    trained_on = simulator_data(located) if name == "sim_to_other_rig" else located
    other_rig = replace(located, source="files", path=None, manifest=str(manifest), split="recording")
    scored = every_window_in_test(other_rig, root)
    training_dir = prepare_dataset(trained_on, root)
    trained_classes = load_prepared(training_dir).manifest["class_names"]
    scored_classes = load_prepared(scored).manifest["class_names"]
    if scored_classes != trained_classes:
        raise DatasetError(
            f"{manifest}: its recordings' locations are {scored_classes}; {name} scores a model of "
            f"{trained_classes}, so the other rig needs a recording of each"
        )
    return TrainingSet(name, training_dir, (EvaluationSet(name, scored),), trained_on)


def every_window_in_test(data: DataConfig, root: Path) -> Path:
    """Every window of `data`'s recordings, one window apart, all in the test split: a set only scored."""
    every = load_prepared(prepare_dataset(replace(data, split="recording", hop=data.window), root))
    a = every.arrays
    return derived_dataset(
        every,
        {**a, "split": np.full_like(a["split"], TEST)},
        "all-test",
        "every window of every recording, all in the test split",
        recording_split="test",
    )


SIMULATED_SNR_DB = [-20.0, -5.0]
"""The SNR range the study's simulated recordings are drawn from. A real rig's fault strikes stand barely above the
rest of its vibration; trained at the simulator's default 20 dB, a model calls most real windows healthy. Chosen
on validation sets (seed 0, AGT-NO location accuracy, simulator to CWRU / to UESTC): 20 dB 0.34 / 0.49 (five
seeds), 0 dB 0.47 / 0.50, -10 dB 0.61 / 0.53, -20 dB 0.63 / 0.57, [-10, 10] 0.49 / 0.51, [-20, -5] 0.62 / 0.55."""


def simulator_data(data: DataConfig) -> DataConfig:
    """The simulator at `data`'s window and task, split by recording, each recording in a bearing of its own and at
    an SNR of SIMULATED_SNR_DB: what `sim_to_real` trains on, so that its model has seen many bearings, and faults
    as faint as real ones, before any real recording. Raises ConfigError when its recordings (`data.duration_s`)
    are shorter than the window."""
    return replace(
        data,
        source="synthetic",
        path=None,
        manifest=None,
        split="recording",
        bearing=RANDOM_BEARING,
        snr_range_db=SIMULATED_SNR_DB,
    )


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
        {name: values[keep] for name, values in a.items()},
        f"labels{fraction:g}-seed{seed}",
        f"{fraction:g} of each class's training recordings (at least 1), drawn with seed {seed}",
    )


def held_out_dataset(source: PreparedDataset, classes: tuple[str, ...], tag: str) -> Path:
    """`source` without training or validation windows of recordings of `classes` (test windows stay)."""
    a = source.arrays
    keep = ~held_out_mask(source, classes) | ((a["split"] != TRAIN) & (a["split"] != VAL))
    return derived_dataset(
        source,
        {name: values[keep] for name, values in a.items()},
        tag,
        f"no training or validation window of {', '.join(classes)}",
    )


def evaluated_windows(dataset: PreparedDataset, evaluation: EvaluationSet) -> tuple[np.ndarray, np.ndarray]:
    """Masks over the dataset's windows that `evaluation` scores: the test split, and the test windows of its
    OOD classes (told apart from the others, never scored as if they could be classified)."""
    test = np.asarray(dataset.arrays["split"]) == TEST
    ood = np.zeros_like(test)
    if evaluation.ood_classes:
        ood = test & held_out_mask(dataset, evaluation.ood_classes)
    return test, ood


def held_out_mask(dataset: PreparedDataset, classes: tuple[str, ...]) -> np.ndarray:
    """True for windows of recordings whose ten-class name is in `classes`. Read from each recording's name,
    since a task's labels may not tell the classes apart (fault_location)."""
    held_out = [r["label"] in classes for r in dataset.manifest["recordings"]]
    return np.asarray(held_out, dtype=bool)[np.asarray(dataset.arrays["recording"])]


def derived_dataset(
    source: PreparedDataset,
    arrays: dict[str, np.ndarray],
    tag: str,
    selection: str,
    recording_split: Optional[str] = None,
) -> Path:
    """Write `arrays` (windows selected or changed from `source`'s) as a prepared dataset beside it, or reuse it.

    Recordings with no window left are marked `unused` in the manifest's recording list, the others
    `recording_split` when it is given.
    """
    final = source.path.with_name(f"{source.path.name}-{tag}")
    if (final / MANIFEST).is_file():
        try:
            load_prepared(final)
            return final
        except DatasetError:
            pass  # incomplete or stale: write it again
    arrays = {name: np.ascontiguousarray(values) for name, values in arrays.items()}
    used = set(np.unique(arrays["recording"]).tolist())
    recordings = [
        (_assigned(r, recording_split) if recording_split else r) if i in used else {**r, "split": "unused"}
        for i, r in enumerate(source.manifest["recordings"])
    ]
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


def _assigned(recording: dict, split: str) -> dict:
    """A manifest recording entry with the recording and each of its segments in `split`."""
    segments = [{**segment, "split": split} for segment in recording.get("segments", [])]
    return {**recording, "split": split, "segments": segments}
