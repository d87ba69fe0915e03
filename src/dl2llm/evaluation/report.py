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

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dl2llm import paths
from dl2llm.evaluation.judge import criterion_agreement
from dl2llm.evaluation.questions import FAITHFULNESS_LABELS, read_jsonl
from dl2llm.hardware import describe
from dl2llm.io import atomic_write_text
from dl2llm.plots import plt, save_figure
from dl2llm.rag import SERVED_GENERATORS, SERVED_MODEL_DIR, served_recipe
from dl2llm.rag.pipeline import DEV_THRESHOLDS
from dl2llm.responsible.audit import ADAPTED, llm_headline
from dl2llm.responsible.cards import project_model_card
from dl2llm.results import load_results

BASE_AUDIT, TUNED_AUDIT = "bias_audit_smollm2", f"bias_audit_{ADAPTED}"
ADAPTER_FILE = "results/fine_tuning_pipeline_adapter.safetensors"
ARCHITECTURE = """```mermaid
flowchart LR
    Q[question] --> API[FastAPI service /v1/ask]
    API --> S{names a library or feature<br/>the docs do not cover?}
    S -->|yes| NO["I don't know: ... not covered"]
    S -->|no| R{hybrid retriever}
    R -->|dense| F[(FAISS: MiniLM vectors)]
    R -->|bm25| B[(BM25)]
    R --> T{confidence and evidence<br/>above the dev-tuned thresholds?}
    T -->|no| IDK["I don't know."]
    T -->|yes| E[evidence: API entry + the sentences<br/>that answer, chosen by MiniLM]
    E --> A["answer: `signature`: sentence 【n】, See also"]
    E -.->|--generator llm| G[SmolLM2 picks one of the<br/>5 best entries, checked]
    D[(Python docs: 497 files -> API entries + sections)] --> F & B
```"""
SYSTEM_LABELS = {
    "evidence": "evidence answer, no LLM",
    "evidence_llm": "SmolLM2 choosing the entry (checked)",
    "evidence_llm_tuned": "SmolLM2 + LoRA adapter choosing the entry (checked)",
    "previous": "previous: SmolLM2 on 80-word passages",
    "no_retrieval": "SmolLM2, no retrieval",
}
USER_COLUMNS = (
    "key_term_accuracy",
    "citation_accuracy",
    "faithfulness",
    "junk_rate",
    "false_refusal_rate",
    "wrong_on_unanswerable",
    "wrong_on_off_topic",
)
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


def _ms(value) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def _flat_interval(metrics: dict, key: str) -> str:
    """``mean [low, high]`` of a flattened metric (``key`` and ``key_ci``)."""
    if metrics.get(key) is None:
        return "n/a"
    low_high = metrics.get(f"{key}_ci")
    if not low_high:
        return _number(metrics[key])
    return f"{_number(metrics[key])} [{_number(low_high[0])}, {_number(low_high[1])}]"


def systems_in(metrics: dict, prefix: str = "") -> list[str]:
    """The systems the results hold, in :data:`SYSTEM_LABELS` order."""
    return [s for s in SYSTEM_LABELS if f"{prefix}{s}_p50_ms" in metrics]


def _label(system: str, served: str) -> str:
    label = SYSTEM_LABELS[system]
    return f"**{label} (served)**" if system == served else label


def user_section(metrics: dict, served: str) -> str:
    """Every system on the hand-written questions: means with 95% intervals, latency."""
    header = ["system", *USER_COLUMNS, "p50 ms", "p95 ms"]
    rows = [
        [_label(system, served)]
        + [_flat_interval(metrics, f"{system}_{name}") for name in USER_COLUMNS]
        + [_ms(metrics.get(f"{system}_p50_ms")), _ms(metrics.get(f"{system}_p95_ms"))]
        for system in systems_in(metrics)
    ]
    return table(header, rows)


def faq_section(metrics: dict, served: str) -> str:
    """Every system on the FAQ set (headings as questions): the secondary set."""
    header = ["system", *FAQ_COLUMNS, "p50 ms"]
    rows = [
        [_label(system, served)]
        + [_flat_interval(metrics, f"faq_{system}_{name}") for name in FAQ_COLUMNS]
        + [_ms(metrics.get(f"faq_{system}_p50_ms"))]
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
            verdict = f"**missed** by {_number(abs(value - target))}"
        shown = _ms(value) if name.endswith("_ms") else _flat_interval(metrics, f"{served}_{name}")
        bound = (">= " if kind == "min" else "<= ") + (
            _ms(target) if name.endswith("_ms") else f"{target:g}"
        )
        rows.append([name, bound, shown, verdict])
    return table(["metric", "target", "measured [95% CI]", "verdict"], rows)


def retrieval_section(metrics: dict) -> str:
    """Document recall of each retriever on the hand-written questions."""
    names = ("recall@1", "recall@5", "recall@10", "mrr@10")
    rows = [
        [mode]
        + [metrics.get(f"retrieval_{mode}_{n}") for n in names]
        + [_ms(metrics.get(f"retrieval_{mode}_p50_ms"))]
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
        return _ms(value) if column.endswith("_ms") else value

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
            f"{_interval(metrics.get('dev_key_term_gain'))}. The adapter **{verdict}** the base "
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


def _missing(name: str) -> str:
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
        f"{_number(metrics.get('retrieval_hybrid_recall@10'))}).",
        f"- **Unanswerable questions answered**: {len(leaked) - off_topic} of {in_domain} "
        f"in-domain and {off_topic} of {len(rows['unanswerable']) - in_domain} off-topic. The "
        "scope check knows a fixed list of packages and judges dotted names only under "
        "documented modules, so anything else gets an answer from the nearest "
        "standard-library page:",
    ]
    lines += [f"  - {r['question']} -> {r['answer'].splitlines()[0][:90]}..." for r in leaked]
    return "\n".join(lines)


def _machine(evaluation: dict) -> str:
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
        f"{_number(criterion['agreement'])}, Cohen's kappa {_number(criterion['kappa'])}, "
        f"precision {_number(criterion['precision'])} and recall "
        f"{_number(criterion['recall'])} on *supported*."
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
        f"min_confidence {_number(thresholds['min_confidence'])}, min_evidence "
        f"{_number(thresholds['min_evidence'])}, fitted on {thresholds['dev_answerable']} dev "
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
        f"words. Mode: **{evaluation['mode']}**; {_machine(evaluation)}.",
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


def render_report(
    evaluation: dict | None,
    tuning: dict | None,
    bias: str,
    served: str = "evidence",
    thresholds: dict | None = None,
    criterion: dict | None = None,
    previous: str | None = None,
    answers: dict | None = None,
) -> str:
    """The report's Markdown; ``bias`` is :func:`bias_section`'s.

    ``previous``: the report this one replaces; its fine-tuning section is kept
    (marked as carried over) when that deliverable's results are not at hand.
    """
    served_generator = SERVED_GENERATORS[served]
    parts = [
        "# Capstone report: a cited question-answering service over the Python docs",
        "*Generated by `python capstone/evaluation_metrics.py --report` from `results/*.json`; "
        "do not edit by hand.*",
        "## What the system does, and which model is served",
        "It answers questions about Python from the Python 3.11 documentation. The docs' API "
        "entries (`.. function::`, `.. method::`, ...) are retrieval units of their own; a "
        "hybrid retriever (MiniLM vectors in FAISS + BM25, fused by reciprocal rank) finds "
        "them; MiniLM picks the sentences that answer; the answer leads with the entry's "
        "signature and cites its passage with `【n】` markers, which cannot collide with code "
        "such as `argv[0]`. Questions about what the docs do not cover, or whose retrieval "
        "and evidence scores fall below thresholds tuned on dev questions, get \"I don't "
        f'know". `make run` serves **{SYSTEM_LABELS[served]}** (`--generator '
        f"{served_generator}`, the default), chosen on the dev questions (see Fine-tuning). "
        "With `--generator llm`, SmolLM2-135M reads the question and the five best entries "
        "and names the one that answers, which then leads the evidence answer; its sentence "
        "is checked and dropped when unsupported. The LoRA adapter of "
        "`capstone/fine_tuning_pipeline.py` (data/capstone_adapter/) teaches it that task on "
        "questions written from API entries outside the test documents; `--no-adapter` "
        "serves the base model. The previous design is `--generator previous`.",
        "## Architecture",
        ARCHITECTURE,
    ]
    if evaluation is None:
        parts += ["## Evaluation", _missing("evaluation_metrics")]
    elif "answerable" not in evaluation["metrics"]:
        parts += ["## Evaluation", "*`results/evaluation_metrics.json` is from an older run: "
                  "run `python capstone/evaluation_metrics.py` again.*"]  # fmt: skip
    else:
        rows = (answers or {}).get(served)
        parts += evaluation_sections(evaluation, served, thresholds, criterion, rows)
    if tuning is None or "served" not in tuning["metrics"]:
        kept = carried_over(previous, "Fine-tuning", "fine_tuning_pipeline")
        parts += ["## Fine-tuning: which model is served (dev questions only)"]
        parts += [kept or _missing("fine_tuning_pipeline")]
    else:
        m = tuning["metrics"]
        parts += [
            "## Fine-tuning: which model is served (dev questions only)",
            f"{m['train_examples']} training examples, each a question written from an API "
            f"entry outside the {m['excluded_test_documents']} test documents with the five "
            "candidate entries the pipeline retrieves for it (the gold one put among them when "
            f"missed); {m['steps']} optimizer steps, {m['world_size']} process(es), "
            f"{m['train_minutes']} min of training; loss {_number(m['train_loss_first'])} -> "
            f"{_number(m['train_loss_last'])}; data SHA-256 `{m['data_sha256'][:12]}`. Mode: "
            f"**{tuning['mode']}**. The hand-written dev questions are only measured:",
            finetune_section(m),
        ]
    stale = " (carried over: its adapter is an earlier one, not the committed adapter)"
    parts += [
        "## Bias audit" + (stale if bias.startswith("*Carried") else ""),
        bias,
        "## Limitations and ethical considerations",
        "- The evidence answer quotes the documentation: it is as right as the sentence it "
        "picks, and it does not explain or combine sentences from several places.\n"
        "- Key-term accuracy checks that the answer names the right API, not that everything "
        "it says is right; faithfulness is a word-overlap criterion, not entailment.\n"
        "- The hand-written questions were written by the project (not by outside users), "
        "against the documents they cite; intervals come from about a hundred questions, and "
        "differences inside them are not evidence.\n"
        "- Out-of-scope detection knows a list of third-party packages and the 3.11 corpus's "
        "names; a library it does not know can still get an answer from a similar stdlib page.\n"
        "- SmolLM2-135M is small: its sentences are often unsupported, which is why they are "
        "checked; the adapter was trained on questions written from the entries' own "
        "descriptions, which share more words with the answer than people's questions do.\n"
        "- The corpus is English documentation only; other languages are out of scope.",
        "## How to reproduce every number",
        "```bash\n"
        ".venv/bin/python capstone/retrieval_augmented_generation.py   # builds the index once\n"
        ".venv/bin/python capstone/evaluation_metrics.py --tune        # thresholds, dev only\n"
        ".venv/bin/python capstone/evaluation_metrics.py               # every system, test\n"
        ".venv/bin/python capstone/fine_tuning_pipeline.py             # adapter, dev choice\n"
        ".venv/bin/python capstone/evaluation_metrics.py --report      # this file + model card\n"
        "```\nEvery script takes `--seed` (default 0) and `--quick` (seconds, for CI).",
    ]
    return "\n\n".join(parts) + "\n"


def render_model_card(results_dir: Path, tuning: dict | None) -> str:
    """The tuned model's card, with its training settings and the dev comparison."""
    if tuning is None or "served" not in tuning["metrics"]:
        return project_model_card(ADAPTED, results_dir, _missing("fine_tuning_pipeline"))
    m, config = tuning["metrics"], tuning["config"]
    settings = (
        f"LoRA rank {config['lora_rank']} on every attention and MLP projection "
        f"(`q/k/v/o_proj`, `gate/up/down_proj`), learning rate {config['lr']}, global batch "
        f"{config['global_batch']}, {m['steps']} steps over {m['train_examples']} examples "
        "written from API entries outside the test documents, loss on the answer tokens only "
        f"({tuning['mode']} mode). Its task: given a question and five candidate API entries, "
        "answer with the line of the entry that answers. Hand-written dev questions:"
    )
    return project_model_card(ADAPTED, results_dir, f"{settings}\n\n{finetune_section(m)}")


def write_report(
    results_dir: Path, report_dir: Path, served_dir: Path = SERVED_MODEL_DIR
) -> list[Path]:
    """Write ``REPORT.md`` (and ``MODEL_CARD.md`` when the tuned model's results are at hand)
    into ``report_dir`` from ``results_dir``; ``served_dir`` holds the served model's recipe."""
    evaluation = load_results("evaluation_metrics", results_dir)
    tuning = load_results("fine_tuning_pipeline", results_dir)
    base, tuned = load_results(BASE_AUDIT, results_dir), load_results(TUNED_AUDIT, results_dir)
    report_path = report_dir / "REPORT.md"
    previous = report_path.read_text(encoding="utf-8") if report_path.is_file() else None
    bias = bias_section(base, tuned)
    if base is None and tuned is None:
        bias = carried_over(previous, "Bias audit", BASE_AUDIT) or bias
    thresholds = json.loads(DEV_THRESHOLDS.read_text()) if DEV_THRESHOLDS.is_file() else None
    labels = read_jsonl(FAITHFULNESS_LABELS) if FAITHFULNESS_LABELS.is_file() else None
    criterion = criterion_agreement(labels) if labels else None
    answers_path = results_dir / "evaluation_metrics_answers.json"
    answers = json.loads(answers_path.read_text()) if answers_path.is_file() else None
    served = served_recipe(served_dir).get("served", "evidence")
    report = render_report(
        evaluation, tuning, bias, served, thresholds, criterion, previous, answers
    )
    written = [atomic_write_text(report_path, report)]
    card_path = report_dir / "MODEL_CARD.md"
    if tuning is not None or not card_path.is_file():
        written.append(atomic_write_text(card_path, render_model_card(results_dir, tuning)))
    return written
