"""Model loaders: offline assets by default, a clear error for a bad path."""

from __future__ import annotations

import pytest
import torch

from dl2llm import models
from dl2llm.assets import AssetError


def test_gpt2_tokenizer_gives_the_real_gpt2_ids():
    encoding = models.load_gpt2_tokenizer()
    assert encoding.encode("Hello world, tokenization!") == [15496, 995, 11, 11241, 1634, 0]
    assert encoding.n_vocab == 50257
    assert encoding.encode("<|endoftext|>", allowed_special="all") == [50256]


def test_encoder_gives_384_dimensional_states():
    model, tokenizer = models.load_encoder()
    batch = tokenizer(["a sentence"], return_tensors="pt")
    with torch.no_grad():
        states = model(**batch).last_hidden_state
    assert states.shape[-1] == 384


@pytest.mark.slow
def test_llm_answers_a_factual_question_greedily():
    model, tokenizer = models.load_llm()
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    inputs = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    output = model.generate(**inputs, max_new_tokens=12, do_sample=False)
    answer = tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer


def test_missing_local_model_path_is_a_clear_error(tmp_path):
    with pytest.raises(AssetError, match="does not exist"):
        models.load_encoder(str(tmp_path / "nowhere"))
