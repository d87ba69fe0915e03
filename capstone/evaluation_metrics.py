"""Evaluate the capstone RAG system on the FAQ evaluation set, baselines side by side.

The evaluation set comes from the corpus (each FAQ question heading, its
section as gold passages, its opening sentences as gold answer; a fixed hash
split into dev and held-out test) plus off-topic questions. One run measures:

- retrieval: recall@1/5/10, MRR@10, nDCG@10 and latency for BM25, dense and hybrid;
- answers on every test question: exact match, token F1 (SQuAD normalisation),
  embedding similarity, groundedness, citation accuracy and latency p50/p95 for
  the LLM without retrieval, with retrieval, and (``--adapter``, by default
  the fine-tuning pipeline's adapter in ``--out`` when it exists) the LoRA-tuned
  LLM with retrieval, with bootstrap 95% intervals of its paired differences
  from the base LLM; each LLM is served as the deployment serves it
  (:meth:`LLMGenerator.load`, the adapter merged in);
- refusal rate on the off-topic questions.

``--report`` then (re)writes ``capstone/REPORT.md`` and ``capstone/MODEL_CARD.md``
from the results JSONs in ``--out``. ``--quick`` uses a 3-document index, two
questions and short answers.
"""

import time
from pathlib import Path

from dl2llm.evaluation import harness
from dl2llm.evaluation.dataset import faq_items, split_items, unanswerable_questions
from dl2llm.evaluation.report import plot_comparison, write_report
from dl2llm.rag.generate import LLMGenerator, use_one_thread
from dl2llm.rag.index import Encoder
from dl2llm.rag.pipeline import RAGPipeline, load_min_confidence
from dl2llm.rag.retrieve import MODES, Retriever
from dl2llm.results import print_metrics, save_results
from dl2llm.runtime import UsageError, check_positive, deliverable_parser, run_main, set_seed

NAME = "evaluation_metrics"
DEFAULT_ADAPTER = "fine_tuning_pipeline_adapter.safetensors"
ANSWER_METRICS = ("em", "f1", "similarity", "groundedness", "citation_accuracy")


def parse(argv: list[str] | None):
    parser = deliverable_parser(__doc__)
    parser.add_argument("--test-questions", type=int, default=None, help="cap (default: all)")
    parser.add_argument("--off-topic", type=int, default=30, help="unanswerable questions asked")
    parser.add_argument("--max-new-tokens", type=check_positive, default=48)
    parser.add_argument("--k", type=check_positive, default=5, help="passages retrieved")
    parser.add_argument("--adapter", type=Path, default=None, help="LoRA adapter of the tuned LLM")
    parser.add_argument("--data-dir", type=Path, default=None, help="index folder (default: cache)")
    parser.add_argument(
        "--report", action="store_true", help="only write REPORT.md + MODEL_CARD.md"
    )
    parser.add_argument("--report-dir", type=Path, default=Path("capstone"), help="where to write")
    args = parser.parse_args(argv)
    if args.adapter is not None and not args.adapter.is_file():
        raise UsageError(f"adapter file not found: {args.adapter}")
    if args.quick:
        args.test_questions, args.off_topic, args.max_new_tokens = 2, 2, 12
    return args


def answer_baselines(index, encoder, test, args) -> tuple[dict, dict]:
    """No retrieval vs retrieval with the base LLM, and the tuned LLM when an adapter exists.

    Returns ``({system: (summary, rows)}, refusals)``.
    """
    retriever = Retriever(index, encoder)
    threshold = load_min_confidence(index.folder.parent)
    base = RAGPipeline(retriever, LLMGenerator.load(max_new_tokens=args.max_new_tokens), threshold)
    ask = dict(k=args.k, max_new_tokens=args.max_new_tokens)
    systems = {
        "llm_only": harness.evaluate_answers(base, encoder, test, False, label="llm only", **ask),
        "rag": harness.evaluate_answers(base, encoder, test, label="rag", **ask),
    }
    refusals = harness.evaluate_refusals(
        base, unanswerable_questions()[: args.off_topic], args.k, args.max_new_tokens
    )
    adapter = args.adapter or Path(args.out) / DEFAULT_ADAPTER
    if adapter.is_file():
        del base  # one LLM in memory at a time
        tuned = LLMGenerator.load(max_new_tokens=args.max_new_tokens, adapter=adapter)
        systems["rag_tuned"] = harness.evaluate_answers(
            RAGPipeline(retriever, tuned, threshold), encoder, test, label="rag tuned", **ask
        )
    return systems, refusals


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    started = time.perf_counter()
    if args.report:
        for path in write_report(Path(args.out), args.report_dir):
            print(f"wrote {path}")
        return 0
    set_seed(args.seed)
    use_one_thread()
    encoder = Encoder()
    index = harness.open_index(encoder, args.quick, args.data_dir)
    items = faq_items(index)
    test = split_items(items, "test")[: args.test_questions]
    retriever = Retriever(index, encoder)
    metrics: dict = {"questions": len(items), "test_questions": len(test)}
    retrieval = {mode: harness.evaluate_retrieval(retriever, items, mode) for mode in MODES}
    for mode, scores in retrieval.items():
        metrics |= {f"{mode}_{name}": value for name, value in scores.items()}
    systems, refusals = answer_baselines(index, encoder, test, args)
    metrics["refusal_rate"] = refusals["refusal_rate"]
    for system, (summary, _) in systems.items():
        for name in ANSWER_METRICS:
            metrics[f"{system}_{name}"] = summary[name]["mean"]
            metrics[f"{system}_{name}_ci"] = [summary[name]["low"], summary[name]["high"]]
        metrics[f"{system}_p50_ms"] = summary["p50_ms"]
        metrics[f"{system}_p95_ms"] = summary["p95_ms"]
    if "rag_tuned" in systems:
        metrics["adapter"] = str(args.adapter or Path(args.out) / DEFAULT_ADAPTER)
        for name in ANSWER_METRICS:  # paired per question: tuned - base, with retrieval
            gain = harness.paired_difference(systems["rag_tuned"][1], systems["rag"][1], name)
            metrics[f"tuned_minus_base_{name}"] = gain["mean"]
            metrics[f"tuned_minus_base_{name}_ci"] = [gain["low"], gain["high"]]
    out = Path(args.out)
    artifacts = [f"{NAME}_retrieval.png", f"{NAME}_answers.png"]
    plot_comparison(
        retrieval, ("recall@1", "recall@5", "mrr@10", "ndcg@10"), "Retrieval", out / artifacts[0]
    )
    plot_comparison(
        {system: summary for system, (summary, _) in systems.items()},
        ("f1", "similarity", "groundedness", "citation_accuracy"),
        "Answers on held-out FAQ questions",
        out / artifacts[1],
    )
    print_metrics(metrics)
    config = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    config.pop("out")
    save_results(
        NAME,
        metrics,
        out_dir=out,
        config=config,
        seed=args.seed,
        quick=args.quick,
        started=started,
        artifacts=artifacts,
    )
    return 0


if __name__ == "__main__":
    run_main(main)
