"""RLHF demo: PPO, DPO, best-of-N and trl's GRPO on SmolLM2-135M-Instruct, at matched KL.

SmolLM2 (with LoRA adapters; its reference is the same model with the adapter
off) is asked for a positive or a negative one-sentence review of a topic. The
true reward is the week 3 sentiment classifier's probability of the polarity the
prompt asked for (quick mode: a word-list rule), so the prompt matters. A
Bradley-Terry reward model reads (request, completion) pairs and learns from the
reference's answers, ranked by the true reward with 10% label noise. PPO (sweep
of kl_coef) and DPO (sweep of beta; pairs of reference answers ranked by the
reward model) each sample the same number of answers scored by the reward
model; best-of-N (KL = log N - (N-1)/N) and one trl GRPO run share the frontier.
Measured on held-out topics, over seeds: true reward, reward-model score (their
gap shows over-optimisation), KL to the reference, win rate against the
reference, and each method's frontier read at a common (matched) KL.

Outputs: results/rl_hf_demo.json, rl_hf_demo_frontier.png (and a progress file
that lets a killed run resume). The lesson's code: src/dl2llm/alignment/rlhf_lesson.py.
"""

from argparse import ArgumentTypeError
from dataclasses import asdict, replace

from dl2llm.alignment.rlhf_lesson import NAME, LessonConfig, choose_labeler, run_lesson
from dl2llm.runtime import deliverable_parser, resolve_device, run_main, start_run


def floats(text: str) -> tuple[float, ...]:
    """``"0.1,0.5"`` -> ``(0.1, 0.5)``."""
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError as error:
        raise ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from error


def print_table(metrics: dict) -> None:
    """Reward model accuracy, then each method at the matched KL."""
    print(f"reward model held-out accuracy {metrics['reward_model_heldout_accuracy']:.3f}; "
          f"reference true reward {metrics['reference_true_reward']:.3f}; "
          f"{metrics['samples_per_run']} sampled answers per run")  # fmt: skip
    print(f"at matched KL {metrics['matched_kl']:.2f} nats (mean [95% seed interval]):")
    for name in ("ppo", "dpo"):
        true = metrics[f"{name}_true_reward_at_matched_kl"]
        low, high = (metrics[f"{name}_true_reward_at_matched_kl_{e}"] for e in ("low", "high"))
        print(f"  {name}: true reward {true:.3f} [{low:.3f}, {high:.3f}], "
              f"win rate {metrics[f'{name}_win_rate']:.3f}")  # fmt: skip
    at_matched = metrics["best_of_n_true_reward_at_matched_kl"]
    if at_matched is None:
        print(f"  best-of-N: does not reach it; true reward "
              f"{metrics['best_of_n_true_reward_at_max_kl']:.3f} at its largest KL "
              f"{metrics['best_of_n_max_kl']:.2f}")  # fmt: skip
    else:
        print(f"  best-of-N: true reward {at_matched:.3f}")
    if "trl_grpo_true_reward" in metrics:
        print(f"trl GRPO: true reward {metrics['trl_grpo_true_reward']:.3f} "
              f"at KL {metrics['trl_grpo_kl']:.2f}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = deliverable_parser(__doc__)
    parser.add_argument(
        "--labeler",
        choices=("auto", "sentiment", "lexicon"),
        default="auto",
        help="the true reward's classifier (default: sentiment classifier; word list in quick)",
    )
    parser.add_argument("--kl-coefs", type=floats, help="PPO's KL coefficients, e.g. 0.02,0.1,0.5")
    parser.add_argument("--betas", type=floats, help="DPO's betas, e.g. 0.05,0.2,1")
    parser.add_argument("--seeds", type=int, help="number of seeds (from --seed on)")
    parser.add_argument("--no-trl", action="store_true", help="skip the trl GRPO reference run")
    run = start_run(NAME, parser, argv)
    args = run.args
    if resolve_device(args.device).type != "cpu":
        print("note: this demo runs on the CPU (small batches; sampling dominates)")
    config = LessonConfig.quick(args.seed) if args.quick else LessonConfig()
    config = replace(
        config,
        seeds=tuple(range(args.seed, args.seed + (args.seeds or len(config.seeds)))),
        kl_coefs=args.kl_coefs or config.kl_coefs,
        betas=args.betas or config.betas,
        grpo_beta=None if args.no_trl else config.grpo_beta,
    )
    labeler = choose_labeler(args.labeler, args.quick)
    metrics, artifacts = run_lesson(config, labeler, args.quick, args.out, not args.quick)
    print_table(metrics)
    run.save(metrics, config={"labeler": labeler, **asdict(config)}, artifacts=artifacts)
    return 0


if __name__ == "__main__":
    run_main(main)
