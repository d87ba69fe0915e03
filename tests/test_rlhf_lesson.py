"""rl_hf_demo's lesson: best-of-N's KL, equal budgets for PPO and DPO, matched KL, resume."""

from __future__ import annotations

import math
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch
from tiny import tiny_llama

from dl2llm.alignment.policy import add_lora
from dl2llm.alignment.preferences import LexiconLabeler, Requests, TrueReward
from dl2llm.alignment.reward import RewardTrainingResult
from dl2llm.alignment.rlhf import Judge, RLHFConfig, Setup, best_of_n, best_of_n_kl, run_method
from dl2llm.alignment.rlhf_frontier import matched_kl, reward_at_kl
from dl2llm.alignment.rlhf_lesson import (
    LessonConfig,
    Progress,
    Sweep,
    check_same_setup,
    choose_labeler,
    collect_metrics,
)
from dl2llm.errors import UsageError
from dl2llm.prompting import seed_interval


def test_best_of_n_kl_is_log_n_minus_n_minus_one_over_n():
    assert best_of_n_kl(1) == 0.0
    assert best_of_n_kl(2) == pytest.approx(math.log(2) - 0.5)  # 0.1931
    assert best_of_n_kl(8) == pytest.approx(2.0794415 - 0.875)
    # exact for a reward without ties: the chosen answer's rank r of N has P = (r/N)^N - ...,
    # checked here against the KL computed from that distribution on a 1000-answer support
    n, m = 4, 1000
    ranks = torch.arange(1, m + 1, dtype=torch.float64) / m
    p = ranks**n - (ranks - 1 / m) ** n  # P(best of n is the answer of rank i)
    kl = (p * torch.log(p * m)).sum().item()
    assert kl == pytest.approx(best_of_n_kl(n), abs=2e-3)


def _setup(pool_true, pool_learned, requests, reward_model=None) -> Setup:
    judge = Judge(TrueReward(LexiconLabeler()), reward_model, lambda ids: [str(r) for r in ids])
    result = RewardTrainingResult([], 1, 1.0, 1.0)
    return Setup(requests, requests, judge, result, 0, pool_true, pool_learned, 0.5)


def test_best_of_n_keeps_the_reward_models_favourite_of_disjoint_groups():
    pool_true = torch.tensor([[0.1, 0.9, 0.4, 0.2]])
    pool_learned = torch.tensor([[1.0, 0.0, 3.0, 2.0]])  # the reward model disagrees with truth
    setup = _setup(pool_true, pool_learned, None)
    assert best_of_n(setup, 1)["true_reward"] == pytest.approx(0.4)
    two = best_of_n(setup, 2)  # groups (0.1 | 0.9) -> 0.1, (0.4 | 0.2) -> 0.4
    assert two["true_reward"] == pytest.approx(0.25) and two["reward_model"] == pytest.approx(2.0)
    assert best_of_n(setup, 4)["true_reward"] == pytest.approx(0.4)
    assert two["kl"] == best_of_n_kl(2)


class CountingRewardModel:
    """Scores (request, completion) texts by length; counts every answer it scores."""

    def __init__(self) -> None:
        self.queries = 0

    def __call__(self, requests: list[str], completions: list[str]) -> torch.Tensor:
        self.queries += len(completions)
        return torch.tensor([float(len(c) % 7) for c in completions])


@pytest.mark.parametrize("method", ["ppo", "dpo"])
def test_ppo_and_dpo_query_the_reward_model_equally_often(method):
    settings = RLHFConfig.quick()
    n = 6
    requests = Requests(
        [f"r{i}" for i in range(n)], torch.randint(3, 64, (n, 3)), torch.arange(n) % 2
    )
    counter = CountingRewardModel()
    setup = _setup(torch.zeros(n, 4), torch.zeros(n, 4), requests, counter)
    policy = add_lora(tiny_llama(), rank=2)
    result = run_method(method, 0.1, policy, setup, settings, 0, ())
    evaluation = n * settings.eval_samples  # the held-out answers, scored once each
    assert settings.samples == settings.ppo.iterations * settings.ppo.batch_size == 8
    assert counter.queries - evaluation == settings.samples == result["samples"]
    assert result["reward_model_queries"] == settings.samples


def test_frontier_interpolation_matched_kl_and_seed_interval():
    assert reward_at_kl([0.0, 1.0, 3.0], [0.5, 0.7, 0.6], 2.0) == pytest.approx(0.65)
    assert matched_kl({"a": [[0.0, 1.0, 2.5]], "b": [[0.0, 4.0]]}) == 2.5
    mean, low, high = seed_interval([0.6, 0.7, 0.8])
    assert mean == pytest.approx(0.7) and high - mean == pytest.approx(
        4.302653 * 0.1 / math.sqrt(3)
    )


def test_progress_resumes_finished_runs_only_for_the_same_config(tmp_path):
    path = tmp_path / "progress.json"
    calls = []
    first = Progress(path, {"seeds": (0, 1)})
    assert first.get("0/ppo/0.1", lambda: calls.append(1) or {"kl": 1.5}) == {"kl": 1.5}
    again = Progress(path, {"seeds": (0, 1)})  # tuples and lists compare equal after JSON
    assert again.get("0/ppo/0.1", lambda: calls.append(2) or {"kl": 9.0}) == {"kl": 1.5}
    assert calls == [1]
    other = Progress(path, {"seeds": (0,)})
    assert other.done == {}


def test_a_finished_sweep_resumes_without_loading_a_model(tmp_path):
    config = replace(LessonConfig.quick(), kl_coefs=(0.1,), betas=(0.2,))
    store = Progress(tmp_path / "p.json", {"x": 1})
    run = {"true_reward": 0.5, "reward_model": 0.0, "kl": 0.1, "seconds": 1.0}
    store.done = {"setup": {}, "0/ppo/0.1": run, "0/dpo/0.2": run, "0/grpo/0.1": run}

    def no_model():
        raise AssertionError("a finished sweep must not load the model")

    Sweep(config, store, no_model, None, LexiconLabeler(), False).run_all()


def test_labeler_choice_and_bad_sweeps():
    assert choose_labeler("auto", quick=True) == "lexicon"
    assert choose_labeler("auto", quick=False) == "sentiment"
    with pytest.raises(UsageError, match="beta > 0"):
        LessonConfig(betas=(0.0,))
    with pytest.raises(UsageError, match="at least one seed"):
        LessonConfig(seeds=())


def test_widening_the_sweep_keeps_the_finished_runs(tmp_path):
    narrow = LessonConfig(kl_coefs=(0.02, 0.2), betas=(0.05, 0.5))
    wide = LessonConfig(kl_coefs=(0.02, 0.05, 0.2), betas=(0.05, 0.5, 2.0))
    assert narrow.identity() == wide.identity()
    assert LessonConfig(seeds=(0, 1)).identity() != wide.identity()
    path = tmp_path / "progress.json"
    Progress(path, narrow.identity()).get("0/ppo/0.02", lambda: {"kl": 7.4})
    assert Progress(path, wide.identity()).done == {"0/ppo/0.02": {"kl": 7.4}}


def test_a_rebuilt_setup_must_match_the_saved_one():
    saved = {"reward_model_heldout_accuracy": 0.64, "reference_true_reward": 0.626}
    same = SimpleNamespace(reward=SimpleNamespace(heldout_accuracy=0.64), reference_true=0.626)
    check_same_setup(saved, same)
    check_same_setup(None, same)  # a fresh sweep has nothing to compare with
    other = SimpleNamespace(reward=SimpleNamespace(heldout_accuracy=0.66), reference_true=0.626)
    with pytest.raises(RuntimeError, match="delete it to start afresh"):
        check_same_setup(saved, other)


def _run(true_reward: float, kl: float, win: float) -> dict:
    return {"true_reward": true_reward, "reward_model": 0.0, "kl": kl, "win_rate": win}


def test_metrics_clip_intervals_and_leave_out_a_best_of_n_that_falls_short():
    config = LessonConfig(seeds=(0, 1, 2), kl_coefs=(0.1,), betas=(0.1,))
    best_of = [
        {"true_reward": 0.5, "reward_model": 0.0, "kl": 0.0, "samples_per_prompt": 1},
        {"true_reward": 0.6, "reward_model": 1.0, "kl": 0.19, "samples_per_prompt": 2},
    ]
    done = {"setup": {"reference_true_reward": 0.5, "reward_model_heldout_accuracy": 0.6,
                      "reward_model_train_accuracy": 0.8, "preference_pairs": 8,
                      "best_of_n": best_of}}  # fmt: skip
    for seed, (ppo, dpo) in enumerate([(0.99, 0.6), (0.7, 0.5), (0.98, 0.55)]):
        done[f"{seed}/ppo/0.1"] = _run(ppo, 2.0, ppo)
        done[f"{seed}/dpo/0.1"] = _run(dpo, 2.0, dpo)
    metrics, _ = collect_metrics(config, done)
    assert metrics["matched_kl"] == 2.0
    mean, _, unclipped_high = seed_interval([0.99, 0.7, 0.98])
    assert unclipped_high > 1.0
    assert metrics["ppo_true_reward_at_matched_kl"] == pytest.approx(mean)
    assert metrics["ppo_true_reward_at_matched_kl_high"] == 1.0
    assert metrics["ppo_win_rate_high"] == 1.0
    assert metrics["best_of_n_true_reward_at_matched_kl"] is None  # its largest KL is 0.19
    assert metrics["best_of_n_true_reward_at_max_kl"] == 0.6
