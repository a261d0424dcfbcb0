"""How batches reach a rank: a batch unpacked onto the training device, and a loader shared out over the ranks
of a distributed job."""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import Tensor
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, Subset


def batch_to_device(batch: Sequence, device: torch.device) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """(inputs, targets, conditions) on `device` from an `(x, y)` or `(x, y, conditions)` batch, conditions a dict
    of per-window tensors (e.g. `shaft_hz`) that reach the model as keyword arguments."""
    if not isinstance(batch, Sequence) or len(batch) not in (2, 3):
        size = f" of {len(batch)} items" if isinstance(batch, Sequence) else ""
        raise ValueError(
            f"a batch must be (inputs, targets) or (inputs, targets, conditions), got a {type(batch).__name__}{size}"
        )
    inputs, targets, conditions = (*batch, {}) if len(batch) == 2 else batch
    if not isinstance(conditions, Mapping):
        raise ValueError(
            f"the third item of a batch must be a dict of per-window conditions (e.g. shaft_hz), "
            f"got {type(conditions).__name__}"
        )
    to = dict(device=device, non_blocking=True)
    return (
        inputs.to(**to),
        targets.to(**to),
        {name: torch.as_tensor(value).to(**to) for name, value in conditions.items()},
    )


def shard_loader(loader: DataLoader, train: bool, rank: int, world: int, seed: int) -> DataLoader:
    """Rank `rank`'s share of `loader` among `world` ranks, unless the loader is already distributed.

    Training gets a DistributedSampler (shuffled with `seed` when the loader shuffles) and batch_size / world: the
    training batch is global, so equal step counts and results that do not depend on the world size. Evaluation
    gets a plain stride, so every window is counted exactly once.
    """
    if isinstance(loader.sampler, DistributedSampler):
        return loader
    if loader.batch_size is None:
        raise ValueError("under torch.distributed pass loaders with a batch_size or a DistributedSampler")
    if train and loader.batch_size % world:
        raise ValueError(
            f"training.batch_size={loader.batch_size} is the global batch and must divide evenly over {world} ranks"
        )
    common = dict(
        batch_size=loader.batch_size // world if train else loader.batch_size,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        drop_last=loader.drop_last,
    )
    dataset = loader.dataset
    if train:
        shuffle = isinstance(loader.sampler, RandomSampler)
        sampler = DistributedSampler(dataset, world, rank, shuffle=shuffle, seed=seed)
        return DataLoader(dataset, sampler=sampler, **common)
    return DataLoader(Subset(dataset, range(rank, len(dataset), world)), **common)
