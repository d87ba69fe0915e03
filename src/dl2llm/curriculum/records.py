"""The records of the curriculum: a :class:`Week`, its :class:`Deliverable` entries and their
:class:`Metric` ranges, and a reading (:class:`Resource`)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from dl2llm import paths

READY, PLANNED = "ready", "planned"


@dataclass(frozen=True)
class Metric:
    """A headline metric: a key of the results JSON shown by ``dl2llm list`` and the README.

    ``expected`` is the ``(low, high)`` a full run should give, inclusive; ``dl2llm
    progress`` judges full runs against it. ``None``: shown, not judged.
    """

    name: str
    expected: tuple[float, float] | None = None


@dataclass(frozen=True)
class Deliverable:
    """One runnable script or notebook of the course, with its hours and headline metrics."""

    name: str
    path: str
    measures: str
    status: str = PLANNED
    metrics: tuple[Metric, ...] = ()
    full_args: tuple[str, ...] = ()
    quick_args: tuple[str, ...] = ("--quick",)
    timeout_s: int = 3600
    hours: float = field(kw_only=True)  # learner hours, readings and exercises included

    @property
    def kind(self) -> str:
        return "notebook" if self.path.endswith(".ipynb") else "script"

    @property
    def file(self) -> Path:
        return paths.REPO_ROOT / self.path

    @property
    def headline(self) -> tuple[str, ...]:
        """The headline metrics' names, in the order they are shown."""
        return tuple(metric.name for metric in self.metrics)

    def expected_range(self, metric: str) -> tuple[float, float] | None:
        """The ``(low, high)`` a full run should give for ``metric``, if one is stated."""
        return next((m.expected for m in self.metrics if m.name == metric), None)

    def command(self, quick: bool = False) -> str:
        """The shell command a learner types to run it."""
        flag = " --quick" if quick else ""
        return f"dl2llm run {self.name}{flag}"


@dataclass(frozen=True)
class Week:
    """A week of the plan, or the capstone (``capstone=True``).

    ``number`` orders the weeks and is how an exercise names its week
    (``Exercise.week``); the capstone's label and readings do not depend on it.
    """

    number: int
    title: str
    topics: tuple[str, ...]
    objectives: tuple[str, ...]
    deliverables: tuple[Deliverable, ...] = field(default_factory=tuple)
    capstone: bool = False

    @property
    def label(self) -> str:
        return "Capstone" if self.capstone else f"Week {self.number}"

    @property
    def key(self) -> str:
        """The week's name in ``readings.toml``: ``week1``, ``week2``, ... or ``capstone``."""
        return "capstone" if self.capstone else f"week{self.number}"

    @property
    def hours(self) -> float:
        """Estimated learner hours of the week: the sum over its deliverables."""
        return sum(d.hours for d in self.deliverables)


@dataclass(frozen=True)
class Resource:
    """A reading: a paper, book, course, blog post or documentation site, with a link."""

    kind: str  # "paper", "book", "course", "docs" or "blog"
    citation: str
    url: str
    in_plan: bool = False  # named by the study plan itself (the others are what we implement)


@cache
def load_readings(path: Path) -> dict[str, tuple[Resource, ...]]:
    """The readings in a TOML file: ``[[<week key>]]`` tables of :class:`Resource` fields."""
    with open(path, "rb") as file:
        data = tomllib.load(file)
    return {key: tuple(Resource(**entry) for entry in entries) for key, entries in data.items()}
