"""Where training runs (`training.device`), what this machine must have for a config, and at what precision.

The machines are simulated: `cpu_machine` has 2 cores and no GPU, `gpu_machine` 8 cores and 2 CUDA GPUs.
"""

import os

import pytest
import torch

from pipeline.config import ConfigError, DistributedConfig, TrainingConfig
from pipeline.training.device import check_hardware, precision_for, resolve_device
from pipeline.training.distributed import backend_for
from pipeline.training.training_engine import TrainingEngine
from tests.training.tiny_training import tiny_config, tiny_model


@pytest.fixture
def cpu_machine(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)


@pytest.fixture
def gpu_machine(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)


def job(device: str = "auto", nproc_per_node: int = 1, backend: str = "auto") -> tuple:
    """The two sections `check_hardware` reads."""
    return DistributedConfig(nproc_per_node=nproc_per_node, backend=backend), TrainingConfig(device=device)


# ------------------------------------------------------------------------------------------ resolve_device
def test_on_a_cpu_machine_auto_and_cpu_train_on_the_cpu(cpu_machine):
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("auto", local_rank=1) == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("spec", ["cuda", "cuda:0"])
def test_on_a_cpu_machine_asking_for_a_gpu_is_a_config_error(cpu_machine, spec):
    with pytest.raises(ConfigError, match=f"training.device='{spec}': this machine has no CUDA GPU"):
        resolve_device(spec)


def test_on_a_gpu_machine_each_rank_trains_on_the_gpu_of_its_local_rank(gpu_machine):
    assert resolve_device("auto") == torch.device("cuda:0")
    assert resolve_device("auto", local_rank=1) == torch.device("cuda:1")
    assert resolve_device("cuda", local_rank=1) == torch.device("cuda:1")
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    assert resolve_device("cpu", local_rank=1) == torch.device("cpu")


def test_a_gpu_the_machine_does_not_have_is_a_config_error(gpu_machine):
    with pytest.raises(ConfigError, match=r"training.device='cuda:3': cuda:3 but this machine has 2 CUDA GPU"):
        resolve_device("cuda:3")
    with pytest.raises(ConfigError, match="training.device='auto': local rank 2 trains on cuda:2"):
        resolve_device("auto", local_rank=2)


# ------------------------------------------------------------------------------------------ check_hardware
def test_a_config_that_fits_the_machine_passes(cpu_machine):
    check_hardware(*job())
    check_hardware(*job(nproc_per_node=2, backend="gloo"))


@pytest.mark.parametrize(
    "config, fragments",
    [
        (job(nproc_per_node=64), ("distributed.nproc_per_node=64", "must be in 1..2")),
        (job(backend="nccl"), ("distributed.backend='nccl'", "CUDA")),
        (job(device="cuda"), ("training.device='cuda'", "no CUDA GPU")),
    ],
    ids=["too-many-ranks", "nccl", "cuda"],
)
def test_on_a_cpu_machine(cpu_machine, config, fragments):
    with pytest.raises(ConfigError) as error:
        check_hardware(*config)
    assert all(fragment in str(error.value) for fragment in fragments)


def test_on_a_gpu_machine_a_multi_rank_cuda_job_needs_a_gpu_per_rank(gpu_machine):
    check_hardware(*job(nproc_per_node=2, device="cuda"))
    check_hardware(*job(nproc_per_node=4, device="cpu"))  # CPU ranks are bounded by the cores
    for device in ("auto", "cuda"):
        with pytest.raises(
            ConfigError,
            match=f"distributed.nproc_per_node=4: each rank trains on its own GPU "
            f"\\(training.device='{device}'\\) and this machine has 2",
        ):
            check_hardware(*job(nproc_per_node=4, device=device))
    with pytest.raises(ConfigError, match="training.device='cuda:1': puts all 2 ranks on one GPU"):
        check_hardware(*job(nproc_per_node=2, device="cuda:1"))


def test_nccl_needs_a_job_that_trains_on_cuda(gpu_machine):
    check_hardware(*job(backend="nccl"))
    with pytest.raises(
        ConfigError,
        match="distributed.backend='nccl': nccl reduces CUDA tensors but training.device='cpu' trains on the CPU",
    ):
        check_hardware(*job(backend="nccl", device="cpu"))


def test_the_auto_backend_follows_the_device(gpu_machine):
    assert backend_for(DistributedConfig(), "auto") == "nccl"
    assert backend_for(DistributedConfig(), "cpu") == "gloo"
    assert backend_for(DistributedConfig(backend="gloo"), "cuda") == "gloo"


# ------------------------------------------------------------------------------------------------- precision
def test_mixed_precision_is_fp16_with_a_gradient_scaler_on_cuda():
    precision = precision_for(torch.device("cuda:1"), mixed_precision=True)
    assert (precision.device_type, precision.dtype, precision.scaled) == ("cuda", torch.float16, True)


def test_mixed_precision_is_bf16_without_a_scaler_on_cpu():
    precision = precision_for(torch.device("cpu"), mixed_precision=True)
    assert (precision.dtype, precision.scaled) == (torch.bfloat16, False)
    assert not precision.grad_scaler().is_enabled()
    with precision.autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16


@pytest.mark.parametrize("device", ["cpu", "cuda:0"])
def test_without_mixed_precision_everything_stays_float32(device):
    precision = precision_for(torch.device(device), mixed_precision=False)
    assert (precision.dtype, precision.scaled) == (None, False)


# ------------------------------------------------------------------------------------------ the engine
@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_the_engine_trains_where_training_device_says(cpu_machine, loaders, device):
    engine = TrainingEngine(tiny_model(), tiny_config(epochs=3, device=device), device=None)
    _, history = engine.train(*loaders)

    assert engine.device == torch.device("cpu") and next(engine.model.parameters()).device.type == "cpu"
    assert history["data_loss"][-1] < history["data_loss"][0]
