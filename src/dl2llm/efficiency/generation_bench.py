"""Speed of SmolLM2-135M-Instruct writing answers on the CPU, run by run-time variant.

Six grounded prompts (:data:`PROMPTS`), each a question with one short documentation passage
in the RAG service's prompt (:func:`~dl2llm.rag.generate.build_messages`, SmolLM2's chat
template; 170-230 tokens), are answered with greedy decoding and exactly
:attr:`GenerationBenchConfig.new_tokens` new tokens (the end of sequence does not stop it).
Per variant: decode tokens/s (tokens after the first, over the time after the first, so the
prompt's prefill is left out), p50 seconds per answer and p50 time to the first token (both
with the prefill).

Baseline: what the service does, transformers fp32 on one torch thread. Measured against it
in the same run: fp32 at every core, dynamic int8
(:func:`~dl2llm.efficiency.quantization.quantize_dynamic_torch`), bf16 (where oneDNN has bf16
kernels for this CPU), ``torch.compile`` (not in ``quick()``), and llama.cpp on the 4-bit GGUF
at every core and at one thread (:mod:`dl2llm.efficiency.llamacpp`, where it is built).

The transformers variants take turns prompt by prompt, so that a busy machine slows them
alike; llama.cpp runs after them in a subprocess. Agreement with the baseline: how many
greedy answers are token for token the same, and (transformers variants) the largest
absolute logit difference over the first prompt. Ratios (:func:`add_ratios`): each
variant's tokens/s over the baseline's, and llama.cpp's over the best transformers variant
that keeps fp32's answers. :func:`compare_generation` runs it all;
``benchmarks/bench_generation.py`` is the script.
"""

from __future__ import annotations

import statistics
import time
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from dl2llm.efficiency.latency import torch_threads
from dl2llm.efficiency.llamacpp import run_llamacpp
from dl2llm.efficiency.quantization import quantize_dynamic_torch
from dl2llm.hardware import available_cores, probe
from dl2llm.models import load_llm
from dl2llm.rag.generate import build_messages, use_one_thread
from dl2llm.rag.retrieve import Hit

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

BASELINE = "fp32"
ORDER = (BASELINE, "fp32_all_cores", "int8", "bf16", "compile")
WARMUP_TOKENS = 4

Inputs = dict[str, torch.Tensor]  # a tokenized prompt: input_ids, attention_mask (1, T)
Row = dict[str, Any] | str  # a variant's numbers, or why it was skipped
PROMPTS = (
    (
        "What does functools.lru_cache do?",
        "@functools.lru_cache(maxsize=128, typed=False): Decorator to wrap a function with a "
        "memoizing callable that saves up to the maxsize most recent calls. It can save time "
        "when an expensive or I/O bound function is periodically called with the same "
        "arguments. Since a dictionary is used to cache results, the positional and keyword "
        "arguments to the function must be hashable. If maxsize is set to None, the LRU "
        "feature is disabled and the cache can grow without bound.",
    ),
    (
        "How do I iterate over consecutive pairs of a list?",
        "itertools.pairwise(iterable): Return successive overlapping pairs taken from the "
        "input iterable. The number of 2-tuples in the output iterator will be one fewer than "
        "the number of inputs. It will be empty if the input iterable has fewer than two "
        "values. For example, pairwise('ABCDEFG') gives AB BC CD DE EF FG. Roughly "
        "equivalent to zipping the iterable with itself shifted by one. New in version 3.10.",
    ),
    (
        "How do I capture the output of a command with subprocess.run?",
        "subprocess.run(args, *, input=None, capture_output=False, shell=False, timeout=None, "
        "check=False, text=None): Run the command described by args. Wait for the command to "
        "complete, then return a CompletedProcess instance. If capture_output is true, stdout "
        "and stderr will be captured; the internal Popen object is then created with stdout "
        "and stderr both set to PIPE. With text=True they are decoded to strings. If check is "
        "true and the process exits with a non-zero code, CalledProcessError is raised.",
    ),
    (
        "How can I ignore a specific exception?",
        "contextlib.suppress(*exceptions): Return a context manager that suppresses any of the "
        "specified exceptions if they occur in the body of a with statement and then resumes "
        "execution with the first statement following the end of the with statement. As with "
        "any other mechanism that completely suppresses exceptions, this context manager "
        "should be used only to cover very specific errors where silently continuing with "
        "program execution is known to be the right thing to do.",
    ),
    (
        "How do I give a dataclass field a list as its default?",
        "dataclasses.field(*, default=MISSING, default_factory=MISSING, init=True, repr=True, "
        "compare=True): If provided, default_factory must be a zero-argument callable that "
        "will be called when a default value is needed for this field. Among other purposes, "
        "this can be used to specify fields with mutable default values, such as a list, "
        "because a plain mutable default would be shared between all instances. It is an "
        "error to specify both default and default_factory.",
    ),
    (
        "How do I find the most frequent items in a list?",
        "collections.Counter.most_common([n]): Return a list of the n most common elements "
        "and their counts from the most common to the least. If n is omitted or None, "
        "most_common() returns all elements in the counter. Elements with equal counts are "
        "ordered in the order first encountered. A Counter is a dict subclass for counting "
        "hashable objects: elements are stored as dictionary keys and their counts as values.",
    ),
)


@dataclass
class GenerationBenchConfig:
    """How much to time (``quick()`` for CI: two prompts, 8 new tokens, no compile)."""

    new_tokens: int = 48  # generated for every prompt
    prompts: int = len(PROMPTS)  # the first ones of :data:`PROMPTS`
    compile: bool = True  # time ``torch.compile`` too (compiling takes minutes)

    @classmethod
    def quick(cls) -> GenerationBenchConfig:
        return cls(new_tokens=8, prompts=2, compile=False)


@dataclass(frozen=True)
class Answer:
    """One timed answer: its new token ids and when they came."""

    seconds: float  # prompt in to last token out
    first_token_s: float  # prompt in to first token out (the prefill)
    decode_s: float  # first token out to last token out
    tokens: list[int]


@dataclass
class Variant:
    """A transformers model timed at a thread count; ``warmup_s`` includes any compilation."""

    model: torch.nn.Module
    threads: int
    warmup_s: float = 0.0
    answers: list[Answer] = field(default_factory=list)


class TokenClock:
    """A ``StoppingCriteria`` that notes when each new token is chosen and never stops."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        self.times.append(time.perf_counter())
        return torch.zeros(input_ids.shape[0], dtype=torch.bool)


def prompt_inputs(tokenizer: PreTrainedTokenizerBase, question: str, passage: str) -> Inputs:
    """The service's grounded prompt for ``question`` over one passage, chat-templated."""
    hit = Hit(0, "bench", "", "", "", passage, 1.0)
    return tokenizer.apply_chat_template(
        build_messages(question, [hit]),
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )


def answer(model: torch.nn.Module, inputs: Inputs, new_tokens: int) -> Answer:
    """Greedy-decode exactly ``new_tokens`` tokens (no stop at end of sequence), timed."""
    from transformers import StoppingCriteriaList

    clock = TokenClock()
    started = time.perf_counter()
    with torch.inference_mode():
        output = model.generate(
            **inputs,
            max_new_tokens=new_tokens,
            do_sample=False,
            eos_token_id=None,
            stopping_criteria=StoppingCriteriaList([clock]),
        )
    ended = time.perf_counter()
    tokens = output[0, inputs["input_ids"].shape[1] :].tolist()
    return Answer(
        ended - started, clock.times[0] - started, clock.times[-1] - clock.times[0], tokens
    )


def int8_copy(model: torch.nn.Module) -> torch.nn.Module:
    """:func:`~dl2llm.efficiency.quantization.quantize_dynamic_torch` (every ``nn.Linear``,
    weights per channel), with ``torch.ao``'s deprecation warnings silenced: it is deprecated
    in favour of torchao (not a dependency here) but still works in torch 2.13."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize_dynamic_torch(model)


def compiled(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` with its forward compiled (dynamic shapes: one graph for every length)."""
    model.forward = torch.compile(model.forward, dynamic=True)
    return model


def bf16_problem() -> str | None:
    """Why bf16 is skipped on this CPU, or None when oneDNN has bf16 kernels for it."""
    hardware = probe()
    if not hardware.emulated("bf16"):
        return None
    features = ", ".join(hardware.cpu_flags) or "none of interest"
    return f"skipped: oneDNN has no bf16 kernels for this CPU (CPU features: {features})"


def transformers_variants(
    model: torch.nn.Module, config: GenerationBenchConfig
) -> tuple[dict[str, Variant], dict[str, str]]:
    """The variants of the fp32 ``model`` to time, and the reasons for those skipped."""
    variants = {
        BASELINE: Variant(model, 1),
        "fp32_all_cores": Variant(model, available_cores()),
        "int8": Variant(int8_copy(model), 1),
    }
    skipped = {}
    if (reason := bf16_problem()) is None:
        variants["bf16"] = Variant(load_llm(dtype=torch.bfloat16)[0], 1)
    else:
        skipped["bf16"] = reason
    if config.compile:
        variants["compile"] = Variant(compiled(load_llm()[0]), 1)
    else:
        skipped["compile"] = "skipped: not in --quick (compiling takes minutes)"
    return variants, skipped


def warm_up(variant: Variant, prompts: list[Inputs]) -> None:
    """A few tokens on the first two prompts (this is where ``torch.compile`` compiles)."""
    started = time.perf_counter()
    with torch_threads(variant.threads):
        for inputs in prompts[:2]:
            answer(variant.model, inputs, WARMUP_TOKENS)
    variant.warmup_s = time.perf_counter() - started


def warm_up_all(
    variants: dict[str, Variant], prompts: list[Inputs], skipped: dict[str, str]
) -> None:
    """Warm every variant up; a compiled one that fails to compile is dropped, with why."""
    for name, variant in list(variants.items()):
        try:
            warm_up(variant, prompts)
        except Exception as err:  # torch.compile fails in many ways (compiler, graph breaks)
            if name != "compile":
                raise
            del variants[name]
            skipped[name] = f"skipped: torch.compile failed ({type(err).__name__}: {err})"[:500]


def time_variants(variants: dict[str, Variant], prompts: list[Inputs], new_tokens: int) -> None:
    """Answer every prompt with every variant, variants taking turns prompt by prompt."""
    for inputs in prompts:
        for variant in variants.values():
            with torch_threads(variant.threads):
                variant.answers.append(answer(variant.model, inputs, new_tokens))


def max_logit_gap(model: torch.nn.Module, reference: torch.nn.Module, inputs: Inputs) -> float:
    """Largest absolute difference between two models' logits over one prompt.

    A compiled ``model`` compiles once more here (a call without a KV cache): minutes.
    """
    with torch.inference_mode():
        ours = model(**inputs).logits.float()  # (1, T, vocab)
        theirs = reference(**inputs).logits  # (1, T, vocab)
    return float((ours - theirs).abs().max())


def summary(answers: list[Answer], reference: list[Answer]) -> dict[str, Any]:
    """Decode tokens/s, p50 seconds per answer and to the first token, agreement."""
    decoded = sum(len(a.tokens) - 1 for a in answers)
    return {
        "tokens_per_s": decoded / sum(a.decode_s for a in answers),
        "p50_s": statistics.median(a.seconds for a in answers),
        "first_token_p50_s": statistics.median(a.first_token_s for a in answers),
        "same_answers": sum(a.tokens == r.tokens for a, r in zip(answers, reference, strict=True)),
    }


def add_ratios(rows: dict[str, Row]) -> dict[str, Any]:
    """Each variant's tokens/s over the baseline's (in place); llama.cpp's over transformers'.

    Returns the best transformers and llama.cpp rows and llama.cpp's ratios to the best
    transformers row: at every core (``llamacpp``) and at its best thread count. The best
    transformers row is the fastest that still gives fp32's answers token for token (a
    faster variant that changes the answers is no alternative).
    """
    timed = {name: row for name, row in rows.items() if isinstance(row, dict)}
    for row in timed.values():
        row["speedup"] = row["tokens_per_s"] / timed[BASELINE]["tokens_per_s"]

    prompts = timed[BASELINE]["same_answers"]

    def best(llama: bool) -> str | None:
        names = [
            name
            for name, row in timed.items()
            if name.startswith("llamacpp") == llama and (llama or row["same_answers"] == prompts)
        ]
        return max(names, key=lambda name: timed[name]["tokens_per_s"], default=None)

    ours, theirs = best(llama=False), best(llama=True)
    ratios = {"best_transformers": ours}
    speed = timed[ours]["tokens_per_s"]
    if "llamacpp" in timed:
        ratios["llamacpp_vs_best_transformers"] = timed["llamacpp"]["tokens_per_s"] / speed
    if theirs is not None:
        ratios["best_llamacpp"] = theirs
        ratios["best_llamacpp_vs_best_transformers"] = timed[theirs]["tokens_per_s"] / speed
    return ratios


def flatten(rows: dict[str, Row]) -> dict[str, Any]:
    """``{"int8": {"p50_s": 1.2}}`` as ``{"int8_p50_s": 1.2}``; a skipped row stays a string."""
    metrics = {}
    for name, row in rows.items():
        if isinstance(row, str):
            metrics[name] = row
        else:
            metrics.update({f"{name}_{key}": value for key, value in row.items()})
    return metrics


def table(rows: dict[str, Row], prompts: int) -> str:
    """The rows as an aligned text table, skipped variants with their reason."""
    lines = [
        f"{'variant':<18} {'thr':>3} {'tok/s':>7} {'p50 s':>7} {'1st tok s':>9} "
        f"{'x base':>6} {'same':>5} {'max|dlogit|':>11}"
    ]
    for name, row in rows.items():
        if isinstance(row, str):
            lines.append(f"{name:<18} {row}")
            continue
        gap = row.get("max_abs_logit_diff")
        lines.append(
            f"{name:<18} {row['threads']:>3} {row['tokens_per_s']:>7.2f} {row['p50_s']:>7.2f} "
            f"{row['first_token_p50_s']:>9.3f} {row['speedup']:>6.2f} "
            f"{row['same_answers']:>3}/{prompts} {'' if gap is None else f'{gap:.3g}':>11}"
        )
    return "\n".join(lines)


def transformers_rows(variants: dict[str, Variant], first_prompt: Inputs) -> dict[str, Row]:
    """Each timed variant's summary; logit gaps for the variants that change the arithmetic."""
    reference = variants[BASELINE]
    rows = {}
    for name, variant in variants.items():
        row = {"threads": variant.threads, "warmup_s": variant.warmup_s}
        row.update(summary(variant.answers, reference.answers))
        if variant.model is not reference.model:
            row["max_abs_logit_diff"] = max_logit_gap(variant.model, reference.model, first_prompt)
        rows[name] = row
    return rows


def llamacpp_rows(
    prompts: list[Inputs], new_tokens: int, reference: list[Answer], build: str | None
) -> tuple[dict[str, Row], str | None]:
    """llama.cpp's rows at every core and at one thread (or why not), and its system info.

    ``build``: why building llama.cpp failed just now (both rows are skipped with it).
    """
    ids = [inputs["input_ids"][0].tolist() for inputs in prompts]
    rows: dict[str, Row] = {}
    system_info = None
    for name, threads in (("llamacpp", available_cores()), ("llamacpp_1_thread", 1)):
        reply = build or run_llamacpp(ids, threads, new_tokens, WARMUP_TOKENS)
        if isinstance(reply, str):
            rows[name] = reply
            continue
        answers = [Answer(**item) for item in reply["answers"]]
        rows[name] = {"threads": threads, **summary(answers, reference)}
        system_info = reply["system_info"]
    return rows, system_info


@dataclass(frozen=True)
class GenerationBench:
    """What :func:`compare_generation` measured: a row per variant (a dict of numbers, or a
    string saying why it was skipped) in report order, and the ratios of :func:`add_ratios`."""

    rows: dict[str, Row]
    ratios: dict[str, Any]
    prompt_tokens: list[int]  # the length of each prompt
    new_tokens: int
    llamacpp_system_info: str | None

    def metrics(self) -> dict[str, Any]:
        """The results file's metrics: the flattened rows, then the ratios."""
        return {**flatten(self.rows), **self.ratios}

    def table(self) -> str:
        """The rows as an aligned text table (see :func:`table`)."""
        return table(self.rows, len(self.prompt_tokens))


def compare_generation(
    config: GenerationBenchConfig, llamacpp_build_error: str | None = None
) -> GenerationBench:
    """Time every variant on ``config``'s prompts, ``config.new_tokens`` tokens each.

    ``llamacpp_build_error``: why building llama.cpp just failed, if it did (its rows are
    then skipped with that reason).
    """
    use_one_thread()
    new_tokens = config.new_tokens
    model, tokenizer = load_llm()
    prompts = [prompt_inputs(tokenizer, q, p) for q, p in PROMPTS[: config.prompts]]
    variants, skipped = transformers_variants(model, config)
    warm_up_all(variants, prompts, skipped)
    time_variants(variants, prompts, new_tokens)
    rows = transformers_rows(variants, prompts[0]) | skipped
    llama, system_info = llamacpp_rows(
        prompts, new_tokens, variants[BASELINE].answers, llamacpp_build_error
    )
    rows = {name: rows[name] for name in ORDER if name in rows} | llama
    ratios = add_ratios(rows)
    prompt_tokens = [int(inputs["input_ids"].shape[1]) for inputs in prompts]
    return GenerationBench(rows, ratios, prompt_tokens, new_tokens, system_info)
