"""Results: every deliverable writes one JSON file under ``results/``.

A results file records what was measured (``metrics``), how (``config``,
``seed``, ``quick``), with what software (``versions``) and how long it took
(``wall_time_s``) and on what machine, how busy (``machine``: :mod:`dl2llm.hardware`'s
facts, with the 1-minute load at the start and the end). ``dl2llm list``, the README
tables and ``results/SUMMARY.md`` are all built from these files, so a number in the
docs is always a number some run produced.

The full-mode records under ``results/`` are committed: they back the README. A quick
run never overwrites one: when ``<out>/<name>.json`` holds a full-mode record, a quick
run of ``name`` writes to ``<out>/quick/`` instead (:func:`run_output_dir`).
"""

from __future__ import annotations

import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dl2llm import __version__
from dl2llm.hardware import current_load, machine_facts
from dl2llm.io import atomic_write_json

TRACKED_PACKAGES = ("torch", "transformers", "numpy", "scikit-learn", "tensorflow")


def package_versions() -> dict[str, str]:
    """Versions of the packages that change numbers (those installed)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version(), "dl2llm": __version__}
    for name in TRACKED_PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def results_path(out_dir: str | Path, name: str) -> Path:
    """``results/<name>.json`` inside ``out_dir``."""
    return Path(out_dir) / f"{name}.json"


QUICK_SUBDIR = "quick"


START_LOAD_ENV = "DL2LLM_START_LOAD"


def start_machine_facts() -> dict[str, Any]:
    """The machine's facts, with the load the run started under where a runner recorded it.

    :mod:`dl2llm.notebooks` puts the load at the start in ``$DL2LLM_START_LOAD``; without
    it the start load is unknown (``None``), never the current one passed off as the start's.
    """
    facts = machine_facts()
    recorded = os.environ.get(START_LOAD_ENV)
    facts["load_1min"] = float(recorded) if recorded else None
    return facts


def is_full_record(path: Path) -> bool:
    """Does ``path`` hold a full-mode results record?"""
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text()).get("mode") == "full"
    except (json.JSONDecodeError, AttributeError):
        return False


def run_output_dir(out_dir: str | Path, name: str, quick: bool) -> Path:
    """Where a run of ``name`` writes: ``out_dir``, or ``out_dir/quick`` for a quick run
    when ``out_dir`` already holds a full-mode record of ``name`` (kept, never overwritten).
    """
    out_dir = Path(out_dir)
    if quick and is_full_record(results_path(out_dir, name)):
        return out_dir / QUICK_SUBDIR
    return out_dir


def save_results(
    name: str,
    metrics: dict[str, Any],
    *,
    out_dir: str | Path,
    config: dict[str, Any],
    seed: int,
    quick: bool,
    started: float,
    artifacts: list[str] | None = None,
    machine: dict[str, Any] | None = None,
) -> Path:
    """Write ``<out_dir>/<name>.json`` atomically and return its path.

    ``started`` is a ``time.perf_counter()`` reading taken when the run began; ``machine``
    the :func:`~dl2llm.hardware.machine_facts` taken then (default:
    :func:`start_machine_facts`). A quick run goes to :func:`run_output_dir`, so it never
    replaces a full-mode record.
    """
    machine = dict(machine or start_machine_facts())
    machine["load_1min_end"] = current_load()
    record = {
        "name": name,
        "mode": "quick" if quick else "full",
        "metrics": metrics,
        "config": config,
        "seed": seed,
        "wall_time_s": round(time.perf_counter() - started, 2),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": package_versions(),
        "artifacts": artifacts or [],
        "machine": machine,
    }
    return atomic_write_json(results_path(run_output_dir(out_dir, name, quick), name), record)


def format_value(value: Any) -> str:
    """A metric for a terminal: floats to 4 significant digits, an interval as mean [low, high]."""
    if isinstance(value, dict) and {"mean", "low", "high"} <= set(value):
        return f"{value['mean']:.4g} [{value['low']:.4g}, {value['high']:.4g}]"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def print_metrics(metrics: dict[str, Any], keys: list[str] | tuple[str, ...] | None = None) -> None:
    """Print ``metrics`` (or just ``keys``) as an aligned two-column table.

    Nested records (lists, dicts other than intervals) are left to the results JSON.
    """
    rows = {
        key: metrics[key]
        for key in (keys or metrics)
        if not isinstance(metrics[key], list)
        and (not isinstance(metrics[key], dict) or "mean" in metrics[key])
    }
    width = max([len("metric"), *map(len, rows)])
    print(f"\n{'metric':<{width}}  value")
    for key, value in rows.items():
        print(f"{key:<{width}}  {format_value(value)}")


def load_results(name: str, out_dir: str | Path) -> dict[str, Any] | None:
    """The last results record of ``name`` in ``out_dir`` (``None`` if never run)."""
    path = results_path(out_dir, name)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
