"""The week 5 RLHF lesson behind ``weeks/week5_alignment_deployment/rl_hf_demo.py``.

:func:`run_lesson` loads SmolLM2-135M-Instruct (quick runs: a tiny random
Llama with SmolLM2's tokenizer), gives it LoRA adapters, and for every seed
builds the task and reward model (:func:`dl2llm.alignment.rlhf.prepare`), then
sweeps PPO's ``kl_coef`` and DPO's ``beta`` at the same sample budget, adds
best-of-N and one ``trl`` GRPO run, and reads every frontier at a matched KL
(:mod:`dl2llm.alignment.rlhf_frontier`). Each finished run is recorded in a
progress file, so a killed run resumes after the last finished one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from dl2llm.alignment.policy import add_lora, tiny_llama_policy
from dl2llm.alignment.preferences import Labeler, LexiconLabeler, SentimentLabeler, TrueReward
from dl2llm.alignment.rlhf import RLHFConfig, best_of_n, prepare, run_method
from dl2llm.alignment.rlhf_frontier import matched_kl, plot_frontier, reward_at_kl, seed_interval
from dl2llm.errors import UsageError
from dl2llm.io import atomic_write_json
from dl2llm.models import llm_path, load_llm

NAME = "rl_hf_demo"
METHODS = ("ppo", "dpo")


@dataclass(frozen=True)
class LessonConfig:
    """The sweep: seeds, PPO ``kl_coefs``, DPO ``betas``, the GRPO reference run."""

    seeds: tuple[int, ...] = (0, 1, 2)
    kl_coefs: tuple[float, ...] = (0.02, 0.1, 0.5)
    betas: tuple[float, ...] = (0.05, 0.2, 1.0)
    grpo_beta: float | None = 0.1  # None: no trl run
    grpo_seeds: int = 1
    rlhf: RLHFConfig = field(default_factory=RLHFConfig)

    def __post_init__(self) -> None:
        if not self.seeds:
            raise UsageError("give at least one seed")
        if any(c < 0 for c in self.kl_coefs) or any(b <= 0 for b in self.betas):
            raise UsageError("kl_coef must be >= 0 and beta > 0")

    @classmethod
    def quick(cls, seed: int = 0) -> LessonConfig:
        return cls(
            seeds=(seed,), kl_coefs=(0.1,), betas=(0.1,), grpo_beta=None, rlhf=RLHFConfig.quick()
        )

    def coefs(self, method: str) -> tuple[float, ...]:
        """The swept strengths of ``method``."""
        return self.kl_coefs if method == "ppo" else self.betas


def choose_labeler(name: str, quick: bool) -> str:
    """``"sentiment"`` or ``"lexicon"``; ``"auto"`` is the word list in quick mode."""
    if name != "auto":
        return name
    return "lexicon" if quick else "sentiment"


class Progress:
    """Finished results by key in a JSON file; a different configuration starts afresh."""

    def __init__(self, path: Path, config: dict) -> None:
        self.path, self.config = path, json_safe(config)
        saved = json.loads(path.read_text()) if path.is_file() else {}
        same = saved.get("config") == self.config
        self.done: dict[str, Any] = saved.get("done", {}) if same else {}

    def get(self, key: str, compute: Callable[[], Any]) -> Any:
        """The saved result of ``key``, or ``compute()``'s, saved at once."""
        if key not in self.done:
            self.done[key] = compute()
            atomic_write_json(self.path, {"config": self.config, "done": self.done})
        return self.done[key]


def load_policy(quick: bool) -> tuple[Callable[[], nn.Module], object]:
    """A loader of the base model (SmolLM2, or a tiny Llama in quick mode) and its tokenizer."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(llm_path())
    if quick:
        return lambda: tiny_llama_policy(len(tokenizer)), tokenizer
    return lambda: load_llm()[0], tokenizer


def run_seed(
    seed: int,
    config: LessonConfig,
    store: Progress,
    load_base,
    tokenizer,
    labeler: Labeler,
    progress: bool,
) -> None:
    """Every run of one seed (skipping those in ``store``)."""
    settings = config.rlhf
    keys = [f"{seed}/{m}/{c:g}" for m in METHODS for c in config.coefs(m)] + [f"{seed}/setup"]
    grpo = config.grpo_beta is not None and seed in config.seeds[: config.grpo_seeds]
    keys += [f"{seed}/grpo/{config.grpo_beta:g}"] if grpo else []
    if all(key in store.done for key in keys):
        return
    policy = add_lora(load_base(), settings.lora_rank)
    banned = (tokenizer.eos_token_id,)
    setup = prepare(policy, tokenizer, TrueReward(labeler), settings, seed, banned)
    store.get(
        f"{seed}/setup",
        lambda: {
            "reward_model_heldout_accuracy": setup.reward.heldout_accuracy,
            "reward_model_train_accuracy": setup.reward.train_accuracy,
            "reward_model_best_epoch": setup.reward.best_epoch,
            "preference_pairs": setup.pairs,
            "reference_true_reward": setup.reference_true,
            "best_of_n": [best_of_n(setup, n) for n in settings.best_of],
        },
    )
    for method in METHODS:
        for coef in config.coefs(method):
            result = store.get(
                f"{seed}/{method}/{coef:g}",
                lambda: run_method(method, coef, policy, setup, settings, seed, banned, progress),  # noqa: B023
            )
            print(
                f"seed {seed} {method} {coef:g}: true {result['true_reward']:.3f} "
                f"RM {result['reward_model']:.2f} KL {result['kl']:.2f} "
                f"({result['seconds']:.0f} s)"
            )
    if grpo:
        from dl2llm.alignment.rlhf_trl import run_grpo

        store.get(
            f"{seed}/grpo/{config.grpo_beta:g}",
            lambda: run_grpo(
                load_base, tokenizer, setup, settings, seed, config.grpo_beta, progress=progress
            ),
        )


def _interval(metrics: dict, name: str, values: list[float]) -> None:
    metrics[name], metrics[f"{name}_low"], metrics[f"{name}_high"] = seed_interval(values)


def collect_metrics(config: LessonConfig, done: dict[str, Any]) -> tuple[dict[str, Any], dict]:
    """Headline metrics (seed means and intervals at the matched KL) and the per-run table."""
    seeds = config.seeds
    setups = [done[f"{s}/setup"] for s in seeds]
    runs = {
        m: {c: [done[f"{s}/{m}/{c:g}"] for s in seeds] for c in config.coefs(m)} for m in METHODS
    }
    metrics: dict[str, Any] = {
        "samples_per_run": config.rlhf.samples,
        "reward_model_queries_per_run": config.rlhf.samples,
    }
    _interval(
        metrics,
        "reward_model_heldout_accuracy",
        [s["reward_model_heldout_accuracy"] for s in setups],
    )
    metrics["preference_pairs"] = setups[0]["preference_pairs"]
    _interval(metrics, "reference_true_reward", [s["reference_true_reward"] for s in setups])
    kls = {
        m: [[0.0] + [runs[m][c][i]["kl"] for c in config.coefs(m)] for i in range(len(seeds))]
        for m in METHODS
    }
    kl = matched_kl(kls)
    metrics["matched_kl"] = kl
    at_kl: dict[str, list[float]] = {}
    for method in METHODS:
        coefs = config.coefs(method)
        for key, start, name in (
            ("true_reward", None, "true_reward"),
            ("win_rate", 0.5, "win_rate"),
        ):
            values = []
            for i, setup in enumerate(setups):
                first = setup["reference_true_reward"] if start is None else start
                ys = [first] + [runs[method][c][i][key] for c in coefs]
                values.append(reward_at_kl(kls[method][i], ys, kl))
            at_kl[f"{method}_{name}"] = values
            _interval(
                metrics,
                f"{method}_{name}_at_matched_kl" if name != "win_rate" else f"{method}_win_rate",
                values,
            )
        loosest = coefs[0] if method == "ppo" else min(coefs)
        metrics[f"{method}_max_kl"] = float(
            sum(r["kl"] for r in runs[method][loosest]) / len(seeds)
        )
        for key in ("true_reward", "reward_model"):
            metrics[f"{method}_loosest_{key}"] = sum(r[key] for r in runs[method][loosest]) / len(
                seeds
            )
    _interval(
        metrics,
        "ppo_minus_dpo_true_reward_at_matched_kl",
        [a - b for a, b in zip(at_kl["ppo_true_reward"], at_kl["dpo_true_reward"], strict=True)],
    )
    best_of = [
        {k: sum(s["best_of_n"][j][k] for s in setups) / len(seeds) for k in s0}
        for j, s0 in enumerate(setups[0]["best_of_n"])
    ]
    metrics["best_of_n"] = best_of
    metrics["best_of_n_true_reward_at_matched_kl"] = reward_at_kl(
        [p["kl"] for p in best_of], [p["true_reward"] for p in best_of], kl
    )
    metrics["best_of_n_max_kl"] = best_of[-1]["kl"]
    for key, result in done.items():
        if "/grpo/" in key:
            for name in ("true_reward", "reward_model", "kl", "win_rate", "seconds"):
                metrics[f"trl_grpo_{name}"] = result[name]
    metrics["runs"] = done
    return metrics, runs


def run_lesson(
    config: LessonConfig,
    labeler_name: str,
    quick: bool,
    out_dir: str | Path,
    progress: bool = True,
) -> tuple[dict[str, Any], list[str]]:
    """Run the sweep (resuming from ``<out>/rl_hf_demo_progress.json``); write the frontier plot."""
    labeler: Labeler = LexiconLabeler() if labeler_name == "lexicon" else SentimentLabeler(quick)
    out = Path(out_dir)
    store = Progress(
        out / f"{NAME}_progress.json", {"labeler": labeler_name, "quick": quick, **asdict(config)}
    )
    load_base, tokenizer = load_policy(quick)
    for seed in config.seeds:
        run_seed(seed, config, store, load_base, tokenizer, labeler, progress)
    metrics, runs = collect_metrics(config, store.done)
    plot_name = f"{NAME}_frontier.png"
    runs_named = {"PPO (kl_coef)": runs["ppo"], "DPO (beta)": runs["dpo"]}
    plot_frontier(
        runs_named,
        metrics["best_of_n"],
        metrics["reference_true_reward"],
        metrics["matched_kl"],
        out / plot_name,
    )
    return metrics, [plot_name]


def json_safe(value: Any) -> Any:
    """Tuples to lists, recursively (what a JSON round trip gives back)."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
