"""Where the QA service saturates on this machine: throughput and latency against concurrency.

Starts ``capstone/deployment_script.py`` (one worker, the cached index of the
Python docs) in its own process and sends it questions from ``c`` concurrent
clients for a fixed time, for ``c`` = 1, 2, 4, 8, 16: answers per second,
p50/p95 latency and 429s. It does so twice: with the evidence answer (what
``make run`` serves: retrieval and ONNX sentence scoring) and with SmolLM2
phrasing the answer (``--generator llm``), whose generation dominates.

Baseline: one client (``c = 1``) in the same run; the saturation point is the
smallest concurrency whose throughput reaches 95% of the best.
The measuring code: src/dl2llm/serve/service_bench.py.
"""

import tempfile
from dataclasses import replace
from pathlib import Path

from dl2llm.evaluation.questions import answerable
from dl2llm.hardware import describe, machine_facts
from dl2llm.rag import default_data_dir, sample_documents
from dl2llm.rag.encoder import shared_encoder
from dl2llm.rag.index import build_index
from dl2llm.runtime import deliverable_parser, run_main, start_run
from dl2llm.serve.service_bench import ServiceBenchConfig, load_levels


def main(argv: list[str] | None = None) -> int:
    parser = deliverable_parser(__doc__)
    parser.add_argument(
        "--seconds",
        type=float,
        default=None,
        help=f"per level (full: {ServiceBenchConfig().seconds_per_level:g})",
    )
    run = start_run("bench_service_load", parser, argv)
    args = run.args
    facts = machine_facts()
    print(describe(facts))
    config = ServiceBenchConfig.quick() if args.quick else ServiceBenchConfig()
    if args.seconds:
        config = replace(config, seconds_per_level=args.seconds)
    seconds = config.seconds_per_level
    questions = [q.question for q in answerable()]
    with tempfile.TemporaryDirectory(prefix="dl2llm-load-") as tmp:
        data_dir = default_data_dir()
        if config.sample_docs:  # a fresh index of the sample documents
            documents, source = sample_documents()
            data_dir = Path(tmp)
            build_index(documents, data_dir, shared_encoder(), source=source, progress=False)
        metrics = {}
        for generator in ("evidence", "llm"):
            metrics[generator] = load_levels(data_dir, generator, seconds, questions)
            print(generator, metrics[generator]["best_answers_per_s"], "answers/s at",
                  metrics[generator]["saturates_at"], "clients")  # fmt: skip
    run.save(metrics, config={"quick": args.quick, "machine": facts, "seconds_per_level": seconds})
    return 0


if __name__ == "__main__":
    run_main(main)
