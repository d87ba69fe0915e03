"""The house rules of the layout, checked on the source: imports go one way."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from dl2llm.paths import REPO_ROOT

SRC = REPO_ROOT / "src" / "dl2llm"


def imported_modules(path: Path) -> set[str]:
    """Top-level names of every module ``path`` imports (``from a.b import c`` -> ``a.b``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_the_model_file_needs_only_torch_and_the_standard_library():
    """As nanoGPT's model.py: training and assets live in dl2llm.pretrain."""
    allowed = {"torch", "transformers", "dl2llm"} | set(sys.stdlib_module_names)
    imported = imported_modules(SRC / "gpt.py")
    assert {name.split(".")[0] for name in imported} <= allowed
    assert {name for name in imported if name.startswith("dl2llm")} == {"dl2llm.errors"}


def test_the_library_imports_no_deliverable_and_no_cli():
    upward = {"weeks", "capstone", "benchmarks"}
    offenders = {
        str(path.relative_to(SRC)): sorted(wrong)
        for path in SRC.rglob("*.py")
        if path.name != "cli.py"
        and (
            wrong := {
                name
                for name in imported_modules(path)
                if name.split(".")[0] in upward or name == "dl2llm.cli"
            }
        )
    }
    assert not offenders


def test_every_figure_is_written_through_save_figure():
    """``dl2llm.plots.save_figure`` is the one place that calls ``savefig`` (atomic writes)."""
    allowed = SRC / "plots.py"
    offenders = sorted(
        str(path.relative_to(REPO_ROOT))
        for folder in ("src", "weeks", "capstone", "benchmarks")
        for pattern in ("*.py", "*.ipynb")
        for path in (REPO_ROOT / folder).rglob(pattern)
        if path != allowed and "savefig(" in path.read_text(encoding="utf-8")
    )
    assert not offenders, f"call dl2llm.plots.save_figure instead of savefig in {offenders}"


def line_counts(paths) -> dict[str, int]:
    return {str(p.relative_to(REPO_ROOT)): len(p.read_text().splitlines()) for p in paths}


def test_library_modules_stay_readable_in_one_sitting():
    """A module holds one concept: past ~450 lines it is two (split it)."""
    long = {path: n for path, n in line_counts(SRC.rglob("*.py")).items() if n > 450}
    assert not long


def test_deliverable_scripts_are_thin():
    """Flags, one call into the library, printed results, ``run.save``: ~120 lines at most."""
    scripts = [
        path
        for folder in ("weeks", "capstone", "benchmarks")
        for path in (REPO_ROOT / folder).rglob("*.py")
    ]
    long = {path: n for path, n in line_counts(scripts).items() if n > 120}
    assert not long
