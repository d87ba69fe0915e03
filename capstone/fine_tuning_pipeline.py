"""LoRA fine-tuning of SmolLM2 to pick the API entry that answers; served only if it wins on dev.

Writes training questions from the API entries of every document outside the
evaluation's **test** split ("Return the number of items in a container." ->
"How can I get the number of items in a container?"), runs each through the
real retrieval and evidence selection, and teaches SmolLM2-135M-Instruct to
answer with the line of the entry that answers among the five candidates it
is shown (LoRA r=8 on every attention and MLP projection, answer tokens only,
checkpointed and resumable, on two threads; :mod:`dl2llm.finetune.grounded_qa`).

Then it measures, on the hand-written **dev** questions only, the evidence
answer without a model, the base model and the tuned model as the service runs
them (key-term accuracy, faithfulness, junk, refusals, p50/p95 latency, with
the tuned-minus-base key-term gain and its paired bootstrap interval), and
picks what ``make run`` serves: the best dev key-term accuracy among the
systems that meet the latency targets (p50 <= 1.5 s, p95 <= 3 s). The full run
publishes the adapter (fp16) and ``recipe.json`` (settings, data hash, dev
metrics, the choice) to ``data/capstone_adapter/``, where the service reads
them; the test split is measured only by ``evaluation_metrics.py``.

Runs data-parallel unchanged under ``torchrun --nproc_per_node 2`` (DDP, gloo on
CPU, one thread per process): rank 0 saves the adapter and the results.
``--tiny-model`` swaps SmolLM2 for a 2-layer random Llama (to test the training
loop fast); ``--no-eval`` stops after saving the adapter. ``--quick`` uses a
3-document index of dev documents, a few examples and two steps, and publishes
nothing. The steps: src/dl2llm/finetune/grounded_qa_lesson.py.
"""

from pathlib import Path

from dl2llm.finetune.grounded_qa_lesson import NAME, TRAIN_QUESTIONS, PipelineConfig, run_pipeline
from dl2llm.rag import SERVED_MODEL_DIR
from dl2llm.results import print_metrics
from dl2llm.runtime import check_positive, deliverable_parser, run_main, start_run


def main(argv: list[str] | None = None) -> int:
    parser = deliverable_parser(__doc__)
    parser.add_argument("--train-questions", type=check_positive, default=TRAIN_QUESTIONS)
    parser.add_argument("--epochs", type=check_positive, default=1)
    parser.add_argument("--global-batch", type=check_positive, default=8)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--lora-rank", type=check_positive, default=8)
    parser.add_argument("--max-length", type=check_positive, default=512)
    parser.add_argument("--train-threads", type=check_positive, default=2, help="in all processes")
    parser.add_argument("--dev-limit", type=check_positive, default=None, help="dev questions cap")
    parser.add_argument("--max-new-tokens", type=check_positive, default=64)
    parser.add_argument("--data-dir", type=Path, default=None, help="index folder (default: cache)")
    parser.add_argument(
        "--publish-dir",
        type=Path,
        default=SERVED_MODEL_DIR,
        help=f"where the full run puts the served adapter and recipe (default {SERVED_MODEL_DIR})",
    )
    parser.add_argument("--tiny-model", action="store_true", help="random 2-layer Llama (tests)")
    parser.add_argument("--no-eval", action="store_true", help="stop after saving the adapter")
    run = start_run(NAME, parser, argv)
    config = PipelineConfig.from_flags(vars(run.args))
    result = run_pipeline(config, Path(run.args.out))
    if result is None:  # another rank of torchrun: it only trains
        return 0
    metrics, artifacts = result
    print_metrics(metrics)  # a paired difference prints as mean [95% interval]
    run.save(metrics, config=config.as_json(), artifacts=artifacts)
    return 0


if __name__ == "__main__":
    run_main(main)
