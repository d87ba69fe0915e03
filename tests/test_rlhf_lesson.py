"""rl_hf_demo's lesson module: command-line overrides and the labeler choice."""

from __future__ import annotations

import pytest

from dl2llm.alignment.rlhf import RLHFConfig
from dl2llm.alignment.rlhf_lesson import apply_overrides, choose_labeler
from dl2llm.errors import UsageError


def test_overrides_replace_only_what_is_given():
    settings = RLHFConfig.quick()
    assert apply_overrides(settings) == settings
    changed = apply_overrides(settings, ppo_iterations=3, kl_coef=0.0, dpo_steps=5, beta=0.5)
    assert (changed.ppo.iterations, changed.ppo.kl_coef) == (3, 0.0)
    assert (changed.dpo.steps, changed.dpo.beta) == (5, 0.5)
    assert changed.ppo.batch_size == settings.ppo.batch_size
    assert changed.reward_epochs == settings.reward_epochs


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({"beta": 0.0}, "--beta must be > 0"), ({"kl_coef": -1.0}, "--kl-coef must be >= 0")],
)
def test_bad_overrides_are_usage_errors(overrides, message):
    with pytest.raises(UsageError, match=message):
        apply_overrides(RLHFConfig.quick(), **overrides)


def test_auto_labeler_is_the_word_list_in_quick_mode_only():
    assert choose_labeler("auto", quick=True) == "lexicon"
    assert choose_labeler("auto", quick=False) == "sentiment"
    assert choose_labeler("sentiment", quick=True) == "sentiment"
