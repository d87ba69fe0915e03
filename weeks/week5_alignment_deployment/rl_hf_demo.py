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

Outputs: results/rl_hf_demo.json, rl_hf_demo_training.png. The lesson's code:
src/dl2llm/alignment/rlhf_lesson.py.
"""

from dataclasses import asdict

from dl2llm.alignment.rlhf import RLHFConfig
from dl2llm.alignment.rlhf_lesson import NAME, apply_overrides, choose_labeler, run_lesson
from dl2llm.runtime import check_positive, deliverable_parser, resolve_device, run_main, start_run


def print_table(metrics: dict) -> None:
    """Reward model accuracy, then score, KL and win rate of the reference, PPO and DPO."""
    clean = metrics["reward_model_noise_free_accuracy"]
    print(
        f"preference pairs: {metrics['preference_pairs']}; reward model held-out accuracy "
        f"{metrics['reward_model_heldout_accuracy']:.3f} "
        f"(noise-free pairs: {'none' if clean is None else f'{clean:.3f}'})"
    )
    print(f"{'method':6s} {'labeler score':>14s} {'KL':>8s} {'win rate [95% CI]':>24s}")
    print(f"{'ref':6s} {metrics['reference_score']:14.3f} {0.0:8.3f}")
    for name in ("ppo", "dpo"):
        win = f"{metrics[f'{name}_win_rate']:.3f} [{metrics[f'{name}_win_rate_low']:.3f}, "
        win += f"{metrics[f'{name}_win_rate_high']:.3f}]"
        score, kl = metrics[f"{name}_final_score"], metrics[f"{name}_final_kl"]
        print(f"{name:6s} {score:14.3f} {kl:8.3f} {win:>24s}")


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
    run = start_run(NAME, parser, argv)
    args = run.args
    if resolve_device(args.device).type != "cpu":
        print("note: this demo runs on the CPU (tiny models; sampling dominates)")
    settings = apply_overrides(
        RLHFConfig.quick() if args.quick else RLHFConfig(),
        ppo_iterations=args.ppo_iterations,
        kl_coef=args.kl_coef,
        dpo_steps=args.dpo_steps,
        beta=args.beta,
    )
    labeler = choose_labeler(args.labeler, args.quick)
    metrics, artifacts = run_lesson(settings, labeler, args.quick, args.seed, args.out)
    print_table(metrics)
    run.save(metrics, config={"labeler": labeler, **asdict(settings)}, artifacts=artifacts)
    return 0


if __name__ == "__main__":
    run_main(main)
