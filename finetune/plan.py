"""Which examples each micro-batch holds: a pure function of the seed, the epoch and the position.

Every epoch is a seeded permutation of the training examples, cut into global batches of
``batch_size x processes`` (the last one filled from the epoch's start, as torch's DistributedSampler
pads); process ``rank`` takes its slice of each. Because nothing depends on state carried between
batches, resuming at micro-batch ``k`` yields exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import math


class BatchPlan:
    def __init__(self, size: int, batch_size: int, processes: int = 1, rank: int = 0, seed: int = 0):
        if size < 1:
            raise ValueError("no examples to plan")
        self.size, self.batch_size, self.processes, self.rank, self.seed = size, batch_size, processes, rank, seed
        self.global_batch = batch_size * processes
        self.per_epoch = math.ceil(size / self.global_batch)

    def epoch_order(self, epoch: int) -> list[int]:
        import torch

        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(self.size, generator=generator).tolist()
        short = self.per_epoch * self.global_batch - self.size
        return order + (order * (short // self.size + 1))[:short]

    def indices(self, micro: int) -> list[int]:
        """This process's example indices in micro-batch ``micro`` (0-based, counted over all epochs)."""
        epoch, position = divmod(micro, self.per_epoch)
        start = position * self.global_batch + self.rank * self.batch_size
        return self.epoch_order(epoch)[start:start + self.batch_size]

    def epoch_of(self, micro: int) -> int:
        return micro // self.per_epoch


class PlanSampler:
    """A batch sampler over micro-batches ``start`` .. ``stop - 1`` of a plan."""

    def __init__(self, plan: BatchPlan, start: int, stop: int):
        self.plan, self.start, self.stop = plan, start, stop

    def __iter__(self):
        cached_epoch, order = None, None
        for micro in range(self.start, self.stop):
            epoch, position = divmod(micro, self.plan.per_epoch)
            if epoch != cached_epoch:
                cached_epoch, order = epoch, self.plan.epoch_order(epoch)
            first = position * self.plan.global_batch + self.plan.rank * self.plan.batch_size
            yield order[first:first + self.plan.batch_size]

    def __len__(self) -> int:
        return self.stop - self.start
