"""The study's simulated datasets: noisy sets hold the same test recordings, reduced labels drop only training
recordings, a held-out size or location never reaches training, and the resonance truth matches the simulator.
The sets built from real recordings are tested in test_real_sets.py."""

import numpy as np
import pytest

from pipeline.config import ConfigError
from pipeline.data.classes import CLASS_NAMES
from pipeline.data.prepared import DatasetError, load_prepared
from pipeline.data.simulator import simulate_recording
from pipeline.study.scoring import ground_truth
from pipeline.study.sets import held_out_mask, noisy_dataset, training_sets
from tests.study.tiny_study import study_config

TRAIN, VAL, TEST = range(3)
SIZE_021 = ("ball_021", "inner_021", "outer_021")


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    config = study_config(
        f"data.cache_dir={tmp_path_factory.mktemp('data')}",
        "data.task=fault_class",  # the ten classes, so that sizes can be held out
        "study.snr_db=[-5.0]",
        "study.noisy_sets=[recording,load_shift]",
        "study.label_fraction=0.25",
    )
    return config, {s.name: s for s in training_sets(config, seed=0)}


def test_every_training_set_and_its_evaluations(sets):
    config, by_name = sets
    assert list(by_name) == ["recording", "load_shift", "reduced_labels", "ood_size"]
    assert [e.split for e in by_name["recording"].evaluations] == ["recording", "snr-5"]
    assert [e.split for e in by_name["load_shift"].evaluations] == ["load_shift", "load_shift_snr-5"]  # not the first
    assert by_name["ood_size"].evaluations[0].ood_classes == ("ball_021", "inner_021", "outer_021")
    shifted = load_prepared(by_name["load_shift"].dataset_dir).arrays
    assert set(np.unique(shifted["load"][shifted["split"] == TEST])) == {3}
    assert 3 not in set(np.unique(shifted["load"][shifted["split"] != TEST]))


def test_noisy_set_holds_the_clean_test_recordings_with_more_noise(sets):
    _, by_name = sets
    clean = load_prepared(by_name["recording"].dataset_dir).arrays
    noisy = load_prepared(by_name["recording"].evaluations[1].dataset_dir).arrays
    for name in ("recording", "labels", "split", "load", "natural_freq_hz"):
        np.testing.assert_array_equal(noisy[name], clean[name])
    test = clean["split"] == TEST
    difference = noisy["windows"][test] - clean["windows"][test]
    assert np.sqrt(np.mean(difference**2)) > 0.5 * np.sqrt(np.mean(clean["windows"][test] ** 2))


def test_reduced_labels_keep_a_share_of_training_recordings_only(sets):
    _, by_name = sets
    full = load_prepared(by_name["recording"].dataset_dir)
    reduced = load_prepared(by_name["reduced_labels"].dataset_dir)
    a, r = full.arrays, reduced.arrays
    for split in (VAL, TEST):
        np.testing.assert_array_equal(r["windows"][r["split"] == split], a["windows"][a["split"] == split])
    for label in range(len(CLASS_NAMES)):
        n_full = len(np.unique(a["recording"][(a["split"] == TRAIN) & (a["labels"] == label)]))
        n_kept = len(np.unique(r["recording"][(r["split"] == TRAIN) & (r["labels"] == label)]))
        assert n_kept == max(1, round(0.25 * n_full))
    assert reduced.manifest["recordings_per_split"]["unused"] > 0
    assert sum(reduced.manifest["windows_per_split"]["train"].values()) == np.count_nonzero(r["split"] == TRAIN)


def test_held_out_size_never_reaches_training_or_validation(sets):
    _, by_name = sets
    ood = load_prepared(by_name["ood_size"].dataset_dir)
    a = ood.arrays
    held_out = held_out_mask(ood, SIZE_021)
    assert not held_out[a["split"] != TEST].any()
    full = load_prepared(by_name["recording"].dataset_dir)
    assert np.count_nonzero(held_out) == np.count_nonzero(
        held_out_mask(full, SIZE_021) & (full.arrays["split"] == TEST)
    )
    assert {CLASS_NAMES[k] for k in np.unique(a["labels"][held_out])} == {"ball_021", "inner_021", "outer_021"}


def test_the_held_out_size_is_found_when_labels_name_only_the_fault_location(tiny_study_config):
    config = tiny_study_config("data.task=fault_location", "study.training_sets=[ood_size]", "study.snr_db=[]")
    (ood_size,) = training_sets(config, seed=0)
    dataset = load_prepared(ood_size.dataset_dir)
    a, recordings = dataset.arrays, dataset.manifest["recordings"]
    held_out = held_out_mask(dataset, SIZE_021)
    assert {recordings[r]["label"] for r in np.unique(a["recording"][held_out])} == {
        "ball_021",
        "inner_021",
        "outer_021",
    }
    assert not held_out[a["split"] != TEST].any()
    assert {dataset.manifest["class_names"][k] for k in np.unique(a["labels"][held_out])} == {"ball", "inner", "outer"}


def test_a_held_out_location_never_reaches_training_or_validation(tiny_study_config):
    config = tiny_study_config("study.training_sets=[ood_location]", "study.snr_db=[]", "study.ood_fault_location=ball")
    (ood_location,) = training_sets(config, seed=0)
    (evaluation,) = ood_location.evaluations
    assert evaluation.ood_classes == ("ball_007", "ball_014", "ball_021")
    dataset = load_prepared(evaluation.dataset_dir)
    held_out = held_out_mask(dataset, evaluation.ood_classes)
    assert held_out.any() and not held_out[dataset.arrays["split"] != TEST].any()


def test_noisy_copies_of_a_derived_simulated_set_are_refused(sets):
    config, by_name = sets
    with pytest.raises(DatasetError, match="noisy_sets"):
        noisy_dataset(config.data, by_name["ood_size"].dataset_dir, 0.0)


def test_sim_to_real_needs_recorded_data(tiny_study_config):
    config = tiny_study_config("study.training_sets=[sim_to_real]", "study.snr_db=[]")
    with pytest.raises(ConfigError, match="sim_to_real"):
        training_sets(config, seed=0)


def test_resonance_truth_is_the_simulated_resonance():
    sim = simulate_recording("inner_014", 1, seed=3, duration_s=0.1)

    class Dataset:  # the two arrays and the rate ground_truth reads
        arrays = {"natural_freq_hz": np.array([sim.params["natural_freq_hz"]]), "damping_ratio": np.array([0.03])}
        manifest = {"sample_rate": sim.sample_rate}

    truth = ground_truth(Dataset, np.array([True]))
    assert truth["resonance_hz"][0] == pytest.approx(sim.params["resonance_hz"], rel=1e-9)
