"""Run a training job on several ranks with torch's own launchers.

Two ways in, one code path: under `torchrun` (single- or multi-node; WORLD_SIZE is in the environment)
`process_group` joins the job torchrun started. Without torchrun, `launch` starts the job itself through
`torch.distributed.launcher.elastic_launch`, the API torchrun is built on, with a c10d rendezvous on a free
port of 127.0.0.1 (or `distributed.rdzv_endpoint`). Either way every rank runs the same function; a rank
that fails fails the whole job with torch's ChildFailedError, which names the rank and its error.

A job that trains on CUDA gives each rank the GPU of its local rank (pipeline.training.device) and, with
`distributed.backend=auto`, reduces with nccl; a CPU job uses gloo.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from typing import Any, Callable, Iterator

import torch
import torch.distributed as dist
from torch.distributed.launcher.api import LaunchConfig, elastic_launch

from pipeline.training.config import DistributedConfig
from pipeline.training.device import resolve_device


def under_launcher() -> bool:
    """True inside a multi-rank job started by torchrun or `launch`."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def local_rank() -> int:
    """This rank's index on its machine (which GPU it trains on); 0 outside a launcher."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def backend_for(config: DistributedConfig, device: str = "auto") -> str:
    """`distributed.backend`, with auto meaning nccl when `training.device=device` trains on CUDA, else gloo."""
    if config.backend != "auto":
        return config.backend
    return "nccl" if resolve_device(device, local_rank()).type == "cuda" else "gloo"


@contextlib.contextmanager
def process_group(config: DistributedConfig, device: str = "auto") -> Iterator[None]:
    """Join the launcher's process group for the duration of the block; nothing to do in a single process
    or when the caller already joined one. `device` is `training.device`: on CUDA each rank makes its own GPU
    the current one (nccl needs that); CPU threads are shared out so ranks do not oversubscribe cores."""
    if not under_launcher() or dist.is_initialized():
        yield
        return
    local_ranks = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_ranks))
    target = resolve_device(device, local_rank())
    if target.type == "cuda":
        torch.cuda.set_device(target)
    dist.init_process_group(backend_for(config, device))
    try:
        yield
    finally:
        dist.destroy_process_group()


def broadcast_from_rank0(value: Any) -> Any:
    """Rank 0's `value` on every rank (e.g. the MLflow run id, which only rank 0 knows)."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(fn: Callable[..., Any], args: tuple, config: DistributedConfig) -> list[Any]:
    """Run `fn(*args)` on `config.nproc_per_node` local ranks (spawned processes); their results by rank.

    `fn` must be importable and `args` picklable. The job does not restart failed ranks: a training job that
    should survive a lost rank resumes from its checkpoint instead (pipeline.stages.train).
    """
    launch_config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=config.nproc_per_node,
        run_id=f"av-pino-{uuid.uuid4().hex[:8]}",
        rdzv_backend="c10d",
        rdzv_endpoint=config.rdzv_endpoint or f"127.0.0.1:{free_port()}",
        max_restarts=0,
        monitor_interval=0.2,
        start_method="spawn",
    )
    results = elastic_launch(launch_config, fn)(*args)
    return [results[rank] for rank in sorted(results)]
