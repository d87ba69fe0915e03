"""Exercises: the library passes every check, an untouched starter fails every one.

Also: a correct solution written independently passes, a buggy one fails with a
message that names the case and shows expected vs got, and the CLI behaves.
"""

from __future__ import annotations

import ast
import importlib

import pytest

from dl2llm.cli import main
from dl2llm.exercises import EXERCISES, get
from dl2llm.exercises.framework import check_file, check_namespace, compare
from dl2llm.exercises.workspace import exercise_path, start, status

REQUIRED = {
    "mlp_backprop",
    "adam_step",
    "scaled_dot_product_attention",
    "multi_head_attention",
    "gpt_block",
    "byte_bpe",
    "wordpiece_encoding",
    "skipgram_loss",
    "lora_layer",
    "dpo_loss",
    "reciprocal_rank_fusion",
}

RRF_SOLUTION = """
def reciprocal_rank_fusion(rankings, k=60):
    scores = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])
"""

SKIPGRAM_SOLUTION = """
import torch.nn.functional as F

def sgns_loss(centre, context, negatives):
    positive = (centre * context).sum(-1)
    negative = (negatives @ centre.unsqueeze(-1)).squeeze(-1)
    return -F.logsigmoid(positive) - F.logsigmoid(-negative).sum(-1)
"""

UNSTABLE_SKIPGRAM = """
import torch

def sgns_loss(centre, context, negatives):
    positive = (centre * context).sum(-1)
    negative = (negatives @ centre.unsqueeze(-1)).squeeze(-1)
    return -torch.log(torch.sigmoid(positive)) - torch.log(torch.sigmoid(-negative)).sum(-1)
"""


def resolve(dotted: str):
    """Import ``a.b.c.Name.attr`` by trying the longest importable module prefix."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(dotted)


def test_every_required_exercise_is_registered():
    assert set(EXERCISES) >= REQUIRED
    weeks = [exercise.week for exercise in EXERCISES.values()]
    assert weeks == sorted(weeks)  # course order


@pytest.mark.parametrize("name", list(EXERCISES))
def test_library_passes_and_untouched_starter_fails_every_check(name, tmp_path):
    exercise = EXERCISES[name]
    assert all(callable(resolve(target)) for target in exercise.mirrors)
    library = check_namespace(exercise, exercise.library())
    assert len(library) >= 4
    assert [r.message for r in library if not r.passed] == []

    starter = check_file(exercise, start(exercise, tmp_path))
    assert len(starter) == len(library)
    assert not any(r.passed for r in starter)
    assert all("NotImplementedError" in r.message for r in starter)


@pytest.mark.parametrize("name", list(EXERCISES))
def test_starter_has_signatures_and_docstrings_but_no_bodies(name):
    tree = ast.parse(EXERCISES[name].template)
    assert ast.get_docstring(tree) and f"dl2llm exercise check {name}" in ast.get_docstring(tree)
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
    to_write = [
        f
        for f in functions
        if f.name != "__init__" or "raise NotImplementedError" in (ast.unparse(f))
    ]
    assert to_write
    for function in to_write:
        assert ast.get_docstring(function), function.name
        assert isinstance(function.body[-1], ast.Raise), function.name
        assert "NotImplementedError" in ast.unparse(function.body[-1])


def test_independent_correct_solutions_pass(tmp_path):
    for name, source in [
        ("reciprocal_rank_fusion", RRF_SOLUTION),
        ("skipgram_loss", SKIPGRAM_SOLUTION),
    ]:
        path = tmp_path / f"{name}.py"
        path.write_text(source)
        assert all(r.passed for r in check_file(get(name), path)), name


def test_buggy_solutions_fail_with_case_expected_and_got(tmp_path):
    path = tmp_path / "rrf.py"
    path.write_text(RRF_SOLUTION.replace("start=1", "start=0"))  # ranks from 0: off by one
    results = check_file(get("reciprocal_rank_fusion"), path)
    first = results[0]
    assert first.name == "two lists, k=60" and not first.passed
    assert first.message == "[0][1]: got 0.033060109, expected 0.032522475 (atol=1e-12, rtol=1e-12)"
    assert results[-1].passed  # no lists: nothing to get wrong

    unstable = tmp_path / "sgns.py"
    unstable.write_text(UNSTABLE_SKIPGRAM)
    verdicts = {r.name: r for r in check_file(get("skipgram_loss"), unstable)}
    assert [n for n, r in verdicts.items() if not r.passed] == [
        "large scores (vectors x 20): stable log-sigmoid: loss and gradients vs "
        "binary_cross_entropy_with_logits"
    ]
    assert "values differ" in next(r.message for r in verdicts.values() if not r.passed)


def test_compare_reports_shapes_lengths_and_types():
    import numpy as np

    assert (
        compare(np.zeros((2, 3)), np.zeros((3, 2)), 1e-6, 0)
        == "shape (2, 3), expected shape (3, 2)"
    )
    assert compare([1, 2], [1, 2, 3], 0, 0).startswith("got 2 items, expected 3")
    assert compare(None, 1.0, 0, 0) == "got None, expected the number 1"
    assert compare("x", 1.0, 0, 0) == "got 'x', expected 1.0"
    assert compare((1.0, np.ones(2)), (1.0, np.ones(2)), 0, 0) == ""


def test_cli_start_check_list(tmp_path, capsys):
    workspace = tmp_path / "exercises"
    exercise = get("reciprocal_rank_fusion")
    assert main(["exercise", "start", exercise.name, "--dir", str(workspace)]) == 0
    assert exercise_path(exercise, workspace).read_text() == exercise.template
    assert main(["exercise", "start", exercise.name, "--dir", str(workspace)]) == 2
    assert "already exists (use --force to start over)" in capsys.readouterr().err

    assert main(["exercise", "check", exercise.name, "--dir", str(workspace)]) == 1
    out = capsys.readouterr().out
    assert "  FAIL  two lists, k=60\n        not implemented yet" in out and "0/5 cases pass" in out
    assert status(exercise, workspace) == "failed (0/5)"

    exercise_path(exercise, workspace).write_text(RRF_SOLUTION)
    assert status(exercise, workspace) == "edited since last check"
    assert main(["exercise", "check", exercise.name, "--dir", str(workspace)]) == 0
    assert "5/5 cases pass" in capsys.readouterr().out
    assert main(["exercise", "list", "--dir", str(workspace)]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert any(
        line.split()[:4] == ["reciprocal_rank_fusion", "week", "6", "passed"] for line in listing
    )
    assert any(
        line.split()[:5] == ["mlp_backprop", "week", "1", "not", "started"] for line in listing
    )


def test_cli_library_check_and_syntax_errors(tmp_path, capsys):
    assert main(["exercise", "check", "reciprocal_rank_fusion", "--library"]) == 0
    assert "checking the library (5 cases)" in capsys.readouterr().out
    broken = tmp_path / "broken.py"
    broken.write_text("def reciprocal_rank_fusion(:\n")
    assert main(["exercise", "check", "reciprocal_rank_fusion", "--file", str(broken)]) == 1
    assert "the file does not import: SyntaxError" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["exercise", "start", "backprop"], "unknown exercise 'backprop' (known: mlp_backprop"),
        (["exercise", "check"], "`dl2llm exercise check` needs an exercise name"),
        (
            ["exercise", "check", "gpt_block", "--file", "/nonexistent/x.py"],
            "no file /nonexistent/x.py",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
