"""A library reference point: ``trl``'s GRPO on the same task, reward model and budget.

GRPO (Shao et al., 2024, DeepSeekMath) drops PPO's value head: it samples a
*group* of ``G`` answers per prompt and uses each answer's reward minus the
group's mean (divided by its spread) as the advantage, with PPO's clipped ratio
and a KL penalty ``beta`` to the reference. ``trl``'s ``GRPOTrainer`` runs it;
here it tunes a ``peft`` LoRA (same rank and target layers as ours) on a fresh
copy of the base model, whose reference is the adapter switched off (as ours).
It samples ``steps * batch_size`` answers, each scored once by our reward model:
the same budget as our PPO and DPO runs. Afterwards it is judged by
:func:`dl2llm.alignment.rlhf.evaluate` like every other policy.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable

import torch
from torch import nn

from dl2llm.alignment.policy import LLAMA_LORA_TARGETS
from dl2llm.alignment.preferences import Requests, chat_prompt
from dl2llm.alignment.rlhf import RLHFConfig, Setup, evaluate


def grpo_dataset(requests: Requests, rows: int):
    """A ``datasets.Dataset`` of ``rows`` chat prompts cycling through ``requests``."""
    from datasets import Dataset

    index = [i % len(requests) for i in range(rows)]
    return Dataset.from_dict(
        {
            "prompt": [chat_prompt(requests.texts[i]) for i in index],
            "request": [requests.texts[i] for i in index],
            "polarity": [int(requests.polarity[i]) for i in index],
        }
    )


def run_grpo(
    load_base: Callable[[], nn.Module],
    tokenizer,
    setup: Setup,
    settings: RLHFConfig,
    seed: int,
    beta: float,
    group_size: int = 4,
    progress: bool = False,
) -> dict[str, float]:
    """Tune a LoRA by ``trl.GRPOTrainer`` with our reward model; evaluate as ours.

    Each of ``settings.ppo.iterations`` steps samples ``settings.ppo.batch_size``
    answers (``batch_size / group_size`` prompts, ``group_size`` answers each).
    """
    from peft import LoraConfig
    from trl import GRPOConfig, GRPOTrainer

    start = time.perf_counter()
    ppo, L = settings.ppo, settings.completion_tokens

    def reward_model(prompts, completions, request, polarity, **_) -> list[float]:
        return setup.judge.reward_model(list(request), list(completions)).tolist()

    with tempfile.TemporaryDirectory() as tmp:
        args = GRPOConfig(
            output_dir=tmp,
            use_cpu=True,
            report_to="none",
            save_strategy="no",
            seed=seed,
            per_device_train_batch_size=ppo.batch_size,
            num_generations=group_size,
            max_completion_length=L,
            generation_kwargs={"min_new_tokens": L},
            max_steps=ppo.iterations,
            learning_rate=ppo.learning_rate,
            beta=beta,
            temperature=1.0,
            top_k=0,
            logging_steps=ppo.iterations,
            disable_tqdm=not progress,
        )
        peft = LoraConfig(
            r=settings.lora_rank,
            lora_alpha=2 * settings.lora_rank,
            lora_dropout=0.0,
            target_modules=list(LLAMA_LORA_TARGETS),
        )
        trainer = GRPOTrainer(
            model=load_base(),
            reward_funcs=reward_model,
            args=args,
            peft_config=peft,
            train_dataset=grpo_dataset(setup.train, ppo.samples),
            processing_class=tokenizer,
        )
        torch.manual_seed(seed)
        trainer.train()
    policy = trainer.model.eval()
    result = evaluate(policy, setup, settings, seed, (tokenizer.eos_token_id,))
    seconds = time.perf_counter() - start
    return {
        **result,
        "samples": ppo.samples,
        "reward_model_queries": ppo.samples,
        "seconds": seconds,
    }
