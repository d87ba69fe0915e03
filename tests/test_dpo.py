"""DPO: our loss equals trl's, our log-probs equal the HF scorer's, training follows the pairs."""

from __future__ import annotations

import pytest
import torch
from tiny import tiny_gpt, tiny_gpt_config

from dl2llm.alignment.dpo import DPOConfig, completion_logps, dpo_loss, pair_logps, train_dpo
from dl2llm.alignment.preferences import PreferencePairs
from dl2llm.alignment.rlhf import frozen_copy, lora_policy
from dl2llm.exercises.dpo_loss import _trl_run

TINY = tiny_gpt_config(vocab_size=32)  # no dropout


@pytest.mark.parametrize("beta", [0.3, 2.0])
def test_dpo_loss_equals_trl(beta):
    trl = _trl_run(beta)  # trl DPOTrainer.compute_loss and the batch's four log-probs
    losses, chosen, rejected = dpo_loss(*trl["logps"], beta)
    assert losses.mean().item() == pytest.approx(trl["loss"], abs=1e-5)
    assert [chosen.mean().item(), rejected.mean().item()] == pytest.approx(trl["rewards"], abs=1e-5)


def test_pair_logps_equal_hf_completion_logps():
    model = tiny_gpt(TINY)
    prompts, chosen, rejected = (torch.randint(0, 32, (3, n)) for n in (4, 5, 5))
    pairs = PreferencePairs(prompts, chosen, rejected, torch.ones(3, dtype=torch.bool))
    ours = torch.cat(pair_logps(model, pairs))  # (6,)
    sequences = torch.cat([torch.cat([prompts, chosen], 1), torch.cat([prompts, rejected], 1)])
    completion_mask = torch.zeros_like(sequences)
    completion_mask[:, 4:] = 1
    with torch.no_grad():
        hf = completion_logps(
            model.to_hf_model().eval(), sequences, torch.ones_like(sequences), completion_mask
        )
    torch.testing.assert_close(ours.detach(), hf, atol=1e-5, rtol=1e-5)


def test_train_dpo_prefers_chosen_and_leaves_reference_unchanged():
    base = tiny_gpt(TINY)
    reference = frozen_copy(base)
    before = {name: p.clone() for name, p in reference.state_dict().items()}
    n = 16
    prompts = torch.randint(0, 32, (n, 3))
    pairs = PreferencePairs(
        prompts,
        torch.full((n, 4), 7),
        torch.randint(8, 32, (n, 4)),
        torch.ones(n, dtype=torch.bool),
    )  # chosen completions are all token 7
    policy = lora_policy(base, rank=4)
    generator = torch.Generator().manual_seed(0)
    history = train_dpo(
        policy, reference, pairs, DPOConfig(steps=40, batch_size=8, learning_rate=3e-2, beta=0.5),
        generator, progress=False,
    )  # fmt: skip
    assert history.losses[0] == pytest.approx(0.6931, abs=1e-4)  # policy = reference: log 2
    assert history.losses[-1] < 0.6  # the tiny model's frozen LayerNorm + head cap the margin
    assert history.accuracies[-1] == 1.0
    with torch.no_grad():
        chosen, rejected = pair_logps(policy, pairs)
        ref_chosen, ref_rejected = pair_logps(reference, pairs)
    assert ((chosen - ref_chosen) - (rejected - ref_rejected)).min() > 0
    for name, tensor in reference.state_dict().items():
        assert torch.equal(tensor, before[name]), name
    assert not any(p.requires_grad for p in reference.parameters())
