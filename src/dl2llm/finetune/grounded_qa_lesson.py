"""The capstone's fine-tuning pipeline: data, LoRA training, the dev comparison, publishing.

The steps of ``capstone/fine_tuning_pipeline.py`` (:func:`run_pipeline`):

1. training examples from the API entries of every document outside the
   evaluation's **test** split, each run through the real retrieval and evidence
   selection (:mod:`dl2llm.finetune.grounded_qa`), with their SHA-256;
2. LoRA training of SmolLM2-135M-Instruct (or a tiny random Llama) on them,
   checkpointed under ``<out>/checkpoints/`` and resumed from there, on one
   process or data-parallel under ``torchrun`` (rank 0 keeps the results);
3. the saved adapter measured on the hand-written **dev** questions as the service
   runs it, next to the evidence answer and the base model
   (:func:`dl2llm.evaluation.compare.compare_on_dev`), and the served system chosen;
4. a full run publishes the adapter (fp16) and ``recipe.json`` where the service
   reads them (:data:`dl2llm.rag.SERVED_MODEL_DIR`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dl2llm.evaluation import harness
from dl2llm.evaluation.compare import DEV_CHOICES, choose_served, compare_on_dev
from dl2llm.evaluation.questions import answerable, of_split
from dl2llm.evaluation.systems import NEVER, build_system, questions_hash
from dl2llm.finetune import grounded_qa
from dl2llm.finetune.lora import save_lora
from dl2llm.io import atomic_write_json
from dl2llm.models import load_llm
from dl2llm.paths import REPO_ROOT
from dl2llm.plots import plot_curves
from dl2llm.rag import Index
from dl2llm.rag.encoder import Encoder
from dl2llm.rag.generate import use_one_thread

NAME = "fine_tuning_pipeline"
ADAPTER = f"{NAME}_adapter.safetensors"
TRAIN_QUESTIONS = 480  # 60 steps of 8, about 13 minutes on 2 cores
QUICK_DOCUMENTS = ("library/itertools.rst", "library/json.rst", "tutorial/errors.rst")  # dev


@dataclass
class PipelineConfig:
    """The pipeline's settings: the script's flags (``--out`` aside), in their order."""

    quick: bool
    seed: int
    device: str
    train_questions: int
    epochs: int
    global_batch: int
    lr: float
    lora_rank: int
    max_length: int
    train_threads: int  # in all processes together
    dev_limit: int | None  # dev questions cap
    max_new_tokens: int
    data_dir: Path | None  # index folder (None: the cache)
    publish_dir: Path  # where a full run publishes the served adapter and recipe
    tiny_model: bool  # a random 2-layer Llama instead of SmolLM2 (tests)
    no_eval: bool  # stop after saving the adapter

    @classmethod
    def from_flags(cls, flags: dict[str, Any]) -> PipelineConfig:
        """The parsed flags; ``--quick`` overrides the sizes (4 questions, two steps)."""
        config = cls(**{k: v for k, v in flags.items() if k != "out"})
        if config.quick:
            config.train_questions, config.global_batch = 4, 2
            config.dev_limit, config.max_new_tokens = 2, 24
        return config

    def as_json(self) -> dict[str, Any]:
        """The settings as JSON; a path inside the repository is written relative to it."""

        def plain(value: Any) -> Any:
            if not isinstance(value, Path):
                return value
            resolved = value.resolve()
            inside = resolved.is_relative_to(REPO_ROOT)
            return str(resolved.relative_to(REPO_ROOT) if inside else value)

        return {k: plain(v) for k, v in asdict(self).items()}


def run_pipeline(config: PipelineConfig, out: Path) -> tuple[dict[str, Any], list[str]] | None:
    """Train, save ``<out>/`` :data:`ADAPTER`, measure on dev, publish (a full run).

    Returns ``(metrics, artifacts)`` on rank 0 and ``None`` on the other DDP ranks
    (they only train and save the adapter).
    """
    use_one_thread()
    rank, world_size = grounded_qa.world()
    encoder = Encoder(onnx=True)
    index = open_index(encoder, config)
    examples, excluded = training_examples(index, encoder, config)
    model, tokenizer = grounded_qa.tiny_llama(config.seed) if config.tiny_model else load_llm()
    train_config = grounded_qa.QAFineTuneConfig(
        epochs=config.epochs,
        global_batch=config.global_batch,
        lr=config.lr,
        rank=config.lora_rank,
        max_length=config.max_length,
        seed=config.seed,
    )
    checkpoint = out / "checkpoints" / f"{NAME}{'_tiny' if config.tiny_model else ''}.pt"
    torch.set_num_threads(max(1, config.train_threads // world_size))
    training = grounded_qa.train_lora(model, tokenizer, examples, train_config, checkpoint)
    use_one_thread()
    grounded_qa.save_adapter(model, out / ADAPTER)
    if rank != 0:
        return None
    metrics = {
        "train_examples": len(examples),
        "excluded_test_documents": excluded,
        "data_sha256": examples_hash(examples),
        "steps": training["steps"],
        "world_size": world_size,
        "train_loss_first": training["losses"][0],
        "train_loss_last": training["losses"][-1],
        "train_minutes": round(training["seconds"] / 60, 2),
    }
    artifacts = [ADAPTER, f"{NAME}_loss.png"]
    plot_curves(
        {"train loss": training["losses"]}, "LoRA fine-tuning", "loss", out / artifacts[1], "step"
    )
    if not config.no_eval:  # the evaluation serves the saved adapter, as the deployment does
        dev = compare_on_dev(index, encoder, out / ADAPTER, config.dev_limit, config.max_new_tokens)
        metrics |= flat_dev_metrics(dev)
        if not config.quick:
            publish(model, config, metrics, dev)
    return metrics, artifacts


def open_index(encoder: Encoder, config: PipelineConfig) -> Index:
    """The full index, or in quick mode one of three dev documents (no test document)."""
    if not config.quick:
        return harness.open_index(encoder, False, config.data_dir)
    return harness.open_index(encoder, True, documents=QUICK_DOCUMENTS)


def training_examples(
    index: Index, encoder: Encoder, config: PipelineConfig
) -> tuple[list[grounded_qa.QAExample], int]:
    """Examples from API entries outside the test documents, and how many were excluded."""
    test_documents = {d for q in of_split(answerable(), "test") for d in q.gold_docs}
    questions = grounded_qa.entry_questions(
        index, test_documents, config.train_questions, config.seed
    )
    pipeline = build_system("evidence", index, encoder, thresholds=(NEVER, NEVER))
    return grounded_qa.build_examples(pipeline, questions, config.seed), len(test_documents)


def examples_hash(examples: Sequence[grounded_qa.QAExample]) -> str:
    """SHA-256 of the training data (questions, candidate ids, answers)."""
    rows = [
        [e.question, [(c.hit.doc_id, c.hit.anchor, c.sentence) for c in e.candidates], e.answer]
        for e in examples
    ]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def flat_dev_metrics(dev: dict[str, Any]) -> dict[str, Any]:
    """``dev_<system>_<metric>`` for the results file, the gain and the choice."""
    flat = {
        f"dev_{name}_{metric}": value for name in DEV_CHOICES for metric, value in dev[name].items()
    }
    tuned, base = dev["evidence_llm_tuned"], dev["evidence_llm"]
    flat["dev_key_term_gain"] = dev["key_term_gain"]
    flat["tuned_beats_base"] = beats(tuned, base)
    flat["served"] = choose_served(dev)
    return flat


def beats(tuned: dict[str, float], base: dict[str, float]) -> bool:
    """Higher dev key-term accuracy, no more junk, no less faithful."""
    return (
        tuned["key_term_accuracy"] > base["key_term_accuracy"]
        and tuned["junk_rate"] <= base["junk_rate"]
        and tuned["faithfulness"] >= base["faithfulness"]
    )


def publish(
    model: nn.Module, config: PipelineConfig, metrics: dict[str, Any], dev: dict[str, Any]
) -> None:
    """The trained model's adapter (fp16) and its recipe, where
    :func:`dl2llm.rag.default_adapter` looks."""
    folder = Path(config.publish_dir)
    save_lora(model, folder / "adapter.safetensors", dtype=torch.float16)
    recipe = {
        "what": "LoRA adapter for SmolLM2-135M-Instruct: pick the API entry that answers",
        "made_by": "python capstone/fine_tuning_pipeline.py (make curriculum)",
        "settings": config.as_json(),
        "data_sha256": metrics["data_sha256"],
        "train_examples": metrics["train_examples"],
        "train_loss_first": metrics["train_loss_first"],
        "train_loss_last": metrics["train_loss_last"],
        "questions_sha256": questions_hash(),
        "dev": dev,
        "tuned_beats_base": metrics["tuned_beats_base"],
        "served": metrics["served"],
    }
    atomic_write_json(folder / "recipe.json", recipe)
    print(f"published {folder}: served = {recipe['served']}", flush=True)
