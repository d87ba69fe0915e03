"""Benchmark: ONNX Runtime int8 MiniLM against PyTorch fp32 MiniLM, one sentence at a time.

The int8 model keeps its feed-forward products in fp32 (``feed_forward_matmuls``): with
every weight in int8 a few embeddings fall to a cosine of about 0.98. That variant is timed
too, for comparison. All run on one thread at batch 1 (a service embedding one query),
interleaved call by call so that a busy machine slows every side alike; the ratio of medians
is the speed-up. CPU time (``time.process_time``) is reported beside wall time: on a shared
machine it is the steadier of the two. Agreement: cosine between the int8 and fp32
embeddings of 200 movie review snippets, each embedded alone (batch 1, as timed) and all
together in one padded batch (where int8 shares one activation scale per tensor across the
batch); mean and minimum of each.

Target: ORT int8 >= 2x PyTorch fp32 at batch 1, with embedding cosine >= 0.99 (every one of
the 200 embeddings, in both settings).
Quick mode exports a 1-layer slice of MiniLM (seconds, for CI); its numbers are not the target's.
The measuring code: src/dl2llm/efficiency/int8_encoder_bench.py.
"""

from dataclasses import replace

from dl2llm.efficiency.int8_encoder_bench import Int8BenchConfig, compare_int8_encoders
from dl2llm.runtime import check_positive, deliverable_parser, run_main, start_run


def main(argv: list[str] | None = None) -> int:
    parser = deliverable_parser(__doc__)
    parser.add_argument("--rounds", type=check_positive, help="passes over the timed sentences")
    run = start_run("bench_inference", parser, argv)
    config = Int8BenchConfig.quick() if run.args.quick else Int8BenchConfig()
    if run.args.rounds:
        config = replace(config, rounds=run.args.rounds)
    bench = compare_int8_encoders(config)
    print(bench.report())
    run_config = {
        "rounds": config.rounds,
        "sentences_timed": bench.sentences_timed,
        "texts": bench.texts,
    }
    run.save(bench.metrics(), config=run_config)
    return 0


if __name__ == "__main__":
    run_main(main)
