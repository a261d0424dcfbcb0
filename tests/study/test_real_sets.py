"""The study's sets on the real CWRU recordings (`study=real`): sim-to-real trains on the simulator and scores
every recorded window, each unseen fault size is held out of training, and the noisy copies differ from the
recordings only by white noise on their test windows."""

import numpy as np
import pytest

from pipeline.data.classes import fault_size_in
from pipeline.data.prepared import load_prepared
from pipeline.study.sets import training_sets
from tests.study.tiny_study import study_config

TRAIN, VAL, TEST = range(3)


@pytest.fixture(scope="module")
def real_sets(tmp_path_factory, cwru_dir):
    config = study_config(
        f"data.cache_dir={tmp_path_factory.mktemp('data')}",
        "data=cwru",
        f"data.path={cwru_dir}",
        "study.training_sets=[load_shift,unseen_size,sim_to_real]",
        "study.noisy_sets=[load_shift,unseen_size]",
        "study.snr_db=[0.0]",
    )
    return {s.name: s for s in training_sets(config, seed=0)}


def test_the_sets_of_the_real_study_and_their_evaluations(real_sets):
    assert list(real_sets) == ["load_shift", "unseen_0.007", "unseen_0.014", "unseen_0.021", "sim_to_real"]
    assert [e.split for e in real_sets["load_shift"].evaluations] == ["load_shift", "snr0"]
    assert [e.split for e in real_sets["unseen_0.014"].evaluations] == ["unseen_0.014", "unseen_0.014_snr0"]


def test_sim_to_real_trains_on_the_simulator_and_scores_every_recorded_window(real_sets):
    sim_to_real = real_sets["sim_to_real"]
    simulated = load_prepared(sim_to_real.dataset_dir)
    real = load_prepared(sim_to_real.evaluations[0].dataset_dir)
    assert simulated.manifest["source"] == "synthetic" and real.manifest["source"] == "cwru"
    assert simulated.manifest["class_names"] == real.manifest["class_names"]
    assert simulated.manifest["window"] == real.manifest["window"]
    assert set(np.unique(real.arrays["split"])) == {TEST}  # nothing real trains or chooses
    assert len(real.manifest["recordings"]) == 37 and all(r["split"] == "test" for r in real.manifest["recordings"])
    window = real.manifest["window"]
    samples = sum(r["n_samples"] for r in real.manifest["recordings"])
    assert len(real.arrays["labels"]) > 0.9 * samples // window  # one window apart: all of it, no overlap


def test_an_unseen_size_never_reaches_training_or_validation(real_sets):
    for size in (0.007, 0.014, 0.021):
        dataset = load_prepared(real_sets[f"unseen_{size:.3f}"].dataset_dir)
        recordings = dataset.manifest["recordings"]
        sizes = np.array([fault_size_in(r["label"]) for r in recordings])[dataset.arrays["recording"]]
        split = dataset.arrays["split"]
        assert not np.any(sizes[split != TEST] == size)
        assert set(np.unique(sizes[split == TEST])) <= {0.0, size} and np.any(sizes[split == TEST] == size)
        assert dataset.manifest["class_names"] == ["normal", "ball", "inner", "outer"]


def test_noisy_copy_adds_white_noise_to_the_test_windows_only(real_sets):
    clean = load_prepared(real_sets["load_shift"].dataset_dir).arrays
    noisy = load_prepared(real_sets["load_shift"].evaluations[1].dataset_dir).arrays
    for name in ("labels", "split", "recording", "rpm"):
        np.testing.assert_array_equal(noisy[name], clean[name])
    test = clean["split"] == TEST
    np.testing.assert_array_equal(noisy["windows"][~test], clean["windows"][~test])
    signal = np.mean(clean["windows"][test].astype(np.float64) ** 2, axis=1)
    added = np.mean((noisy["windows"][test] - clean["windows"][test]).astype(np.float64) ** 2, axis=1)
    assert np.median(added / signal) == pytest.approx(1.0, rel=0.1)  # 0 dB: noise as strong as each window
