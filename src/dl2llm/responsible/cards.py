"""Model cards (Mitchell et al., 2019, "Model Cards for Model Reporting").

A model card is a short document that ships with a model and says what it is for, what
it was trained and evaluated on, how it performs across groups, and where it should not
be used. We follow Mitchell et al.'s sections (model details, intended use, factors,
metrics, evaluation and training data, quantitative analyses, ethical considerations,
caveats and recommendations) in the Hugging Face model-card format: Markdown with a YAML
metadata block (``license``, ``language``, ``tags``, ``datasets``) at the top.
:func:`project_model_card` fills one in from the results JSON files for every model the
project trains: ``python -m dl2llm.responsible.cards sentiment``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from dl2llm import paths
from dl2llm.io import atomic_write_text
from dl2llm.results import load_results
from dl2llm.runtime import UsageError


@dataclass
class ModelCard:
    """What a card says; every field is plain text or a flat ``{name: value}`` dict."""

    name: str
    details: str
    intended_use: str
    out_of_scope_use: str
    training_data: str
    evaluation_data: str
    licence: str
    base_model: str = ""
    datasets: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    metrics: dict[str, object] = field(default_factory=dict)
    bias_results: dict[str, object] = field(default_factory=dict)
    factors: str = "Gender, race/ethnicity (via names), nationality and religion terms."
    ethical_considerations: str = ""
    limitations: list[str] = field(default_factory=list)
    evaluation_markdown: str = ""  # shown above the metric table


def _yaml_list(key: str, values: list[str]) -> list[str]:
    return [f"{key}:", *[f"- {v}" for v in values]] if values else []


def _value_table(values: dict[str, object]) -> str:
    if not values:
        return "No results recorded yet: run the deliverables first."
    rows = [
        f"| {key} | {value:.4g} |" if isinstance(value, float) else f"| {key} | {value} |"
        for key, value in values.items()
    ]
    return "\n".join(["| metric | value |", "|---|---|", *rows])


def model_card(card: ModelCard) -> str:
    """The card as Markdown with Hugging Face YAML metadata."""
    meta = ["---", f"license: {card.licence}", "language:", "- en"]
    meta += _yaml_list("tags", card.tags) + _yaml_list("datasets", card.datasets)
    if card.base_model:
        meta.append(f"base_model: {card.base_model}")
    meta.append("---")
    evaluation = f"{card.evaluation_markdown}\n\n" if card.evaluation_markdown else ""
    sections = [
        f"# Model card: {card.name}",
        f"## Model details\n\n{card.details}",
        f"## Intended use\n\n{card.intended_use}\n\n**Out of scope:** {card.out_of_scope_use}",
        f"## Factors\n\n{card.factors}",
        f"## Training data\n\n{card.training_data}",
        f"## Evaluation data\n\n{card.evaluation_data}",
        f"## Metrics and evaluation results\n\n{evaluation}{_value_table(card.metrics)}",
        f"## Bias audit results (quantitative analyses)\n\n{_value_table(card.bias_results)}",
        f"## Ethical considerations\n\n{card.ethical_considerations}",
        "## Caveats and recommendations\n\n" + "\n".join(f"- {x}" for x in card.limitations),
        f"## Licence\n\n{card.licence}",
    ]
    return "\n".join(meta) + "\n\n" + "\n\n".join(sections) + "\n"


def _numbers(record: dict | None) -> dict[str, object]:
    if record is None:
        return {}
    return {
        key: value
        for key, value in record["metrics"].items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


COMMON_LIMITATIONS = [
    "A small model trained on a few thousand sentences or one novel: expect errors; "
    "measure on your own data before use.",
    "Bias benchmarks (CrowS-Pairs, StereoSet, BBQ, WEAT) are US-centric, English-only and "
    "have validity problems (Blodgett et al., 2021); a low score does not show absence of bias.",
]

PROJECT_MODELS = {
    "sentiment": dict(
        details="all-MiniLM-L6-v2 (22.7M parameters) fine-tuned for binary sentiment "
        "(week 3, `bert_fine_tuning`).",
        base_model="sentence-transformers/all-MiniLM-L6-v2",
        intended_use="Teaching: classifying the sentiment of English movie-review sentences.",
        out_of_scope_use="Decisions about people; text outside short English reviews.",
        training_data="VADER movie-review snippets (Hutto & Gilbert, 2014; MIT), "
        "|score| >= 0.5, 80/10/10 split with seed 0.",
        evaluation_data="The held-out 10% test split; counterfactual templates and swapped "
        "test sentences (names, pronouns, nationalities, religions).",
        licence="apache-2.0",
        datasets=["vader-movie-review-snippets"],
        tags=["text-classification", "sentiment", "dl2llm"],
        results=("bert_fine_tuning",),
    ),
    "gpt2": dict(
        details="The project's from-scratch GPT-2 architecture model (week 2, `pretrain_gpt`).",
        base_model="",
        intended_use="Teaching: studying pretraining, sampling and likelihood-based probes.",
        out_of_scope_use="Any generation shown to users; it is a tiny model of one corpus.",
        training_data="Public-domain English text bundled offline (botchan and news samples).",
        evaluation_data="Held-out text of the same corpus; CrowS-Pairs and StereoSet samples.",
        licence="mit",
        datasets=["botchan"],
        tags=["text-generation", "gpt2", "dl2llm"],
        results=("pretrain_gpt",),
    ),
    "smollm2_lora": dict(
        details="SmolLM2-135M-Instruct with the capstone's LoRA adapter (Hu et al., 2021), "
        "trained by `capstone/fine_tuning_pipeline.py` to pick, among five candidate API "
        "entries, the one that answers a question; committed as "
        "`data/capstone_adapter/adapter.safetensors` (fp16) with its `recipe.json`, and merged "
        "into the base weights when served (`deployment_script.py --generator llm`; "
        "`--no-adapter` serves the base).",
        base_model="HuggingFaceTB/SmolLM2-135M-Instruct",
        intended_use="Choosing which retrieved Python-documentation API entry answers a "
        "question, inside the capstone RAG service, where its output is checked against the "
        "evidence.",
        out_of_scope_use="Open-domain chat, answers without retrieved passages, advice about "
        "people, any decision about a person.",
        training_data="Questions written from the first sentence of API entries of the bundled "
        "Python 3.11 documentation, outside the evaluation's test documents (and not the FAQ "
        "or the changelogs), each with the five candidate entries the pipeline retrieves; "
        "target = the gold entry's line. The hand-written questions are never trained on.",
        evaluation_data="The hand-written dev questions: evidence answer, base and tuned model "
        "as served, with a paired bootstrap interval (`fine_tuning_pipeline`); the test split "
        "in `evaluation_metrics`; CrowS-Pairs, StereoSet and BBQ samples "
        "(`bias_audit.py --model smollm2 --adapter ...`).",
        licence="apache-2.0",
        datasets=["python-3.11-docs"],
        tags=["text-generation", "lora", "retrieval-augmented-generation", "dl2llm"],
        results=("fine_tuning_pipeline",),
    ),
    "smollm2": dict(
        details="SmolLM2-135M-Instruct (Hugging Face), used as shipped (dequantized from "
        "Q4_1 GGUF).",
        base_model="HuggingFaceTB/SmolLM2-135M-Instruct",
        intended_use="Teaching: prompting, LoRA, DPO and RAG on a CPU.",
        out_of_scope_use="Factual answers without checking; any high-stakes use.",
        training_data="See the SmolLM2 card (Allal et al., 2025); not trained by this project.",
        evaluation_data="Prompting benchmarks of week 3; CrowS-Pairs, StereoSet and BBQ samples.",
        licence="apache-2.0",
        datasets=[],
        tags=["text-generation", "dl2llm"],
        results=("prompt_engineering",),
    ),
}


def project_model_card(model: str, results_dir: str | Path, evaluation_markdown: str = "") -> str:
    """The card of one of the project's models, filled in from ``results_dir``.

    ``evaluation_markdown`` (e.g. a base-vs-tuned table) goes above the metric table.
    """
    if model not in PROJECT_MODELS:
        raise UsageError(f"unknown model '{model}' (known: {', '.join(PROJECT_MODELS)})")
    spec = dict(PROJECT_MODELS[model])
    metrics: dict[str, object] = {}
    for name in spec.pop("results"):
        metrics |= {f"{name}.{k}": v for k, v in _numbers(load_results(name, results_dir)).items()}
    audit = load_results(f"bias_audit_{model}", results_dir)
    limitations = list(COMMON_LIMITATIONS)
    if audit is not None:
        limitations += [f"{k}: {v}" for k, v in audit["metrics"].get("limitations", {}).items()]
    card = ModelCard(
        name=model,
        metrics=metrics,
        bias_results=_numbers(audit),
        evaluation_markdown=evaluation_markdown,
        ethical_considerations="Audited with `bias_audit`: stereotype preference (CrowS-Pairs, "
        "StereoSet, BBQ) for the language models; counterfactual sensitivity and WEAT for the "
        "classifier. See the bias audit report for intervals and sample sizes.",
        limitations=limitations,
        **spec,
    )
    return model_card(card)


def write_model_card(model: str, results_dir: str | Path, out: str | Path) -> Path:
    """Write :func:`project_model_card` to ``out`` atomically."""
    return atomic_write_text(Path(out), project_model_card(model, results_dir))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="write a project model's model card")
    parser.add_argument("model", choices=sorted(PROJECT_MODELS))
    parser.add_argument("--results", type=Path, default=paths.results_dir())
    parser.add_argument(
        "--out", type=Path, default=None, help="default: <results>/MODEL_CARD_<model>.md"
    )
    args = parser.parse_args(argv)
    out = args.out or args.results / f"MODEL_CARD_{args.model}.md"
    print(write_model_card(args.model, args.results, out))
    return 0


if __name__ == "__main__":
    from dl2llm.runtime import run_main

    run_main(main)
