"""Usage examples of the training API (docs/api.md), from single calls to whole loops, run as written with `src.`
read as `pipeline.`
(the Distributed Training example is in test_seed_distributed_example.py: it spawns processes, and on
two shared cores it needs a file's time budget of its own).

Deliberate departures, each marked where it happens: model sizes are tiny (hidden_dim=16, one layer) so the
examples run in seconds on two CPU cores; names the seed leaves undefined (train_loader, num_workers, ...)
are tiny loaders and small numbers; CUDA-only lines use their CPU equivalents.
"""

import math
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.utils as nn_utils
from torch.utils.data import DataLoader

from pipeline.config import load_experiment_config
from pipeline.physics.agt_no_architecture import AGTNOArchitecture
from pipeline.training.advanced_loss_functions import AdvancedLossManager
from pipeline.training.monitoring import TrainingMonitor
from pipeline.training.physics_informed_loss import PhysicsInformedLoss
from pipeline.training.training_engine import TrainingEngine
from tests.training.tiny_training import SAMPLE_RATE, tiny_config, tone_windows

TINY = dict(n_modes=12, n_layers=1, n_heads=2, patch_size=32, latent_dim=8, sample_rate=SAMPLE_RATE)
device = torch.device("cpu")


@pytest.fixture
def model():
    torch.manual_seed(0)
    return AGTNOArchitecture(input_dim=1, hidden_dim=16, output_dim=10, **TINY)  # seed: hidden_dim=128


@pytest.fixture
def train_loader():
    return DataLoader(tone_windows(96, seed=0), batch_size=16, shuffle=True)


@pytest.fixture
def val_loader():
    return DataLoader(tone_windows(48, seed=1), batch_size=48)


@pytest.fixture
def config():
    return tiny_config(epochs=3)


def test_training_engine_examples(model, config, train_loader, val_loader, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    # --- train
    engine = TrainingEngine(model, config, device)
    trained_model, history = engine.train(train_loader, val_loader)

    print(f"Final loss: {history['train_loss'][-1]:.6f}")
    print(f"Physics loss: {history['physics_loss'][-1]:.6f}")
    assert trained_model is model and len(history["train_loss"]) == config.training["epochs"]

    # --- train_epoch
    epoch_metrics = engine.train_epoch(train_loader)
    print(f"Epoch loss: {epoch_metrics['loss']:.6f}")
    assert math.isfinite(epoch_metrics["loss"])

    # --- validate
    val_metrics = engine.validate(val_loader)
    print(f"Validation accuracy: {val_metrics['accuracy']:.3f}")
    assert 0.0 <= val_metrics["accuracy"] <= 1.0

    # --- save_checkpoint / load_checkpoint
    engine.save_checkpoint("checkpoints/model_epoch_10.pth", 10, val_metrics)
    checkpoint = engine.load_checkpoint("checkpoints/model_epoch_10.pth")
    start_epoch = checkpoint["epoch"]
    assert start_epoch == 10 and checkpoint["metrics"] == pytest.approx(val_metrics)
    assert (tmp_path / "checkpoints" / "model_epoch_10.pth").is_file()
    assert "Final loss:" in capsys.readouterr().out


def test_physics_informed_loss_example(model, train_loader):
    batch_data, batch_targets = next(iter(train_loader))

    loss_fn = PhysicsInformedLoss(physics_weight=0.1)
    outputs = model(batch_data)

    losses = loss_fn(
        predictions=outputs["predictions"], targets=batch_targets, physics_residuals=outputs["physics_residuals"]
    )

    total_loss = losses["total_loss"]
    data_loss = losses["data_loss"]
    physics_loss = losses["physics_loss"]
    assert torch.allclose(total_loss, data_loss + 0.1 * physics_loss)

    # Adaptive weight adjustment during training
    epoch = 0
    loss_fn.update_weights(epoch, data_loss.item(), physics_loss.item())
    assert all(weight == 1.0 for weight in loss_fn.weights.values())  # first call records the losses


def test_advanced_loss_manager_example(model, train_loader):
    coupled_fields = model(next(iter(train_loader))[0])["coupled_fields"]

    loss_manager = AdvancedLossManager()
    consistency_loss = loss_manager.compute_consistency_loss(coupled_fields)
    assert consistency_loss.ndim == 0 and math.isfinite(consistency_loss.item())


def test_training_monitor_examples(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monitor = TrainingMonitor(log_dir="training_logs")
    for epoch in range(12):
        monitor.log_metrics(epoch, {"train_loss": 0.234, "val_loss": 0.267, "accuracy": 0.89, "physics_loss": 0.001})
    assert (tmp_path / "training_logs" / "metrics.csv").is_file()  # written at epoch 10 (save_frequency)

    figure = monitor.plot_training_curves("training_curves.png")
    assert (tmp_path / "training_curves.png").read_bytes()[:4] == b"\x89PNG" and len(figure.data) == 4

    stopped_at = None
    for epoch in range(30):
        if monitor.check_convergence(patience=15):
            print("Training converged, stopping early")
            stopped_at = epoch
            break
        monitor.log_metrics(12 + epoch, {"val_loss": 0.267})
    assert stopped_at == 4  # val_loss flat since epoch 0: 15 epochs without improvement after epoch 15


def test_complete_training_pipeline(tmp_path, monkeypatch, train_loader, val_loader):
    monkeypatch.chdir(tmp_path)
    Path("config.yaml").write_text("training:\n  epochs: 3\n  learning_rate: 0.01\n  batch_size: 16\n")

    # Setup model and training components
    model = AGTNOArchitecture(input_dim=1, hidden_dim=16, output_dim=10, **TINY)  # seed: hidden_dim=128
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = model.to(device)

    # Setup training engine
    config = load_experiment_config("config.yaml")
    training_engine = TrainingEngine(model, config, device)

    # Setup monitoring
    monitor = TrainingMonitor(log_dir="training_logs")

    # Training loop with monitoring
    for epoch in range(config.training["epochs"]):
        # Train epoch
        train_metrics = training_engine.train_epoch(train_loader)

        # Validate
        val_metrics = training_engine.validate(val_loader)

        # Log metrics
        all_metrics = {**train_metrics, **val_metrics}
        monitor.log_metrics(epoch, all_metrics)

        # Check convergence
        if monitor.check_convergence():
            print(f"Converged at epoch {epoch}")
            break

        # Save checkpoint
        if epoch % 10 == 0:
            training_engine.save_checkpoint(f"checkpoints/epoch_{epoch}.pth", epoch, val_metrics)

    # Plot final results (a PNG needs no browser)
    monitor.plot_training_curves("final_training_curves.png")
    assert Path("final_training_curves.png").read_bytes()[:4] == b"\x89PNG"

    assert list(monitor.history.index) == [0, 1, 2] and training_engine.epoch == 3
    assert Path("checkpoints/epoch_0.pth").is_file()
    assert monitor.history["loss"].notna().all() and "physics/measurement" in monitor.history


def test_custom_loss_function_training(model, train_loader, capsys):
    num_epochs = 3
    # Setup custom loss functions
    physics_loss = PhysicsInformedLoss(data_loss_fn=nn.CrossEntropyLoss(), physics_weight=0.1, adaptive_weighting=True)

    advanced_loss = AdvancedLossManager(consistency_weight=0.05, variational_weight=0.02)

    # Custom training loop
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)  # seed: 1e-3; tiny run, bigger steps
    averages = []

    for epoch in range(num_epochs):
        epoch_loss = 0.0

        for batch_idx, (data, targets) in enumerate(train_loader):
            data, targets = data.to(device), targets.to(device)

            optimizer.zero_grad()

            # Forward pass
            outputs = model(data)

            # Compute losses
            loss_components = physics_loss(
                predictions=outputs["predictions"], targets=targets, physics_residuals=outputs["physics_residuals"]
            )

            # Add advanced losses
            advanced_losses = advanced_loss.get_total_advanced_loss(outputs)

            # Total loss
            total_loss = loss_components["total_loss"] + advanced_losses

            # Backward pass
            total_loss.backward()
            optimizer.step()

            epoch_loss += total_loss.item()

            if batch_idx % 100 == 0:
                print(f"Epoch {epoch}, Batch {batch_idx}, Loss: {total_loss.item():.6f}")

        print(f"Epoch {epoch} completed, Average Loss: {epoch_loss / len(train_loader):.6f}")
        averages.append(epoch_loss / len(train_loader))
    assert averages[-1] < averages[0]
    assert "Epoch 2 completed" in capsys.readouterr().out


def test_training_with_mixed_precision(train_loader):
    num_epochs = 2
    # The seed's `from torch.cuda.amp import GradScaler, autocast` needs CUDA (and is deprecated). The CPU
    # equivalent is bf16 autocast; bf16 has float32's exponent range, so no loss scaling is needed and the
    # scaler is created disabled (its scale/step/update then pass straight through).
    scaler = torch.amp.GradScaler("cpu", enabled=False)

    # Setup mixed precision training
    torch.manual_seed(0)
    model = AGTNOArchitecture(input_dim=1, hidden_dim=16, output_dim=10, **TINY)  # seed: hidden_dim=128
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    physics_loss = PhysicsInformedLoss()
    losses = []

    for epoch in range(num_epochs):
        for batch_idx, (data, targets) in enumerate(train_loader):
            data, targets = data.to(device), targets.to(device)

            optimizer.zero_grad()

            # Forward pass with autocast
            with torch.autocast("cpu", dtype=torch.bfloat16):  # seed: `with autocast():` (CUDA fp16)
                outputs = model(data)
                loss_components = physics_loss(
                    predictions=outputs["predictions"], targets=targets, physics_residuals=outputs["physics_residuals"]
                )
                total_loss = loss_components["total_loss"]

            # Backward pass with gradient scaling
            scaler.scale(total_loss).backward()
            scaler.step(optimizer)
            scaler.update()

            if batch_idx % 100 == 0:
                print(f"Epoch {epoch}, Batch {batch_idx}, Loss: {total_loss.item():.6f}")
            losses.append(total_loss.item())
    assert all(math.isfinite(loss) for loss in losses)


def safe_training_step(model, data, targets, optimizer, loss_fn, max_grad_norm=1.0):
    """Safe training step with error handling."""
    try:
        optimizer.zero_grad()

        # Forward pass
        outputs = model(data)

        # Check for NaN in outputs
        if torch.isnan(outputs["predictions"]).any():
            raise ValueError("NaN detected in model predictions")

        # Compute loss
        loss_components = loss_fn(
            predictions=outputs["predictions"], targets=targets, physics_residuals=outputs["physics_residuals"]
        )

        total_loss = loss_components["total_loss"]

        # Check for NaN in loss
        if torch.isnan(total_loss):
            raise ValueError("NaN detected in loss computation")

        # Backward pass
        total_loss.backward()

        # Gradient clipping
        nn_utils.clip_grad_norm_(model.parameters(), max_grad_norm)

        # Optimizer step
        optimizer.step()

        return {
            "loss": total_loss.item(),
            "data_loss": loss_components["data_loss"].item(),
            "physics_loss": loss_components["physics_loss"].item(),
        }

    except RuntimeError as e:
        if "out of memory" in str(e):
            print("CUDA out of memory. Clearing cache and skipping batch.")
            torch.cuda.empty_cache()
            return None
        else:
            raise e

    except ValueError as e:
        print(f"Training error: {e}")
        return None


def test_safe_training_step(model, train_loader, capsys):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = PhysicsInformedLoss()
    results = []

    # Usage in training loop
    for batch_idx, (data, targets) in enumerate(train_loader):
        if batch_idx == 1:
            data = torch.full_like(data, float("nan"))  # test: the NaN branch
        metrics = safe_training_step(model, data, targets, optimizer, loss_fn)

        if metrics is not None:
            print(f"Batch {batch_idx}: Loss = {metrics['loss']:.6f}")
        else:
            print(f"Batch {batch_idx}: Skipped due to error")
        results.append(metrics)

    assert results[1] is None and all(r is not None and math.isfinite(r["loss"]) for r in results[2:])
    assert set(results[0]) == {"loss", "data_loss", "physics_loss"}
    out = capsys.readouterr().out
    assert "NaN detected in model predictions" in out and "Batch 1: Skipped due to error" in out

    def out_of_memory(*args):
        raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB")

    model.forward = out_of_memory  # test: the OOM branch (cache cleared, batch skipped)
    assert safe_training_step(model, data, targets, optimizer, loss_fn) is None
    assert "Clearing cache and skipping batch" in capsys.readouterr().out


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit warnings raised while importing dynamo
def test_optimized_training_setup(model):
    GradScaler = torch.amp.GradScaler  # the seed uses torch.cuda.amp.GradScaler (CUDA only)

    # Optimized training configuration
    def setup_optimized_training(model, config):
        """Setup optimized training configuration."""

        # Optimizer with weight decay
        optimizer = torch.optim.AdamW(
            model.parameters(),
            lr=config.training["learning_rate"],
            weight_decay=config.training["weight_decay"],
            betas=(0.9, 0.999),
        )

        # Learning rate scheduler
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.training["epochs"], eta_min=1e-6)

        # Mixed precision scaler
        scaler = GradScaler("cpu") if config.training["mixed_precision"] else None

        # Compile model for PyTorch 2.0+ (lazy: nothing compiles until the compiled model is called)
        if hasattr(torch, "compile"):
            model = torch.compile(model)

        return optimizer, scheduler, scaler

    # Usage
    config = tiny_config(epochs=7, weight_decay=0.01)
    optimizer, scheduler, scaler = setup_optimized_training(model, config)
    assert optimizer.defaults["lr"] == config.training.learning_rate and optimizer.defaults["weight_decay"] == 0.01
    assert scheduler.T_max == 7 and scaler is None
