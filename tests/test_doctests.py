"""The worked examples in the docstrings of the answer checks and the evaluation are true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = (
    "dl2llm.hardware",
    "dl2llm.efficiency.precision_bench",
    "dl2llm.alignment.rlhf_frontier",
    "dl2llm.prompting",
    "dl2llm.rag.checks",
    "dl2llm.rag.choice",
    "dl2llm.rag.evidence",
    "dl2llm.rag.generate",
    "dl2llm.evaluation.judge",
    "dl2llm.evaluation.questions",
    "dl2llm.evaluation.report_sections",
    "dl2llm.evaluation.systems",
    "dl2llm.responsible.fairness",
    "dl2llm.responsible.pairing_experiment",
    "dl2llm.responsible.stats",
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
