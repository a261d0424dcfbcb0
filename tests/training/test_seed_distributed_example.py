"""The distributed usage example of the training API (docs/api.md), on CPU: mp.spawn, gloo, 2 ranks.

The seed's CUDA/NCCL specifics are replaced by their CPU equivalents where marked; sizes are tiny.
"""

import json
import os
import socket
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from pipeline.physics.agt_no_architecture import AGTNOArchitecture
from pipeline.training.training_engine import TrainingEngine
from tests.training.tiny_training import SAMPLE_RATE, tiny_config, tone_windows

pytestmark = pytest.mark.slow  # a DDP job of two ranks

TINY = dict(n_modes=12, n_layers=1, n_heads=2, patch_size=32, latent_dim=8, sample_rate=SAMPLE_RATE)


def setup_distributed(rank, world_size, port):
    """Setup distributed training."""
    os.environ["MASTER_ADDR"] = "localhost"
    os.environ["MASTER_PORT"] = str(port)  # seed: '12355'; a free port so parallel test runs do not clash
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world_size)  # seed: "nccl" (CUDA)


def cleanup_distributed():
    """Cleanup distributed training."""
    torch.distributed.destroy_process_group()


def train_distributed(rank, world_size, config, port, out_dir):
    """Distributed training function."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    torch.set_num_threads(1)
    setup_distributed(rank, world_size, port)

    # Setup model (same seed on every rank; DDP also broadcasts rank 0's weights)
    torch.manual_seed(0)
    model = AGTNOArchitecture(input_dim=1, hidden_dim=16, output_dim=10, **TINY)  # seed: hidden_dim=128
    model = model.to(torch.device("cpu"))  # seed: .to(rank) on GPU `rank`
    model = DDP(model)  # seed: device_ids=[rank] (CUDA)

    # Setup training engine
    training_engine = TrainingEngine(model, config, torch.device("cpu"))  # seed: cuda:{rank}

    # Train (the engine shards these loaders across the ranks)
    train_loader = DataLoader(tone_windows(96, seed=0), batch_size=16, shuffle=True)
    val_loader = DataLoader(tone_windows(45, seed=1), batch_size=16)  # 45: uneven shards, exact counts
    trained_model, history = training_engine.train(train_loader, val_loader)

    # test only: the accuracy one process computes on the whole val set with the final weights
    with torch.no_grad():
        logits = trained_model.module.eval()(val_loader.dataset.tensors[0])["predictions"]
    full_accuracy = (logits.argmax(-1) == val_loader.dataset.tensors[1]).double().mean().item()

    # test only: given a plain model the engine wraps it in DDP itself; only rank 0 checkpoints and calls back
    torch.manual_seed(0)
    plain = AGTNOArchitecture(input_dim=1, hidden_dim=16, output_dim=10, **TINY)
    epochs_called = []
    engine = TrainingEngine(plain, config, torch.device("cpu"), callbacks=[lambda e, m: epochs_called.append(e)])
    _, plain_history = engine.train(train_loader, val_loader, checkpoint_dir=Path(out_dir, "checkpoints"))

    Path(out_dir, f"rank{rank}.json").write_text(
        json.dumps(
            {
                "history": history,
                "accuracy": full_accuracy,
                "plain_history": plain_history,
                "epochs_called": epochs_called,
                "engine_wrapped": isinstance(engine._net, DDP),
            }
        )
    )

    cleanup_distributed()


def free_port():
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def test_distributed_training_with_two_gloo_ranks(tmp_path):
    import torch.multiprocessing as mp

    config = tiny_config(epochs=2)
    # Launch distributed training
    world_size = 2  # seed: torch.cuda.device_count()
    mp.spawn(train_distributed, args=(world_size, config, free_port(), str(tmp_path)), nprocs=world_size, join=True)

    results = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(world_size)]
    histories = [result["history"] for result in results]
    assert histories[0] == histories[1] and len(histories[0]["train_loss"]) == 2
    assert histories[0]["val_accuracy"][-1] == pytest.approx(results[0]["accuracy"], abs=1e-12)

    assert all(result["engine_wrapped"] for result in results)
    for key, values in histories[0].items():
        assert results[1]["plain_history"][key] == pytest.approx(values, abs=1e-6), key
    assert [result["epochs_called"] for result in results] == [[0, 1], []]
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["last.pt"]
