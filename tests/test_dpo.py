"""DPO: our loss equals trl's, our log-probs equal the HF scorer's, training follows the pairs."""

from __future__ import annotations

import pytest
import torch
from tiny import tiny_llama

from dl2llm.alignment.dpo import DPOConfig, completion_logps, dpo_loss, pair_logps, train_dpo
from dl2llm.alignment.policy import add_lora, reference_of
from dl2llm.alignment.preferences import PreferencePairs, Requests
from dl2llm.exercises.dpo_loss import _trl_run


def pairs_of(prompts, chosen, rejected) -> PreferencePairs:
    """Preference pairs of token ids (request texts and polarity unused here)."""
    n = len(prompts)
    requests = Requests(["x"] * n, prompts, torch.zeros(n, dtype=torch.long))
    return PreferencePairs(requests, chosen, rejected, torch.ones(n, dtype=torch.bool))


@pytest.mark.parametrize("beta", [0.3, 2.0])
def test_dpo_loss_equals_trl(beta):
    trl = _trl_run(beta)  # trl DPOTrainer.compute_loss and the batch's four log-probs
    losses, chosen, rejected = dpo_loss(*trl["logps"], beta)
    assert losses.mean().item() == pytest.approx(trl["loss"], abs=1e-5)
    assert [chosen.mean().item(), rejected.mean().item()] == pytest.approx(trl["rewards"], abs=1e-5)


def test_pair_logps_equal_hf_completion_logps():
    model = tiny_llama()
    prompts, chosen, rejected = (torch.randint(0, 64, (3, n)) for n in (4, 5, 5))
    ours = torch.cat(pair_logps(model, pairs_of(prompts, chosen, rejected)))  # (6,)
    sequences = torch.cat([torch.cat([prompts, chosen], 1), torch.cat([prompts, rejected], 1)])
    completion_mask = torch.zeros_like(sequences)
    completion_mask[:, 4:] = 1
    with torch.no_grad():
        hf = completion_logps(model, sequences, torch.ones_like(sequences), completion_mask)
    torch.testing.assert_close(ours.detach(), hf, atol=1e-5, rtol=1e-5)


def test_train_dpo_prefers_chosen_and_leaves_the_base_weights_unchanged():
    policy = add_lora(tiny_llama(initializer_range=0.3), rank=4)
    before = {k: v.clone() for k, v in policy.state_dict().items() if "lora_" not in k}
    n = 16
    prompts = torch.randint(0, 64, (n, 3))
    pairs = pairs_of(prompts, torch.full((n, 4), 7), torch.randint(8, 64, (n, 4)))  # chosen: 7s
    generator = torch.Generator().manual_seed(0)
    config = DPOConfig(epochs=20, batch_size=8, learning_rate=3e-2, beta=0.5)
    history = train_dpo(policy, pairs, config, generator, progress=False)
    assert len(history.losses) == 40  # 20 epochs of 2 minibatches
    assert history.losses[0] == pytest.approx(0.6931, abs=1e-4)  # policy = reference: log 2
    assert history.losses[-1] < 0.3
    assert history.accuracies[-1] == 1.0
    with torch.no_grad():
        chosen, rejected = pair_logps(policy, pairs)
        with reference_of(policy)():
            ref_chosen, ref_rejected = pair_logps(policy, pairs)
    assert ((chosen - ref_chosen) - (rejected - ref_rejected)).min() > 0
    for name, tensor in policy.state_dict().items():
        if name in before:
            assert torch.equal(tensor, before[name]), name
