"""A prepare stage killed with SIGKILL while writing its dataset.

The writer is a real process killed mid-write: it pauses after writing its first array (so the kill lands at
a known point of the write, not before it starts or after it ends) and the test SIGKILLs it there. Exceptions
during the write (disk full) and damaged files are covered in test_prepared.py.
"""

from __future__ import annotations

import signal
import subprocess
import sys

from pipeline.config import DataConfig
from pipeline.data.prepared import dataset_dir_for, load_prepared, prepare_dataset

TINY = dict(window=256, hop=128, duration_s=0.2, recordings_per_load=3)
WRITER = """
import sys, time
import numpy as np
from pipeline.config import DataConfig
from pipeline.data.prepared import prepare_dataset

real_save = np.save

def save_then_hang(file, array, *args, **kwargs):
    real_save(file, array, *args, **kwargs)
    file.flush()
    print("wrote", file.name, flush=True)
    time.sleep(600)  # the test kills us here: one array written, the rest and the manifest not

np.save = save_then_hang
prepare_dataset(DataConfig(window=256, hop=128, duration_s=0.2, recordings_per_load=3, seed=int(sys.argv[2])),
                sys.argv[1])
"""


def test_a_prepare_killed_mid_write_leaves_no_partial_dataset_and_the_old_one_intact(tmp_path):
    good = prepare_dataset(DataConfig(**TINY), tmp_path)
    before = {p.name: p.read_bytes() for p in good.iterdir()}
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), "7"], stdout=subprocess.PIPE, text=True)
    try:
        line = writer.stdout.readline()
        assert line.startswith("wrote "), line
        writer.send_signal(signal.SIGKILL)
    finally:
        writer.kill()
        writer.wait()
    assert writer.returncode == -signal.SIGKILL

    killed = DataConfig(**TINY, seed=7)
    [leftover] = [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert (leftover / "windows.npy").exists() and not (leftover / "manifest.json").exists()
    assert not dataset_dir_for(killed, tmp_path).exists()  # never published half-written
    load_prepared(good, verify=True)
    assert {p.name: p.read_bytes() for p in good.iterdir()} == before

    again = prepare_dataset(killed, tmp_path)  # the same command again: built whole, the leftover swept away
    load_prepared(again, verify=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([good.name, again.name])
