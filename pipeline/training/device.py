"""Where training runs and at what precision.

`training.device` is auto, cpu, cuda or cuda:<index>. Every rank of a job trains on its own GPU, the one with the
rank's index on its machine (LOCAL_RANK), so `auto` and `cuda` mean cuda:<local rank>; `cuda:N` pins a
single-process run to one GPU. pipeline.config checks the spelling and imports no torch; what this machine
has (cores, GPUs) is checked here, by `check_hardware`, before a stage does any work.

`training.mixed_precision` autocasts to fp16 on CUDA, whose narrow range needs a gradient scaler, and to
bf16 on CPU, whose float32-wide range does not; without it everything stays float32.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import torch

from pipeline.common.config_section import check_setting
from pipeline.training.config import DistributedConfig, TrainingConfig

__all__ = ["Precision", "check_hardware", "precision_for", "resolve_device"]


def resolve_device(spec: str, local_rank: int = 0) -> torch.device:
    """The device `training.device=spec` means for the rank with index `local_rank` on this machine.

    Raises ConfigError naming `training.device` when the GPU it asks for is not on this machine.
    """
    gpus = _gpus()
    if spec == "cpu" or (spec == "auto" and not gpus):
        return torch.device("cpu")
    check_setting(gpus > 0, "training.device", spec, "this machine has no CUDA GPU; use cpu or auto")
    index = local_rank if spec in ("auto", "cuda") else int(spec.removeprefix("cuda:"))
    asked = f"cuda:{index}" if spec.startswith("cuda:") else f"local rank {local_rank} trains on cuda:{index}"
    check_setting(
        index < gpus,
        "training.device",
        spec,
        f"{asked} but this machine has {gpus} CUDA GPU(s), cuda:0..cuda:{gpus - 1}",
    )
    return torch.device("cuda", index)


def check_hardware(distributed: DistributedConfig, training: TrainingConfig) -> None:
    """Raise ConfigError when this machine cannot run a job of these sections: too many ranks for its cores or
    GPUs, nccl without a GPU to run on, or a `training.device` it does not have (one GPU per rank)."""
    ranks, backend, spec = distributed.nproc_per_node, distributed.backend, training.device
    gpus = _gpus()
    limit = max(os.cpu_count() or 1, gpus)
    check_setting(
        ranks <= limit,
        "distributed.nproc_per_node",
        ranks,
        f"must be in 1..{limit} (the CPU cores or GPUs of this machine)",
    )
    check_setting(
        backend != "nccl" or gpus > 0,
        "distributed.backend",
        backend,
        "nccl needs CUDA GPUs; use gloo (or auto) on a CPU machine",
    )
    device = resolve_device(spec)
    check_setting(
        backend != "nccl" or device.type == "cuda",
        "distributed.backend",
        backend,
        f"nccl reduces CUDA tensors but training.device={spec!r} trains on the CPU; use gloo or auto",
    )
    if device.type == "cuda" and ranks > 1:
        check_setting(
            not spec.startswith("cuda:"),
            "training.device",
            spec,
            f"puts all {ranks} ranks on one GPU; use cuda (each rank on its own GPU)",
        )
        check_setting(
            ranks <= gpus,
            "distributed.nproc_per_node",
            ranks,
            f"each rank trains on its own GPU (training.device={spec!r}) and this machine has {gpus}; "
            "use fewer ranks or training.device=cpu",
        )


@dataclass(frozen=True)
class Precision:
    """How a device computes: the autocast dtype (None: float32 throughout) and whether gradients go through
    a GradScaler, which multiplies the loss so small fp16 gradients do not underflow to zero."""

    device_type: str
    dtype: Optional[torch.dtype]
    scaled: bool

    def autocast(self) -> torch.autocast:
        return torch.autocast(self.device_type, dtype=self.dtype, enabled=self.dtype is not None)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A scaler for this device; a disabled one (its calls pass gradients through) when not `scaled`."""
        return torch.amp.GradScaler(self.device_type, enabled=self.scaled)


def precision_for(device: torch.device, mixed_precision: bool) -> Precision:
    """The precision policy of `training.mixed_precision` on `device`."""
    if not mixed_precision:
        return Precision(device.type, None, scaled=False)
    cuda = device.type == "cuda"
    return Precision(device.type, torch.float16 if cuda else torch.bfloat16, scaled=cuda)


def _gpus() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0
