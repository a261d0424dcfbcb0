"""How batches reach a rank: unpacked onto the device, and shared out over the ranks of a distributed job."""

import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from pipeline.training.batches import batch_to_device, shard_loader


def indexed(n: int) -> TensorDataset:
    """Windows whose single value is their index, so a shard shows which windows it holds."""
    return TensorDataset(torch.arange(n, dtype=torch.float32)[:, None], torch.zeros(n, dtype=torch.long))


def held(loader: DataLoader) -> list[int]:
    return [int(x) for inputs, _ in loader for x in inputs[:, 0]]


def test_a_batch_without_conditions_gets_none_and_plain_numbers_become_tensors():
    x, y = torch.zeros(4, 8), torch.zeros(4, dtype=torch.long)
    assert batch_to_device((x, y), torch.device("cpu"))[2] == {}
    _, _, conditions = batch_to_device((x, y, {"shaft_hz": [29.5] * 4}), torch.device("cpu"))
    assert torch.equal(conditions["shaft_hz"], torch.tensor([29.5] * 4))


def test_two_training_shards_split_every_global_batch_and_cover_the_data_once():
    loader = DataLoader(indexed(64), batch_size=16, shuffle=True)
    shards = [shard_loader(loader, train=True, rank=rank, world=2, seed=0) for rank in (0, 1)]
    assert [shard.batch_size for shard in shards] == [8, 8]
    assert sorted(held(shards[0]) + held(shards[1])) == list(range(64))
    assert held(shards[0]) != sorted(held(shards[0]))  # the loader shuffled, so its shards do


def test_evaluation_shards_take_every_window_exactly_once_at_the_full_batch():
    loader = DataLoader(indexed(10), batch_size=4)
    shards = [shard_loader(loader, train=False, rank=rank, world=3, seed=0) for rank in (0, 1, 2)]
    assert [shard.batch_size for shard in shards] == [4, 4, 4]
    assert [held(shard) for shard in shards] == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]


def test_a_training_batch_that_does_not_divide_over_the_ranks_is_refused():
    with pytest.raises(ValueError, match="batch_size=10 is the global batch and must divide evenly over 3 ranks"):
        shard_loader(DataLoader(indexed(30), batch_size=10), train=True, rank=0, world=3, seed=0)


def test_a_loader_that_is_already_distributed_is_left_as_it_is():
    data = indexed(8)
    loader = DataLoader(data, batch_size=2, sampler=DistributedSampler(data, num_replicas=2, rank=1))
    assert shard_loader(loader, train=True, rank=1, world=2, seed=0) is loader
