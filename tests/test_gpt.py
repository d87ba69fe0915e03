"""dl2llm.gpt against Hugging Face GPT2LMHeadModel, on random tiny configs."""

from __future__ import annotations

import pytest
import torch
from tiny import tiny_gpt, tiny_gpt2, tiny_gpt_config
from torch.testing import assert_close
from transformers import GPT2LMHeadModel
from transformers.generation.logits_process import TopKLogitsWarper, TopPLogitsWarper

from dl2llm.finetune import count_parameters
from dl2llm.gpt import GPT, GPTConfig, KVCache, sample_next_token, top_k_filter, top_p_filter
from dl2llm.runtime import UsageError

TOLERANCE = {"atol": 1e-5, "rtol": 1e-5}
TINY = tiny_gpt_config(vocab_size=97, n_layer=2, n_head=4, n_embd=32)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def hf_folder(tmp_path):
    """A random tiny GPT-2 checkpoint saved by transformers itself."""
    hf_model = tiny_gpt2(vocab_size=97, n_head=4, special_token=None)  # TINY's shape
    hf_model.save_pretrained(tmp_path / "hf")
    return tmp_path / "hf"


@pytest.fixture
def tiny_model():
    return tiny_gpt(TINY, seed=1)


def random_ids(batch: int, length: int, vocab: int = 97, seed: int = 2) -> torch.Tensor:
    return torch.randint(vocab, (batch, length), generator=torch.Generator().manual_seed(seed))


def test_from_hf_gives_the_same_logits(hf_folder):
    ours = GPT.from_hf(hf_folder).eval()
    theirs = GPT2LMHeadModel.from_pretrained(hf_folder).eval()
    ids = random_ids(3, 32)
    with torch.no_grad():
        assert_close(ours(ids), theirs(ids).logits, **TOLERANCE)


def test_to_hf_round_trip_opens_in_transformers(tiny_model, tmp_path):
    folder = tiny_model.to_hf(tmp_path / "ours")
    theirs = GPT2LMHeadModel.from_pretrained(folder).eval()
    ids = random_ids(2, 20)
    with torch.no_grad():
        assert_close(theirs(ids).logits, tiny_model(ids), **TOLERANCE)
    assert theirs.lm_head.weight.data_ptr() == theirs.transformer.wte.weight.data_ptr()
    assert theirs.num_parameters() == count_parameters(tiny_model).total


def test_weights_are_tied(tiny_model):
    assert tiny_model.lm_head.weight is tiny_model.token_embedding.weight
    untied = sum(p.numel() for p in tiny_model.state_dict().values())
    assert count_parameters(tiny_model).total == untied - TINY.vocab_size * TINY.n_embd


def test_greedy_generation_same_with_and_without_cache(tiny_model):
    prompt = random_ids(2, 5)
    cached = tiny_model.generate(prompt, 27, temperature=0, use_cache=True)
    uncached = tiny_model.generate(prompt, 27, temperature=0, use_cache=False)
    assert cached.shape == (2, 32)
    assert torch.equal(cached, uncached)
    assert torch.equal(cached[:, :5], prompt)


def test_greedy_generation_matches_transformers(hf_folder):
    ours = GPT.from_hf(hf_folder).eval()
    theirs = GPT2LMHeadModel.from_pretrained(hf_folder).eval()
    prompt = random_ids(1, 4)
    expected = theirs.generate(prompt, max_new_tokens=20, do_sample=False, pad_token_id=0)
    assert torch.equal(ours.generate(prompt, 20, temperature=0), expected)


def test_cache_filled_in_chunks_gives_the_full_forward(tiny_model):
    ids = random_ids(2, 30)
    cache = KVCache(TINY, batch_size=2, device=ids.device, dtype=torch.float32)
    with torch.no_grad():
        chunks = [tiny_model(ids[:, :11], cache), tiny_model(ids[:, 11:12], cache)]
        chunks.append(tiny_model(ids[:, 12:], cache))
        assert_close(torch.cat(chunks, dim=1), tiny_model(ids), **TOLERANCE)
    assert cache.length == 30


def test_sequence_longer_than_context_is_refused(tiny_model):
    with pytest.raises(UsageError, match="33 tokens is longer than the model's context of 32"):
        tiny_model(random_ids(1, 33))
    with pytest.raises(UsageError, match=r"prompt \(10 tokens\) \+ max_new_tokens \(23\) = 33"):
        tiny_model.generate(random_ids(1, 10), 23)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"temperature": -1.0}, "temperature must be >= 0"),
        ({"top_k": 0}, "top_k must be >= 1"),
        ({"top_p": 1.5}, r"top_p must be in \(0, 1\]"),
    ],
)
def test_bad_sampling_settings_are_refused(tiny_model, kwargs, message):
    with pytest.raises(UsageError, match=message):
        tiny_model.generate(random_ids(1, 3), 2, **kwargs)


def test_bad_config_is_refused():
    with pytest.raises(UsageError, match=r"n_embd \(30\) must be divisible by n_head \(4\)"):
        GPTConfig(n_embd=30, n_head=4)


@pytest.mark.parametrize("k", [1, 5, 40])
def test_top_k_matches_transformers(k):
    logits = torch.randn(4, 97, generator=torch.Generator().manual_seed(k))
    expected = TopKLogitsWarper(top_k=k)(None, logits.clone())
    assert torch.equal(top_k_filter(logits, k), expected)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9, 1.0])
def test_top_p_matches_transformers(p):
    logits = 3 * torch.randn(4, 97, generator=torch.Generator().manual_seed(7))
    expected = TopPLogitsWarper(top_p=p)(None, logits.clone())
    assert torch.equal(top_p_filter(logits, p).isinf(), expected.isinf())


def test_sampling_is_seeded_and_top_k_1_is_greedy(tiny_model):
    prompt = random_ids(2, 4)
    greedy = tiny_model.generate(prompt, 12, temperature=0)
    assert torch.equal(tiny_model.generate(prompt, 12, temperature=0.7, top_k=1), greedy)
    first, second = (
        tiny_model.generate(prompt, 12, top_p=0.9, generator=torch.Generator().manual_seed(3))
        for _ in range(2)
    )
    assert torch.equal(first, second)
    logits = torch.tensor([[0.0, 10.0, -5.0]])
    assert sample_next_token(logits, temperature=0).tolist() == [[1]]


def test_generation_stops_at_the_stop_token(tiny_model):
    prompt = random_ids(1, 4)
    free = tiny_model.generate(prompt, 20, temperature=0)[0, 4:].tolist()
    stop = free[3]
    stopped = tiny_model.generate(prompt, 20, temperature=0, stop_token=stop)[0, 4:].tolist()
    assert stopped == free[: free.index(stop) + 1]
