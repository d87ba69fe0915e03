"""Pretrain a small GPT from scratch on the Python documentation and measure it in bits per byte.

A byte-level BPE of 4,096 tokens (the project's own trainer, `dl2llm.tokenizers.bpe`) is learned
on the Python 3.11 documentation sources (12 MB, the capstone corpus) minus every 40th file,
which is held out. A GPT of `dl2llm.gpt` (4 layers, 128 wide, 256-token context) trains on it
with AdamW, warmup and a cosine schedule, checkpointing as it goes (a killed run resumes where
it stopped). It reports bits per byte on the held-out files next to a Kneser-Ney trigram on
the same tokens, and on a 16 KB slice next to SmolLM2-135M-Instruct (pretrained at scale, its own
tokenizer); tokens/s against nanoGPT's CPU "baby" run and as a fraction of this CPU's fp32
matmul peak (MFU); and prints sampled continuations. If the project's GPT-2-vocabulary model
that weeks 4 and 5 load (`dl2llm.pretrain.ensure_project_gpt2`) is missing, it is trained too.

Outputs: results/pretrain_gpt.json, pretrain_gpt_curves.png, pretrain_gpt_tokenizer.json.
The lesson's code: src/dl2llm/pretrain_lesson.py.
"""

from dl2llm.pretrain_lesson import NAME, SHOWN, lesson_settings, run_lesson
from dl2llm.results import print_metrics
from dl2llm.runtime import check_positive, deliverable_parser, resolve_device, run_main, start_run


def main(argv: list[str] | None = None) -> int:
    parser = deliverable_parser(__doc__, threads=None)
    parser.add_argument("--steps", type=check_positive, help="optimizer steps (default: by mode)")
    parser.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    parser.add_argument(
        "--stop-after",
        type=check_positive,
        help="end this session after this many steps in all; run again to resume",
    )
    parser.add_argument(
        "--skip-project-gpt2",
        action="store_true",
        help="do not train the GPT-2-vocabulary model of weeks 4-5 even if it is missing",
    )
    run = start_run(NAME, parser, argv)
    args = run.args
    device = resolve_device(args.device)
    settings = lesson_settings(args.quick, args.seed, args.steps)
    lesson = run_lesson(settings, args.out, device, args.quick, args.restart, args.stop_after,
                        project_model=not args.skip_project_gpt2)  # fmt: skip
    if lesson.paused:
        print(f"paused at step {lesson.steps_done}; run again to resume from {lesson.checkpoint}")
        return 0

    print_metrics(lesson.metrics, [key for key in SHOWN if key in lesson.metrics])
    for sample in lesson.metrics["samples"]:
        print(f"\n--- sample ---\n{sample}")
    run.save(lesson.metrics, config=lesson.config, artifacts=lesson.artifacts)
    return 0


if __name__ == "__main__":
    run_main(main)
