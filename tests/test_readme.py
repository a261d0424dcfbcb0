"""The README is a guide that stays true: it opens with the two set-up commands, stays short, and every command
in it is run by a test or a bench; its stage commands are run here as written (on a tiny config)."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest

from tests.data.own_recordings import write_recordings
from tests.entry_zygote import run_entry_points
from tests.tiny import TINY as TINY_DATA_MODEL

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
SETUP = [
    "pip install -e . && MLFLOW_TRACKING_URI=sqlite:///mlruns/mlflow.db mlflow run . --env-manager local "
    "--experiment-name av-pino",
    "make test",
]
TINY = [*TINY_DATA_MODEL, "training.epochs=1"]

# A README command (how it starts) -> where it is run: a test (file::function) or CI's script.
RUN_BY = {
    SETUP[0]: "tests/conftest.py::pipeline_store",
    "make test": ".ci/run",
    "mlflow run . --env-manager local -P data=files": (
        "tests/stages/test_workflow.py::test_your_own_recordings_run_end_to_end"
    ),
    SETUP[0].removeprefix("pip install -e . && ") + " -P data=files": (
        "tests/test_readme.py::test_the_group_split_command_composes_as_written"
    ),
    "python -m pipeline.prepare": "tests/test_readme.py::test_the_stage_commands_run_as_written",
    "python -m pipeline.train loss.physics_weight": "tests/test_readme.py::test_the_stage_commands_run_as_written",
    "python -m pipeline.evaluate": "tests/test_readme.py::test_the_stage_commands_run_as_written",
    "python -m pipeline.register": "tests/test_readme.py::test_the_stage_commands_run_as_written",
    "python -m pipeline.predict": "tests/test_readme.py::test_the_stage_commands_run_as_written",
    "mlflow ui": "tests/tracking/test_mlflow_ui.py::mlflow_ui",
    "python -m pipeline.train -m hparams_search=physics_weights": "tests/sweep/test_workers.py::sweep_command",
    "mlflow models serve -m models:/av-pino@champion": "bench/serving_benchmarks.py::served",
    "mlflow server --backend-store-uri postgresql://": "tests/tracking/conftest.py::mlflow_server",
}


def shell_commands(markdown: str) -> list[str]:
    """Every command of the ```bash blocks: continuation lines joined, comments and `export` lines left out."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", markdown, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            command = re.sub(r"\s+#.*$", "", line).strip()
            if command and not command.startswith(("#", "export ")):
                commands.append(re.sub(r"\s+", " ", command))
    return commands


def test_the_readme_opens_with_the_two_setup_commands_and_stays_short():
    first_block = re.search(r"```bash\n(.*?)```", README, flags=re.S).group(1)
    assert first_block.strip().splitlines() == SETUP
    assert README.index("```bash") < README.index("\n## ")  # before any section
    assert len(README.splitlines()) <= 150
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_every_readme_command_is_run_by_a_test_or_a_bench():
    for command in shell_commands(README):
        runners = [runner for start, runner in RUN_BY.items() if command.startswith(start)]
        assert runners, f"README command not run by any test or bench: {command}"
        path, _, name = runners[0].partition("::")
        source = (REPO / path).read_text()
        assert not name or re.search(rf"def {name}\b", source), f"{runners[0]} does not exist (runs: {command})"


def test_the_group_split_command_composes_as_written(compose_config, tmp_path):
    """The README's group split: MLproject's `data` and packed `overrides` parameters compose into a valid config
    holding the test group (the list override survives the packing)."""
    from pipeline.config import to_experiment_config
    from pipeline.stages.command_line import split_packed_overrides

    [command] = [c for c in shell_commands(README) if "data.split=group" in c]
    words = shlex.split(command)
    params = dict(words[i + 1].split("=", 1) for i, word in enumerate(words) if word == "-P")
    manifest = tmp_path / "manifest.csv"
    manifest.touch()
    overrides = params["overrides"].replace("recordings/manifest.csv", str(manifest))
    config = to_experiment_config(compose_config(f"data={params['data']}", *split_packed_overrides([overrides])))
    assert (config.data.source, config.data.split, config.data.test_groups) == ("files", "group", ["pump_b"])


def test_every_linked_docs_page_exists():
    for link in re.findall(r"\]\((docs/[^)#]+)", README):
        assert (REPO / link).is_file(), link


@pytest.mark.slow
def test_the_stage_commands_run_as_written(tmp_path, cwru_dir):
    """The README's stage commands, in order, each with the tiny config appended (later overrides win), into a
    private store: every one exits 0."""
    stages = re.search(r"Each stage runs alone.*?```bash\n.*?```", README, flags=re.S).group(0)
    cwru = [c for c in shell_commands(README) if "data=cwru" in c]
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    manifest = write_recordings(tmp_path / "recordings", duration_s=0.4)
    jobs = []
    for i, command in enumerate(cwru + shell_commands(stages)):
        for written, private in {
            "/path/to/cwru": str(cwru_dir),
            "input=recordings/manifest.csv": f"input={manifest}",
            "figure=diagnosis.html": f"figure={tmp_path / 'diagnosis.html'}",
        }.items():
            command = command.replace(written, private)
        program, dash_m, module, *args = shlex.split(command)
        assert (program, dash_m) == ("python", "-m") and module.startswith("pipeline.")
        extra = [f"hydra.run.dir={tmp_path / 'hydra'}"]
        if module == "pipeline.predict":
            extra.append(f"output={tmp_path / 'diagnoses.csv'}")
        if module in ("pipeline.prepare", "pipeline.train"):
            extra += [f"data.cache_dir={tmp_path / 'data'}", *([] if "data=cwru" in args else TINY)]
        jobs.append(
            {
                "entry": module.removeprefix("pipeline."),
                "args": [*args, *extra],
                "env": env,
                "stdout": str(tmp_path / f"{i}.out"),
                "stderr": str(tmp_path / f"{i}.err"),
            }
        )
    for job in run_entry_points(jobs):
        assert job["returncode"] == 0, (job["args"], Path(job["stderr"]).read_text()[-2000:])
    diagnoses = Path(jobs[-1]["stdout"]).read_text().splitlines()
    assert diagnoses[0].split()[:2] == ["recording", "diagnosis"] and len(diagnoses) == 1 + 16  # one per recording
    assert len(list(tmp_path.glob("diagnosis-*.html"))) == 16 and (tmp_path / "diagnoses.csv").is_file()
