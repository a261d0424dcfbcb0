"""Train checkpoints on the tracking server, so a job killed on one machine continues on any other: uploads under
new names with the run tag `checkpoint.latest` moved only after success, a heartbeat in the run's tags, and the
local `last.pt` as a cache of the uploads (docs/faults.md#how-two-of-these-hold)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path, PurePosixPath
from typing import Any, Mapping, Optional

import mlflow
import torch
from mlflow.entities import RunTag
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

from pipeline.common.atomic_files import fsync_dir, remove_abandoned, temp_path
from pipeline.tracking.liveness import HEARTBEAT_S, Heartbeat
from pipeline.training.checkpoint import CheckpointError, described
from pipeline.training.training_engine import CHECKPOINT_NAME

ARTIFACT_DIR = "checkpoints"
LATEST_TAG = "checkpoint.latest"  # artifact path of the run's newest completely uploaded checkpoint
HEARTBEAT_TAG = "heartbeat"  # UTC epoch seconds of the owner's last beat
HEARTBEAT_INTERVAL_TAG = "heartbeat.interval_s"  # the owner's promised seconds between beats


def artifact_path(epoch: int) -> str:
    return f"{ARTIFACT_DIR}/epoch-{epoch:04d}.pt"


def heartbeat_now() -> RunTag:
    return RunTag(HEARTBEAT_TAG, f"{time.time():.0f}")


def last_heartbeat(tags: Mapping[str, str]) -> tuple[Optional[float], float]:
    """(last beat in UTC epoch seconds or None, the owner's interval) from a run's tags."""
    beat = tags.get(HEARTBEAT_TAG)
    return (float(beat) if beat else None), float(tags.get(HEARTBEAT_INTERVAL_TAG, HEARTBEAT_S))


class RunKeeper:
    """Rank 0's upkeep of its train run on the tracking server, for the `with` block: the heartbeat thread,
    a per-epoch callback that makes it beat at once, and `upload`, the engine's `on_checkpoint` hook."""

    def __init__(self, run_id: str, heartbeat_s: float = HEARTBEAT_S):
        self.run_id, self.heartbeat_s = run_id, heartbeat_s
        self.client = mlflow.MlflowClient()
        run = self.client.get_run(run_id)
        self.latest: Optional[str] = run.data.tags.get(LATEST_TAG)
        self._repository = get_artifact_repository(run.info.artifact_uri, tracking_uri=mlflow.get_tracking_uri())
        self._heartbeat = Heartbeat(self.beat, heartbeat_s)
        self._upload_failing = self._delete_failed = False

    def __enter__(self) -> "RunKeeper":
        self._heartbeat.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._heartbeat.__exit__(*exc)

    def __call__(self, epoch: int, metrics: Mapping[str, float]) -> None:
        self._heartbeat.poke()

    def beat(self) -> None:
        self.client.log_batch(
            self.run_id, tags=[heartbeat_now(), RunTag(HEARTBEAT_INTERVAL_TAG, f"{self.heartbeat_s:g}")]
        )

    def upload(self, path: Path, epoch: int) -> None:
        """Upload the checkpoint `path` of `epoch` under its own name, then move LATEST_TAG to it."""
        name = artifact_path(epoch)
        try:
            with tempfile.TemporaryDirectory(prefix=".upload-", dir=path.parent) as staging:
                staged = Path(staging, PurePosixPath(name).name)  # log_artifact names the artifact after the file
                try:
                    os.link(path, staged)
                except OSError:  # a file system without hard links
                    shutil.copyfile(path, staged)
                self.client.log_artifact(self.run_id, str(staged), ARTIFACT_DIR)
            self.client.set_tag(self.run_id, LATEST_TAG, name)
        except Exception as err:  # any store or network error: training must go on
            if not self._upload_failing:
                warnings.warn(
                    f"train run {self.run_id}: could not upload checkpoint {name} ({described(err)}); "
                    f"the local checkpoint {path} stays, and the next checkpoint is uploaded again"
                )
            self._upload_failing = True
            return
        self._upload_failing = False
        previous, self.latest = self.latest, name
        self._delete_older(keep={name, previous})

    def _delete_older(self, keep: set[Optional[str]]) -> None:
        try:
            for info in self.client.list_artifacts(self.run_id, ARTIFACT_DIR):
                if info.path not in keep:
                    self._repository.delete_artifacts(info.path)
        except Exception as err:  # NotImplementedError or MlflowException where deleting is not supported
            if not self._delete_failed:
                warnings.warn(
                    f"train run {self.run_id}: older checkpoint artifacts are kept, the artifact "
                    f"repository did not delete them ({described(err)}); tag {LATEST_TAG} names the newest"
                )
            self._delete_failed = True


def local_checkpoint(run: Any, folder: Path) -> Optional[Path]:
    """`folder/last.pt` to resume `run` from, first downloaded from the run's artifacts when it is missing or
    older than the uploaded checkpoint; None when there is neither."""
    local, name = folder / CHECKPOINT_NAME, run.data.tags.get(LATEST_TAG)
    if name and _epoch_of(local) < int(PurePosixPath(name).stem.removeprefix("epoch-")):
        _download(run.info.run_id, name, local)
    return local if local.is_file() else None


def _download(run_id: str, name: str, final: Path) -> None:
    """Fetch artifact `name` into a temporary folder beside `final`, then rename it over `final`."""
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned(final)
    staging = temp_path(final)
    try:
        fetched = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=name, dst_path=str(staging))
        os.replace(fetched, final)
    except Exception as err:
        raise CheckpointError(
            f"train run {run_id}: could not download its checkpoint artifact {name} "
            f"({described(err)}); training.resume=never starts a new run instead"
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    fsync_dir(final.parent)


def _epoch_of(path: Path) -> int:
    """The epoch a local checkpoint holds, read without loading its tensors; -1 when missing or unreadable
    (then the uploaded one is preferred; a damaged file with no upload is reported when it is loaded)."""
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True)["epoch"])
    except Exception:  # missing, truncated, or not a checkpoint
        return -1
