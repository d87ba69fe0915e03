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
    evaluation = {"questions": 174, "test_questions": 20, "refusal_rate": 0.9667}
    evaluation |= {"hybrid_ndcg@10": 0.9123, "rag_f1": 0.3141, "llm_only_f1": 0.1111}
    evaluation |= {"rag_tuned_f1": 0.4, "tuned_minus_base_f1": 0.0859}
    evaluation |= {"tuned_minus_base_f1_ci": [0.01, 0.16]}
    _save("evaluation_metrics", evaluation, tmp_path)
    tuning = {
        "train_examples": 40, "steps": 5, "world_size": 1, "train_minutes": 12.5,
        "train_loss_first": 1.5, "train_loss_last": 0.75, "base_f1": 0.2, "tuned_f1": 0.3,
        "f1_gain": {"mean": 0.1, "low": 0.02, "high": 0.19, "n": 20},
    }  # fmt: skip
    _save("fine_tuning_pipeline", tuning, tmp_path)
    report_path, card_path = write_report(tmp_path, tmp_path / "capstone")
    report, card = report_path.read_text(), card_path.read_text()
    assert "| hybrid | n/a | n/a | n/a | n/a | 0.912 |" in report
    assert "| LLM + retrieval | n/a | 0.314 |" in report and "0.967" in report
    assert "| LoRA-tuned LLM + retrieval | n/a | 0.400 |" in report
    assert "(paired per question, mean [95% bootstrap CI]): f1 0.086 [0.010, 0.160]." in report
    assert "| f1 | 0.200 | 0.300 | 0.100 [0.020, 0.190] |" in report
    assert "**Not run.**" in report and "```mermaid" in report
    assert card.startswith("---\nlicense: apache-2.0\n")
    assert "LoRA rank 8" in card and "5 steps over 40 examples" in card
    assert "| f1 | 0.200 | 0.300 | 0.100 [0.020, 0.190] |" in card
    assert "| fine_tuning_pipeline.train_examples | 40 |" in card


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
    report_path, card_path = write_report(tmp_path, tmp_path)
    report = report_path.read_text()
    assert "| crows_stereotype_score | 0.450 | 0.550 |" in report
    assert "not audited" not in report


def test_missing_results_are_named(tmp_path):
    report_path, _ = write_report(tmp_path, tmp_path)
    assert "`results/evaluation_metrics.json` is missing" in report_path.read_text()
