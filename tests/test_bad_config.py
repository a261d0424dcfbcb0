"""Bad configuration through the real entry points.

Every row is one command a user could type, `python -m pipeline.<entry> <args>`, run in its own process with its
own temporary MLflow store, data cache and Hydra folder (forked from a warm interpreter: tests/entry_zygote.py).
Each must exit non-zero with a message naming the key (or file, or URI) and the value, before any heavy work:
no dataset written, and no MLflow run left RUNNING (for config errors, no store is even created).

The table is data; SWEEP_ROWS hold the rows for distributed training and for sweeps
(`python -m pipeline.train -m hparams_search=...`), which must also leave no study trial RUNNING.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.entry_zygote import run_entry_points

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Row:
    id: str
    args: tuple[str, ...]  # `{tmp}` stands for the row's own temporary folder
    says: tuple[str, ...]  # fragments the error output must contain (`{tmp}` too)
    entry: str = "train"
    uri: str | None = None  # MLFLOW_TRACKING_URI; default: a SQLite file in the row's folder
    files: dict[str, str] = field(default_factory=dict)  # config files to write under {tmp}/conf
    traceback: bool = False  # True only where the output is not ours to shape (see the row)


CONFIG_ROWS = [
    Row("negative-physics-weight", ("loss.physics_weight=-0.1",), ("loss.physics_weight=-0.1", ">= 0")),
    Row("nan-consistency-weight", ("loss.consistency_weight=nan",), ("loss.consistency_weight=nan", "finite")),
    Row("zero-learning-rate", ("training.learning_rate=0",), ("training.learning_rate=0", "> 0")),
    Row("zero-epochs", ("training.epochs=0",), ("training.epochs=0", "positive")),
    Row("negative-batch-size", ("training.batch_size=-1",), ("training.batch_size=-1", "positive")),
    Row("unknown-key", ("data.nope=1",), ("data.nope", "not in 'DataConfig'")),
    Row("unknown-section", ("+trainer.epochs=3",), ("trainer", "not in 'ExperimentConfig'")),
    Row("wrong-type-int", ("training.epochs=abc",), ("training.epochs", "'abc'")),
    Row("wrong-type-bool", ("training.mixed_precision=maybe",), ("training.mixed_precision", "'maybe'")),
    Row("window-too-small", ("data.window=8",), ("data.window=8", "at least 16")),
    Row("window-longer-than-recording", ("data.window=16384",), ("data.window=16384", "longer than a recording")),
    Row("hop-longer-than-window", ("data.hop=2048",), ("data.hop=2048", "1..data.window")),
    Row("hidden-not-divisible-by-heads", ("model.hidden_dim=30",), ("model.hidden_dim=30", "model.n_heads=4")),
    Row("too-few-classes", ("model.output_dim=1",), ("model.output_dim=1", "at least 2 classes")),
    Row("unknown-model", ("model.name=fno",), ("model.name='fno'", "agt_no")),
    Row("unknown-data-source", ("data.source=hdf5",), ("data.source='hdf5'", "synthetic")),
    Row("unknown-data-group", ("data=hdf5",), ("data/hdf5", "cwru", "synthetic")),
    Row("cwru-without-path", ("data=cwru",), ("data.path=None", "required")),
    Row("cwru-missing-folder", ("data=cwru", "data.path={tmp}/nowhere"), ("data.path='{tmp}/nowhere'",)),
    Row(
        "cwru-wrong-rate",
        ("data=cwru", "data.path={tmp}", "data.sample_rate=48000"),
        ("data.sample_rate=48000", "12000 Hz"),
    ),
    Row("prepare-unknown-split", ("data.split=random",), ("data.split='random'",), entry="prepare"),
    Row(
        "prepare-fault-size-needs-location",
        ("data.task=fault_class", "data.split=fault_size"),
        ("data.split='fault_size'", "needs data.task=fault_location"),
        entry="prepare",
    ),
    Row(
        "prepare-unknown-bearing",
        ("data.bearing=6205",),
        ("data.bearing='6205'", "skf_6205", "nsk_6203"),
        entry="prepare",
    ),
    Row(
        "prepare-test-load-also-trained",
        ("data.split=load_shift", "data.test_loads=[2,3]"),
        ("data.test_loads=[2, 3]", "data.train_loads=[0, 1, 2]"),
        entry="prepare",
    ),
    Row("evaluate-one-ece-bin", ("evaluate.ece_bins=1",), ("evaluate.ece_bins=1",), entry="evaluate"),
    Row(
        "register-unknown-metric",
        ("registry.metric=accuracy",),
        ("registry.metric='accuracy'", "test/"),
        entry="register",
    ),
    Row("workflow-val-fraction", ("data.val_fraction=0.7",), ("data.val_fraction=0.7",), entry="workflow"),
]

FILE_ROWS = [
    Row(
        "group-file-bad-value",
        ("--config-dir={tmp}/conf", "data=broken"),
        ("data.window=-1",),
        files={"data/broken.yaml": "source: synthetic\nwindow: -1\n"},
    ),
    Row(
        "group-file-unknown-key",
        ("--config-dir={tmp}/conf", "data=typo"),
        ("data.windw", "typo"),
        files={"data/typo.yaml": "windw: 512\n"},
    ),
    # Hydra reports a YAML syntax error with a traceback; its last lines name the file, line and problem.
    Row(
        "group-file-bad-yaml",
        ("--config-dir={tmp}/conf", "data=badyaml"),
        ("{tmp}/conf/data/badyaml.yaml", "line 1", "expected ',' or ']'"),
        files={"data/badyaml.yaml": "window: [1, 2\n"},
        traceback=True,
    ),
    Row(
        "primary-file-bad-value",
        ("--config-dir={tmp}/conf", "--config-name=bad_experiment"),
        ("training.epochs=-3",),
        files={"bad_experiment.yaml": "defaults:\n  - config\n  - _self_\ntraining:\n  epochs: -3\n"},
    ),
    Row("primary-file-missing", ("--config-name=no_such_experiment",), ("no_such_experiment",)),
]

STORE_ROWS = [
    Row("store-unknown-scheme", (), ("MLFLOW_TRACKING_URI='bogus://nowhere'", "unsupported"), uri="bogus://nowhere"),
    Row(
        "store-unreachable-database",
        (),
        ("127.0.0.1:1/mlflow", "Connection refused", "***"),
        uri="postgresql://av:secret@127.0.0.1:1/mlflow",
    ),
    Row("store-plain-folder", (), ("MLFLOW_TRACKING_URI='{tmp}/mlruns'", "database backend"), uri="{tmp}/mlruns"),
]


def _sweep(*args: str) -> tuple[str, ...]:
    """A sweep command (`python -m pipeline.train -m hparams_search=physics_weights ...`) on the row's own journal."""
    return (
        "-m",
        "hparams_search=physics_weights",
        "hydra.sweeper.storage={tmp}/study.log",
        "hydra.sweep.dir={tmp}/multirun",
        *args,
    )


SWEEP_ROWS = [
    Row("too-many-ranks", ("distributed.nproc_per_node=64",), ("distributed.nproc_per_node=64", "must be in 1..")),
    Row("nccl-without-gpu", ("distributed.backend=nccl",), ("distributed.backend='nccl'", "CUDA")),
    Row(
        "bad-rendezvous-endpoint",
        ("distributed.rdzv_endpoint=localhost",),
        ("distributed.rdzv_endpoint='localhost'", "host:port"),
    ),
    Row("resume-not-a-run-id", ("training.resume=yesterday",), ("training.resume='yesterday'", "run id")),
    Row("unknown-search", ("-m", "hparams_search=nope"), ("hparams_search/nope", "physics_weights")),
    Row(
        "sweep-unknown-metric",
        _sweep("hydra.sweeper.metrics=[val/acc]"),
        ("hydra.sweeper.metrics=['val/acc']", "val/accuracy"),
    ),
    Row(
        "sweep-unknown-direction",
        _sweep("hydra.sweeper.directions=[upwards]"),
        ("hydra.sweeper.directions=['upwards']", "maximize"),
    ),
    Row("sweep-zero-trials", _sweep("hydra.sweeper.n_trials=0"), ("hydra.sweeper.n_trials=0", "positive")),
    Row(
        "sweep-unknown-sampler",
        _sweep("hydra.sweeper.sampler.name=cmaes"),
        ("hydra.sweeper.sampler.name='cmaes'", "tpe"),
    ),
    Row("sweep-unknown-key", _sweep("loss.nope=interval(0.1,1)"), ("hydra.sweeper.params.loss.nope", "no such key")),
    Row(
        "sweep-bad-expression",
        _sweep("loss.physics_weight=tag(log,interval(0,1))"),
        ("hydra.sweeper.params.loss.physics_weight", "must start above 0"),
    ),
    Row(
        "sweep-storage-unreachable",
        (
            "-m",
            "hparams_search=physics_weights",
            "hydra.sweep.dir={tmp}/multirun",
            "hydra.sweeper.storage=postgresql://nobody@127.0.0.1:1/optuna",
        ),
        ("hydra.sweeper.storage='postgresql://nobody@127.0.0.1:1/optuna'", "cannot use this storage"),
    ),
]

ROWS = CONFIG_ROWS + FILE_ROWS + STORE_ROWS + SWEEP_ROWS


def prepare_row(row: Row, tmp: Path) -> dict:
    """The row's folder and config files; returns its command as a job for tests/entry_zygote.py."""
    tmp.mkdir(parents=True)
    for name, text in row.files.items():
        (tmp / "conf" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / "conf" / name).write_text(text)
    uri = (row.uri or f"sqlite:///{tmp / 'mlflow.db'}").format(tmp=tmp)
    args = [arg.format(tmp=tmp) for arg in row.args] + [f"data.cache_dir={tmp}/data", f"hydra.run.dir={tmp}/hydra"]
    return {
        "entry": row.entry,
        "args": args,
        "env": {**os.environ, "MLFLOW_TRACKING_URI": uri, "OMP_NUM_THREADS": "1"},
        "stdout": str(tmp / "stdout.txt"),
        "stderr": str(tmp / "stderr.txt"),
    }


@dataclass(frozen=True)
class Outcome:
    tmp: Path
    returncode: int
    stderr: str


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, Outcome]:
    """Every row's command, run once: row id -> its folder, exit status and error output."""
    root = tmp_path_factory.mktemp("bad-config")
    jobs = run_entry_points([prepare_row(row, root / row.id) for row in ROWS])
    return {
        row.id: Outcome(root / row.id, job["returncode"], Path(job["stderr"]).read_text())
        for row, job in zip(ROWS, jobs)
    }


def running_runs(db: Path) -> list[str]:
    """Ids of RUNNING runs in a SQLite store (none when the store was never created)."""
    if not db.exists():
        return []
    with sqlite3.connect(db) as connection:
        return [r[0] for r in connection.execute("SELECT run_uuid FROM runs WHERE status = 'RUNNING'")]


def test_the_table_has_at_least_25_rows():
    assert len(ROWS) >= 25 and len({row.id for row in ROWS}) == len(ROWS)


@pytest.mark.slow
@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_bad_config_exits_before_work_naming_key_and_value(outcomes, row):
    out = outcomes[row.id]
    assert out.returncode != 0
    for fragment in row.says:
        assert fragment.format(tmp=out.tmp) in out.stderr, (fragment, out.stderr[-3000:])
    assert ("Traceback" in out.stderr) == row.traceback, out.stderr[-3000:]
    assert "secret" not in out.stderr  # a password in the store URI is never printed
    assert not (out.tmp / "data").exists(), "a dataset was prepared before the error"
    assert running_runs(out.tmp / "mlflow.db") == []
    if row.uri is None:
        assert not (out.tmp / "mlflow.db").exists(), "a run was started before the config was checked"


@pytest.mark.slow
@pytest.mark.parametrize("row_id", ["cwru-wrong-rate", "store-unknown-scheme"])
def test_a_fresh_python_dash_m_says_the_same(outcomes, row_id, tmp_path):
    """The zygote is only a shortcut: a plain `python -m` of the same row exits the same way, same message."""
    row, fast = next(r for r in ROWS if r.id == row_id), outcomes[row_id]
    job = prepare_row(row, tmp_path / row_id)
    result = subprocess.run(
        [sys.executable, "-m", f"pipeline.{row.entry}", *job["args"]],
        cwd=REPO,
        env=job["env"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == fast.returncode
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line == fast.stderr.strip().splitlines()[-1].replace(str(fast.tmp), str(tmp_path / row_id))
