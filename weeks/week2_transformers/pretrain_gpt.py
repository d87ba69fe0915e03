"""Pretrain the project's own GPT-2 from scratch on the bundled English text.

The model is the GPT-2 architecture of `dl2llm.gpt` (small: 4 layers, 128 wide, 256-token
context) with the real GPT-2 byte-level BPE tokenizer. It trains on *Botchan* plus 300 news
articles with AdamW, linear warmup, a cosine learning-rate schedule and gradient clipping,
checkpointing as it goes (a killed run resumes where it stopped). It reports the validation
and test loss on *Botchan*'s held-out blocks next to a unigram baseline, training tokens/s,
and saves loss and learning-rate curves. The trained model is written in Hugging Face format
to the asset cache, where weeks 3 and 4 find it (`dl2llm.pretrain.ensure_project_gpt2`); loading
it back with `transformers` must give the same validation loss.

Outputs: results/pretrain_gpt.json, pretrain_gpt_curves.png. The lesson's code:
src/dl2llm/pretrain_lesson.py.
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
    run = start_run(NAME, parser, argv)
    args = run.args
    device = resolve_device(args.device)
    settings = lesson_settings(args.quick, args.seed, args.steps)
    lesson = run_lesson(settings, args.out, device, args.quick, args.restart, args.stop_after)
    if lesson.paused:
        print(f"paused at step {lesson.steps_done}; run again to resume from {lesson.checkpoint}")
        return 0

    print_metrics(lesson.metrics, SHOWN)
    print(f"\nsample: {lesson.metrics['sample']!r}\nHugging Face folder: {lesson.folder}")
    run.save(lesson.metrics, config=lesson.config, artifacts=lesson.artifacts)
    return 0


if __name__ == "__main__":
    run_main(main)
