"""REPORT.md and MODEL_CARD.md are rendered from the results JSONs."""

from __future__ import annotations

import time

from dl2llm.evaluation.report import write_report
from dl2llm.results import save_results


def _save(name: str, metrics: dict, out) -> None:
    save_results(
        name,
        metrics,
        out_dir=out,
        config={"lora_rank": 8, "lr": 3e-4, "global_batch": 4},
        seed=0,
        quick=False,
        started=time.perf_counter(),
    )


def test_report_and_model_card_carry_the_numbers(tmp_path):
    evaluation = {"answerable": 80, "unanswerable": 40, "faq_questions": 44}
    evaluation |= {
        "evidence_key_term_accuracy": 0.8125,
        "evidence_key_term_accuracy_ci": [0.7, 0.9],
    }
    evaluation |= {"evidence_junk_rate": 0.0, "evidence_p50_ms": 412.3, "evidence_p95_ms": 3456.0}
    evaluation |= {"previous_key_term_accuracy": 0.25, "previous_p50_ms": 4100.0}
    evaluation |= {"faq_evidence_f1": 0.3141, "faq_evidence_p50_ms": 400.0}
    evaluation |= {"retrieval_hybrid_recall@5": 0.95, "retrieval_hybrid_p50_ms": 14.2}
    evaluation |= {"machine": {"cpu": "Test CPU", "cores": 2, "features": [], "load_1min": 0.1}}
    _save("evaluation_metrics", evaluation, tmp_path)
    tuning = {
        "train_examples": 40, "steps": 5, "world_size": 1, "train_minutes": 12.5,
        "train_loss_first": 1.5, "train_loss_last": 0.75, "excluded_test_documents": 44,
        "data_sha256": "ab" * 32, "dev_evidence_key_term_accuracy": 0.6,
        "dev_evidence_llm_key_term_accuracy": 0.5, "dev_evidence_llm_tuned_key_term_accuracy": 0.7,
        "dev_evidence_llm_tuned_p50_ms": 900.0, "dev_evidence_llm_tuned_phrasings_passed": 0.95,
        "dev_key_term_gain": {"mean": 0.2, "low": 0.1, "high": 0.3, "n": 20},
        "tuned_beats_base": True, "served": "evidence",
    }  # fmt: skip
    _save("fine_tuning_pipeline", tuning, tmp_path)
    report_path, card_path = write_report(tmp_path, tmp_path / "capstone", served_dir=tmp_path)
    report, card = report_path.read_text(), card_path.read_text()
    assert "`make run` serves **evidence answer, no LLM** (`--generator evidence`" in report
    assert "| key_term_accuracy | >= 0.85 | 0.812 [0.700, 0.900] | **missed** by 0.037 |" in report
    assert "| junk_rate | <= 0 | 0.000 | met |" in report
    assert "| p50_ms | <= 1500 | 412 | met |" in report
    assert "| p95_ms | <= 3000 | 3456 | **missed** by 456.000 |" in report
    assert "| **evidence answer, no LLM (served)** | 0.812 [0.700, 0.900] | n/a |" in report
    assert "| previous: SmolLM2 on 80-word passages | 0.250 |" in report
    assert "| **evidence answer, no LLM (served)** | 0.314 | n/a |" in report
    assert "| hybrid | n/a | 0.950 | n/a | n/a | 14 |" in report
    assert "80 answerable questions" in report and "2-core Test CPU (no AVX2)" in report
    assert "**Not run.**" in report and "```mermaid" in report
    assert card.startswith("---\nlicense: apache-2.0\n")
    assert "LoRA rank 8" in card and "5 steps over 40 examples" in card
    row = "| SmolLM2 + LoRA adapter choosing the entry (checked) | 0.700 | n/a | n/a | n/a | n/a |"
    assert row + " 900 | n/a | 0.950 | n/a |" in card
    assert "paired per question: 0.200 [0.100, 0.300]. The adapter **beats**" in card
    assert "outside the 44 test documents" in report and "SHA-256 `abababababab`" in report
    assert "| fine_tuning_pipeline.train_examples | 40 |" in card


def test_an_older_evaluation_record_asks_for_a_new_run(tmp_path):
    _save("evaluation_metrics", {"questions": 174, "rag_f1": 0.3}, tmp_path)
    report_path, _ = write_report(tmp_path, tmp_path)
    assert "is from an older run" in report_path.read_text()


def _audit(score: float) -> dict:
    overall = {"overall": {"stereotype_score": {"value": score}}}
    return {"details": {"crows_pairs": overall, "stereoset": overall}}


def test_bias_section_puts_base_and_tuned_side_by_side(tmp_path):
    _save("bias_audit_smollm2", _audit(0.45), tmp_path)
    report_path, _ = write_report(tmp_path, tmp_path)
    report = report_path.read_text()
    assert "| crows_stereotype_score | 0.450 | n/a |" in report
    assert "**The tuned model was not audited**" in report
    _save("bias_audit_smollm2_lora", _audit(0.55), tmp_path)
    report_path, *_ = write_report(tmp_path, tmp_path)
    report = report_path.read_text()
    assert "| crows_stereotype_score | 0.450 | 0.550 |" in report
    assert "not audited" not in report


def test_missing_results_are_named(tmp_path):
    report_path, _ = write_report(tmp_path, tmp_path)
    assert "`results/evaluation_metrics.json` is missing" in report_path.read_text()


def test_a_missing_deliverable_keeps_the_previous_reports_numbers_marked(tmp_path):
    old = "# old\n\n## Fine-tuning: base vs tuned\n\n| f1 | 0.444 | 0.687 |\n\n## Bias audit\n\n"
    (tmp_path / "REPORT.md").write_text(old + "**Not run.** nothing\n")
    report_path, *_ = write_report(tmp_path, tmp_path)
    report = report_path.read_text()
    assert "| f1 | 0.444 | 0.687 |" in report
    assert report.count("*Carried over from the previous report") == 1  # bias had no numbers
    report_path, *_ = write_report(tmp_path, tmp_path)  # regenerating does not stack notes
    assert report_path.read_text().count("Carried over") == 1
