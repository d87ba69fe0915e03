"""Benchmark: our GPT-2 (dl2llm.gpt) against transformers' GPT2LMHeadModel, same config and weights.

Two measurements, each a ratio against a baseline timed in the same run (interleaved, median
of several repeats, so a busy machine slows both sides alike):

- a training step (forward, cross-entropy, backward, AdamW) of ours vs transformers';
- greedy generation of 256 new tokens: ours with the KV cache vs ours without it, and
  transformers' cached ``generate`` as a reference. Both of ours must give the same tokens.

Targets: train step >= 1.0x transformers' speed; KV-cache generation >= 5x our uncached
generation at 256 new tokens.

Full mode uses GPT-2 small's shape (12 layers, 768 wide, 124M parameters, random weights).
How much the cache saves depends on the model's shape: a cached step reads every weight
once for one token (memory-bound, dominated by the 50k-word output layer), an uncached step
recomputes every earlier position through the blocks (compute-bound). On this CPU the
small 6x384 model of the first version gained only 3.7x, GPT-2 small gains more.
The measuring code: src/dl2llm/gpt_bench.py.
"""

from dataclasses import replace

from dl2llm.gpt_bench import CACHE_TARGET, TRAIN_TARGET, GPTBenchConfig, compare_with_transformers
from dl2llm.runtime import check_positive, deliverable_parser, run_main, start_run


def main(argv: list[str] | None = None) -> int:
    parser = deliverable_parser(__doc__)
    parser.add_argument("--repeats", type=check_positive, help="timed repeats (default: by mode)")
    parser.add_argument("--new-tokens", type=check_positive, default=256)
    run = start_run("bench_gpt", parser, argv)
    args = run.args
    config = GPTBenchConfig.quick() if args.quick else GPTBenchConfig()
    config = replace(config, repeats=args.repeats or config.repeats, new_tokens=args.new_tokens)
    metrics, run_config = compare_with_transformers(config)
    new_tokens = metrics["new_tokens"]  # capped to the context

    print(f"config: {config.model}\n")
    print(f"{'measurement':<42} {'seconds':>9}")
    print(f"{'train step, ours':<42} {metrics['train_step_s']:>9.4f}")
    print(f"{'train step, transformers':<42} {metrics['hf_train_step_s']:>9.4f}")
    for label, key in (
        ("ours + KV cache", "cached_generation_s"),
        ("ours, no cache", "uncached_generation_s"),
        ("transformers", "hf_generation_s"),
    ):
        print(f"{f'generate {new_tokens} tokens, {label}':<42} {metrics[key]:>9.3f}")
    verdict = {True: "met", False: "MISSED"}
    print(f"\ntrain step: {metrics['train_speedup_vs_hf']:.2f}x transformers "
          f"(target >= {TRAIN_TARGET}x): {verdict[metrics['train_target_met']]}")  # fmt: skip
    print(f"KV cache: {metrics['kv_cache_speedup']:.2f}x uncached (target >= {CACHE_TARGET}x): "
          f"{verdict[metrics['kv_cache_target_met']]}")  # fmt: skip
    print(f"KV cache by CPU time (1 thread; less sensitive to a busy machine): "
          f"{metrics['kv_cache_speedup_cpu_time']:.2f}x uncached")  # fmt: skip
    print(f"cached generation: {metrics['generation_speedup_vs_hf']:.2f}x transformers' generate")
    print(f"same greedy tokens (cached, uncached, transformers): {metrics['same_tokens']}")
    run.save(metrics, config=run_config)
    return 0 if metrics["same_tokens"] else 1


if __name__ == "__main__":
    run_main(main)
