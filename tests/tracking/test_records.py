"""An id read from somewhere that the tracking store in force does not hold fails in one line naming the id,
where it was read, and the store asked (pipeline/tracking/records.py)."""

import mlflow
import pytest

from pipeline.config import ConfigError
from pipeline.tracking.records import MissingRecordError, recorded_run, run_exists
from pipeline.tracking.run import stage_run

NOWHERE = "0123456789abcdef0123456789abcdef"


def test_a_run_is_found_or_named_missing_with_the_store_asked(mlflow_store):
    with mlflow.start_run() as run:
        pass

    assert run_exists(run.info.run_id) and not run_exists(NOWHERE)
    assert recorded_run(run.info.run_id, "somewhere").info.run_id == run.info.run_id
    with pytest.raises(MissingRecordError) as missing:
        recorded_run(NOWHERE, "tracking.evaluation_run_id")
    assert str(missing.value) == (
        f"tracking.evaluation_run_id names MLflow run {NOWHERE}, which the tracking store {mlflow_store} does not "
        "hold (deleted, or recorded in another store: set MLFLOW_TRACKING_URI to that store)"
    )
    assert isinstance(missing.value, ConfigError)  # the command line shows it as a config error, exit 2


def test_a_stage_under_a_parent_run_the_store_lacks_starts_no_run(mlflow_store):
    with pytest.raises(MissingRecordError, match=f"the parent run id names MLflow run {NOWHERE}"):
        with stage_run("train", {}, experiment="av-pino", parent_run_id=NOWHERE):
            pytest.fail("the stage ran")

    assert mlflow.search_runs(search_all_experiments=True, output_format="list") == []
