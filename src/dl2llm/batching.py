"""Length-grouped batching: random batches of texts of similar length.

Padding a batch to its longest text wastes the compute spent on pad positions. Sorting the
whole dataset by length removes the waste but makes every epoch's batches the same and
ordered. Hugging Face's ``group_by_length`` (``LengthGroupedSampler``) takes the middle road,
and so does :func:`length_grouped_batches`:

1. shuffle every index;
2. cut the shuffled order into *pools* of ``pool_batches`` batches and sort each pool by
   length, longest first;
3. cut the pools into batches and shuffle the batches.

Worked example, ``lengths = [5, 1, 4, 2]``, ``batch_size = 2``, one pool::

    shuffle        [2, 0, 3, 1]      lengths 4, 5, 2, 1
    sort the pool  [0, 2, 3, 1]      lengths 5, 4, 2, 1
    batches        [0, 2], [3, 1]    then shuffled: [3, 1], [0, 2]

Each batch holds texts of similar length, and a new seed gives new batches.
"""

from __future__ import annotations

import torch
from torch import Tensor


def length_grouped_batches(
    lengths: Tensor, batch_size: int, generator: torch.Generator, pool_batches: int
) -> list[Tensor]:
    """One epoch of index batches; every index of ``lengths`` ``(N,)`` appears once."""
    shuffled = torch.randperm(len(lengths), generator=generator)  # (N,)
    pools = [
        pool[torch.argsort(lengths[pool], descending=True)]
        for pool in shuffled.split(batch_size * pool_batches)
    ]
    batches = [batch for pool in pools for batch in pool.split(batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
