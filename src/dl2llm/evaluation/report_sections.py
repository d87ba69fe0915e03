"""The sections of ``capstone/REPORT.md``: tables and paragraphs rendered from results.

Each ``*_section`` function takes the metrics of one results JSON and returns
Markdown; :mod:`dl2llm.evaluation.report` puts them in order and writes the files.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from dl2llm import paths
from dl2llm.evaluation.compare import USER_METRICS
from dl2llm.evaluation.questions import FAITHFULNESS_LABELS
from dl2llm.hardware import describe
from dl2llm.responsible.audit import ADAPTED, llm_headline

BASE_AUDIT, TUNED_AUDIT = "bias_audit_smollm2", f"bias_audit_{ADAPTED}"
ADAPTER_FILE = "results/fine_tuning_pipeline_adapter.safetensors"

SYSTEM_LABELS = {
    "evidence": "evidence answer, no LLM",
    "evidence_llm": "SmolLM2 choosing the entry (checked)",
    "evidence_llm_tuned": "SmolLM2 + LoRA adapter choosing the entry (checked)",
    "previous": "previous: SmolLM2 on 80-word passages",
    "no_retrieval": "SmolLM2, no retrieval",
}
USER_COLUMNS = tuple(m for m in USER_METRICS if m != "retrieval_recall")  # it has its table
FAQ_COLUMNS = ("f1", "similarity", "citation_accuracy", "faithfulness", "junk_rate")
TARGETS = (  # (metric, "min" or "max", target) from the capstone's issue, test split
    ("key_term_accuracy", "min", 0.85),
    ("citation_accuracy", "min", 0.9),
    ("junk_rate", "max", 0.0),
    ("wrong_on_unanswerable", "max", 0.10),
    ("wrong_on_off_topic", "max", 0.10),
    ("false_refusal_rate", "max", 0.05),
    ("p50_ms", "max", 1500.0),
    ("p95_ms", "max", 3000.0),
)


def number(value) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def interval(value: dict | None) -> str:
    if not value:
        return "n/a"
    return f"{number(value['mean'])} [{number(value['low'])}, {number(value['high'])}]"


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += [
        "| " + " | ".join(number(c) if not isinstance(c, str) else c for c in row) + " |"
        for row in rows
    ]
    return "\n".join(lines)


def milliseconds(value) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def flat_interval(metrics: dict, key: str) -> str:
    """``mean [low, high]`` of a flattened metric (``key`` and ``key_ci``)."""
    if metrics.get(key) is None:
        return "n/a"
    low_high = metrics.get(f"{key}_ci")
    if not low_high:
        return number(metrics[key])
    return f"{number(metrics[key])} [{number(low_high[0])}, {number(low_high[1])}]"


def systems_in(metrics: dict, prefix: str = "") -> list[str]:
    """The systems the results hold, in :data:`SYSTEM_LABELS` order."""
    return [s for s in SYSTEM_LABELS if f"{prefix}{s}_p50_ms" in metrics]


def system_label(system: str, served: str) -> str:
    label = SYSTEM_LABELS[system]
    return f"**{label} (served)**" if system == served else label


def user_section(metrics: dict, served: str) -> str:
    """Every system on the hand-written questions: means with 95% intervals, latency."""
    header = ["system", *USER_COLUMNS, "p50 ms", "p95 ms"]
    rows = [
        [system_label(system, served)]
        + [flat_interval(metrics, f"{system}_{name}") for name in USER_COLUMNS]
        + [
            milliseconds(metrics.get(f"{system}_p50_ms")),
            milliseconds(metrics.get(f"{system}_p95_ms")),
        ]
        for system in systems_in(metrics)
    ]
    return table(header, rows)


def faq_section(metrics: dict, served: str) -> str:
    """Every system on the FAQ set (headings as questions): the secondary set."""
    header = ["system", *FAQ_COLUMNS, "p50 ms"]
    rows = [
        [system_label(system, served)]
        + [flat_interval(metrics, f"faq_{system}_{name}") for name in FAQ_COLUMNS]
        + [milliseconds(metrics.get(f"faq_{system}_p50_ms"))]
        for system in systems_in(metrics, "faq_")
    ]
    return table(header, rows)


def targets_section(metrics: dict, served: str) -> str:
    """The served system against the issue's targets: met, or missed by how much."""
    rows = []
    for name, kind, target in TARGETS:
        value = metrics.get(f"{served}_{name}")
        if value is None:
            verdict = "not measured"
        elif (value >= target) if kind == "min" else (value <= target):
            verdict = "met"
        else:
            verdict = f"**missed** by {number(abs(value - target))}"
        shown = (
            milliseconds(value)
            if name.endswith("_ms")
            else flat_interval(metrics, f"{served}_{name}")
        )
        bound = (">= " if kind == "min" else "<= ") + (
            milliseconds(target) if name.endswith("_ms") else f"{target:g}"
        )
        rows.append([name, bound, shown, verdict])
    return table(["metric", "target", "measured [95% CI]", "verdict"], rows)


def retrieval_section(metrics: dict) -> str:
    """Document recall of each retriever on the hand-written questions."""
    names = ("recall@1", "recall@5", "recall@10", "mrr@10")
    rows = [
        [mode]
        + [metrics.get(f"retrieval_{mode}_{n}") for n in names]
        + [milliseconds(metrics.get(f"retrieval_{mode}_p50_ms"))]
        for mode in ("bm25", "dense", "hybrid")
        if f"retrieval_{mode}_recall@5" in metrics
    ]
    return table(["retriever", *names, "p50 ms"], rows)


DEV_COLUMNS = (
    "key_term_accuracy",
    "faithfulness",
    "junk_rate",
    "false_refusal_rate",
    "wrong_on_unanswerable",
    "p50_ms",
    "p95_ms",
    "phrasings_passed",
    "changed_lead",
)


def finetune_section(metrics: dict) -> str:
    """The dev comparison the served model was chosen by: evidence, base, tuned."""

    def cell(name: str, column: str):
        value = metrics.get(f"dev_{name}_{column}")
        return milliseconds(value) if column.endswith("_ms") else value

    rows = [
        [SYSTEM_LABELS[name]] + [cell(name, column) for column in DEV_COLUMNS]
        for name in ("evidence", "evidence_llm", "evidence_llm_tuned")
    ]
    served = metrics["served"]
    verdict = "beats" if metrics["tuned_beats_base"] else "does not beat"
    return "\n\n".join(
        [
            table(["system (dev questions)", *DEV_COLUMNS], rows),
            f"Tuned minus base key-term accuracy, paired per question: "
            f"{interval(metrics.get('dev_key_term_gain'))}. The adapter **{verdict}** the base "
            "model on dev (higher key-term accuracy, no more junk, no less faithful), so "
            f"{'it is' if metrics['tuned_beats_base'] else 'it is not'} loaded by default with "
            f"`--generator llm` (`--no-adapter` serves the base). `make run` serves "
            f"**{SYSTEM_LABELS[served]}**: the best dev key-term accuracy among the systems that "
            "meet the latency targets (p50 <= 1.5 s, p95 <= 3 s). *phrasings_passed*: share of "
            "the model's sentences that passed the check; *changed_lead*: share of answers led "
            "by another entry than the encoder's best.",
        ]
    )


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


CARRIED = (
    "*Carried over from the previous report: `results/{name}.json` is not on the machine "
    "that generated this one (re-run it to refresh these numbers).*"
)


def carried_over(previous: str | None, heading: str, name: str) -> str | None:
    r"""The body of ``previous``'s section whose title starts with ``heading``, marked as
    carried over; None when there is none or it holds no numbers either.

    >>> carried_over("## Bias audit\n\nscores\n\n## Next", "Bias audit", "x")
    '*Carried over from the previous report: ...*\n\nscores'
    """
    if previous is None:
        return None
    found = re.search(rf"^## {re.escape(heading)}[^\n]*\n(.*?)(?=^## |\Z)", previous, re.M | re.S)
    body = found.group(1).strip() if found else ""
    if not body or "is missing" in body or body.startswith("**Not run.**"):
        return None
    return body if body.startswith("*Carried") else CARRIED.format(name=name) + "\n\n" + body


def missing_results(name: str) -> str:
    return f"*`results/{name}.json` is missing: run `python capstone/{name}.py` first.*"


FAITHFULNESS_NOTE = (
    "Faithfulness is the share of an answer's sentences that its cited passage supports. No "
    "NLI cross-encoder is available offline, so *supported* is a documented criterion "
    "(`dl2llm.rag.checks.supported`): at least 75% of the sentence's content words occur in "
    "the cited passage and every code name in the sentence does. Citation accuracy: every "
    "cited passage contains a key term or supports its sentence. Key-term accuracy: the "
    "answer (not a refusal) names one of the question's key API terms."
)


def misses_section(rows: dict | None, metrics: dict) -> str:
    """Where the served system's misses come from, read off its per-question rows."""
    if rows is None:
        return "*`results/evaluation_metrics_answers.json` is missing.*"
    answered = [r for r in rows["answerable"] if not r["refused"]]
    wrong = [r for r in answered if not r["key_term"]]
    found = sum(r["retrieved_gold"] for r in wrong)
    leaked = [r for r in rows["unanswerable"] if not r["refused"]]
    in_domain = sum(r["kind"] != "off_topic" for r in rows["unanswerable"])
    off_topic = sum(r["kind"] == "off_topic" for r in leaked)
    lines = [
        f"- **Key terms.** {len(wrong)} of {len(answered)} answers do not name a key term; in "
        f"{found} of those a gold document was among the shown sources, so choosing the "
        "sentence (MiniLM as a bi-encoder: no cross-encoder can be had offline) loses more "
        "than retrieval (hybrid recall@10 "
        f"{number(metrics.get('retrieval_hybrid_recall@10'))}).",
        f"- **Unanswerable questions answered**: {len(leaked) - off_topic} of {in_domain} "
        f"in-domain and {off_topic} of {len(rows['unanswerable']) - in_domain} off-topic. The "
        "scope check knows a fixed list of packages and judges dotted names only under "
        "documented modules, so anything else gets an answer from the nearest "
        "standard-library page:",
    ]
    lines += [f"  - {r['question']} -> {r['answer'].splitlines()[0][:90]}..." for r in leaked]
    return "\n".join(lines)


def machine_line(evaluation: dict) -> str:
    facts = evaluation["metrics"].get("machine")
    return f"measured on a {describe(facts)}" if facts else "machine not recorded"


def criterion_section(criterion: dict | None) -> str:
    """How the faithfulness criterion agrees with the hand labels."""
    labels = FAITHFULNESS_LABELS.relative_to(paths.REPO_ROOT)
    if criterion is None:
        return f"*`{labels}` is missing.*"
    return (
        f"The criterion against {criterion['n']} answer sentences labelled by hand "
        f"({criterion['human_supported']} supported by their cited passage, `{labels}`): "
        "agreement "
        f"{number(criterion['agreement'])}, Cohen's kappa {number(criterion['kappa'])}, "
        f"precision {number(criterion['precision'])} and recall "
        f"{number(criterion['recall'])} on *supported*."
    )


def evaluation_sections(
    evaluation: dict,
    served: str,
    thresholds: dict | None,
    criterion: dict | None = None,
    rows: dict | None = None,
) -> list[str]:
    """The hand-written and FAQ results, the targets, and the retrievers."""
    m, config = evaluation["metrics"], evaluation.get("config", {})
    split = config.get("split", "test")
    tuned = (
        f"min_confidence {number(thresholds['min_confidence'])}, min_evidence "
        f"{number(thresholds['min_evidence'])}, fitted on {thresholds['dev_answerable']} dev "
        f"answerable and {thresholds['dev_unanswerable']} dev unanswerable questions"
        if thresholds
        else "no tuned thresholds were found (defaults)"
    )
    return [
        "## Evaluation sets",
        f"**Hand-written questions** (`data/capstone_qa/`), the {split} split: "
        f"{m['answerable']} answerable questions phrased the way people ask them (most do not "
        "name the API), each with its gold documents and the key API terms a right answer "
        f"must name, and {m['unanswerable']} the docs cannot answer (third-party libraries, "
        "features newer than 3.11, and off-topic questions). Dev and test are split **by "
        "document** (no document, so no paraphrase, on both sides); prompts and the refusal "
        f"thresholds use dev only ({tuned}). **FAQ set** (secondary): {m['faq_questions']} "
        f"FAQ headings of the {split} split as questions, scored against the section's opening "
        f"words. Mode: **{evaluation['mode']}**; {machine_line(evaluation)}.",
        f"## Targets: the served system on the {split} split",
        targets_section(m, served),
        "### Where the misses come from",
        misses_section(rows, m),
        "## Hand-written questions: every system (mean [95% bootstrap CI])",
        user_section(m, served),
        "![answers](../results/evaluation_metrics_answers.png)",
        FAITHFULNESS_NOTE,
        criterion_section(criterion),
        "## FAQ set: every system",
        faq_section(m, served),
        "## Retrievers on the hand-written questions (gold document in the top k)",
        retrieval_section(m),
    ]
