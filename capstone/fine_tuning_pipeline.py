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
nothing.
"""

import hashlib
import json
import time
from pathlib import Path

import torch

from dl2llm.evaluation import harness
from dl2llm.evaluation.compare import DEV_CHOICES, choose_served, compare_on_dev
from dl2llm.evaluation.questions import answerable, of_split
from dl2llm.evaluation.systems import NEVER, build_system, questions_hash
from dl2llm.finetune import grounded_qa
from dl2llm.finetune.lora import save_lora
from dl2llm.io import atomic_write_json
from dl2llm.models import load_llm
from dl2llm.paths import REPO_ROOT
from dl2llm.plots import plot_curves
from dl2llm.rag import SERVED_MODEL_DIR
from dl2llm.rag.encoder import Encoder
from dl2llm.rag.generate import use_one_thread
from dl2llm.results import print_metrics, save_results
from dl2llm.runtime import check_positive, deliverable_parser, run_main, set_seed

NAME = "fine_tuning_pipeline"
ADAPTER = f"{NAME}_adapter.safetensors"
TRAIN_QUESTIONS = 480  # 60 steps of 8, about 13 minutes on 2 cores
QUICK_DOCUMENTS = ("library/itertools.rst", "library/json.rst", "tutorial/errors.rst")  # dev


def parse(argv: list[str] | None):
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
    args = parser.parse_args(argv)
    if args.quick:
        args.train_questions, args.global_batch = 4, 2
        args.dev_limit, args.max_new_tokens = 2, 24
    return args


def examples_hash(examples) -> str:
    """SHA-256 of the training data (questions, candidate ids, answers)."""
    rows = [
        [e.question, [(c.hit.doc_id, c.hit.anchor, c.sentence) for c in e.candidates], e.answer]
        for e in examples
    ]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def training_examples(index, encoder, args):
    """Examples from API entries outside the test documents (see the module docstring)."""
    test_documents = {d for q in of_split(answerable(), "test") for d in q.gold_docs}
    questions = grounded_qa.entry_questions(index, test_documents, args.train_questions, args.seed)
    pipeline = build_system("evidence", index, encoder, thresholds=(NEVER, NEVER))
    return grounded_qa.build_examples(pipeline, questions, args.seed), len(test_documents)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    started = time.perf_counter()
    set_seed(args.seed)
    use_one_thread()
    rank, world_size = grounded_qa.world()
    encoder = Encoder(onnx=True)
    index = open_index(encoder, args)
    examples, excluded = training_examples(index, encoder, args)
    model, tokenizer = grounded_qa.tiny_llama(args.seed) if args.tiny_model else load_llm()
    config = grounded_qa.TrainConfig(
        epochs=args.epochs,
        global_batch=args.global_batch,
        lr=args.lr,
        rank=args.lora_rank,
        max_length=args.max_length,
        seed=args.seed,
    )
    out = Path(args.out)
    checkpoint = out / "checkpoints" / f"{NAME}{'_tiny' if args.tiny_model else ''}.pt"
    torch.set_num_threads(max(1, args.train_threads // world_size))
    training = grounded_qa.train_lora(model, tokenizer, examples, config, checkpoint)
    use_one_thread()
    grounded_qa.save_adapter(model, out / ADAPTER)
    if rank != 0:
        return 0
    metrics = {
        "train_examples": len(examples),
        "excluded_test_documents": excluded,
        "data_sha256": examples_hash(examples),
        "steps": training["steps"],
        "world_size": world_size,
        "train_loss_first": training["losses"][0],
        "train_loss_last": training["losses"][-1],
        "train_minutes": round(training["seconds"] / 60, 2),
    }
    artifacts = [ADAPTER, f"{NAME}_loss.png"]
    plot_curves(
        {"train loss": training["losses"]}, "LoRA fine-tuning", "loss", out / artifacts[1], "step"
    )
    if not args.no_eval:  # the evaluation serves the saved adapter, as the deployment does
        dev = compare_on_dev(index, encoder, out / ADAPTER, args.dev_limit, args.max_new_tokens)
        metrics |= flat_dev_metrics(dev)
        if not args.quick:
            publish(model, args, metrics, dev)
    print_metrics(metrics)  # a paired difference prints as mean [95% interval]
    save_results(
        NAME,
        metrics,
        out_dir=out,
        config=run_config(args),
        seed=args.seed,
        quick=args.quick,
        started=started,
        artifacts=artifacts,
    )
    return 0


def open_index(encoder: Encoder, args):
    """The full index, or in quick mode one of three dev documents (no test document)."""
    if not args.quick:
        return harness.open_index(encoder, False, args.data_dir)
    return harness.open_index(encoder, True, documents=QUICK_DOCUMENTS)


def run_config(args) -> dict:
    """The settings as JSON; a path inside the repository is written relative to it."""

    def plain(value):
        if not isinstance(value, Path):
            return value
        resolved = value.resolve()
        return str(resolved.relative_to(REPO_ROOT) if resolved.is_relative_to(REPO_ROOT) else value)

    return {k: plain(v) for k, v in vars(args).items() if k != "out"}


def flat_dev_metrics(dev: dict) -> dict:
    """``dev_<system>_<metric>`` for the results file, the gain and the choice."""
    flat = {
        f"dev_{name}_{metric}": value for name in DEV_CHOICES for metric, value in dev[name].items()
    }
    tuned, base = dev["evidence_llm_tuned"], dev["evidence_llm"]
    flat["dev_key_term_gain"] = dev["key_term_gain"]
    flat["tuned_beats_base"] = beats(tuned, base)
    flat["served"] = choose_served(dev)
    return flat


def beats(tuned: dict, base: dict) -> bool:
    """Higher dev key-term accuracy, no more junk, no less faithful."""
    return (
        tuned["key_term_accuracy"] > base["key_term_accuracy"]
        and tuned["junk_rate"] <= base["junk_rate"]
        and tuned["faithfulness"] >= base["faithfulness"]
    )


def publish(model, args, metrics: dict, dev: dict) -> None:
    """The trained model's adapter (fp16) and its recipe, where
    :func:`dl2llm.rag.default_adapter` looks."""
    folder = Path(args.publish_dir)
    save_lora(model, folder / "adapter.safetensors", dtype=torch.float16)
    recipe = {
        "what": "LoRA adapter for SmolLM2-135M-Instruct: pick the API entry that answers",
        "made_by": "python capstone/fine_tuning_pipeline.py (make curriculum)",
        "settings": run_config(args),
        "data_sha256": metrics["data_sha256"],
        "train_examples": metrics["train_examples"],
        "train_loss_first": metrics["train_loss_first"],
        "train_loss_last": metrics["train_loss_last"],
        "questions_sha256": questions_hash(),
        "dev": dev,
        "tuned_beats_base": metrics["tuned_beats_base"],
        "served": metrics["served"],
    }
    atomic_write_json(folder / "recipe.json", recipe)
    print(f"published {folder}: served = {recipe['served']}", flush=True)


if __name__ == "__main__":
    run_main(main)
