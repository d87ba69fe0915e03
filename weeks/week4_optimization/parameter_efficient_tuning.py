"""Parameter-efficient fine-tuning: LoRA, adapters and prefix-tuning against full fine-tuning.

Fine-tunes a GPT-2 model (default: the project's own pretrained GPT-2; any
local Hugging Face GPT-2 folder with ``--model``) for sentiment classification
of movie-review snippets, once per method: full fine-tuning, LoRA with rank 1,
4 and 16, Houlsby adapters and prefix-tuning, all written from scratch in
``dl2llm.finetune``. Every method trains the new classification head too; LoRA
adapts every attention and MLP matrix and, with rank 1 by default
(``--lora-embedding-rank``), the token embedding table. Each method has its own
learning rate, chosen on the validation split (``--lr`` overrides them). For
each it reports the share of parameters that train (head included), validation
and test accuracy with the test accuracy's 95% interval, training wall time and
measured peak memory, as a table and a plot. Then it runs our LoRA on SmolLM2
(a Llama-family decoder) as causal-LM fine-tuning on held-out *Botchan* text
and reports perplexity before and after, and saves that adapter alone
(``save_lora``). Target (full mode): LoRA reaches >= 98% of full fine-tuning's
accuracy with < 2% of the parameters trainable.

Outputs: results/parameter_efficient_tuning.json, parameter_efficient_tuning_comparison.png,
parameter_efficient_tuning_smollm2_lora.safetensors. The lesson's code:
src/dl2llm/finetune/peft_lesson.py.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from dl2llm.finetune.experiment import PeftFineTuneConfig, check_gpt2_folder
from dl2llm.finetune.peft_lesson import (
    METHODS,
    NAME,
    PeftConfig,
    parse_learning_rates,
    parse_methods,
    run_lesson,
)
from dl2llm.pretrain import ensure_project_gpt2
from dl2llm.runtime import check_positive, deliverable_parser, resolve_device, run_main, start_run


def main(argv: list[str] | None = None) -> int:
    parser = deliverable_parser(__doc__, threads=1)
    parser.add_argument(
        "--model", type=Path, help="local Hugging Face GPT-2 folder (default: the project's)"
    )
    parser.add_argument("--methods", default=METHODS, help=f"comma-separated (default: {METHODS})")
    parser.add_argument("--epochs", type=check_positive, help="epochs per method")
    parser.add_argument("--train-size", type=check_positive, help="training examples to use")
    parser.add_argument(
        "--lr",
        type=parse_learning_rates,
        default={},
        help="learning rates by method family, e.g. full=1e-3,lora=1e-3 (default: "
        "the ones chosen on the validation split, see PeftFineTuneConfig)",
    )
    parser.add_argument(
        "--lora-embedding-rank",
        type=int,
        default=PeftFineTuneConfig.lora_embedding_rank,
        help="rank of LoRA's update of the token embedding table (0: none; "
        f"default {PeftFineTuneConfig.lora_embedding_rank})",
    )
    parser.add_argument(
        "--smollm2-steps",
        type=int,
        help="SmolLM2 LoRA steps of 2 windows each (0 skips SmolLM2; default: 2 quick, 24 full)",
    )
    run = start_run(NAME, parser, argv)
    args = run.args
    device = resolve_device(args.device)
    config = PeftConfig.quick(args.seed) if args.quick else PeftConfig(seed=args.seed)
    config = replace(
        config,
        methods=parse_methods(args.methods),
        epochs=args.epochs or config.epochs,
        train_size=args.train_size or config.train_size,
        learning_rates=args.lr,
        lora_embedding_rank=args.lora_embedding_rank,
        smollm2_steps=config.smollm2_steps if args.smollm2_steps is None else args.smollm2_steps,
    )
    model_dir = check_gpt2_folder(args.model or ensure_project_gpt2(quick=args.quick))
    lesson = run_lesson(config, model_dir, device, args.out)
    print(lesson.report())
    run.save(lesson.metrics, config=lesson.config, artifacts=lesson.artifacts)
    return 0


if __name__ == "__main__":
    run_main(main)
