"""Parameter-efficient fine-tuning: LoRA, adapters and prefix-tuning against full fine-tuning.

Fine-tunes a pretrained encoder (default: the offline all-MiniLM-L6-v2, a 6-layer
BERT; any BERT-family folder or hub name with ``--model``) for sentiment
classification of movie-review snippets with each method: full fine-tuning,
LoRA with rank 1, 4 and 16 on every attention and feed-forward matrix, LoRA rank
4 with the token embedding table too (``lora_r4_emb``), Houlsby adapters, and
prefix-tuning trained through Li & Liang's MLP reparameterisation and folded
into plain prefix vectors afterwards, all written from scratch in
``dl2llm.finetune``. Every method trains the new classification head too. Each
method family's learning rate is chosen on the validation split from a grid of
the same size for every family (``--lr`` fixes one instead); then every method
runs with ``--seeds`` seeds. It reports each method's share of trainable
parameters, mean validation and test accuracy, and its paired difference from
full fine-tuning (same seeds, same test items) with a 95% bootstrap interval,
training time and peak memory, as a table and a plot. Then it runs our LoRA on
SmolLM2 (a Llama-family decoder) as causal-LM fine-tuning on *Botchan* text and
reports the held-out loss and perplexity before and after, and saves that
adapter alone. Target (full mode): LoRA reaches >= 98% of full fine-tuning's
accuracy with < 2% of the parameters trainable. A killed run resumes after the
last finished (method, learning rate, seed) run.

Outputs: results/parameter_efficient_tuning.json, parameter_efficient_tuning_comparison.png,
parameter_efficient_tuning_smollm2_lora.safetensors. The lesson's code:
src/dl2llm/finetune/peft_lesson.py.
"""

from __future__ import annotations

from dataclasses import replace

from dl2llm.finetune.peft_lesson import (
    METHODS,
    NAME,
    PeftConfig,
    parse_learning_rates,
    parse_methods,
    run_lesson,
)
from dl2llm.runtime import check_positive, deliverable_parser, resolve_device, run_main, start_run


def main(argv: list[str] | None = None) -> int:
    parser = deliverable_parser(__doc__, threads=1)
    parser.add_argument(
        "--model", help="BERT-family encoder folder or hub name (default: the offline MiniLM)"
    )
    parser.add_argument("--methods", default=METHODS, help=f"comma-separated (default: {METHODS})")
    parser.add_argument(
        "--seeds", type=check_positive, help="runs per method (default: 2 quick, 3)"
    )
    parser.add_argument("--epochs", type=check_positive, help="epochs per run (default: 1)")
    parser.add_argument("--train-size", type=check_positive, help="training snippets to use")
    parser.add_argument(
        "--lr",
        default="",
        help="fix learning rates by method family instead of searching the grid, e.g. "
        "full=5e-5,lora=1e-3 (families: full, lora, adapters, prefix)",
    )
    parser.add_argument(
        "--smollm2-steps",
        type=int,
        help="SmolLM2 LoRA steps of 2 windows each (0 skips SmolLM2; default: 2 quick, 16 full)",
    )
    run = start_run(NAME, parser, argv)
    args = run.args
    config = PeftConfig.quick(args.seed) if args.quick else PeftConfig(seed=args.seed)
    config = replace(
        config,
        methods=parse_methods(args.methods),
        seeds=args.seeds or config.seeds,
        epochs=args.epochs or config.epochs,
        train_size=args.train_size or config.train_size,
        smollm2_steps=config.smollm2_steps if args.smollm2_steps is None else args.smollm2_steps,
        model=args.model,
    )
    config.fix_learning_rates(parse_learning_rates(args.lr))
    lesson = run_lesson(config, resolve_device(args.device), args.out)
    print(lesson.report())
    run.save(lesson.metrics, config=lesson.config, artifacts=lesson.artifacts)
    return 0


if __name__ == "__main__":
    run_main(main)
