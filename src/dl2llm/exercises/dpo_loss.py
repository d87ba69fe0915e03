"""Exercise ``dpo_loss``: the Direct Preference Optimization loss (week 5).

Mirrors :func:`dl2llm.alignment.dpo.dpo_loss`. The reference is ``trl``'s
``DPOTrainer.compute_loss`` (its default ``"sigmoid"`` loss) on a batch of two
preference pairs scored by a tiny GPT-2 policy and a perturbed copy as the
reference model; the implicit rewards are compared with the ``rewards/chosen``
and ``rewards/rejected`` that the trainer logs.
"""

from __future__ import annotations

import math
from functools import cache
from types import SimpleNamespace

from dl2llm.exercises.framework import Case, Exercise

TEMPLATE = '''"""Exercise dpo_loss: Direct Preference Optimization (Rafailov et al., 2023).

With log-ratios  chosen = log pi(y_w) - log pi_ref(y_w)  and
rejected = log pi(y_l) - log pi_ref(y_l)  (summed completion log-probabilities),

    loss = -log sigmoid(beta * (chosen - rejected))
    chosen_reward = beta * chosen,   rejected_reward = beta * rejected

Use a numerically stable log-sigmoid: a margin of +-1000 must not give inf or nan.
Check with: dl2llm exercise check dpo_loss
"""

import torch
import torch.nn.functional as F


def dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    beta: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(losses, chosen_rewards, rejected_rewards), each (B,); every input is (B,)."""
    # chosen_logratios = ...      # (B,)
    # rejected_logratios = ...    # (B,)
    raise NotImplementedError
'''

BETAS = (0.3, 2.0)


def _library() -> SimpleNamespace:
    from dl2llm.alignment.dpo import dpo_loss

    return SimpleNamespace(dpo_loss=dpo_loss)


@cache
def _trl_run(beta: float) -> dict:
    """trl's loss and logged rewards, and the four log-probabilities of the same batch."""
    import copy
    import tempfile

    import torch
    from datasets import Dataset
    from transformers import GPT2Config, GPT2LMHeadModel
    from trl import DPOConfig, DPOTrainer

    from dl2llm.alignment.dpo import completion_logps
    from dl2llm.pretrain import gpt2_hf_tokenizer

    tokenizer = gpt2_hf_tokenizer()
    tokenizer.pad_token = tokenizer.eos_token
    torch.manual_seed(0)
    config = GPT2Config(
        n_embd=16, n_layer=1, n_head=2, n_positions=64, resid_pdrop=0, embd_pdrop=0, attn_pdrop=0
    )
    policy = GPT2LMHeadModel(config)
    reference = copy.deepcopy(policy)
    with torch.no_grad():
        for param in reference.parameters():
            param.add_(0.05 * torch.randn_like(param))
    pairs = Dataset.from_dict(
        {
            "prompt": ["The cat", "Hello there, how"],
            "chosen": [" sat on the mat.", " are you?"],
            "rejected": [" flew away", " is the weather today in Paris?"],
        }
    )
    with tempfile.TemporaryDirectory() as out:
        args = DPOConfig(
            output_dir=out, per_device_train_batch_size=2, report_to=[], beta=beta, use_cpu=True
        )
        trainer = DPOTrainer(
            model=policy,
            ref_model=reference,
            args=args,
            train_dataset=pairs,
            processing_class=tokenizer,
        )
        batch = next(iter(trainer.get_train_dataloader()))
        with torch.no_grad():
            loss = trainer.compute_loss(trainer.model, batch).item()
            inputs = (batch["input_ids"], batch["attention_mask"], batch["completion_mask"])
            policy_logps = completion_logps(trainer.model, *inputs).chunk(2)
            reference_logps = completion_logps(trainer.ref_model, *inputs).chunk(2)
    metrics = trainer._metrics["train"]
    return {
        "loss": loss,
        "rewards": [metrics["rewards/chosen"][-1], metrics["rewards/rejected"][-1]],
        "logps": (*policy_logps, *reference_logps),  # chosen, rejected; ref chosen, ref rejected
    }


def _mean_loss(code, beta: float) -> float:
    losses, _, _ = code.dpo_loss(*_trl_run(beta)["logps"], beta)
    return losses.mean().item()


def _mean_rewards(code, beta: float) -> list[float]:
    _, chosen, rejected = code.dpo_loss(*_trl_run(beta)["logps"], beta)
    return [chosen.mean().item(), rejected.mean().item()]


def _extreme_margins(code):
    import torch

    zero = torch.zeros(3, dtype=torch.float64)
    policy_chosen = torch.tensor([1000.0, -1000.0, 5.0], dtype=torch.float64)
    losses, _, _ = code.dpo_loss(policy_chosen, zero, zero, zero, 0.5)
    return losses


def _cases() -> list[Case]:
    import torch

    cases = []
    for beta in BETAS:
        cases.append(
            Case(
                f"beta={beta}: mean loss vs trl DPOTrainer.compute_loss (tiny GPT-2, 2 pairs)",
                lambda code, beta=beta: _mean_loss(code, beta),
                lambda beta=beta: _trl_run(beta)["loss"],
                atol=1e-5,
                rtol=1e-5,
            )
        )
        cases.append(
            Case(
                f"beta={beta}: mean chosen and rejected rewards vs trl's logged rewards",
                lambda code, beta=beta: _mean_rewards(code, beta),
                lambda beta=beta: _trl_run(beta)["rewards"],
                atol=1e-5,
                rtol=1e-5,
            )
        )
    same = torch.tensor([-3.0, -7.5], dtype=torch.float64)
    cases.append(
        Case(
            "policy = reference: every loss is log 2",
            lambda code: code.dpo_loss(same, same - 1, same, same - 1, 0.1)[0],
            lambda: torch.full((2,), math.log(2), dtype=torch.float64),
            atol=1e-12,
        )
    )
    cases.append(
        Case(
            "margins of +-1000 (beta 0.5): losses 0, 500 and softplus(-2.5), no inf or nan",
            _extreme_margins,
            lambda: torch.tensor([0.0, 500.0, math.log1p(math.exp(-2.5))], dtype=torch.float64),
            atol=1e-9,
        )
    )
    return cases


EXERCISE = Exercise(
    name="dpo_loss",
    title="The DPO loss",
    week=5,
    mirrors=("dl2llm.alignment.dpo.dpo_loss",),
    template=TEMPLATE,
    cases=_cases,
    library=_library,
)
