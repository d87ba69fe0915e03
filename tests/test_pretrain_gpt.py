"""Pretraining pieces of dl2llm.pretrain and the project's GPT-2 folder."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from scripts import load_script
from tiny import tiny_gpt, tiny_gpt_config
from torch.testing import assert_close
from transformers import AutoTokenizer, GPT2LMHeadModel

from dl2llm import pretrain
from dl2llm.assets import AssetError
from dl2llm.gpt import GPTConfig
from dl2llm.models import load_gpt2_tokenizer
from dl2llm.pretrain import PretrainConfig
from dl2llm.runtime import UsageError

TINY = PretrainConfig(
    model=tiny_gpt_config(vocab_size=61, context_length=16),
    batch_size=4,
    max_steps=8,
    learning_rate=1e-3,
    min_learning_rate=1e-4,
    warmup_steps=2,
    eval_every=4,
    checkpoint_every=4,
)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def token_stream(n: int = 400, seed: int = 0) -> torch.Tensor:
    return torch.randint(61, (n,), generator=torch.Generator().manual_seed(seed))


def test_cosine_schedule_warms_up_then_decays_to_the_floor():
    config = PretrainConfig(
        GPTConfig(), max_steps=110, learning_rate=1e-3, min_learning_rate=1e-4, warmup_steps=10
    )
    lr = [pretrain.cosine_learning_rate(step, config) for step in range(111)]
    assert lr[0] == pytest.approx(config.learning_rate / 10)
    assert lr[9] == pytest.approx(config.learning_rate)
    assert lr[10] == pytest.approx(config.learning_rate)
    assert lr[60] == pytest.approx((config.learning_rate + config.min_learning_rate) / 2)
    assert lr[110] == pytest.approx(config.min_learning_rate)
    assert all(a >= b for a, b in zip(lr[10:], lr[11:], strict=False))


def test_random_batch_targets_are_the_next_tokens():
    tokens = torch.arange(100)
    inputs, targets = pretrain.random_batch(tokens, 5, 16, torch.Generator().manual_seed(0))
    assert inputs.shape == targets.shape == (5, 16)
    assert torch.equal(targets, inputs + 1)
    assert torch.equal(inputs[:, 1:], inputs[:, :-1] + 1)
    with pytest.raises(UsageError, match="need more than 16 tokens"):
        pretrain.random_batch(torch.arange(10), 5, 16, torch.Generator())


def test_evaluate_loss_averages_the_windows():
    model = tiny_gpt(TINY.model)
    tokens = token_stream(16 * 3 + 1)
    windows = tokens[:48].view(3, 16), tokens[1:49].view(3, 16)
    with torch.no_grad():
        expected = pretrain.language_model_loss(model(windows[0]), windows[1]).item()
    assert pretrain.evaluate_loss(model, tokens, batch_size=2) == pytest.approx(expected, rel=1e-6)


def test_unigram_loss_matches_a_hand_count():
    train, val = torch.tensor([0, 0, 1]), torch.tensor([0, 2])
    p0, p2 = 3 / 6, 1 / 6  # add-one counts (3, 2, 1) over 6
    expected = -(math.log(p0) + math.log(p2)) / 2
    assert pretrain.unigram_loss(train, val, vocab_size=3) == pytest.approx(expected)


def test_training_lowers_the_loss():
    train = torch.arange(400) % 7  # a repeating pattern a model can learn
    config = replace(TINY, max_steps=40, learning_rate=1e-2, min_learning_rate=1e-3)
    result = pretrain.pretrain(config, train, train[:100], progress=False)
    assert [row["step"] for row in result.history] == list(range(4, 41, 4))
    context_free_best = math.log(7)  # no model without context beats uniform over the cycle
    assert result.history[0]["val_loss"] > context_free_best
    assert result.final_val_loss < 0.75 * context_free_best
    assert result.train_tokens == 40 * 4 * 16


def test_resuming_from_a_checkpoint_repeats_the_uninterrupted_run(tmp_path):
    train, val = token_stream(), token_stream(100, seed=1)
    straight = pretrain.pretrain(TINY, train, val, progress=False)
    checkpoint = tmp_path / "run.ckpt"
    paused = pretrain.pretrain(TINY, train, val, checkpoint, stop_after=5, progress=False)
    assert paused.steps_done == 5 and checkpoint.is_file()
    resumed = pretrain.pretrain(TINY, train, val, checkpoint, progress=False, log=lambda _: None)
    assert resumed.resumed_from_step == 5 and resumed.steps_done == 8
    for name, value in straight.model.state_dict().items():
        assert_close(resumed.model.state_dict()[name], value, atol=1e-6, rtol=1e-6)
    assert [row["step"] for row in resumed.history] == [4, 8]
    assert resumed.final_val_loss == pytest.approx(straight.final_val_loss, abs=1e-6)


def test_a_checkpoint_of_other_settings_is_refused(tmp_path):
    checkpoint = tmp_path / "run.ckpt"
    pretrain.pretrain(
        TINY, token_stream(), token_stream(100), checkpoint, stop_after=4, progress=False
    )
    with pytest.raises(UsageError, match="other settings"):
        pretrain.pretrain(
            replace(TINY, learning_rate=0.1), token_stream(), token_stream(100), checkpoint
        )


def test_missing_full_model_says_how_to_make_it(tmp_path, monkeypatch):
    monkeypatch.setenv("DL2LLM_HOME", str(tmp_path))
    assert pretrain.project_gpt2_dir() == tmp_path / "gpt2-dl2llm"
    with pytest.raises(AssetError, match="run `dl2llm run pretrain_gpt`"):
        pretrain.ensure_project_gpt2(quick=False)


@pytest.mark.slow
def test_quick_model_is_trained_on_the_fly_and_opens_in_transformers(tmp_path, monkeypatch):
    assets = pretrain.paths.home()
    monkeypatch.setenv("DL2LLM_HOME", str(tmp_path))
    for name in ("english-text", "gensim-data", "gpt2-bpe"):
        (tmp_path / name).symlink_to(assets / name)
    folder = pretrain.ensure_project_gpt2(quick=True)
    assert folder == tmp_path / "gpt2-dl2llm-quick"
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {
        p.name for p in folder.iterdir()
    }
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left over

    text = 'Botchan said, "I\'m not going to apologise!" <|endoftext|>'
    expected = load_gpt2_tokenizer().encode(text, allowed_special="all")
    ids = AutoTokenizer.from_pretrained(folder)(text)["input_ids"]
    assert ids == expected

    ours = pretrain.load_project_gpt2(quick=True)
    theirs = GPT2LMHeadModel.from_pretrained(folder).eval()
    batch = torch.tensor([ids])
    with torch.no_grad():
        assert_close(ours(batch), theirs(batch).logits, atol=1e-5, rtol=1e-5)
    assert ours.config == PretrainConfig.quick().model


def pretrain_script():
    return load_script("weeks/week2_transformers/pretrain_gpt.py")


def test_script_refuses_bad_flags(capsys):
    script = pretrain_script()
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--steps", "0"])
    assert exit_info.value.code == 2
    assert "expected a positive integer, got 0" in capsys.readouterr().err
