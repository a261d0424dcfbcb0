"""What every benchmark module shares: the registry (`@benchmark`), the JSON line printer and data helpers."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch

from pipeline.config import ExperimentConfig
from pipeline.data.prepared import load_prepared, prepare_dataset
from pipeline.stages.train import make_loaders

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = {}
CACHE = REPO / "data" / "prepared"


def benchmark(fn):
    BENCHMARKS[fn.__name__] = fn
    return fn


def emit(name: str, value: float, unit: str, **extra) -> None:
    print(json.dumps({"name": name, "value": round(float(value), 6), "unit": unit, **extra}), flush=True)


def cwru_dir() -> Path:
    """Where the real CWRU recordings are: $AVPINO_CWRU_DIR, else ../shared/data/cwru beside the repository (they
    are never copied into it). The folder may not exist; the tests that read it use this rule too."""
    return Path(os.environ.get("AVPINO_CWRU_DIR", REPO.parent / "shared" / "data" / "cwru"))


def uestc_dir() -> Path:
    """Where the UESTC recordings (a second rig and bearing) are: the folder `uestc` beside the CWRU folder."""
    return cwru_dir().parent / "uestc"


def load_dataset(config: ExperimentConfig):
    return load_prepared(prepare_dataset(config.data, CACHE))


def fixed_batches(config: ExperimentConfig, n_batches: int = 20) -> torch.utils.data.DataLoader:
    """The first `n_batches` training batches, materialised, so timed loops pay no data-loading cost."""
    loader, _ = make_loaders(load_dataset(config), config)
    batches = [batch for _, batch in zip(range(n_batches), loader)]
    windows, labels, speeds = (
        torch.cat([b[0] for b in batches]),
        torch.cat([b[1] for b in batches]),
        torch.cat([b[2]["shaft_hz"] for b in batches]),
    )
    return torch.utils.data.DataLoader(_WithSpeed(windows, labels, speeds), batch_size=config.training.batch_size)


class _WithSpeed(torch.utils.data.TensorDataset):
    """Materialised batches that still carry each window's shaft speed, as the pipeline's loaders do."""

    def __getitem__(self, i):
        window, label, speed = super().__getitem__(i)
        return window, label, {"shaft_hz": speed}


def timed_pair(round_: int, first, second) -> tuple[float, float]:
    """Seconds of one call each of `first` and `second`, run in alternating order across rounds so neither
    always pays for a cold start."""
    seconds = {}
    for fn in (first, second) if round_ % 2 == 0 else (second, first):
        start = time.perf_counter()
        fn()
        seconds[fn] = time.perf_counter() - start
    return seconds[first], seconds[second]
