"""Evaluating the capstone's RAG system (its fine-tuning: :mod:`dl2llm.finetune.grounded_qa`).

- :mod:`~dl2llm.evaluation.metrics` -- recall@k, MRR, nDCG, SQuAD EM/F1,
  embedding similarity, groundedness, citation accuracy, latency, bootstrap intervals;
- :mod:`~dl2llm.evaluation.dataset` -- the FAQ evaluation set with its dev/test split
  and off-topic questions;
- :mod:`~dl2llm.evaluation.harness` -- the metrics run over retrievers and generators;
- :mod:`~dl2llm.evaluation.report` -- ``capstone/REPORT.md`` and the model card from results.
"""
