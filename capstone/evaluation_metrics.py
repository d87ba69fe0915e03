"""Evaluate the capstone QA systems on hand-written questions and the FAQ, side by side.

The main set is ``data/capstone_qa/``: questions written the way users ask
them, each with its gold documents and the key API terms a right answer must
name, plus in-domain questions the docs cannot answer and off-topic ones,
split into dev and test **by document** (:mod:`dl2llm.evaluation.questions`).
The FAQ set (headings as questions) is kept as a secondary set.

Systems (:mod:`dl2llm.evaluation.systems`): ``evidence`` (the API entry and
sentences that answer, no LLM), ``evidence_llm`` (SmolLM2 picks one of the five
best entries to lead, checked, with fallback), ``evidence_llm_tuned`` (the same
with the committed LoRA adapter, ``data/capstone_adapter/``), ``previous``
(SmolLM2 on 80-word passages, the system before) and ``no_retrieval`` (SmolLM2
alone). Which one ``make run`` serves was chosen on dev by
``fine_tuning_pipeline.py``; this script measures the test split.
Per system, with 95% bootstrap intervals: key-term accuracy, citation
accuracy, faithfulness, junk rate, false refusals, wrong answers on
unanswerable and off-topic questions, retrieval recall, p50/p95 latency.

    python capstone/evaluation_metrics.py            # test split, every system
    python capstone/evaluation_metrics.py --tune     # fit the refusal thresholds on dev
    python capstone/evaluation_metrics.py --report   # capstone/REPORT.md + MODEL_CARD.md

``--quick`` uses a 3-document index, a few questions, the evidence system
and short answers (seconds, for CI).
"""

import json
import time
from pathlib import Path

from dl2llm.evaluation import harness
from dl2llm.evaluation.compare import evaluate_systems, tune_on_dev
from dl2llm.evaluation.report import plot_comparison, write_report
from dl2llm.evaluation.systems import SYSTEMS, save_thresholds
from dl2llm.hardware import machine_facts
from dl2llm.io import atomic_write_json
from dl2llm.rag import SERVED_MODEL_DIR
from dl2llm.rag.encoder import Encoder
from dl2llm.rag.generate import use_one_thread
from dl2llm.results import print_metrics
from dl2llm.runtime import (
    Run,
    UsageError,
    check_positive,
    deliverable_parser,
    run_main,
    set_seed,
)

NAME = "evaluation_metrics"
PLOTTED = ("key_term_accuracy", "citation_accuracy", "faithfulness", "false_refusal_rate")


def parse(argv: list[str] | None):
    parser = deliverable_parser(__doc__)
    parser.add_argument(
        "--systems", default=",".join(SYSTEMS), help=f"comma-separated (default: {SYSTEMS})"
    )
    parser.add_argument("--split", choices=("dev", "test"), default="test")
    parser.add_argument("--limit", type=check_positive, default=None, help="questions per set")
    parser.add_argument("--max-new-tokens", type=check_positive, default=48)
    parser.add_argument("--data-dir", type=Path, default=None, help="index folder (default: cache)")
    parser.add_argument("--tune", action="store_true", help="fit the refusal thresholds on dev")
    parser.add_argument("--report", action="store_true", help="only write REPORT.md, MODEL_CARD")
    parser.add_argument("--report-dir", type=Path, default=Path("capstone"), help="where to write")
    args = parser.parse_args(argv)
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    if unknown := [s for s in args.systems if s not in SYSTEMS]:
        raise UsageError(f"unknown system(s) {unknown}: choose from {', '.join(SYSTEMS)}")
    if args.quick:
        args.systems, args.limit, args.max_new_tokens = ["evidence"], args.limit or 4, 12
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    run = Run(NAME, args, time.perf_counter())
    if args.report:
        for path in write_report(Path(args.out), args.report_dir):
            print(f"wrote {path}")
        return 0
    set_seed(args.seed)
    use_one_thread()
    encoder = Encoder(onnx=True)
    index = harness.open_index(encoder, args.quick, args.data_dir)
    out = Path(args.out)
    if args.tune:
        tuned = tune_on_dev(index, encoder, args.limit)
        print(json.dumps(tuned, indent=2))
        if not args.quick:
            save_thresholds(tuned)
        return 0
    adapter = SERVED_MODEL_DIR / "adapter.safetensors"
    if "evidence_llm_tuned" in args.systems and not adapter.is_file():
        print(f"skipping evidence_llm_tuned: no adapter at {adapter} (run fine_tuning_pipeline)")
        args.systems.remove("evidence_llm_tuned")
    machine = machine_facts()
    metrics, answers = evaluate_systems(
        index, encoder, args.systems, args.split, args.max_new_tokens, args.limit, adapter=adapter
    )
    metrics["machine"] = machine | {"load_1min_end": machine_facts()["load_1min"]}
    atomic_write_json(out / f"{NAME}_answers.json", answers)
    systems = {s: {n: metrics[f"{s}_{n}"] for n in PLOTTED} for s in args.systems}
    plot = out / f"{NAME}_answers.png"
    plot_comparison(systems, PLOTTED, f"Hand-written {args.split} questions", plot)
    print_metrics(metrics)
    config = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    config.pop("out")
    run.save(metrics, config=config, artifacts=[plot.name, f"{NAME}_answers.json"])
    return 0


if __name__ == "__main__":
    run_main(main)
