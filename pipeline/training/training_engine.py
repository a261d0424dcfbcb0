"""TrainingEngine: the physics-informed training loop, readable top to bottom.

Each step feeds a batch (augmented through a random transfer path) to the model and optimises the data loss plus
whichever physics, consistency and variational terms the model's outputs allow, so any model plugs in by what it
returns; a step whose loss or gradient is not finite is skipped and counted instead of poisoning the weights.
After each epoch the schedule and loss weights step, metrics go to history and the callbacks, a checkpoint that
restores every RNG is written (so a resumed run repeats the uninterrupted one), and early stopping is asked.
Under torch.distributed the same loop runs as DDP on every rank; only rank 0 writes and calls callbacks.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from pipeline.training.advanced_loss_functions import AdvancedLossManager
from pipeline.training.augmentation import random_transfer_path
from pipeline.training.batches import batch_to_device, shard_loader
from pipeline.training.checkpoint import CheckpointError, load_checkpoint_file, rng_state, save_atomic, set_rng_state
from pipeline.training.config import TrainingJobConfig
from pipeline.training.device import precision_for, resolve_device
from pipeline.training.distributed import local_rank
from pipeline.training.metrics import accuracy, confusion_matrix, macro_f1
from pipeline.training.monitoring import TrainingMonitor
from pipeline.training.physics_informed_loss import PhysicsInformedLoss

Callback = Callable[[int, dict[str, float]], None]
CHECKPOINT_NAME = "last.pt"
# what train_epoch reports after an epoch in which no step succeeded (the other terms are unknown then)
ALWAYS_REPORTED = ("loss", "data_loss")
__all__ = ["TrainingEngine", "TrainingDivergedError", "StopTraining", "CheckpointError"]


class TrainingDivergedError(RuntimeError):
    """Too many consecutive optimisation steps had a non-finite loss or gradient."""


class StopTraining(Exception):
    """Raised by a callback to end training after the current epoch, on every rank (e.g. a pruned trial)."""


class TrainingEngine:
    """Trains a model whose forward returns a dict with `predictions` and any of physics_residuals,
    coupled_fields, mean and log_var, with AdamW, a cosine schedule and the losses configured in `config`.
    `device` None means `training.device` for this rank.

    The physics loss applies when the model returns `physics_residuals`, the consistency loss with
    `coupled_fields`, the variational loss with `mean` and `log_var`; a term it does not return is absent from
    the metrics and the history, never reported as 0. Batches are `(x, y)` or `(x, y, conditions)`: conditions
    reach the model as `model(x, **conditions)`. Seeding is the caller's job (seed before building the model)."""

    def __init__(
        self,
        model: nn.Module,
        config: TrainingJobConfig,
        device: Optional[torch.device | str] = None,
        callbacks: Iterable[Callback] = (),
        monitor: Optional[TrainingMonitor] = None,
    ):
        train, loss = config.training, config.loss
        self.config = config
        self.device = torch.device(device) if device is not None else resolve_device(train.device, local_rank())
        self.model = model.to(self.device)
        self.distributed = dist.is_available() and dist.is_initialized()
        self.rank = dist.get_rank() if self.distributed else 0
        self._raw = _unwrap(self.model)
        net = self.model
        if self.distributed and not isinstance(net, DistributedDataParallel):
            net = DistributedDataParallel(net, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self._net = torch.compile(net) if train.compile else net
        # DDP's forward may sync buffers; evaluation shards are uneven, so ranks evaluate the bare module
        self._eval_net = self._raw if self.distributed else self._net
        self._params = [p for p in self._raw.parameters() if p.requires_grad]

        self.loss_fn = PhysicsInformedLoss(
            physics_weight=loss.physics_weight, adaptive_weighting=loss.adaptive_weighting
        ).to(self.device)
        self.advanced_loss = AdvancedLossManager(
            loss.consistency_weight, loss.variational_weight, enable_adaptive=loss.adaptive_weighting
        )
        self.optimizer = torch.optim.AdamW(self._params, lr=train.learning_rate, weight_decay=train.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.optimizer, T_max=train.epochs, eta_min=min(1e-6, train.learning_rate)
        )
        self.precision = precision_for(self.device, train.mixed_precision)
        self.scaler = self.precision.grad_scaler()

        self.callbacks = list(callbacks)
        self.monitor = monitor if monitor is not None else TrainingMonitor(log_dir=None)
        self.history: dict[str, list[float]] = {}
        self.epoch = 0  # epochs completed; the next train_epoch runs epoch number `self.epoch`
        self.mlflow_run_id: Optional[str] = None  # stored in checkpoints so a resumed run logs to the same run
        self._bad_steps = 0  # consecutive skipped steps
        self.last_metrics: dict[str, float] = {}  # the last epoch's metrics under the tracking names
        self.stop_reason: Optional[str] = None  # why a callback stopped training early (StopTraining)
        self._collective_device = self.device if self.distributed and dist.get_backend() == "nccl" else "cpu"
        # a DataLoader's own torch.Generator (shuffle order, worker seeds) is not the global RNG: its state is
        # checkpointed too, and a loaded state is applied to the next training loader
        self._loader_generator: Optional[torch.Generator] = None
        self._pending_generator_state: Optional[Tensor] = None

    # ----------------------------------------------------------------------------------------- loop
    def train(
        self,
        train_loader: DataLoader,
        val_loader: Optional[DataLoader] = None,
        checkpoint_dir: Optional[str | Path] = None,
        resume: bool = True,
        on_checkpoint: Optional[Callable[[Path, int], None]] = None,
    ) -> tuple[nn.Module, dict[str, list[float]]]:
        """Train for `training.epochs` epochs (less if early stopping triggers); returns (model, history).

        history: one list entry per epoch for train_loss, data_loss, skipped_steps, lr, loss_weight/<term>
        and, for the terms the model's outputs allow, physics_loss, consistency_loss, variational_loss,
        physics/<name>; with a val_loader also val_loss, val_accuracy, val_macro_f1 and val_physics/<name>.
        With `checkpoint_dir`, `last.pt` there is written every `training.checkpoint_every` epochs, then passed
        to `on_checkpoint(path, epoch)` on rank 0 (e.g. to upload it), and, if `resume`, picked up at the start.
        """
        cfg = self.config.training
        last = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir is not None else None
        if last is not None and resume and last.is_file():
            self.load_checkpoint(last)
        while self.epoch < cfg.epochs and not self.monitor.check_convergence(cfg.patience):
            epoch, start = self.epoch, time.perf_counter()
            train_metrics = self.train_epoch(train_loader)
            val_metrics = self.validate(val_loader) if val_loader is not None else {}
            tracked = self._record(epoch, train_metrics, val_metrics)
            tracked["time/epoch_s"] = time.perf_counter() - start  # tracked, not in history: it never repeats
            if last is not None and (
                (epoch + 1) % cfg.checkpoint_every == 0
                or epoch + 1 == cfg.epochs
                or self.monitor.check_convergence(cfg.patience)
            ):
                self.save_checkpoint(last, epoch, tracked)
                if on_checkpoint is not None and self.rank == 0:
                    on_checkpoint(last, epoch)
            self.last_metrics = tracked
            stop = self._run_callbacks(epoch, tracked)
            if stop is not None:
                self.stop_reason = str(stop) or type(stop).__name__
                break
        return self.model, self.history

    def train_epoch(self, data_loader: DataLoader) -> dict[str, float]:
        """One epoch of optimisation, then one step of the LR schedule and of the loss weights.

        Returns sample-weighted means of loss (the total optimised), data_loss and, when the model's outputs
        allow them, physics_loss, consistency_loss, variational_loss and physics/<name>; plus
        loss_weight/<term> (the multipliers used this epoch, for the terms present), skipped_steps and lr.
        A batch that runs out of CUDA memory clears the cache and is skipped (counted in skipped_steps).
        """
        epoch = self.epoch
        self._net.train()
        self.advanced_loss.set_epoch(epoch)
        loader = self._shard(data_loader, train=True)
        if isinstance(loader.sampler, DistributedSampler):
            loader.sampler.set_epoch(epoch)
        self._loader_generator = getattr(data_loader, "generator", None)
        if self._loader_generator is not None and self._pending_generator_state is not None:
            self._loader_generator.set_state(self._pending_generator_state.cpu())
        self._pending_generator_state = None
        lr = self.scheduler.get_last_lr()[0]
        names, sums, samples, skipped = None, None, 0, 0
        for batch in loader:
            inputs, targets, conditions = batch_to_device(batch, self.device)
            try:
                values = self._train_step(inputs, targets, conditions)
            except torch.OutOfMemoryError:
                self.optimizer.zero_grad(set_to_none=True)
                torch.cuda.empty_cache()
                warnings.warn(f"out of memory on a batch of {len(targets)}: cache cleared, batch skipped")
                skipped += 1
                continue
            if values is None:
                skipped += 1
                continue
            if sums is None:
                names = list(values)
                sums = torch.zeros(len(names), dtype=torch.float64, device=self.device)
            sums += torch.stack(list(values.values())).double() * len(targets)
            samples += len(targets)

        names = names or list(ALWAYS_REPORTED)
        sums = sums if sums is not None else torch.zeros(len(names), dtype=torch.float64, device=self.device)
        totals = self._all_reduce(torch.cat([sums, sums.new_tensor([samples, skipped])])).tolist()
        samples = totals[-2]
        metrics = {name: (total / samples if samples else float("nan")) for name, total in zip(names, totals)}
        metrics["skipped_steps"] = totals[-1]
        metrics["lr"] = lr
        metrics.update({f"loss_weight/{k}": v for k, v in self._loss_weights(names).items()})
        residuals = {n.removeprefix("physics/"): metrics[n] for n in names if n.startswith("physics/")}
        self.loss_fn.update_weights(epoch, metrics["data_loss"], residuals)
        self.scheduler.step()
        self.epoch += 1
        return metrics

    def _train_step(
        self, inputs: Tensor, targets: Tensor, conditions: Mapping[str, Tensor]
    ) -> Optional[dict[str, Tensor]]:
        """One guarded optimisation step; the detached loss terms, or None when the step was skipped.

        Augment (`data.augment_*_db`, off at 0) -> forward under autocast (`training.mixed_precision`: fp16 on
        CUDA, bf16 on CPU) -> loss -> backward (scaled by a GradScaler under fp16) -> clip -> step. A non-finite
        loss or gradient norm skips the step; `training.max_bad_steps` skips in a row raise TrainingDivergedError.
        The finiteness check is the step's only host sync."""
        self.optimizer.zero_grad(set_to_none=True)
        data = self.config.data
        if data.augment_spread_db or data.augment_gain_db:
            inputs = random_transfer_path(inputs, data.augment_spread_db, data.augment_gain_db)
        with self.precision.autocast():
            outputs = self._net(inputs, **conditions)
            losses = self.loss_fn(outputs["predictions"], targets, outputs.get("physics_residuals"))
            advanced = self.advanced_loss.compute_losses(outputs)
            loss = losses.pop("total_loss") + advanced.pop("advanced_loss")
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        grad_norm = nn.utils.clip_grad_norm_(self._params, self.config.training.grad_clip)
        # GradScaler skips fp16 overflow steps itself (and lowers its scale); those are not divergence
        guard = loss.detach() if self.scaler.is_enabled() else loss.detach() + grad_norm
        if not torch.isfinite(guard).item():
            self.scaler.update()
            self.optimizer.zero_grad(set_to_none=True)
            self._bad_steps += 1
            if self._bad_steps >= self.config.training.max_bad_steps:
                raise TrainingDivergedError(
                    f"training diverged: {self._bad_steps} consecutive steps had a non-finite loss or gradient "
                    f"(training.max_bad_steps={self.config.training.max_bad_steps}). Check the data for NaN/inf "
                    "and try a lower training.learning_rate or training.grad_clip."
                )
            return None
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self._bad_steps = 0
        return {"loss": loss.detach(), **{k: v.detach() for k, v in {**losses, **advanced}.items()}}

    @torch.no_grad()
    def validate(self, data_loader: DataLoader) -> dict[str, float]:
        """loss (the data loss: comparable across epochs and physics weights), accuracy, macro_f1, and, for a
        model that returns residuals, the mean squared physics/<name> residuals, over the whole loader (all
        ranks)."""
        self._eval_net.eval()
        loader = self._shard(data_loader, train=False)
        sums, names, confusion, samples = None, None, None, 0
        for batch in loader:
            inputs, targets, conditions = batch_to_device(batch, self.device)
            with self.precision.autocast():
                outputs = self._eval_net(inputs, **conditions)
            logits = outputs["predictions"].float()
            residuals = outputs.get("physics_residuals", {})
            terms = {
                "loss": self.loss_fn.compute_data_loss(logits, targets),
                **{f"physics/{k}": r.float().pow(2).mean() for k, r in residuals.items()},
            }
            if sums is None:
                names = list(terms)
                sums = torch.zeros(len(names), dtype=torch.float64, device=self.device)
                confusion = torch.zeros(logits.shape[-1], logits.shape[-1], dtype=torch.int64, device=self.device)
            sums += torch.stack(list(terms.values())).double() * len(targets)
            confusion += confusion_matrix(logits, targets, logits.shape[-1])
            samples += len(targets)
        if sums is None:
            raise ValueError("validate() got an empty data loader")
        totals = self._all_reduce(torch.cat([sums, sums.new_tensor([samples])])).tolist()
        confusion = self._all_reduce(confusion)
        metrics = {name: total / totals[-1] for name, total in zip(names, totals)}
        metrics.update(accuracy=accuracy(confusion), macro_f1=macro_f1(confusion))
        return metrics

    # ----------------------------------------------------------------------------------- checkpoints
    def save_checkpoint(self, path: str | Path, epoch: int, metrics: dict[str, float]) -> None:
        """Atomically write model, optimiser, scheduler, scaler, loss weights, RNG states, history, `epoch`
        (the last completed epoch) and `metrics` to `path`. Only rank 0 writes."""
        if self.rank != 0:
            return
        save_atomic(
            {
                "epoch": int(epoch),
                "metrics": {k: float(v) for k, v in metrics.items()},
                "model": self._raw.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(),
                "loss_fn": self.loss_fn.state_dict(),
                "history": {k: list(v) for k, v in self.history.items()},
                "rng": rng_state(),
                "loader_rng": self._loader_generator.get_state() if self._loader_generator is not None else None,
                "mlflow_run_id": self.mlflow_run_id,
            },
            path,
        )

    def load_checkpoint(self, path: str | Path) -> dict[str, Any]:
        """Restore everything `save_checkpoint` wrote; training continues with epoch `checkpoint['epoch'] + 1`.

        Returns the checkpoint dict (`epoch`, `metrics`, `history`, `mlflow_run_id`, state dicts). Raises
        CheckpointError for a missing, damaged or unsafe file, or one that does not fit this model.
        """
        state = load_checkpoint_file(path, map_location=self.device)
        try:
            self._raw.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            if state["scaler"]:
                self.scaler.load_state_dict(state["scaler"])
            self.loss_fn.load_state_dict(state["loss_fn"])
            set_rng_state(state["rng"])
            history, run_id, loader_rng = state["history"], state["mlflow_run_id"], state["loader_rng"]
        except (KeyError, ValueError, RuntimeError) as err:
            raise CheckpointError(
                f"checkpoint {str(path)!r} does not fit this model and configuration: "
                f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            ) from None
        self.epoch = state["epoch"] + 1
        self.history = {k: list(v) for k, v in history.items()}
        self.mlflow_run_id, self._pending_generator_state = run_id, loader_rng
        self.monitor.clear()
        for epoch in range(len(self.history.get("train_loss", []))):
            self.monitor.log_metrics(epoch, {k: v[epoch] for k, v in self.history.items() if epoch < len(v)})
        return state

    # --------------------------------------------------------------------------------------- helpers
    def _record(self, epoch: int, train: dict[str, float], val: dict[str, float]) -> dict[str, float]:
        """Append the epoch to history and the monitor; return it under the tracking names."""
        row = {("train_loss" if k == "loss" else k): v for k, v in train.items()}
        row.update({f"val_{k}": v for k, v in val.items()})
        for key, value in row.items():
            self.history.setdefault(key, []).append(value)
        self.monitor.log_metrics(epoch, row)
        tracked = {(k if k.startswith(("physics/", "loss_weight/")) else f"train/{k}"): v for k, v in train.items()}
        tracked.update({f"val/{k}": v for k, v in val.items()})
        return tracked

    def _run_callbacks(self, epoch: int, tracked: dict[str, float]) -> Optional[StopTraining]:
        """Call the callbacks (rank 0 only) and agree with every rank on whether to go on.

        A callback raising StopTraining ends training after this epoch on all ranks; any other exception is
        re-raised on rank 0 after the other ranks were told to stop, so none waits forever in a collective.
        """
        stop, error = None, None
        if self.rank == 0:
            try:
                for callback in self.callbacks:
                    callback(epoch, dict(tracked))
            except StopTraining as request:
                stop = request
            except Exception as err:  # re-raised below, once the other ranks know
                error = err
        if self.distributed:
            flag = torch.tensor([int(stop is not None or error is not None)], device=self._collective_device)
            dist.broadcast(flag, src=0)
            if flag.item() and self.rank != 0:
                stop = StopTraining("rank 0 stopped training")
        if error is not None:
            raise error
        return stop

    def _loss_weights(self, names: Sequence[str]) -> dict[str, float]:
        """The multiplier of each term this epoch's steps had (`names` are their metric names)."""
        advanced = {term: w for term, w in self.advanced_loss.weights.items() if f"{term}_loss" in names}
        return {**self.loss_fn.multipliers, **advanced}

    def _all_reduce(self, tensor: Tensor) -> Tensor:
        if self.distributed:
            dist.all_reduce(tensor)
        return tensor

    def _shard(self, loader: DataLoader, train: bool) -> DataLoader:
        """This rank's share of `loader` under DDP (`shard_loader`); the loader itself on one rank."""
        if not self.distributed:
            return loader
        return shard_loader(loader, train, self.rank, dist.get_world_size(), self.config.training.seed)


def _unwrap(model: nn.Module) -> nn.Module:
    """The plain module under torch.compile and DDP wrappers (for state dicts and evaluation)."""
    model = getattr(model, "_orig_mod", model)
    return model.module if isinstance(model, DistributedDataParallel) else model
