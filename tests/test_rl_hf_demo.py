"""rl_hf_demo: the whole pipeline on a tiny GPT keeps the reference frozen; win rates; bad input."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest
import torch
from tiny import tiny_gpt

from dl2llm import paths
from dl2llm.alignment.dpo import DPOConfig
from dl2llm.alignment.ppo import PPOConfig
from dl2llm.alignment.preferences import LexiconLabeler
from dl2llm.alignment.rlhf import RLHFConfig, run_rlhf, win_rate
from dl2llm.models import load_gpt2_tokenizer

SCRIPT = paths.REPO_ROOT / "weeks/week5_alignment_deployment/rl_hf_demo.py"


def test_win_rate_counts_ties_half_and_brackets_the_estimate():
    tuned = torch.tensor([1.0, 2.0, 3.0, 4.0])
    reference = torch.tensor([0.0, 2.0, 5.0, 1.0])
    result = win_rate(tuned, reference, seed=0)
    assert result["win_rate"] == pytest.approx((1 + 0.5 + 0 + 1) / 4)
    assert 0.0 <= result["low"] <= result["win_rate"] <= result["high"] <= 1.0


def test_pipeline_never_changes_the_reference_and_reports_every_probe():
    base = tiny_gpt()
    before = {name: p.clone() for name, p in base.state_dict().items()}
    settings = replace(
        RLHFConfig.quick(),
        completion_tokens=4,
        preference_prompts=20,
        eval_prompts=8,
        probe_prompts=4,
        probes=2,
        reward_epochs=5,
        ppo=PPOConfig(iterations=2, batch_size=4, completion_tokens=4, epochs=1, minibatch_size=4),
        dpo=DPOConfig(steps=2, batch_size=4),
    )
    report, reference = run_rlhf(base, LexiconLabeler(), load_gpt2_tokenizer(), settings, 0, False)
    for model in (reference, base):
        for name, tensor in model.state_dict().items():
            assert torch.equal(tensor, before[name]), name
    assert not any(p.requires_grad for p in reference.parameters())
    assert len(report.pairs) == 20
    assert report.pairs.chosen.shape == (20, 4)
    assert 1 <= report.reward.best_epoch <= settings.reward_epochs
    for method in (report.ppo, report.dpo):
        assert method.fraction == [0.0, 0.5, 1.0]
        assert method.kl[0] == 0.0  # the reference against itself
        assert 0.0 <= method.win["low"] <= method.win["win_rate"] <= method.win["high"] <= 1.0


@pytest.mark.parametrize(
    ("flags", "message"),
    [(["--beta", "0"], "--beta must be > 0"), (["--kl-coef", "-1"], "--kl-coef must be >= 0")],
)
def test_bad_flags_exit_2_with_one_line(flags, message, tmp_path):
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path), *flags],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2
    assert message in run.stderr
    assert not (tmp_path / "rl_hf_demo.json").exists()
