"""LoRA fine-tuning of SmolLM2 on grounded QA built from the corpus: base vs tuned.

Builds training examples from the FAQ's ``dev`` questions and synthetic
questions made from documentation section titles, each with the passages
hybrid retrieval returns (the gold passage always among them) and, as target,
the gold passage's opening sentences with its citation ``[n]``; LoRA-fine-tunes
SmolLM2-135M-Instruct (r=8 on every attention and MLP projection, answer tokens
only, checkpointed and resumable) on two threads; saves the adapter to
``<out>/fine_tuning_pipeline_adapter.safetensors``; then serves the base and the
tuned model as the deployment does (:meth:`LLMGenerator.load`, adapter merged)
and answers every held-out ``test`` question with each, comparing token F1,
groundedness, citation accuracy and embedding similarity with bootstrap 95%
intervals of the paired differences.

Runs data-parallel unchanged under ``torchrun --nproc_per_node 2`` (DDP, gloo on
CPU, one thread per process): rank 0 saves the adapter and the results.
``--tiny-model`` swaps SmolLM2 for a 2-layer random Llama (to test the training
loop fast); ``--no-eval`` stops after saving the adapter. ``--quick`` uses a
3-document index, a few examples and two steps.
"""

import time
from pathlib import Path

import torch

from dl2llm.evaluation import finetune, harness
from dl2llm.evaluation.dataset import faq_items, split_items
from dl2llm.evaluation.report import plot_comparison
from dl2llm.models import load_llm
from dl2llm.plots import plot_curves
from dl2llm.rag.generate import LLMGenerator, use_one_thread
from dl2llm.rag.index import Encoder
from dl2llm.rag.pipeline import RAGPipeline, load_thresholds
from dl2llm.rag.retrieve import Retriever
from dl2llm.results import print_metrics, save_results
from dl2llm.runtime import check_positive, deliverable_parser, run_main, set_seed

NAME = "fine_tuning_pipeline"
ADAPTER = f"{NAME}_adapter.safetensors"
GAINS = ("f1", "groundedness", "citation_accuracy", "similarity", "em")
SYNTHETIC = 70  # with the 130 dev questions: 200 examples, 50 steps of 4


def parse(argv: list[str] | None):
    parser = deliverable_parser(__doc__)
    parser.add_argument("--synthetic", type=int, default=SYNTHETIC, help="synthetic questions")
    parser.add_argument("--train-limit", type=int, default=None, help="cap on training examples")
    parser.add_argument("--epochs", type=check_positive, default=1)
    parser.add_argument("--global-batch", type=check_positive, default=4)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--lora-rank", type=check_positive, default=8)
    parser.add_argument("--max-length", type=check_positive, default=512)
    parser.add_argument("--train-threads", type=check_positive, default=2, help="in all processes")
    parser.add_argument("--test-questions", type=int, default=None, help="cap (default: all)")
    parser.add_argument("--max-new-tokens", type=check_positive, default=48)
    parser.add_argument("--data-dir", type=Path, default=None, help="index folder (default: cache)")
    parser.add_argument("--tiny-model", action="store_true", help="random 2-layer Llama (tests)")
    parser.add_argument("--no-eval", action="store_true", help="stop after saving the adapter")
    args = parser.parse_args(argv)
    if args.quick:
        args.synthetic, args.global_batch = 2, 2
        args.test_questions, args.max_new_tokens = 2, 12
    return args


def evaluate(generator: LLMGenerator, index, encoder, test, args) -> tuple[dict, list[dict]]:
    threshold, _ = load_thresholds(index)
    pipeline = RAGPipeline(Retriever(index, encoder), generator, threshold)
    return harness.evaluate_answers(pipeline, encoder, test, max_new_tokens=args.max_new_tokens)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    started = time.perf_counter()
    set_seed(args.seed)
    use_one_thread()
    rank, world_size = finetune.world()
    encoder = Encoder()
    index = harness.open_index(encoder, args.quick, args.data_dir)
    items = faq_items(index)
    dev, test = split_items(items, "dev"), split_items(items, "test")[: args.test_questions]
    train_items = (dev[:2] if args.quick else dev) + finetune.synthetic_items(index, args.synthetic)
    train_items = finetune.interleave(train_items, args.train_limit)
    examples = finetune.build_examples(Retriever(index, encoder), train_items, args.seed)
    model, tokenizer = finetune.tiny_llama(args.seed) if args.tiny_model else load_llm()
    config = finetune.TrainConfig(
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
    trained_at = time.perf_counter()
    training = finetune.train_lora(model, tokenizer, examples, config, checkpoint)
    train_minutes = (time.perf_counter() - trained_at) / 60
    use_one_thread()
    finetune.save_adapter(model, out / ADAPTER)
    if rank != 0:
        return 0
    metrics = {
        "train_examples": len(examples),
        "train_dev_questions": sum(item.split == "dev" for item in train_items),
        "steps": training["steps"],
        "world_size": world_size,
        "train_loss_first": training["losses"][0],
        "train_loss_last": training["losses"][-1],
        "train_minutes": round(train_minutes, 2),
    }
    artifacts = [ADAPTER, f"{NAME}_loss.png"]
    plot_curves(
        {"train loss": training["losses"]}, "LoRA fine-tuning", "loss", out / artifacts[1], "step"
    )
    if not args.no_eval:
        del model  # the evaluation serves the saved adapter, as the deployment does
        metrics |= compare(index, encoder, test, args, out)
        artifacts.append(f"{NAME}_base_vs_tuned.png")
    print_metrics(metrics)  # a paired difference prints as mean [95% interval]
    config_out = {k: v for k, v in vars(args).items() if k not in ("out", "data_dir")}
    save_results(
        NAME,
        metrics,
        out_dir=out,
        config=config_out,
        seed=args.seed,
        quick=args.quick,
        started=started,
        artifacts=artifacts,
    )
    return 0


def compare(index, encoder, test, args, out: Path) -> dict:
    """Base vs tuned answers on the held-out questions, with paired bootstrap intervals."""
    base_generator = LLMGenerator.load(max_new_tokens=args.max_new_tokens, style="passages")
    base, base_rows = evaluate(base_generator, index, encoder, test, args)
    tuned_generator = LLMGenerator.load(
        max_new_tokens=args.max_new_tokens, adapter=out / ADAPTER, style="passages"
    )
    tuned, tuned_rows = evaluate(tuned_generator, index, encoder, test, args)
    metrics = {"test_questions": len(test)}
    for name in GAINS:
        metrics[f"base_{name}"] = base[name]["mean"]
        metrics[f"tuned_{name}"] = tuned[name]["mean"]
        metrics[f"{name}_gain"] = harness.paired_difference(tuned_rows, base_rows, name)
    metrics["base_p50_ms"], metrics["tuned_p50_ms"] = base["p50_ms"], tuned["p50_ms"]
    metrics["examples"] = [
        {"question": b["question"], "base": b["answer"], "tuned": t["answer"]}
        for b, t in zip(base_rows[:5], tuned_rows[:5], strict=True)
    ]
    plot_comparison(
        {"base": base, "tuned": tuned},
        ("f1", "groundedness", "citation_accuracy", "similarity"),
        "Held-out FAQ questions: base vs LoRA-tuned SmolLM2",
        out / f"{NAME}_base_vs_tuned.png",
    )
    return metrics


if __name__ == "__main__":
    run_main(main)
