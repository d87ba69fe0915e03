"""Speed of SmolLM2-135M-Instruct writing answers on the CPU, run by run-time variant.

Six grounded prompts, each a question with one short documentation passage in the RAG
service's prompt (``build_messages``, SmolLM2's chat template; 170-230 tokens), are answered
with greedy decoding and exactly 48 new tokens (the end of sequence does not stop it). Per
variant: decode tokens/s (tokens after the first, over the time after the first, so the
prompt's prefill is left out), p50 seconds per answer and p50 time to the first token (both
with the prefill).

Baseline: what the service does, transformers fp32 on one torch thread. Measured against it
in the same run:

- ``fp32_all_cores``: fp32 with as many torch threads as the process has cores;
- ``int8``: dynamic int8 quantization of every ``nn.Linear`` (``lm_head`` included; weights
  per output channel; :func:`dl2llm.efficiency.quantization.quantize_dynamic_torch`), one thread;
- ``bf16``: the model in bfloat16, one thread, only where oneDNN has bf16 kernels for this
  CPU (:func:`dl2llm.hardware.probe`), otherwise skipped;
- ``compile``: ``torch.compile`` (dynamic shapes) of the fp32 model's forward, one thread;
  not in --quick (compiling takes minutes);
- ``llamacpp`` and ``llamacpp_1_thread``: llama.cpp (llama-cpp-python) on the 4-bit GGUF the
  fp32 model was dequantized from (Q4_1 weights, 8-bit activations: its answers are not
  expected to match fp32's token for token), same prompt token ids, at every core and at
  one thread. It lives in its own virtual environment, ``benchmarks/.venv-llamacpp``, which
  ``--build-llamacpp`` creates (a source build on one core: minutes); without it the rows
  are skipped.

The transformers variants take turns prompt by prompt, so that a busy machine slows them
alike; llama.cpp runs after them in a subprocess. Agreement with the baseline: how many
greedy answers are token for token the same, and (transformers variants) the largest
absolute logit difference over the first prompt. Ratios: each variant's tokens/s over the
baseline's, and llama.cpp's (every core, and its best thread count) over the best
transformers variant that keeps fp32's answers.

On a machine shared with other work, the rows at every core suffer most: each step waits
for its slowest thread, and a thread that shares a core with another job straggles. Ratios
within one run are what count; absolute speeds depend on the load (recorded with the CPU).
The measuring code: src/dl2llm/efficiency/generation_bench.py and llamacpp.py.
"""

from dl2llm.efficiency.generation_bench import GenerationBenchConfig, compare_generation
from dl2llm.efficiency.llamacpp import LLAMACPP_PACKAGE, LLAMACPP_VENV, build_llamacpp
from dl2llm.hardware import describe, machine_facts, probe
from dl2llm.results import format_value
from dl2llm.runtime import UsageError, deliverable_parser, resolve_device, run_main, start_run


def main(argv: list[str] | None = None) -> int:
    parser = deliverable_parser(__doc__)
    parser.add_argument(
        "--build-llamacpp",
        action="store_true",
        help=f"first create {LLAMACPP_VENV.name} and build {LLAMACPP_PACKAGE} in it (minutes)",
    )
    run = start_run("bench_generation", parser, argv)
    args = run.args
    if resolve_device(args.device).type != "cpu":
        raise UsageError("--device: this benchmark measures the CPU (use --device cpu)")
    facts = machine_facts()
    print(describe(facts))
    build = build_llamacpp() if args.build_llamacpp else None
    config = GenerationBenchConfig.quick() if args.quick else GenerationBenchConfig()
    bench = compare_generation(config, build)
    print(bench.table())
    print("\n".join(f"{key}: {format_value(value)}" for key, value in bench.ratios.items()))
    run_config = {
        "quick": args.quick,
        "prompts": len(bench.prompt_tokens),
        "prompt_tokens": bench.prompt_tokens,
        "new_tokens": bench.new_tokens,
        "machine": facts,
        "hardware": probe().as_dict(),
        "llamacpp_package": LLAMACPP_PACKAGE,
        "llamacpp_system_info": bench.llamacpp_system_info,
    }
    run.save(bench.metrics(), config=run_config)
    return 0


if __name__ == "__main__":
    run_main(main)
