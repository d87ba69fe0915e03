"""The week 5 bias audit behind ``weeks/week5_alignment_deployment/bias_audit.py``.

Each audited model gets its own record: :func:`audit_and_save` runs
:func:`~dl2llm.responsible.audit.run_audit`, writes the plots and the Markdown report,
and saves ``bias_audit_<model>.json``. The run's summary, ``bias_audit.json``, gathers
the headline numbers of this run and of the other models' earlier audits in the same
folder (:func:`earlier_audits`); :func:`write_model_cards` writes the model cards of the
audited project models.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from dl2llm.errors import UsageError
from dl2llm.io import atomic_write_text
from dl2llm.responsible.audit import ADAPTED, MODELS, headline, run_audit
from dl2llm.responsible.cards import write_model_card
from dl2llm.responsible.report import markdown_report, plot_audit
from dl2llm.results import load_results, save_results

NAME = "bias_audit"


def models_to_audit(model: str, adapter: Path | None) -> tuple[str, ...]:
    """The models that ``--model`` names (``"all"``: every one of :data:`MODELS`).

    Raises :class:`~dl2llm.errors.UsageError` for an unknown model, or an ``adapter``
    that is missing or not paired with SmolLM2.
    """
    if model != "all" and model not in MODELS:
        raise UsageError(f"--model: unknown model '{model}' (use {', '.join(MODELS)} or all)")
    if adapter is not None and model != "smollm2":
        raise UsageError("--adapter: an adapter is audited on SmolLM2 only (add --model smollm2)")
    if adapter is not None and not adapter.is_file():
        raise UsageError(f"--adapter: file not found: {adapter}")
    return MODELS if model == "all" else (model,)


def audit_and_save(
    audited: str,
    quick: bool,
    seed: int,
    adapter: Path | None,
    out_dir: Path,
    config: dict[str, Any],
    every_pair: bool = False,
) -> tuple[str, dict[str, Any], list[str]]:
    """Audit one model; write its plots, report and ``bias_audit_<model>.json``.

    ``adapter`` (SmolLM2 only) is merged in first, and the audit is saved as
    :data:`~dl2llm.responsible.audit.ADAPTED`; ``every_pair`` scores every
    CrowS-Pairs and StereoSet row. Returns the saved model name, its
    headline numbers and the files written (relative to ``out_dir``).
    """
    started = time.perf_counter()
    # LLM scoring is one sentence at a time (faster on one thread); the classifier
    # is fine-tuned and probed in batches of 32-64.
    torch.set_num_threads(2 if audited == "sentiment" else 1)
    results = run_audit(audited, quick, seed, adapter=adapter, every_pair=every_pair)
    model = ADAPTED if adapter is not None else audited
    plots = plot_audit(model, results, out_dir)
    report = f"{NAME}_{model}.md"
    atomic_write_text(out_dir / report, markdown_report(model, results, plots, quick))
    numbers = headline(model, results)
    save_results(
        f"{NAME}_{model}",
        {**numbers, "details": results, "limitations": results["limitations"]},
        out_dir=out_dir,
        config=config,
        seed=seed,
        quick=quick,
        started=started,
        artifacts=[report, *plots],
    )
    return model, numbers, [f"{NAME}_{model}.json", report, *plots]


def earlier_audits(out_dir: Path, quick: bool, skip: Iterable[str]) -> tuple[dict, float]:
    """The other models' audits already in ``out_dir`` (same mode), except those in ``skip``.

    Returns their headline numbers and the seconds they took together.
    """
    numbers, seconds = {}, 0.0
    for model in (*MODELS, ADAPTED):
        record = load_results(f"{NAME}_{model}", out_dir)
        if model in skip or record is None or record["mode"] != ("quick" if quick else "full"):
            continue
        numbers |= {
            k: v for k, v in record["metrics"].items() if k not in ("details", "limitations")
        }
        seconds += record["wall_time_s"]
    return numbers, seconds


def write_model_cards(out_dir: Path, audited: Iterable[str], adapted: bool) -> list[str]:
    """Model cards (``MODEL_CARD_<model>.md``) of the sentiment classifier and the adapted LLM.

    Each is written only when this run audited it; returns the file names.
    """
    saved = {*audited, ADAPTED} if adapted else set(audited)
    carded = [model for model in ("sentiment", ADAPTED) if model in saved]
    return [
        write_model_card(model, out_dir, out_dir / f"MODEL_CARD_{model}.md").name
        for model in carded
    ]
