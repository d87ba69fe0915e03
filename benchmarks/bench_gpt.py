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
"""

import statistics
import time

import torch
import torch.nn.functional as F

from dl2llm.gpt import GPT, GPTConfig
from dl2llm.models import GPT2_EOT_ID
from dl2llm.results import save_results
from dl2llm.runtime import check_positive, deliverable_parser, run_main, set_seed

NAME = "bench_gpt"
TRAIN_TARGET, CACHE_TARGET = 1.0, 5.0
FULL = GPTConfig()  # GPT-2 small
QUICK = GPTConfig(context_length=96, n_layer=2, n_head=2, n_embd=64)


def train_step(model: torch.nn.Module, optimizer, inputs, targets, hf: bool) -> None:
    logits = model(inputs).logits if hf else model(inputs)  # (B, T, vocab)
    loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def bench_train(ours: GPT, theirs, batch: int, length: int, repeats: int) -> dict:
    ids = torch.randint(ours.config.vocab_size, (batch, length + 1))
    inputs, targets = ids[:, :-1], ids[:, 1:]
    ours.train()
    theirs.train()
    optimizers = {
        "ours": torch.optim.AdamW(ours.parameters(), lr=1e-4),
        "hf": torch.optim.AdamW(theirs.parameters(), lr=1e-4),
    }
    times = {"ours": [], "hf": []}
    for _ in range(repeats + 1):  # the first round warms up
        for side, model in (("ours", ours), ("hf", theirs)):
            started = time.perf_counter()
            train_step(model, optimizers[side], inputs, targets, hf=side == "hf")
            times[side].append(time.perf_counter() - started)
    ours_s, hf_s = (statistics.median(times[side][1:]) for side in ("ours", "hf"))
    return {"ours_s": ours_s, "hf_s": hf_s, "speedup": hf_s / ours_s}


def bench_generation(ours: GPT, theirs, prompt_len: int, new_tokens: int, repeats: int) -> dict:
    ours.eval()
    theirs.eval()
    prompt = torch.randint(ours.config.vocab_size, (1, prompt_len))
    runs = {
        "cached": lambda: ours.generate(prompt, new_tokens, temperature=0, use_cache=True),
        "uncached": lambda: ours.generate(prompt, new_tokens, temperature=0, use_cache=False),
        "hf_cached": lambda: theirs.generate(
            prompt,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            pad_token_id=GPT2_EOT_ID,
        ),
    }
    tokens = {name: run() for name, run in runs.items()}  # also the warm-up
    wall, cpu = {name: [] for name in runs}, {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            started, started_cpu = time.perf_counter(), time.process_time()
            run()
            wall[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - started_cpu)
    seconds = {name: statistics.median(samples) for name, samples in wall.items()}
    cpu_seconds = {name: statistics.median(samples) for name, samples in cpu.items()}
    return {
        **{f"{name}_s": s for name, s in seconds.items()},
        "cache_speedup": seconds["uncached"] / seconds["cached"],
        "cache_speedup_cpu_time": cpu_seconds["uncached"] / cpu_seconds["cached"],
        "vs_hf": seconds["hf_cached"] / seconds["cached"],
        "same_tokens": torch.equal(tokens["cached"], tokens["uncached"])
        and torch.equal(tokens["cached"], tokens["hf_cached"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = deliverable_parser(__doc__)
    parser.add_argument("--repeats", type=check_positive, help="timed repeats (default: by mode)")
    parser.add_argument("--new-tokens", type=check_positive, default=256)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    set_seed(args.seed)
    config = QUICK if args.quick else FULL
    repeats = args.repeats or (2 if args.quick else 5)
    new_tokens = min(args.new_tokens, config.context_length - 16)
    ours = GPT(config)
    theirs = ours.to_hf_model()

    train = bench_train(
        ours, theirs, batch=4, length=min(256, config.context_length), repeats=repeats
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # single-token steps: one thread is far faster here
    generation = bench_generation(ours, theirs, 16, new_tokens, repeats=max(1, repeats // 2))
    torch.set_num_threads(threads)

    train_ok = train["speedup"] >= TRAIN_TARGET
    cache_ok = generation["cache_speedup"] >= CACHE_TARGET
    print(f"config: {config}\n")
    print(f"{'measurement':<42} {'seconds':>9}")
    print(f"{'train step, ours':<42} {train['ours_s']:>9.4f}")
    print(f"{'train step, transformers':<42} {train['hf_s']:>9.4f}")
    print(f"{f'generate {new_tokens} tokens, ours + KV cache':<42} {generation['cached_s']:>9.3f}")
    print(f"{f'generate {new_tokens} tokens, ours, no cache':<42} {generation['uncached_s']:>9.3f}")
    print(f"{f'generate {new_tokens} tokens, transformers':<42} {generation['hf_cached_s']:>9.3f}")
    print(f"\ntrain step: {train['speedup']:.2f}x transformers (target >= {TRAIN_TARGET}x): "
          f"{'met' if train_ok else 'MISSED'}")  # fmt: skip
    print(f"KV cache: {generation['cache_speedup']:.2f}x uncached (target >= {CACHE_TARGET}x): "
          f"{'met' if cache_ok else 'MISSED'}")  # fmt: skip
    print(f"KV cache by CPU time (1 thread; less sensitive to a busy machine): "
          f"{generation['cache_speedup_cpu_time']:.2f}x uncached")  # fmt: skip
    print(f"cached generation: {generation['vs_hf']:.2f}x transformers' generate")
    print(f"same greedy tokens (cached, uncached, transformers): {generation['same_tokens']}")
    metrics = {
        "train_speedup_vs_hf": train["speedup"],
        "train_step_s": train["ours_s"],
        "hf_train_step_s": train["hf_s"],
        "kv_cache_speedup": generation["cache_speedup"],
        "kv_cache_speedup_cpu_time": generation["cache_speedup_cpu_time"],
        "cached_generation_s": generation["cached_s"],
        "uncached_generation_s": generation["uncached_s"],
        "hf_generation_s": generation["hf_cached_s"],
        "generation_speedup_vs_hf": generation["vs_hf"],
        "new_tokens": new_tokens,
        "same_tokens": generation["same_tokens"],
        "train_target_met": train_ok,
        "kv_cache_target_met": cache_ok,
    }
    save_results(
        NAME,
        metrics,
        out_dir=args.out,
        config={**vars(config), "repeats": repeats, "train_threads": threads},
        seed=args.seed,
        quick=args.quick,
        started=started,
    )
    return 0 if generation["same_tokens"] else 1


if __name__ == "__main__":
    run_main(main)
