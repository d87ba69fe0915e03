"""The learner's workspace: starter files, and the record of the last check of each.

Starter files go to ``<workspace>/<name>.py`` (``exercises/`` by default, git-ignored).
Each ``dl2llm exercise check`` records its outcome and the file's SHA-256 in
``<workspace>/.checks.json``, so ``dl2llm exercise list`` and ``dl2llm progress``
can say "passed" without running the checks again, and notice an edit since.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from dl2llm.exercises.framework import CaseResult, Exercise
from dl2llm.io import atomic_write_json, atomic_write_text, sha256_file
from dl2llm.runtime import UsageError

DEFAULT_WORKSPACE = Path("exercises")
RECORD = ".checks.json"
NOT_STARTED, STARTED, PASSED, FAILED, EDITED = (
    "not started",
    "started",
    "passed",
    "failed",
    "edited since last check",
)


def exercise_path(exercise: Exercise, workspace: Path) -> Path:
    """Where the learner's file for ``exercise`` lives."""
    return Path(workspace) / exercise.file_name


def start(exercise: Exercise, workspace: Path, force: bool = False) -> Path:
    """Write the starter file; refuses to overwrite the learner's work unless ``force``."""
    path = exercise_path(exercise, workspace)
    if path.exists() and not force:
        raise UsageError(f"{path} already exists (use --force to start over)")
    return atomic_write_text(path, exercise.template)


def _load_record(workspace: Path) -> dict:
    path = Path(workspace) / RECORD
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def record_check(
    exercise: Exercise, workspace: Path, checked: Path, results: list[CaseResult]
) -> Path:
    """Remember the outcome of a check of the workspace file."""
    record = _load_record(workspace)
    record[exercise.name] = {
        "passed": sum(r.passed for r in results),
        "cases": len(results),
        "sha256": sha256_file(checked),
        "checked_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return atomic_write_json(Path(workspace) / RECORD, record)


def status(exercise: Exercise, workspace: Path) -> str:
    """``not started``, ``started``, ``passed``, ``failed (k/n)`` or ``edited since last check``."""
    path = exercise_path(exercise, workspace)
    if not path.is_file():
        return NOT_STARTED
    last = _load_record(workspace).get(exercise.name)
    if last is None:
        return STARTED
    if last["sha256"] != sha256_file(path):
        return EDITED
    if last["passed"] == last["cases"]:
        return PASSED
    return f"{FAILED} ({last['passed']}/{last['cases']})"
