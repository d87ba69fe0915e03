"""First start of the QA service: how soon the port, the first answer and readiness come.

Starts ``capstone/deployment_script.py`` (what ``make run`` starts) on a fresh,
empty data folder, so it must build its index, and polls it from outside:
``/health`` until it answers, then ``/ready`` (recording each phase it reports);
one real question as soon as ``/ready`` says it is answering (by BM25 while the
dense index builds), then ``/ready`` until it is ready. The full run indexes the bundled
Python docs; ``--quick`` indexes the three sample documents.

Targets (issue 16, 2 cores): ``/health`` <= 30 s, first answer <= 120 s,
ready <= 300 s.
The measuring code: src/dl2llm/serve/service_bench.py.
"""

import tempfile
from pathlib import Path

from dl2llm.hardware import describe, machine_facts
from dl2llm.runtime import deliverable_parser, run_main, start_run
from dl2llm.serve.service_bench import FIRST_START_TARGETS_S, ServiceBenchConfig, first_start


def main(argv: list[str] | None = None) -> int:
    run = start_run("bench_first_start", deliverable_parser(__doc__), argv)
    facts = machine_facts()
    print(describe(facts))
    config = ServiceBenchConfig.quick() if run.args.quick else ServiceBenchConfig()
    with tempfile.TemporaryDirectory(prefix="dl2llm-first-start-") as tmp:
        metrics = first_start(Path(tmp), config)
    print("\n".join(f"{k:>24}  {v}" for k, v in metrics.items()))
    run_config = {"quick": run.args.quick, "machine": facts, "targets_s": FIRST_START_TARGETS_S}
    run.save(metrics, config=run_config)
    return 0


if __name__ == "__main__":
    run_main(main)
