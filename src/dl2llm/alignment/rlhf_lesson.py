"""The week 5 RLHF lesson behind ``weeks/week5_alignment_deployment/rl_hf_demo.py``.

:func:`run_lesson` loads SmolLM2-135M-Instruct (quick runs: a tiny random
Llama with SmolLM2's tokenizer), gives it LoRA adapters, builds the task and
reward model once (:func:`dl2llm.alignment.rlhf.prepare`, from the first seed's
data), then for every seed sweeps PPO's ``kl_coef`` and DPO's ``beta`` at the
same sample budget; it adds best-of-N and one ``trl`` GRPO run, and reads every
frontier at a matched KL (:mod:`dl2llm.alignment.rlhf_frontier`). Seeds vary
training and evaluation samples, not the reward model. Each finished run is recorded in a
progress file under its seed, method and strength, so a killed run resumes after the last
finished one, and a sweep widened by one more strength runs only the new runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dl2llm.alignment.policy import add_lora, tiny_llama_policy
from dl2llm.alignment.preferences import Labeler, LexiconLabeler, SentimentLabeler, TrueReward
from dl2llm.alignment.rlhf import RLHFConfig, Setup, best_of_n, prepare, run_method
from dl2llm.alignment.rlhf_frontier import matched_kl, plot_frontier, reward_at_kl
from dl2llm.errors import UsageError
from dl2llm.io import atomic_write_json
from dl2llm.models import llm_path, load_llm
from dl2llm.prompting import seed_interval

NAME = "rl_hf_demo"
METHODS = ("ppo", "dpo")


@dataclass(frozen=True)
class LessonConfig:
    """The sweep: seeds, PPO ``kl_coefs``, DPO ``betas``, the GRPO reference run."""

    seeds: tuple[int, ...] = (0, 1, 2)
    kl_coefs: tuple[float, ...] = (0.02, 0.05, 0.2)
    betas: tuple[float, ...] = (0.05, 0.5, 2.0)
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
            seeds=(seed,), kl_coefs=(0.1,), betas=(0.1,), grpo_beta=0.1, rlhf=RLHFConfig.quick()
        )

    def coefs(self, method: str) -> tuple[float, ...]:
        """The swept strengths of ``method``."""
        return self.kl_coefs if method == "ppo" else self.betas

    def identity(self) -> dict[str, Any]:
        """What a finished run's result depends on beyond its key (seed, method, strength).

        The swept strengths are left out: widening the sweep keeps the finished runs.
        """
        return {k: v for k, v in asdict(self).items() if k not in ("kl_coefs", "betas")}


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


@dataclass
class Sweep:
    """What every run shares: the LoRA policy and one setup (task, reward model, pool).

    Built on first need, so a resumed sweep whose runs are all done loads nothing.
    The setup's data come from the first seed; later seeds vary training and evaluation.
    """

    config: LessonConfig
    store: Progress
    load_base: Callable[[], nn.Module]
    tokenizer: Any
    labeler: Labeler
    progress: bool
    shared: dict[str, Any] = field(default_factory=dict)

    def pieces(self) -> tuple[nn.Module, Setup, tuple[int, ...]]:
        """The policy, the setup and the banned (end-of-turn) token, built once.

        A resumed sweep rebuilds the setup; it must match the saved one, or the new runs
        would be scored by a different reward model than the finished ones.
        """
        if not self.shared:
            settings, banned = self.config.rlhf, (self.tokenizer.eos_token_id,)
            policy = add_lora(self.load_base(), settings.lora_rank)
            setup = prepare(
                policy, self.tokenizer, TrueReward(self.labeler), settings, self.config.seeds[0],
                banned,
            )  # fmt: skip
            check_same_setup(self.store.done.get("setup"), setup)
            self.shared.update(policy=policy, setup=setup, banned=banned)
        return self.shared["policy"], self.shared["setup"], self.shared["banned"]

    def setup_summary(self) -> dict[str, Any]:
        """The reward model's accuracies and the best-of-N points (saved once)."""
        _, setup, _ = self.pieces()
        return {
            "reward_model_heldout_accuracy": setup.reward.heldout_accuracy,
            "reward_model_train_accuracy": setup.reward.train_accuracy,
            "reward_model_best_epoch": setup.reward.best_epoch,
            "preference_pairs": setup.pairs,
            "reference_true_reward": setup.reference_true,
            "best_of_n": [best_of_n(setup, n) for n in self.config.rlhf.best_of],
        }

    def run(self, method: str, coef: float, seed: int) -> dict[str, float]:
        """One finished run (from the progress file if it is there)."""

        def compute() -> dict[str, float]:
            policy, setup, banned = self.pieces()
            if method == "grpo":
                from dl2llm.alignment.rlhf_trl import run_grpo

                return run_grpo(self.load_base, self.tokenizer, setup, self.config.rlhf, seed,
                                coef, progress=self.progress)  # fmt: skip
            return run_method(
                method, coef, policy, setup, self.config.rlhf, seed, banned, self.progress
            )

        result = self.store.get(f"{seed}/{method}/{coef:g}", compute)
        print(f"seed {seed} {method} {coef:g}: true {result['true_reward']:.3f} "
              f"RM {result['reward_model']:.2f} KL {result['kl']:.2f} "
              f"({result['seconds']:.0f} s)")  # fmt: skip
        return result

    def run_all(self) -> None:
        """The setup, then every seed's PPO and DPO runs, then the trl run(s)."""
        self.store.get("setup", self.setup_summary)
        for seed in self.config.seeds:
            for method in METHODS:
                for coef in self.config.coefs(method):
                    self.run(method, coef, seed)
        if self.config.grpo_beta is not None:
            for seed in self.config.seeds[: self.config.grpo_seeds]:
                self.run("grpo", self.config.grpo_beta, seed)


def check_same_setup(saved: dict[str, Any] | None, setup: Setup) -> None:
    """Raise if a rebuilt ``setup`` differs from the ``saved`` summary of the finished runs'."""
    if saved is None:
        return
    rebuilt = (setup.reward.heldout_accuracy, setup.reference_true)
    expected = (saved["reward_model_heldout_accuracy"], saved["reference_true_reward"])
    if any(abs(a - b) > 1e-6 for a, b in zip(rebuilt, expected, strict=True)):
        raise RuntimeError(
            f"the rebuilt reward model and reference (held-out accuracy, true reward) {rebuilt} "
            f"differ from the progress file's {expected}: delete it to start afresh"
        )


PROBABILITY = (0.0, 1.0)  # true reward and win rate; a difference of two lies in (-1, 1)


def _interval(metrics: dict, name: str, values: list[float], bounds=PROBABILITY) -> None:
    metrics[name], metrics[f"{name}_low"], metrics[f"{name}_high"] = seed_interval(
        values, bounds=bounds
    )


def collect_metrics(config: LessonConfig, done: dict[str, Any]) -> tuple[dict[str, Any], dict]:
    """Headline metrics (seed means and intervals at the matched KL) and the per-run table."""
    seeds = config.seeds
    setups = [done["setup"]] * len(seeds)  # one shared setup
    runs = {
        m: {c: [done[f"{s}/{m}/{c:g}"] for s in seeds] for c in config.coefs(m)} for m in METHODS
    }
    metrics: dict[str, Any] = {
        "samples_per_run": config.rlhf.samples,
        "reward_model_queries_per_run": config.rlhf.samples,
    }
    for key in (
        "reward_model_heldout_accuracy",
        "reward_model_train_accuracy",
        "preference_pairs",
        "reference_true_reward",
    ):
        metrics[key] = done["setup"][key]
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
        loosest = min(coefs)
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
        bounds=(-1.0, 1.0),
    )
    best_of = [
        {k: sum(s["best_of_n"][j][k] for s in setups) / len(seeds) for k in s0}
        for j, s0 in enumerate(setups[0]["best_of_n"])
    ]
    metrics["best_of_n"] = best_of
    metrics["best_of_n_max_kl"] = best_of[-1]["kl"]
    metrics["best_of_n_true_reward_at_max_kl"] = best_of[-1]["true_reward"]
    reaches = metrics["best_of_n_max_kl"] >= kl  # else its frontier would be extrapolated
    metrics["best_of_n_true_reward_at_matched_kl"] = (
        reward_at_kl([p["kl"] for p in best_of], [p["true_reward"] for p in best_of], kl)
        if reaches
        else None
    )
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
    torch.set_num_threads(1)  # batches of a few short answers: one thread beats two here
    labeler: Labeler = LexiconLabeler() if labeler_name == "lexicon" else SentimentLabeler(quick)
    out = Path(out_dir)
    store = Progress(
        out / f"{NAME}_progress.json",
        {"labeler": labeler_name, "quick": quick, **config.identity()},
    )
    load_base, tokenizer = load_policy(quick)
    Sweep(config, store, load_base, tokenizer, labeler, progress).run_all()
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
