"""Checkpoint files that must not be trusted: a writer killed with SIGKILL mid-write, a failed write, a flipped bit
that torch.load would accept, truncation, garbage, another architecture's weights and malicious pickles."""

from __future__ import annotations

import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from pipeline.training.checkpoint import CheckpointError, load_checkpoint_file, save_atomic
from pipeline.training.training_engine import TrainingEngine
from tests.training.tiny_training import tiny_config, tiny_model

# Rewrites last.pt forever, epoch after epoch; every tensor of epoch k holds the value k, so a torn checkpoint
# (old and new bytes mixed) would show as a tensor that disagrees with its epoch.
WRITER = """
import sys, torch
from pipeline.training.checkpoint import save_atomic
epoch = 0
while True:
    save_atomic({"epoch": epoch, "metrics": {"loss": float(epoch)},
                 "model": {"w": torch.full((2_000_000,), float(epoch))},
                 "optimizer": {"step": torch.full((1000,), float(epoch))}}, sys.argv[1])
    epoch += 1
"""


def temporaries(folder: Path) -> list[Path]:
    return sorted(folder.glob(".last.pt.*.tmp"))


def kill_writer_mid_write(path: Path, attempts: int = 5) -> Path:
    """SIGKILL the writer while it has a temporary with bytes in it; return the temporary it leaves behind.

    A kill can land just after a rename, before the next write opens its temporary: then it is tried again.
    """
    for _ in range(attempts):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)])
        try:
            deadline = time.monotonic() + 120
            while not (path.exists() and any(t.exists() and t.stat().st_size for t in temporaries(path.parent))):
                assert writer.poll() is None and time.monotonic() < deadline, "the writer never got going"
                time.sleep(0.001)
            writer.send_signal(signal.SIGKILL)
        finally:
            writer.kill()
            writer.wait()
        assert writer.returncode == -signal.SIGKILL
        left = temporaries(path.parent)
        if left:
            return left[0]
    raise AssertionError(f"no kill of {attempts} landed mid-write")


def test_a_writer_killed_mid_write_leaves_the_previous_checkpoint_usable(tmp_path):
    path = tmp_path / "last.pt"
    leftover = kill_writer_mid_write(path)

    state = load_checkpoint_file(path)
    epoch = state["epoch"]
    assert torch.equal(state["model"]["w"], torch.full((2_000_000,), float(epoch)))
    assert torch.equal(state["optimizer"]["step"], torch.full((1000,), float(epoch)))
    save_atomic({"epoch": epoch + 1, "metrics": {}, "model": {}}, path)  # the next writer sweeps it away
    assert temporaries(tmp_path) == [] and not leftover.exists()
    assert load_checkpoint_file(path)["epoch"] == epoch + 1


def test_a_live_writers_temporary_is_left_alone(tmp_path):
    path = tmp_path / "last.pt"
    live = tmp_path / f".last.pt.{1}-abcdef12.tmp"  # pid 1 always exists
    live.write_bytes(b"in progress")
    save_atomic({"epoch": 0, "metrics": {}, "model": {}}, path)
    assert live.exists()


@pytest.mark.parametrize("where", [0.5, 0.1], ids=["weights", "early"])
def test_a_flipped_bit_is_caught_by_the_zip_checksums(tmp_path, where):
    """torch.load does not check CRC-32s: without the check this file loads with silently wrong weights."""
    path = save_atomic({"epoch": 3, "metrics": {}, "model": {"w": torch.arange(100_000.0)}}, tmp_path / "last.pt")
    data = bytearray(path.read_bytes())
    data[int(len(data) * where)] ^= 0x01
    path.write_bytes(data)

    with pytest.raises(CheckpointError, match=r"last.pt' is corrupted: archive/data.* fails its CRC-32 check"):
        load_checkpoint_file(path)
    assert torch.load(path, weights_only=True)["epoch"] == 3  # what would have happened unchecked


def test_atomic_save_keeps_the_old_checkpoint_when_writing_fails(tmp_path, monkeypatch):
    engine = TrainingEngine(tiny_model(), tiny_config(), torch.device("cpu"))
    path = tmp_path / "last.pt"
    engine.save_checkpoint(path, 0, {"loss": 1.0})
    before = path.read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match="No space"):
        engine.save_checkpoint(path, 1, {"loss": 0.5})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left behind
    assert engine.load_checkpoint(path)["epoch"] == 0


def test_damaged_or_missing_checkpoint_raises_checkpoint_error_naming_the_file(tmp_path):
    engine = TrainingEngine(tiny_model(), tiny_config(), torch.device("cpu"))
    path = tmp_path / "last.pt"
    engine.save_checkpoint(path, 0, {"loss": 1.0})
    data = path.read_bytes()
    cases = {"truncated.pt": data[: len(data) // 2], "garbage.pt": b"not a checkpoint at all" * 10}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CheckpointError, match=name):
            engine.load_checkpoint(tmp_path / name)
    with pytest.raises(CheckpointError, match="does not exist"):
        engine.load_checkpoint(tmp_path / "missing.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a training checkpoint"):
        engine.load_checkpoint(tmp_path / "other.pt")


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    TrainingEngine(tiny_model(hidden_dim=8), tiny_config(), torch.device("cpu")).save_checkpoint(
        tmp_path / "small.pt", 0, {}
    )
    with pytest.raises(CheckpointError, match="small.pt.*does not fit"):
        TrainingEngine(tiny_model(), tiny_config(), torch.device("cpu")).load_checkpoint(tmp_path / "small.pt")


class TouchesAFile:
    """Unpickling this would create `path`: what a malicious checkpoint could do."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_malicious_pickle_is_refused_and_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"epoch": 0, "metrics": {}, "model": TouchesAFile(marker)}, evil)
    with open(tmp_path / "evil.pkl", "wb") as file:
        pickle.dump(TouchesAFile(marker), file, protocol=2)
    engine = TrainingEngine(tiny_model(), tiny_config(), torch.device("cpu"))
    for path in (evil, tmp_path / "evil.pkl"):
        with pytest.raises(CheckpointError, match=path.name):
            engine.load_checkpoint(path)
    assert not marker.exists()
