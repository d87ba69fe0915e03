import torch

from dl2llm.batching import length_grouped_batches


def lengths_and_batches(seed: int = 1):
    lengths = torch.randint(3, 60, (1000,), generator=torch.Generator().manual_seed(0))
    batches = length_grouped_batches(lengths, 16, torch.Generator().manual_seed(seed), 10)
    return lengths, batches


def test_every_index_appears_once_in_batches_of_the_requested_size():
    _, batches = lengths_and_batches()
    assert sorted(torch.cat(batches).tolist()) == list(range(1000))
    assert sorted(len(b) for b in batches)[1:] == [16] * (len(batches) - 1)  # one short tail
    assert len(batches) == 63


def test_batches_are_sorted_longest_first_and_pad_far_less_than_a_plain_shuffle():
    lengths, batches = lengths_and_batches()
    for batch in batches:
        assert lengths[batch].tolist() == sorted(lengths[batch].tolist(), reverse=True)
    padded = sum(len(b) * lengths[b].max().item() for b in batches)
    plain = torch.randperm(1000, generator=torch.Generator().manual_seed(2)).split(16)
    plain_padded = sum(len(b) * lengths[b].max().item() for b in plain)
    assert padded < 0.8 * plain_padded


def test_same_seed_same_batches_new_seed_new_batches():
    _, batches = lengths_and_batches(seed=1)
    _, again = lengths_and_batches(seed=1)
    _, other = lengths_and_batches(seed=3)
    assert all(torch.equal(a, b) for a, b in zip(batches, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(batches, other, strict=True))
