"""All exercises, in course order, by name."""

from __future__ import annotations

from dl2llm.exercises import (
    adam_step,
    byte_bpe,
    dpo_loss,
    gpt_block,
    lora_layer,
    mlp_backprop,
    multi_head_attention,
    reciprocal_rank_fusion,
    scaled_dot_product_attention,
    skipgram_loss,
    wordpiece_encoding,
)
from dl2llm.exercises.framework import Exercise
from dl2llm.runtime import UsageError

EXERCISES: dict[str, Exercise] = {
    module.EXERCISE.name: module.EXERCISE
    for module in (
        mlp_backprop,
        adam_step,
        scaled_dot_product_attention,
        multi_head_attention,
        gpt_block,
        byte_bpe,
        wordpiece_encoding,
        skipgram_loss,
        lora_layer,
        dpo_loss,
        reciprocal_rank_fusion,
    )
}


def get(name: str) -> Exercise:
    """Look an exercise up by name; an unknown name raises :class:`UsageError`."""
    exercise = EXERCISES.get(name.removesuffix(".py"))
    if exercise is None:
        raise UsageError(f"unknown exercise '{name}' (known: {', '.join(EXERCISES)})")
    return exercise
