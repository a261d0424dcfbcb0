"""What a user sees of the pipeline's runs in the MLflow UI: `mlflow ui` on a store the pipeline made, driven by
headless Chromium.

The store holds the whole pipeline run twice (the second registers the same evaluation again, which cannot beat
itself, so `av-pino` ends with a `champion` and a different `challenger`) and a two-trial sweep. MLflow 3.17's UI
picks an experiment's pages by the sidebar's GenAI / Model training switch, which the browser remembers, so the
user here picks Model training once, as someone training models does. Each page checked is saved as a screenshot
in test-artifacts/mlflow_ui/, named in every assertion message.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass

import mlflow
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from mlflow.entities import Run

from pipeline.config import register_configs, to_experiment_config
from pipeline.stages.predict import diagnose, write_figures
from pipeline.stages.workflow import run_pipeline
from pipeline.sweep.config import SweepConfig
from pipeline.sweep.sweeper import run_sweep
from pipeline.tracking.registry import CHALLENGER, CHAMPION
from pipeline.tracking.run import runs_table_url
from pipeline.tracking.store import REPO_ROOT
from tests.sweep.conftest import SPACE, TINY

if shutil.which("chromium") is None:
    pytest.skip(
        "needs Debian's chromium on PATH (apt-get install chromium; .ci/run installs it)", allow_module_level=True
    )
from playwright.sync_api import Locator, Page, expect, sync_playwright  # noqa: E402

pytestmark = pytest.mark.slow  # a browser on `mlflow ui`, over whole pipelines and a sweep

SHOTS = REPO_ROOT / "test-artifacts" / "mlflow_ui"
WAIT_MS = 30_000  # for a page of the UI to render on a busy two-core machine
SERVER_START_S = 120
# No background job runner (it starts half a dozen worker processes for GenAI jobs), no usage reports.
SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}


@dataclass
class Store:
    uri: str
    experiment_id: str
    pipeline: Run  # the first pipeline run: every stage ran under it
    stages: dict[str, Run]  # its stage runs: prepare, train, evaluate, register
    sweep: Run
    trials: list[Run]
    aliases: dict[str, str]  # alias -> version of the registered model av-pino


def children(parent: Run) -> list[Run]:
    return mlflow.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'", output_format="list"
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    """A store the pipeline made: two whole pipeline runs and a tiny sweep, in one experiment."""
    root = tmp_path_factory.mktemp("ui-store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    register_configs()

    def config(*overrides: str):
        with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
            return to_experiment_config(
                compose(
                    config_name="config",
                    overrides=[*TINY, "training.epochs=2", f"data.cache_dir={root / 'data'}", *overrides],
                )
            )

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        first = run_pipeline(config())
        run_pipeline(config("registry.max_ece_increase=0"))  # a new register policy: only that stage runs again
        sweep = run_sweep(
            config("training.epochs=1"),
            SweepConfig(
                study_name="physics-weights",
                storage=str(root / "study.log"),
                n_trials=2,
                params=SPACE,
                sampler={"name": "random", "seed": 0},
                pruner={"name": "nop"},
            ),
        )
        pipeline = mlflow.get_run(first.run_id)
        stages = {run.data.tags["stage"]: run for run in children(pipeline)}
        sweep_run = mlflow.get_run(sweep.parent_run_id)
        aliases = {k: str(v) for k, v in mlflow.MlflowClient().get_registered_model("av-pino").aliases.items()}
    assert aliases[CHAMPION] != aliases[CHALLENGER], f"the second registration was promoted: {aliases}"
    return Store(uri, pipeline.info.experiment_id, pipeline, stages, sweep_run, children(sweep_run), aliases)


@pytest.fixture(scope="module")
def mlflow_ui(store, serving_bench, tmp_path_factory) -> str:
    """`mlflow ui` on `store` at a free 127.0.0.1 port, in its own process group; yields its base URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("mlflow-ui") / "server.log"
    with open(log, "w") as out:
        server = subprocess.Popen(
            [
                "mlflow",
                "ui",
                "--backend-store-uri",
                store.uri,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            env={**os.environ, **SERVER_ENV},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + SERVER_START_S
        while serving_bench.invoke(port, None, path="/health")[0] != 200:
            assert server.poll() is None and time.monotonic() < deadline, f"mlflow ui did not start; see {log}"
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


@pytest.fixture(scope="module")
def page(mlflow_ui) -> Page:
    """One tab of a fresh headless Chromium on the UI. The tests navigate it as a user would, one after another,
    starting from the link the pipeline prints."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), headless=True)
        page = browser.new_page(base_url=mlflow_ui, viewport={"width": 1920, "height": 1400})
        yield page
        browser.close()


@contextlib.contextmanager
def screenshot(page: Page, name: str):
    """Save the page as test-artifacts/mlflow_ui/`name`.png when the block ends, passed or failed; yields
    the text assertion messages end with."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    try:
        yield f"(screenshot: {path})"
    finally:
        page.screenshot(path=path)


def seen(locator: Locator, message: str) -> None:
    expect(locator, message).to_be_visible(timeout=WAIT_MS)


def run_link(page: Page, run: Run) -> Locator:
    """The link to `run` in a table: its name, pointing at its page."""
    return page.get_by_role("link", name=run.info.run_name, exact=True).and_(
        page.locator(f'[href$="/runs/{run.info.run_id}"]')
    )


def expand(page: Page, parent: Run, shot: str) -> None:
    """Unfold `parent`'s child runs in the runs table, by the button in its row."""
    row = page.get_by_role("row").filter(has=run_link(page, parent))
    seen(row, f"{parent.info.run_name} is not in the runs table {shot}")
    row.get_by_role("button").click()


def test_the_link_the_pipeline_prints_opens_the_runs_table_with_the_pipeline_and_its_stages(page, store, mlflow_ui):
    with screenshot(page, "experiment_runs") as shot:
        page.goto(runs_table_url(mlflow_ui, store.experiment_id))  # what `browse_hint` prints

        seen(page.get_by_role("heading", name="Runs", exact=True), f"av-pino did not open on its runs table {shot}")
        seen(page.get_by_role("button", name="Model training"), f"the UI is not in its Model training view {shot}")
        assert f"/experiments/{store.experiment_id}/runs" in page.url, shot
        expand(page, store.pipeline, shot)
        for stage in ("prepare", "train", "evaluate", "register"):
            seen(run_link(page, store.stages[stage]), f"the {stage} run is not listed under the pipeline {shot}")


def test_a_train_run_charts_its_physics_metrics(page, store):
    train = store.stages["train"]
    physics = sorted(name for name in train.data.metrics if name.startswith("physics/"))
    assert physics, "the train run logged no physics/* metric"
    with screenshot(page, "train_run_model_metrics") as shot:
        page.goto(f"/#/experiments/{store.experiment_id}/runs/{train.info.run_id}")
        page.get_by_role("tab", name="Model metrics").click(timeout=WAIT_MS)
        page.get_by_placeholder("Search metric charts").fill("physics/")

        for name in physics:  # each chart's legend names the run and the metric it plots
            seen(
                page.get_by_text(f"{train.info.run_name} ({name})", exact=True),
                f"no chart of {name} on the train run's Model metrics tab {shot}",
            )


def test_the_sweep_is_a_run_whose_page_lists_its_trial_runs(page, store):
    assert len(store.trials) == 2
    with screenshot(page, "sweep_run") as shot:
        page.goto(f"/#/experiments/{store.experiment_id}/runs")
        run_link(page, store.sweep).click(timeout=WAIT_MS)

        seen(
            page.get_by_role("heading", name=store.sweep.info.run_name, exact=True),
            f"the sweep's run page did not open {shot}",
        )
        for trial in store.trials:
            seen(run_link(page, trial), f"trial run {trial.info.run_name} is not among the sweep's child runs {shot}")


def test_the_registered_model_shows_champion_and_challenger(page, store):
    with screenshot(page, "registered_model") as shot:
        page.goto("/#/models/av-pino")
        for alias, version in store.aliases.items():
            row = page.get_by_role("row").filter(has=page.get_by_role("link", name=f"Version {version}", exact=True))
            seen(row.get_by_text(f"@ {alias}"), f"version {version} does not show alias {alias} {shot}")


def test_the_evaluate_run_lists_its_diagnosis_figures_and_one_opens_in_the_browser(page, store, tmp_path):
    evaluate = store.stages["evaluate"]
    client = mlflow.MlflowClient(store.uri)
    figures = [a.path for a in client.list_artifacts(evaluate.info.run_id, "diagnosis")]
    assert figures and all(path.endswith(".html") for path in figures)
    with screenshot(page, "evaluate_run_artifacts") as shot:
        page.goto(f"/#/experiments/{store.experiment_id}/runs/{evaluate.info.run_id}/artifacts")
        seen(page.get_by_text("diagnosis", exact=True).first, f"no diagnosis folder among the artifacts {shot}")

    # What `python -m pipeline.predict input=<recording> figure=diagnosis.html` writes, opened as a user would.
    recording = tmp_path / "pump.npy"
    np.save(recording, np.random.default_rng(0).standard_normal(12_000))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", store.uri)
        [figure] = write_figures(diagnose(recording, "models:/av-pino@champion"), tmp_path / "diagnosis.html")
    with screenshot(page, "diagnosis_figure") as shot:
        page.goto(figure.as_uri())
        seen(page.locator(".main-svg").first, f"plotly drew nothing offline {shot}")
        for family in ("BPFO", "BPFI", "2×BSF"):
            seen(page.locator(".legend").get_by_text(family, exact=True), f"no {family} lines in the legend {shot}")
