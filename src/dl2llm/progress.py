"""Where a learner stands: ``dl2llm progress``.

For each week of :data:`dl2llm.curriculum.WEEKS` it gathers which deliverables
have been run (quick or full mode, from their ``results/<name>.json``), their
headline metrics next to the range a full run should give (each
:class:`~dl2llm.curriculum.Metric`'s ``expected``), and which exercises pass
(from the record that ``dl2llm exercise check`` keeps in the workspace).
:func:`format_progress` prints it as text; :func:`to_html` writes one
self-contained HTML page, the deliverables' PNG plots embedded as ``data:`` URIs.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dl2llm import curriculum
from dl2llm.exercises import EXERCISES
from dl2llm.exercises import workspace as exercise_workspace
from dl2llm.results import format_value, load_results

IN_RANGE, OUT_OF_RANGE, NO_RANGE, QUICK_RUN = "ok", "OUT OF RANGE", "no range", "quick run"


@dataclass(frozen=True)
class MetricStatus:
    """One headline metric: its value, the expected range and the verdict."""

    name: str
    value: Any
    expected: tuple[float, float] | None
    verdict: str


@dataclass(frozen=True)
class DeliverableStatus:
    """A deliverable's latest run (``mode`` is ``None`` if it never ran)."""

    deliverable: curriculum.Deliverable
    mode: str | None
    finished_at: str | None
    wall_time_s: float | None
    metrics: tuple[MetricStatus, ...]
    plots: tuple[Path, ...]


@dataclass(frozen=True)
class WeekStatus:
    """A week: its deliverables and its exercises with their status."""

    week: curriculum.Week
    deliverables: tuple[DeliverableStatus, ...]
    exercises: tuple[tuple[str, str], ...]  # (exercise name, status)


def _verdict(value: Any, expected: tuple[float, float] | None, mode: str) -> str:
    if mode != "full":
        return QUICK_RUN
    if isinstance(value, dict) and "mean" in value:
        value = value["mean"]  # an interval is judged by its point estimate
    if expected is None or not isinstance(value, int | float) or isinstance(value, bool):
        return NO_RANGE
    low, high = expected
    return IN_RANGE if low <= value <= high else OUT_OF_RANGE


def deliverable_status(deliverable: curriculum.Deliverable, results: Path) -> DeliverableStatus:
    """The latest results of one deliverable in ``results``, judged against the ranges."""
    record = load_results(deliverable.name, results)
    if record is None:
        return DeliverableStatus(deliverable, None, None, None, (), ())
    mode = record.get("mode", "quick")
    found = record.get("metrics", {})
    metrics = tuple(
        MetricStatus(
            metric.name,
            found[metric.name],
            metric.expected,
            _verdict(found[metric.name], metric.expected, mode),
        )
        for metric in deliverable.metrics
        if metric.name in found
    )
    plots = tuple(
        Path(results) / name
        for name in record.get("artifacts", [])
        if name.endswith(".png") and (Path(results) / name).is_file()
    )
    return DeliverableStatus(
        deliverable, mode, record.get("finished_at"), record.get("wall_time_s"), metrics, plots
    )


def collect(results: Path, workspace: Path) -> list[WeekStatus]:
    """Every week's deliverables and exercises."""
    return [
        WeekStatus(
            week,
            tuple(deliverable_status(d, results) for d in week.deliverables),
            tuple(
                (name, exercise_workspace.status(exercise, workspace))
                for name, exercise in EXERCISES.items()
                if exercise.week == week.number
            ),
        )
        for week in curriculum.WEEKS
    ]


def _range_text(expected: tuple[float, float] | None) -> str:
    if expected is None:
        return "-"
    low, high = expected
    return f"[{format_value(low)}, {format_value(high)}]"


def _run_text(status: DeliverableStatus) -> str:
    if status.deliverable.status != curriculum.READY and status.mode is None:
        return "planned"
    if status.mode is None:
        return "not run"
    return f"{status.mode} run, {status.finished_at or '?'}"


def summary_counts(weeks: list[WeekStatus]) -> dict[str, int]:
    """How many deliverables ran in full / quick mode and how many exercises pass."""
    runs = [d for w in weeks for d in w.deliverables]
    exercises = [s for w in weeks for _, s in w.exercises]
    return {
        "deliverables": len(runs),
        "full_runs": sum(d.mode == "full" for d in runs),
        "quick_runs": sum(d.mode == "quick" for d in runs),
        "exercises": len(exercises),
        "exercises_passed": sum(s == exercise_workspace.PASSED for s in exercises),
    }


def format_progress(weeks: list[WeekStatus]) -> str:
    """Progress as text, one block per week."""
    counts = summary_counts(weeks)
    lines = [
        f"deliverables: {counts['full_runs']} run in full mode, {counts['quick_runs']} in quick "
        f"mode, of {counts['deliverables']}; exercises: {counts['exercises_passed']} of "
        f"{counts['exercises']} pass",
    ]
    for week in weeks:
        lines += ["", f"{week.week.label}: {week.week.title}"]
        for status in week.deliverables:
            lines.append(f"  {status.deliverable.name:<32} {_run_text(status)}")
            for metric in status.metrics:
                value = format_value(metric.value)
                lines.append(
                    f"      {metric.name:<34} {value:>10}  expected "
                    f"{_range_text(metric.expected):<18} {metric.verdict}"
                )
        for name, state in week.exercises:
            lines.append(f"  exercise {name:<30} {state}")
    return "\n".join(lines) + "\n"


def _data_uri(png: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")


STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; }
.ok { color: #11772d; } .bad { color: #b00020; font-weight: bold; } .dim { color: #777; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.25rem 0; }
"""


def _verdict_class(verdict: str) -> str:
    return {IN_RANGE: "ok", OUT_OF_RANGE: "bad"}.get(verdict, "dim")


def _deliverable_html(status: DeliverableStatus) -> list[str]:
    esc = html.escape
    parts = [
        f"<h3><code>{esc(status.deliverable.name)}</code> &mdash; {esc(_run_text(status))}</h3>"
    ]
    if status.metrics:
        parts.append("<table><tr><th>metric</th><th>value</th><th>expected</th><th></th></tr>")
        for m in status.metrics:
            parts.append(
                f"<tr><td>{esc(m.name)}</td><td>{esc(format_value(m.value))}</td>"
                f"<td>{esc(_range_text(m.expected))}</td>"
                f'<td class="{_verdict_class(m.verdict)}">{esc(m.verdict)}</td></tr>'
            )
        parts.append("</table>")
    for png in status.plots:
        parts.append(f'<figure><img alt="{esc(png.name)}" src="{_data_uri(png)}">')
        parts.append(f"<figcaption>{esc(png.name)}</figcaption></figure>")
    return parts


def to_html(weeks: list[WeekStatus]) -> str:
    """The progress page: one HTML document, no external files (plots are inlined)."""
    esc = html.escape
    counts = summary_counts(weeks)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>dl2llm progress</title>',
        f"<style>{STYLE}</style></head><body>",
        "<h1>dl2llm progress</h1>",
        f"<p>Deliverables run in full mode: {counts['full_runs']} of {counts['deliverables']} "
        f"(quick mode: {counts['quick_runs']}). Exercises passing: "
        f"{counts['exercises_passed']} of {counts['exercises']}.</p>",
    ]
    for week in weeks:
        parts.append(f"<h2>{esc(week.week.label)}: {esc(week.week.title)}</h2>")
        for status in week.deliverables:
            parts += _deliverable_html(status)
        if week.exercises:
            parts.append("<table><tr><th>exercise</th><th>status</th></tr>")
            for name, state in week.exercises:
                css = "ok" if state == exercise_workspace.PASSED else "dim"
                parts.append(f'<tr><td>{esc(name)}</td><td class="{css}">{esc(state)}</td></tr>')
            parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
