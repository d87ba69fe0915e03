"""RLHF demo: a reward model, PPO and DPO on the project's GPT-2, side by side.

The project's GPT-2 continues the first tokens of movie-review snippets four
times. A fixed labeler prefers the most positive continuation to the least
positive one (10% label noise): the week 3 sentiment classifier in full mode, a
positive/negative word-list rule in quick mode (it needs no trained model). From
those pairs we fit a Bradley-Terry reward model on MiniLM embeddings, stopped
early on validation pairs (held-out pairwise accuracy), then tune
LoRA-wrapped copies of the GPT by PPO (against the reward model, with a KL
penalty to the frozen reference) and by DPO (directly on the pairs). Measured:
the labeler's score of sampled continuations and the KL to the reference over
training (plot), and each tuned policy's win rate against the reference on
held-out prompts as judged by the labeler, with a bootstrap 95% interval.
"""

import time
from dataclasses import asdict, replace

import torch

from dl2llm.alignment.preferences import LexiconLabeler, SentimentLabeler
from dl2llm.alignment.rlhf import RLHFConfig, RLHFReport, run_rlhf
from dl2llm.models import load_gpt2_tokenizer
from dl2llm.plots import plt, save_figure
from dl2llm.pretrain import load_project_gpt2
from dl2llm.results import save_results
from dl2llm.runtime import (
    UsageError,
    check_positive,
    deliverable_parser,
    resolve_device,
    run_main,
    set_seed,
)

NAME = "rl_hf_demo"


def plot_training(report: RLHFReport, path) -> None:
    """Labeler score and KL to the reference against the share of training done."""
    fig, (reward_ax, kl_ax) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, method in (("PPO", report.ppo), ("DPO", report.dpo)):
        reward_ax.plot(method.fraction, method.gold, "o-", label=label)
        kl_ax.plot(method.fraction, method.kl, "o-", label=label)
    reward_ax.axhline(report.reference_gold, color="grey", ls="--", label="reference")
    reward_ax.set(title="labeler score of sampled continuations", xlabel="share of training")
    kl_ax.set(title="KL(policy || reference), nats per continuation", xlabel="share of training")
    for ax in (reward_ax, kl_ax):
        ax.grid(alpha=0.3)
        ax.legend()
    save_figure(fig, path)


def print_table(report: RLHFReport, metrics: dict) -> None:
    clean = metrics["reward_model_noise_free_accuracy"]
    print(
        f"preference pairs: {len(report.pairs)}; reward model held-out accuracy "
        f"{metrics['reward_model_heldout_accuracy']:.3f} "
        f"(noise-free pairs: {'none' if clean is None else f'{clean:.3f}'})"
    )
    print(f"{'method':6s} {'labeler score':>14s} {'KL':>8s} {'win rate [95% CI]':>24s}")
    print(f"{'ref':6s} {report.reference_gold:14.3f} {0.0:8.3f}")
    for name in ("ppo", "dpo"):
        win = f"{metrics[f'{name}_win_rate']:.3f} [{metrics[f'{name}_win_rate_low']:.3f}, "
        win += f"{metrics[f'{name}_win_rate_high']:.3f}]"
        score, kl = metrics[f"{name}_final_score"], metrics[f"{name}_final_kl"]
        print(f"{name:6s} {score:14.3f} {kl:8.3f} {win:>24s}")


def collect_metrics(report: RLHFReport) -> dict:
    metrics = {
        "preference_pairs": len(report.pairs),
        "label_agreement": report.pairs.noise_free.float().mean().item(),
        "reward_model_train_accuracy": report.reward.train_accuracy,
        "reward_model_heldout_accuracy": report.reward.heldout_accuracy,
        "reward_model_noise_free_accuracy": report.reward_noise_free_accuracy,
        "reward_model_best_epoch": report.reward.best_epoch,
        "reference_score": report.reference_gold,
    }
    for name, method in (("ppo", report.ppo), ("dpo", report.dpo)):
        metrics[f"{name}_final_score"] = method.gold[-1]
        metrics[f"{name}_final_reward_model_score"] = method.reward_model[-1]
        metrics[f"{name}_final_kl"] = method.kl[-1]
        metrics[f"{name}_win_rate"] = method.win["win_rate"]
        metrics[f"{name}_win_rate_low"] = method.win["low"]
        metrics[f"{name}_win_rate_high"] = method.win["high"]
        metrics[f"{name}_win_rate_by_reward_model"] = method.win_by_reward_model["win_rate"]
        metrics[f"{name}_curve"] = {"share": method.fraction, "score": method.gold, "kl": method.kl}
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = deliverable_parser(__doc__)
    parser.add_argument(
        "--labeler",
        choices=("auto", "sentiment", "lexicon"),
        default="auto",
        help="who labels the pairs (default: sentiment classifier; word list in quick mode)",
    )
    parser.add_argument("--ppo-iterations", type=check_positive, help="PPO rollouts")
    parser.add_argument("--dpo-steps", type=check_positive, help="DPO optimizer steps")
    parser.add_argument("--kl-coef", type=float, help="PPO's KL penalty coefficient")
    parser.add_argument("--beta", type=float, help="DPO's beta")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    set_seed(args.seed)
    if resolve_device(args.device).type != "cpu":
        print("note: this demo runs on the CPU (tiny models; sampling dominates)")
    torch.set_num_threads(1)
    settings = RLHFConfig.quick() if args.quick else RLHFConfig()
    settings = override(settings, args)
    labeler_name = (
        args.labeler if args.labeler != "auto" else ("lexicon" if args.quick else "sentiment")
    )
    labeler = LexiconLabeler() if labeler_name == "lexicon" else SentimentLabeler(args.quick)
    base = load_project_gpt2(args.quick)
    report, _ = run_rlhf(base, labeler, load_gpt2_tokenizer(), settings, args.seed, not args.quick)
    metrics = collect_metrics(report)
    print_table(report, metrics)
    args.out.mkdir(parents=True, exist_ok=True)
    plot_name = f"{NAME}_training.png"
    plot_training(report, args.out / plot_name)
    save_results(
        NAME,
        metrics,
        out_dir=args.out,
        config={"labeler": labeler_name, **asdict(settings)},
        seed=args.seed,
        quick=args.quick,
        started=started,
        artifacts=[plot_name],
    )
    return 0


def override(settings: RLHFConfig, args) -> RLHFConfig:
    """Apply the optional command-line overrides."""
    if args.kl_coef is not None and args.kl_coef < 0:
        raise UsageError(f"--kl-coef must be >= 0, got {args.kl_coef}")
    if args.beta is not None and args.beta <= 0:
        raise UsageError(f"--beta must be > 0, got {args.beta}")
    ppo, dpo = settings.ppo, settings.dpo
    if args.ppo_iterations is not None:
        ppo = replace(ppo, iterations=args.ppo_iterations)
    if args.kl_coef is not None:
        ppo = replace(ppo, kl_coef=args.kl_coef)
    if args.dpo_steps is not None:
        dpo = replace(dpo, steps=args.dpo_steps)
    if args.beta is not None:
        dpo = replace(dpo, beta=args.beta)
    return replace(settings, ppo=ppo, dpo=dpo)


if __name__ == "__main__":
    run_main(main)
