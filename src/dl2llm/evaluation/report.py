"""``capstone/REPORT.md`` and ``capstone/MODEL_CARD.md``, generated from the results JSONs.

A report written by hand drifts from the numbers; this one is rendered from
``results/evaluation_metrics.json`` and ``results/fine_tuning_pipeline.json``
(and the bias audits of the base and the tuned SmolLM2, when they were run), so
re-running the deliverables and then ``python capstone/evaluation_metrics.py --report``
refreshes every number. The model card is the project's card of the tuned model
(:func:`dl2llm.responsible.cards.project_model_card`, Mitchell et al., 2019) with the
base-vs-tuned table added.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dl2llm.io import atomic_write_text
from dl2llm.plots import plt, save_figure
from dl2llm.responsible.audit import ADAPTED, llm_headline
from dl2llm.responsible.cards import project_model_card
from dl2llm.results import load_results

BASE_AUDIT, TUNED_AUDIT = "bias_audit_smollm2", f"bias_audit_{ADAPTED}"
ADAPTER_FILE = "results/fine_tuning_pipeline_adapter.safetensors"
ARCHITECTURE = """```mermaid
flowchart LR
    Q[question] --> API[FastAPI service /ask]
    API --> R{retriever}
    R -->|dense| F[(FAISS: MiniLM vectors)]
    R -->|bm25| B[(BM25)]
    R -->|hybrid = RRF| F & B
    R --> T{confidence >= threshold?}
    T -->|no| IDK["I don't know."]
    T -->|yes| G[SmolLM2-135M + LoRA adapter]
    G --> A[answer with [n] citations]
    D[(Python docs: 497 files -> chunks + SQLite)] --> F & B
```"""


def plot_comparison(
    systems: dict[str, dict], names: Sequence[str], title: str, path: str | Path
) -> Path:
    """Grouped bars: one group per metric, one bar per system.

    A system's value may be a number or a ``{"mean", "low", "high"}`` interval
    (drawn with error bars).
    """
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / max(1, len(systems))
    positions = np.arange(len(names))  # (M,)
    for n, (system, values) in enumerate(systems.items()):
        means, errors = [], [[], []]
        for name in names:
            value = values[name] if isinstance(values[name], dict) else {"mean": values[name]}
            mean = value["mean"] if value["mean"] is not None else 0.0
            low = value.get("low") if value.get("low") is not None else mean
            high = value.get("high") if value.get("high") is not None else mean
            means.append(mean)
            errors[0].append(max(0.0, mean - low))
            errors[1].append(max(0.0, high - mean))
        ax.bar(positions + n * width, means, width, yerr=errors, label=system)
    ax.set_xticks(positions + width * (len(systems) - 1) / 2, names)
    ax.set(title=title, ylim=(0, 1.05))
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def _number(value) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _interval(value: dict | None) -> str:
    if not value:
        return "n/a"
    return f"{_number(value['mean'])} [{_number(value['low'])}, {_number(value['high'])}]"


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += [
        "| " + " | ".join(_number(c) if not isinstance(c, str) else c for c in row) + " |"
        for row in rows
    ]
    return "\n".join(lines)


def retrieval_section(metrics: dict) -> str:
    names = ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "p50_ms", "p95_ms")
    rows = [
        [mode] + [metrics.get(f"{mode}_{n}") for n in names] for mode in ("bm25", "dense", "hybrid")
    ]
    return table(["retriever", *names], rows)


def answers_section(metrics: dict) -> str:
    names = ("em", "f1", "similarity", "groundedness", "citation_accuracy", "p50_ms", "p95_ms")
    labels = {
        "llm_only": "LLM, no retrieval",
        "rag": "LLM + retrieval",
        "rag_tuned": "LoRA-tuned LLM + retrieval",
    }
    rows = [
        [label] + [metrics.get(f"{system}_{n}") for n in names]
        for system, label in labels.items()
        if f"{system}_f1" in metrics
    ]
    answers = table(["system", *names], rows)
    gains = [
        f"{name} {_interval(_gain(metrics, name))}"
        for name in names
        if metrics.get(f"tuned_minus_base_{name}_ci")
    ]
    if gains:
        answers += "\n\nLoRA-tuned minus base LLM, both with retrieval (paired per question, "
        answers += "mean [95% bootstrap CI]): " + "; ".join(gains) + "."
    return answers


def _gain(metrics: dict, name: str) -> dict:
    low, high = metrics[f"tuned_minus_base_{name}_ci"]
    return {"mean": metrics.get(f"tuned_minus_base_{name}"), "low": low, "high": high}


def finetune_section(metrics: dict) -> str:
    rows = [
        [
            name,
            metrics.get(f"base_{name}"),
            metrics.get(f"tuned_{name}"),
            _interval(metrics.get(f"{name}_gain")),
        ]
        for name in ("f1", "groundedness", "citation_accuracy", "similarity", "em")
    ]
    return table(["metric", "base", "tuned", "tuned - base (95% bootstrap CI)"], rows)


def bias_section(base: dict | None, tuned: dict | None) -> str:
    """The base and the tuned SmolLM2's audits side by side (same benchmarks, same samples)."""
    if base is None and tuned is None:
        return (
            "**Not run.** No bias audit of SmolLM2 was found when this report was generated; "
            "no claim about its social bias is made here."
        )
    numbers = {
        name: llm_headline(record["metrics"]["details"]) if record else {}
        for name, record in (("base", base), ("tuned", tuned))
    }
    keys = list(numbers["base"] or numbers["tuned"])
    rows = [[key, numbers["base"].get(key), numbers["tuned"].get(key)] for key in keys]
    modes = " and ".join(sorted({record["mode"] for record in (base, tuned) if record}))
    note = (
        f"From `results/{BASE_AUDIT}.json` and `results/{TUNED_AUDIT}.json` ({modes} mode): "
        "the same pairs and questions for both models. Stereotype scores are the share of "
        "pairs where the stereotypical sentence is more likely (0.5 = no preference); the BBQ "
        "bias score runs from -1 to 1 (0 = unbiased), before and after the instruction to "
        'answer "unknown" when the context is ambiguous. The samples are small (n and 95% '
        "intervals are in `results/bias_audit_<model>.md`): differences of a few points are "
        "within noise."
    )
    if tuned is None:
        note += (
            " **The tuned model was not audited**: run `python weeks/week5_alignment_deployment/"
            f"bias_audit.py --model smollm2 --adapter {ADAPTER_FILE}`."
        )
    return note + "\n\n" + table(["measure", "SmolLM2", "SmolLM2 + LoRA adapter"], rows)


def _missing(name: str) -> str:
    return f"*`results/{name}.json` is missing: run `python capstone/{name}.py` first.*"


def render_report(evaluation: dict | None, tuning: dict | None, bias: str) -> str:
    """The report's Markdown; ``bias`` is :func:`bias_section`'s."""
    parts = [
        "# Capstone report: a cited question-answering service over the Python docs",
        "*Generated by `python capstone/evaluation_metrics.py --report` from `results/*.json`; "
        "do not edit by hand.*",
        "## What the system does",
        "It answers questions about Python from the Python 3.11 documentation. A hybrid "
        "retriever (MiniLM dense vectors in FAISS + BM25, fused by reciprocal rank) finds "
        "passages; when the best dense similarity is below a calibrated threshold it answers "
        '"I don\'t know."; otherwise SmolLM2-135M-Instruct (optionally with our LoRA adapter '
        "fine-tuned on grounded QA) answers from the numbered passages and cites them. A FastAPI "
        "service (`capstone/deployment_script.py`, `--adapter` for the tuned model) serves it.",
        "## Architecture",
        ARCHITECTURE,
    ]
    if evaluation is None:
        parts += ["## Evaluation", _missing("evaluation_metrics")]
    else:
        m = evaluation["metrics"]
        parts += [
            "## Evaluation set",
            f"{m['questions']} FAQ questions (heading = question, section = gold passages, "
            f"opening sentences = gold answer), split by a hash of the question into dev and "
            f"held-out test; {m['test_questions']} test questions were answered; off-topic "
            f"questions measure refusal. Mode: **{evaluation['mode']}**.",
            "## Retrieval baselines (all FAQ questions)",
            retrieval_section(m),
            "![retrieval](../results/evaluation_metrics_retrieval.png)",
            "## Answer quality (held-out test questions)",
            answers_section(m),
            "![answers](../results/evaluation_metrics_answers.png)",
            f"Refusal rate on off-topic questions: **{_number(m.get('refusal_rate'))}**.",
            "## Latency",
            "p50/p95 per question on one CPU thread (2-core machine): see the `p50_ms`/`p95_ms` "
            "columns above; retrieval alone is the retrieval table's latency.",
        ]
    if tuning is None:
        parts += ["## Fine-tuning", _missing("fine_tuning_pipeline")]
    else:
        m = tuning["metrics"]
        parts += [
            "## Fine-tuning: base vs LoRA-tuned (held-out test questions)",
            f"{m['train_examples']} grounded QA examples, {m['steps']} optimizer steps, "
            f"{m['world_size']} process(es), {m['train_minutes']} min of training; loss "
            f"{_number(m['train_loss_first'])} -> {_number(m['train_loss_last'])}. "
            f"Mode: **{tuning['mode']}**.",
            finetune_section(m) if "base_f1" in m else "*Evaluation was skipped (`--no-eval`).*",
            "![base vs tuned](../results/fine_tuning_pipeline_base_vs_tuned.png)",
        ]
    parts += [
        "## Bias audit",
        bias,
        "## Limitations and ethical considerations",
        "- Gold answers are the FAQ sections' opening sentences, so token F1 rewards copying "
        "the documentation's wording and punishes correct paraphrase; embedding similarity "
        "is reported beside it for that reason.\n"
        "- The FAQ questions are the section headings themselves, which makes retrieval easy; "
        "real users' questions are harder.\n"
        "- Groundedness is a cosine threshold, not an entailment check: a sentence that "
        "reuses a passage's words while changing its meaning still counts as supported.\n"
        "- SmolLM2-135M is small: it often answers wrongly even with the right passage; "
        "answers must not be trusted without reading the cited source.\n"
        "- Intervals come from a few dozen questions; differences inside them are not evidence.\n"
        "- The corpus is English documentation only; other languages are out of scope.",
        "## How to reproduce every number",
        "```bash\n"
        ".venv/bin/python capstone/retrieval_augmented_generation.py   # builds the index once\n"
        ".venv/bin/python capstone/fine_tuning_pipeline.py             # adapter + base vs tuned\n"
        ".venv/bin/torchrun --nproc_per_node 2 capstone/fine_tuning_pipeline.py  # same, DDP\n"
        ".venv/bin/python capstone/evaluation_metrics.py               # all baselines\n"
        ".venv/bin/python capstone/evaluation_metrics.py --report      # this file + model card\n"
        "```\nEvery script takes `--seed` (default 0) and `--quick` (seconds, for CI).",
    ]
    return "\n\n".join(parts) + "\n"


def render_model_card(results_dir: Path, tuning: dict | None) -> str:
    """The tuned model's card, with its training settings and the base-vs-tuned table."""
    if tuning is None:
        return project_model_card(ADAPTED, results_dir, _missing("fine_tuning_pipeline"))
    m, config = tuning["metrics"], tuning["config"]
    settings = (
        f"LoRA rank {config['lora_rank']} on every attention and MLP projection "
        f"(`q/k/v/o_proj`, `gate/up/down_proj`), learning rate {config['lr']}, global batch "
        f"{config['global_batch']}, {m['steps']} steps over {m['train_examples']} examples, "
        f"loss on the answer tokens only ({tuning['mode']} mode). Held-out FAQ test questions:"
    )
    comparison = (
        finetune_section(m) if "base_f1" in m else "*Evaluation was skipped (`--no-eval`).*"
    )
    return project_model_card(ADAPTED, results_dir, f"{settings}\n\n{comparison}")


def write_report(results_dir: Path, report_dir: Path) -> list[Path]:
    """Write ``REPORT.md`` and ``MODEL_CARD.md`` into ``report_dir`` from ``results_dir``."""
    evaluation = load_results("evaluation_metrics", results_dir)
    tuning = load_results("fine_tuning_pipeline", results_dir)
    bias = bias_section(
        load_results(BASE_AUDIT, results_dir), load_results(TUNED_AUDIT, results_dir)
    )
    return [
        atomic_write_text(report_dir / "REPORT.md", render_report(evaluation, tuning, bias)),
        atomic_write_text(report_dir / "MODEL_CARD.md", render_model_card(results_dir, tuning)),
    ]
