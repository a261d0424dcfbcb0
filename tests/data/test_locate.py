"""The dataset a run used, on this machine: where the run found it when it is there, else rebuilt from the run's
logged manifest into this machine's cache and checked against the recorded content hash; the user's own files
rebuild only where they are."""

import dataclasses
import shutil

import mlflow
import numpy as np
import pytest

import pipeline.data.sources as sources
from pipeline.config import DataConfig
from pipeline.data.errors import DatasetError
from pipeline.data.locate import locate_dataset
from pipeline.data.prepared import load_prepared, prepare_dataset
from pipeline.tracking.datasets import CONFIG_HASH_TAG, CONTENT_HASH_TAG, dataset_of_run, log_dataset
from tests.data.own_recordings import write_recordings

TINY = {"window": 256, "hop": 256, "duration_s": 0.2, "recordings_per_load": 3}


def recorded_run(dataset_dir):
    """A run that logged `dataset_dir` as the stages do; returns it as read back from the store."""
    with mlflow.start_run() as run:
        log_dataset(dataset_dir)
        mlflow.set_tag("dataset_dir", str(dataset_dir))
    return mlflow.get_run(run.info.run_id)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One SQLite store for the module's runs: migrating a fresh one per test would cost more than the tests."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        yield uri


@pytest.fixture
def machine_a(store, tmp_path):
    """A synthetic dataset prepared and logged on machine A; returns (its run, its folder)."""
    folder = prepare_dataset(DataConfig(**TINY), tmp_path / "a")
    return recorded_run(folder), folder


def test_the_record_names_content_and_config_not_only_a_path(machine_a):
    run, folder = machine_a
    manifest = load_prepared(folder).manifest
    assert run.data.tags[CONTENT_HASH_TAG] == manifest["content_hash"]
    assert run.data.tags[CONFIG_HASH_TAG] == manifest["config_hash"]
    [logged] = run.inputs.dataset_inputs
    source = mlflow.data.get_source(logged)  # an MLflow source type any machine resolves
    assert logged.dataset.source_type == "code" and logged.dataset.digest == manifest["content_hash"][:20]
    assert source.to_dict()["tags"]["content_hash"] == manifest["content_hash"]
    assert source.to_dict()["tags"]["data_config"] == {
        k: v for k, v in manifest["data_config"].items() if k != "cache_dir"
    }


def test_where_the_run_found_it_is_used_as_is(machine_a, tmp_path):
    run, folder = machine_a
    assert dataset_of_run(run, tmp_path / "b") == folder
    assert not (tmp_path / "b").exists()


def test_missing_here_it_is_rebuilt_in_this_cache_with_the_recorded_content(machine_a, tmp_path):
    run, folder = machine_a
    original = load_prepared(folder).arrays["windows"].copy()
    shutil.rmtree(folder)

    rebuilt = dataset_of_run(run, tmp_path / "b")

    assert rebuilt == tmp_path / "b" / folder.name
    data = load_prepared(rebuilt, verify=True)
    assert data.manifest["content_hash"] == run.data.tags[CONTENT_HASH_TAG]
    np.testing.assert_array_equal(data.arrays["windows"], original)
    assert dataset_of_run(run, tmp_path / "b") == rebuilt  # and found there next time


def test_a_rebuild_with_other_content_is_refused_naming_both_hashes(machine_a, tmp_path, monkeypatch):
    run, folder = machine_a
    shutil.rmtree(folder)

    simulate = sources.simulate_recording

    def shifted(*args, **kwargs):  # this machine's simulator gives other numbers
        sim = simulate(*args, **kwargs)
        return dataclasses.replace(sim, signal=sim.signal + 1)

    monkeypatch.setattr(sources, "simulate_recording", shifted)

    with pytest.raises(DatasetError) as refused:
        dataset_of_run(run, tmp_path / "b")
    recorded = run.data.tags[CONTENT_HASH_TAG]
    found = load_prepared(tmp_path / "b" / folder.name).manifest["content_hash"]
    assert found != recorded
    assert f"content hash {found}, not the recorded {recorded}" in str(refused.value)


def test_your_own_files_rebuild_only_where_they_are(store, tmp_path):
    recordings = tmp_path / "recordings"
    manifest = write_recordings(recordings, duration_s=0.2)
    folder = prepare_dataset(DataConfig(source="files", manifest=str(manifest), window=256, hop=256), tmp_path / "a")
    run = recorded_run(folder)
    shutil.rmtree(folder)
    elsewhere = recordings.rename(tmp_path / "moved")

    with pytest.raises(
        DatasetError, match=f"recordings manifest {manifest} \\(data.manifest\\) is missing on this machine"
    ):
        dataset_of_run(run, tmp_path / "b")

    shutil.copytree(elsewhere, recordings)  # the same recordings, copied in place: new file times, same content
    rebuilt = dataset_of_run(run, tmp_path / "b")
    assert load_prepared(rebuilt).manifest["content_hash"] == run.data.tags[CONTENT_HASH_TAG]


def test_a_cwru_folder_missing_here_is_named(machine_a, tmp_path):
    run, folder = machine_a
    recorded = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/dataset/manifest.json")
    gone = tmp_path / "cwru"
    recorded["data_config"].update(source="cwru", path=str(gone), sample_rate=12000)
    with pytest.raises(DatasetError, match=f"its CWRU folder {gone} \\(data.path\\) is missing on this machine"):
        locate_dataset(recorded, tmp_path / "b", recorded_dir=tmp_path / "nowhere")
