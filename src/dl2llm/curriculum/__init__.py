"""The curriculum registry: the single source of truth for weeks and deliverables.

The study plan (``../shared/STUDY_PLAN.md``) has five weeks and a capstone. Each
week lists topics, learning objectives and *deliverables*: runnable scripts and
notebooks whose name is their file's stem (``attention_demo``,
``annotated_transformer``). Everything that lists, runs or documents the course
(``dl2llm list``, ``dl2llm run``, ``make curriculum``, ``dl2llm plan``,
``dl2llm progress``, the README's week map, the CI test that runs every
deliverable in quick mode) reads this module.

One :class:`Deliverable` entry holds everything about a deliverable: its file,
what it measures, its estimated learner hours and its headline metrics with the
range a full run should give (:class:`Metric`). A week's recommended readings
live in ``readings.toml`` next to this module, keyed by :attr:`Week.key`. The
capstone is the :class:`Week` with ``capstone=True``. Adding a week is adding one
``Week(...)`` entry and its readings (``CONTRIBUTING.md``, "How to add a week").

A deliverable is ``ready`` once it is implemented and tested; ``planned`` ones
are shown in the map but not run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from dl2llm import paths
from dl2llm.curriculum.records import (
    PLANNED,
    READY,
    Deliverable,
    Metric,
    Resource,
    Week,
    load_readings,
)
from dl2llm.curriculum.weeks import WEEKS
from dl2llm.results import format_value, load_results

READINGS = Path(__file__).with_name("readings.toml")

__all__ = [
    "PLANNED",
    "READINGS",
    "READY",
    "WEEKS",
    "Deliverable",
    "Metric",
    "Resource",
    "UnknownDeliverable",
    "Week",
    "all_deliverables",
    "get",
    "headline",
    "load_readings",
    "readme_map",
    "ready_deliverables",
    "resources_of",
    "results_table",
    "run",
    "week_of",
]


class UnknownDeliverable(KeyError):
    """No deliverable has that name."""

    def __str__(self) -> str:
        return self.args[0]


def all_deliverables() -> list[Deliverable]:
    """Every deliverable, in course order."""
    return [d for week in WEEKS for d in week.deliverables]


def ready_deliverables() -> list[Deliverable]:
    """The deliverables that are implemented and tested."""
    return [d for d in all_deliverables() if d.status == READY]


def week_of(deliverable: Deliverable) -> Week:
    """The week a deliverable belongs to."""
    return next(week for week in WEEKS if deliverable in week.deliverables)


def get(name: str) -> Deliverable:
    """Look a deliverable up by name (its file's stem, with or without extension)."""
    stem = Path(name).stem
    for deliverable in all_deliverables():
        if deliverable.name == stem:
            return deliverable
    names = ", ".join(d.name for d in all_deliverables())
    raise UnknownDeliverable(f"unknown deliverable '{name}' (known: {names})")


def run(
    deliverable: Deliverable,
    quick: bool = False,
    out: Path | None = None,
    extra_args: list[str] | None = None,
    timeout_s: int | None = None,
) -> int:
    """Run one deliverable in a fresh process and return its exit status.

    Scripts run as ``python <path> [--quick] --out <out> ...``; notebooks are
    executed with ``nbclient`` (see :mod:`dl2llm.notebooks`) with
    ``DL2LLM_QUICK`` and ``DL2LLM_OUT`` in the environment.
    """
    out = Path(out or paths.results_dir())
    args = list(deliverable.quick_args if quick else deliverable.full_args)
    args += ["--out", str(out), *(extra_args or [])]
    env = dict(os.environ)
    if quick:
        env.setdefault("OMP_NUM_THREADS", "1")  # tiny models: one thread is faster
    if deliverable.kind == "notebook":
        cmd = [sys.executable, "-m", "dl2llm.notebooks", str(deliverable.file), *args]
    else:
        cmd = [sys.executable, str(deliverable.file), *args]
    result = subprocess.run(
        cmd, cwd=paths.REPO_ROOT, env=env, timeout=timeout_s or deliverable.timeout_s
    )
    return result.returncode


def headline(deliverable: Deliverable, out: Path | None = None) -> dict[str, Any] | None:
    """The last results of a deliverable reduced to its headline metrics and its machine."""
    record = load_results(deliverable.name, out or paths.results_dir())
    if record is None:
        return None
    metrics = record.get("metrics", {})
    return {
        "mode": record.get("mode"),
        "wall_time_s": record.get("wall_time_s"),
        "finished_at": record.get("finished_at"),
        "machine": record.get("machine"),
        "metrics": {key: metrics[key] for key in deliverable.headline if key in metrics},
    }


def vector_units(features: list[str]) -> str:
    """The CPU's vector units in a few words, from :func:`dl2llm.hardware.cpu_features` flags.

    >>> vector_units(["avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16"])
    'AVX-512 BF16, VNNI, AMX'
    >>> vector_units(["avx2"])
    'AVX2'
    """
    units = []
    if "avx512f" in features:
        units.append("AVX-512 BF16" if "avx512_bf16" in features else "AVX-512")
    elif "avx2" in features:
        units.append("AVX2")
    if {"avx512_vnni", "avx_vnni"} & set(features):
        units.append("VNNI")
    if any(f.startswith("amx") for f in features):
        units.append("AMX")
    return ", ".join(units) or "no AVX2"


def machine_cell(machine: dict[str, Any] | None) -> str:
    """A results-table cell: the CPU, its cores and the 1-minute load at start -> end.

    >>> machine_cell({"cpu": "Intel(R) Xeon(R) Processor", "cores": 2,
    ...               "features": ["avx2"], "load_1min": 0.4, "load_1min_end": 1.2})
    '2-core Intel(R) Xeon(R) Processor (AVX2); load 0.4 -> 1.2'
    """
    if not machine:
        return "not recorded"
    start, end = machine.get("load_1min"), machine.get("load_1min_end")
    load = f"; load {'?' if start is None else start} -> {'?' if end is None else end}"
    units = vector_units(machine.get("features", []))
    return f"{machine['cores']}-core {machine['cpu']} ({units}){load}"


def readme_map() -> str:
    """The README's week-by-week map, generated from :data:`WEEKS`."""
    lines = []
    for week in WEEKS:
        lines.append(f"### {week.label}: {week.title}")
        lines.append("")
        lines.append("Topics: " + "; ".join(week.topics) + ".")
        lines.append("")
        lines.append("| Deliverable | Kind | Run it | What it shows | Status |")
        lines.append("|---|---|---|---|---|")
        for d in week.deliverables:
            lines.append(
                f"| [`{Path(d.path).name}`]({d.path}) | {d.kind} | `{d.command()}` "
                f"| {d.measures} | {d.status} |"
            )
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def results_table(out: Path | None = None) -> str:
    """Markdown table of the latest full-mode headline results (for README and SUMMARY).

    Each row names the machine and how busy it was; deliverables without a full-mode
    record in ``out`` are listed under the table, not left out silently.
    """
    lines = [
        "| Week | Deliverable | Headline results | Run time | Machine, 1-min load start -> end |",
        "|---|---|---|---|---|",
    ]
    missing = []
    for d in all_deliverables():
        summary = headline(d, out)
        if summary is None or summary["mode"] != "full":
            missing.append(f"`{d.name}`")
            continue
        shown = ", ".join(f"{k} = {format_value(v)}" for k, v in summary["metrics"].items())
        minutes = (summary["wall_time_s"] or 0) / 60
        lines.append(
            f"| {week_of(d).label} | `{d.name}` | {shown} | {minutes:.1f} min "
            f"| {machine_cell(summary['machine'])} |"
        )
    if missing:
        lines += ["", "No full-mode record in `results/` yet: " + ", ".join(missing) + "."]
    return "\n".join(lines) + "\n"


def resources_of(week: Week) -> tuple[Resource, ...]:
    """The recommended readings of a week (from :data:`READINGS`), the plan's own first."""
    readings = load_readings(READINGS).get(week.key, ())
    return tuple(sorted(readings, key=lambda r: not r.in_plan))
