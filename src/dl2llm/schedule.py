"""The study plan on a calendar: ``dl2llm plan``.

The plan (``STUDY_PLAN.md``) runs from Sunday 15 December 2024 to Tuesday
21 January 2025, "Monday-Friday, excluding Saturdays", about 20 hours a week.
This module lays the deliverables' estimated hours (``Deliverable.hours`` in
:data:`dl2llm.curriculum.WEEKS`, 108 h in the course as planned) onto study days,
in course order:

- **Study days are Sunday to Friday; Saturdays are off.** The plan starts on a
  Sunday and only excludes Saturdays, so we count Sundays as study days;
  otherwise its own first day would not be one.
- **Holidays are study days unless you take them off.** The plan's dates leave no
  room for a Christmas or New Year break (with 25 December and 1 January off the
  same hours end on 23 January), so by default none are taken; ``--day-off
  2024-12-25`` (repeatable) skips a day and moves the end date later.
- **Hours per day = hours per week / 6**, so 20 h/week is 3 h 20 min a day. A
  deliverable may span several days and a day may hold the end of one
  deliverable and the start of the next.

With the defaults the 108 hours need 32.4 study days, so the 33rd study day,
21 January 2025, is the last one: the plan's own start and end.

:func:`to_ical` writes the schedule as an iCalendar file (RFC 5545): one all-day
event per study day, with the day's tasks and the week's readings.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction

from dl2llm import curriculum
from dl2llm.runtime import UsageError

PLAN_START = date(2024, 12, 15)
PLAN_END = date(2025, 1, 21)
PLAN_HOURS_PER_WEEK = 20.0
SATURDAY = 5  # date.weekday()
STUDY_DAYS_PER_WEEK = 6  # Sunday to Friday
ICAL_LINE_OCTETS = 75


@dataclass(frozen=True)
class Task:
    """Part of one deliverable done on one day."""

    deliverable: str
    week: int
    hours: float
    done_fraction: float  # share of the deliverable finished at the end of this day

    def describe(self) -> str:
        return f"{self.deliverable} {self.hours:.1f} h (to {self.done_fraction:.0%})"


@dataclass(frozen=True)
class StudyDay:
    """One study day and what is done on it."""

    day: date
    tasks: tuple[Task, ...]

    @property
    def hours(self) -> float:
        return sum(task.hours for task in self.tasks)

    @property
    def weeks(self) -> tuple[int, ...]:
        return tuple(dict.fromkeys(task.week for task in self.tasks))


@dataclass(frozen=True)
class Plan:
    """A day-by-day schedule of the whole course."""

    days: tuple[StudyDay, ...]
    hours_per_week: float
    days_off: tuple[date, ...] = ()

    @property
    def start(self) -> date:
        return self.days[0].day

    @property
    def end(self) -> date:
        return self.days[-1].day

    @property
    def total_hours(self) -> float:
        return sum(day.hours for day in self.days)


def parse_date(text: str) -> date:
    """``YYYY-MM-DD`` to a date, with a readable error."""
    try:
        return date.fromisoformat(text)
    except ValueError as err:
        raise UsageError(f"bad date '{text}': use YYYY-MM-DD, e.g. 2024-12-15") from err


def is_study_day(day: date, days_off: Iterable[date] = ()) -> bool:
    """Sunday to Friday, unless the learner took the day off."""
    return day.weekday() != SATURDAY and day not in set(days_off)


def study_days(start: date, days_off: Iterable[date] = ()) -> Iterable[date]:
    """Every study day from ``start`` on (endless)."""
    off = set(days_off)
    day = start
    while True:
        if is_study_day(day, off):
            yield day
        day += timedelta(days=1)


def _work_items() -> list[tuple[curriculum.Deliverable, int, Fraction]]:
    return [
        (d, week.number, Fraction(str(d.hours)))
        for week in curriculum.WEEKS
        for d in week.deliverables
    ]


def build_plan(
    start: date = PLAN_START,
    hours_per_week: float = PLAN_HOURS_PER_WEEK,
    days_off: Iterable[date] = (),
) -> Plan:
    """Fit every deliverable's estimated hours onto study days from ``start``."""
    if not hours_per_week > 0:
        raise UsageError(f"--hours-per-week must be positive, got {hours_per_week:g}")
    if not hours_per_week <= 24 * STUDY_DAYS_PER_WEEK:
        raise UsageError(f"--hours-per-week {hours_per_week:g} is more than 24 hours a day")
    per_day = Fraction(str(hours_per_week)) / STUDY_DAYS_PER_WEEK
    days_off = tuple(sorted(set(days_off)))
    items = _work_items()
    done = Fraction(0)  # hours done of the current item
    days: list[StudyDay] = []
    for day in study_days(start, days_off):
        left_today, tasks = per_day, []
        while items and left_today > 0:
            deliverable, week, hours = items[0]
            spent = min(left_today, hours - done)
            done += spent
            left_today -= spent
            tasks.append(Task(deliverable.name, week, float(spent), float(done / hours)))
            if done == hours:
                items.pop(0)
                done = Fraction(0)
        days.append(StudyDay(day, tuple(tasks)))
        if not items:
            break
    return Plan(tuple(days), float(hours_per_week), days_off)


def _week_header(week: curriculum.Week) -> list[str]:
    lines = [f"{week.label}: {week.title} ({week.hours:g} h)"]
    lines += [f"    read: {r.citation} <{r.url}>" for r in curriculum.resources_of(week)]
    return lines


def format_plan(plan: Plan) -> str:
    """The schedule as text: a header per week (with its readings), a line per day."""
    weeks = {week.number: week for week in curriculum.WEEKS}
    lines = [
        f"dl2llm study plan: {plan.start:%a %d %b %Y} to {plan.end:%a %d %b %Y}, "
        f"{len(plan.days)} study days, {plan.total_hours:g} h at {plan.hours_per_week:g} h/week "
        "(Sunday to Friday; Saturdays off)",
    ]
    if plan.days_off:
        lines.append("days off: " + ", ".join(f"{d:%a %d %b %Y}" for d in plan.days_off))
    shown: set[int] = set()
    for study_day in plan.days:
        for number in study_day.weeks:
            if number not in shown:
                shown.add(number)
                lines += ["", *_week_header(weeks[number])]
        tasks = "; ".join(task.describe() for task in study_day.tasks)
        lines.append(f"  {study_day.day:%a %Y-%m-%d}  {study_day.hours:4.1f} h  {tasks}")
    return "\n".join(lines) + "\n"


def _ical_escape(text: str) -> str:
    """TEXT value escaping of RFC 5545 section 3.3.11."""
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _ical_fold(line: str) -> list[str]:
    """Split a content line into pieces of at most 75 octets (RFC 5545 section 3.1)."""
    pieces, current = [], ""
    for char in line:
        limit = ICAL_LINE_OCTETS - (1 if pieces else 0)  # continuation lines start with a space
        if len((current + char).encode("utf-8")) > limit:
            pieces.append(current)
            current = ""
        current += char
    pieces.append(current)
    return [pieces[0], *(" " + piece for piece in pieces[1:])]


def _event(study_day: StudyDay, stamp: str, starting_weeks: Iterable[int]) -> list[str]:
    """One all-day VEVENT; the first day of a week also lists that week's readings."""
    weeks = {week.number: week for week in curriculum.WEEKS}
    labels = " + ".join(weeks[n].label for n in study_day.weeks)
    names = ", ".join(task.deliverable for task in study_day.tasks)
    description = [task.describe() for task in study_day.tasks]
    for number in starting_weeks:
        description += ["", f"{weeks[number].label} readings:"]
        description += [f"{r.citation} {r.url}" for r in curriculum.resources_of(weeks[number])]
    return [
        "BEGIN:VEVENT",
        f"UID:dl2llm-{study_day.day:%Y%m%d}@dl2llm",
        f"DTSTAMP:{stamp}",
        f"DTSTART;VALUE=DATE:{study_day.day:%Y%m%d}",
        f"DTEND;VALUE=DATE:{study_day.day + timedelta(days=1):%Y%m%d}",
        "SUMMARY:" + _ical_escape(f"dl2llm {labels}: {names} ({study_day.hours:.1f} h)"),
        "DESCRIPTION:" + _ical_escape("\n".join(description)),
        "END:VEVENT",
    ]


def to_ical(plan: Plan, now: datetime | None = None) -> str:
    """The plan as an iCalendar file: one all-day event per study day."""
    stamp = f"{(now or datetime.now(UTC)).astimezone(UTC):%Y%m%dT%H%M%SZ}"
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//dl2llm//study plan//EN"]
    lines += ["CALSCALE:GREGORIAN", "X-WR-CALNAME:dl2llm study plan"]
    started: set[int] = set()
    for study_day in plan.days:
        starting = [n for n in study_day.weeks if n not in started]
        started.update(starting)
        lines += _event(study_day, stamp, starting)
    lines.append("END:VCALENDAR")
    return "".join(piece + "\r\n" for line in lines for piece in _ical_fold(line))
