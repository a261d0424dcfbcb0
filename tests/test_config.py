"""The config schema: Hydra composition, the seed's mapping access, and errors that name key and value."""

import pytest

from pipeline.config import ConfigError, ExperimentConfig, load_experiment_config, to_experiment_config


def test_default_composition_validates(compose_config):
    config = to_experiment_config(compose_config())
    assert isinstance(config, ExperimentConfig)
    assert config.data.source == "synthetic"
    assert config.training["epochs"] == config.training.epochs  # the seed reads sections as mappings
    assert "learning_rate" in config.training and config.training.get("nope", 7) == 7


def test_overrides_reach_the_config(compose_config):
    config = to_experiment_config(compose_config("loss.physics_weight=0.3", "training.epochs=20", "loss=data_only"))
    assert config.training.epochs == 20
    # Hydra applies group choices before value overrides: the data-only group, then the explicit weight.
    assert config.loss.physics_weight == 0.3 and config.loss.consistency_weight == 0.0


@pytest.mark.parametrize(
    "override, key, value",
    [
        ("data.window=-5", "data.window", "-5"),
        ("data.hop=0", "data.hop", "0"),
        ("data.snr_db=200", "data.snr_db", "200"),
        ("data.source=hdf5", "data.source", "hdf5"),
        ("data.split=random", "data.split", "random"),
        ("data.recordings_per_load=2", "data.recordings_per_load", "2"),
        ("data.duration_s=0.01", "data.duration_s", "0.01"),
        ("data.val_fraction=0.7", "data.val_fraction", "0.7"),
        ("data.task=fault_size", "data.task", "fault_size"),
        ("data.bearing=skf", "data.bearing", "skf"),
        ("data.task=fault_class data.split=fault_size", "data.split", "fault_size"),  # needs fault_location
        ("data=cwru data.path=. data.bearing=random", "data.bearing", "random"),  # the simulator's only
        ("data.split=group", "data.split", "group"),  # reads a manifest's column: data=files only
        ("data.split=manifest", "data.split", "manifest"),
        ("data.test_groups=[pump_b,pump_b]", "data.test_groups", "['pump_b', 'pump_b']"),
        ("data.test_fault_size=0.028", "data.test_fault_size", "0.028"),
        ("data.train_loads=[0,4]", "data.train_loads", "[0, 4]"),
        ("data.test_loads=[]", "data.test_loads", "[]"),
        ("data.test_loads=[0]", "data.test_loads", "[0]"),  # also a training load
        ("loss.physics_weight=-0.1", "loss.physics_weight", "-0.1"),
        ("loss.consistency_weight=nan", "loss.consistency_weight", "nan"),
        ("training.epochs=0", "training.epochs", "0"),
        ("training.batch_size=-1", "training.batch_size", "-1"),
        ("training.learning_rate=0", "training.learning_rate", "0"),
        ("training.grad_clip=0", "training.grad_clip", "0"),
        ("model.hidden_dim=30", "model.hidden_dim", "30"),
        ("model.dropout=1.5", "model.dropout", "1.5"),
        ("model.output_dim=1", "model.output_dim", "1"),
        ("readout.ood_quantile=1", "readout.ood_quantile", "1"),
        ("readout.ood_quantile=0", "readout.ood_quantile", "0"),
    ],
)
def test_bad_values_name_key_and_value(compose_config, override, key, value):
    with pytest.raises(ConfigError) as err:
        to_experiment_config(compose_config(*override.split()))
    assert key in str(err.value) and value in str(err.value)


def test_data_choices_compose(compose_config):
    config = to_experiment_config(
        compose_config(
            "data.split=fault_size", "data.task=fault_location", "data.test_fault_size=0.007", "data.bearing=nsk_6203"
        )
    )
    assert (config.data.split, config.data.task, config.data.test_fault_size) == ("fault_size", "fault_location", 0.007)
    shifted = to_experiment_config(
        compose_config("data.split=load_shift", "data.train_loads=[0,1]", "data.test_loads=[2,3]")
    )
    assert (shifted.data.train_loads, shifted.data.test_loads) == ([0, 1], [2, 3])
    assert config.model.output_dim is None  # the dataset's number of classes


def test_config_imports_no_torch():
    import subprocess
    import sys

    code = "import sys, pipeline.config; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_cwru_needs_an_existing_path(compose_config, tmp_path):
    with pytest.raises(ConfigError, match="data.path"):
        to_experiment_config(compose_config("data=cwru"))
    with pytest.raises(ConfigError, match="not an existing folder"):
        to_experiment_config(compose_config("data=cwru", f"data.path={tmp_path / 'missing'}"))
    config = to_experiment_config(compose_config("data=cwru", f"data.path={tmp_path}"))
    assert config.data.path == str(tmp_path)


def test_load_experiment_config_reads_yaml(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("training:\n  epochs: 3\n  learning_rate: 0.01\nloss:\n  physics_weight: 0.2\n")
    config = load_experiment_config(path)
    assert config.training["epochs"] == 3 and config.loss.physics_weight == 0.2
    assert config.data.window == 1024  # unspecified keys keep their defaults


@pytest.mark.parametrize(
    "text, message",
    [
        ("training:\n  epochs: three\n", "training.epochs"),
        ("training:\n  epoch: 3\n", "training.epoch"),
        ("trainer:\n  epochs: 3\n", "unknown section(s): trainer"),
        ("- a\n- b\n", "mapping"),
        ("training: [1, 2\n", "not valid YAML"),
    ],
)
def test_load_experiment_config_rejects_bad_files(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_experiment_config(path)


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_experiment_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["a.b=1 c=2"], ["a.b=1", "c=2"]),  # MLproject's quoted {overrides}
        (["x=1", ""], ["x=1"]),  # MLproject's empty default {overrides}
        (["tracking.experiment=my runs"], ["tracking.experiment=my runs"]),  # a value with a space stays whole
        (["+extra=1 ~gone"], ["+extra=1", "~gone"]),
    ],
)
def test_packed_overrides_are_unpacked(argv, expected):
    from pipeline.stages.command_line import split_packed_overrides

    assert split_packed_overrides(argv) == expected


def test_a_group_split_composes_from_mlprojects_packed_overrides(compose_config, tmp_path):
    from pipeline.stages.command_line import split_packed_overrides

    manifest = tmp_path / "manifest.csv"
    manifest.touch()
    packed = f"data.manifest={manifest} data.split=group data.test_groups=[pump_b,pump_c]"  # -P overrides="..."
    config = to_experiment_config(compose_config("data=files", *split_packed_overrides([packed])))
    assert (config.data.split, config.data.test_groups) == ("group", ["pump_b", "pump_c"])
    with pytest.raises(ConfigError, match=r"data.test_groups=\[\]: must name the manifest's group\(s\)"):
        to_experiment_config(compose_config("data=files", f"data.manifest={manifest}", "data.split=group"))
