"""Every ready deliverable runs in quick mode and writes its results JSON."""

from __future__ import annotations

import json

import pytest

from dl2llm import curriculum


@pytest.mark.slow
@pytest.mark.parametrize("deliverable", curriculum.ready_deliverables(), ids=lambda d: d.name)
def test_quick_mode_writes_results(deliverable, tmp_path):
    assert deliverable.file.is_file(), f"{deliverable.path} is registered but missing"
    code = curriculum.run(deliverable, quick=True, out=tmp_path, timeout_s=900)
    assert code == 0
    record = json.loads((tmp_path / f"{deliverable.name}.json").read_text())
    assert record["name"] == deliverable.name
    assert record["mode"] == "quick"
    assert record["seed"] == 0
    for key in deliverable.headline:
        assert key in record["metrics"], f"headline metric {key} missing"
        assert record["metrics"][key] is not None
    for artifact in record["artifacts"]:
        assert (tmp_path / artifact).is_file(), f"artifact {artifact} not written"


def test_every_plan_deliverable_is_registered():
    names = {d.name for d in curriculum.all_deliverables()}
    plan = {
        "attention_demo", "annotated_transformer", "tokenizer_experiments", "embeddings_demo",
        "bert_fine_tuning", "prompt_engineering", "parameter_efficient_tuning",
        "mixed_precision_training", "model_compression", "rl_hf_demo", "inference_optimization",
        "vector_store_demo", "fine_tuning_pipeline", "retrieval_augmented_generation",
        "deployment_script", "evaluation_metrics",
    }  # fmt: skip
    assert plan <= names


def test_registered_paths_match_names():
    for d in curriculum.all_deliverables():
        assert d.file.stem == d.name
        if d.status == curriculum.READY:
            assert d.file.is_file(), d.path
