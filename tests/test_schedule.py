"""The study plan on the calendar (dl2llm.schedule) and the resources behind it."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date
from fractions import Fraction
from itertools import islice

import pytest

from dl2llm import curriculum, paths, schedule
from dl2llm.cli import main

PER_DAY = 20 / 6  # the default hours per study day


def total_hours() -> float:
    """The course's hours, summed over the registry (108 when this was written)."""
    return sum(d.hours for d in curriculum.all_deliverables())


def days_needed(hours_per_week: float) -> int:
    """Study days for the whole course at ``hours_per_week`` over six study days a week."""
    return math.ceil(Fraction(str(total_hours())) / (Fraction(str(hours_per_week)) / 6))


def nth_study_day(start: date, n: int, days_off: Iterable[date] = ()) -> date:
    """The ``n``-th study day from ``start`` on (``start`` itself is the first if it is one)."""
    return next(islice(schedule.study_days(start, days_off), n - 1, None))


def unfold(ics: str) -> list[str]:
    """RFC 5545 unfolding: a CRLF followed by a space continues the previous line."""
    return ics.replace("\r\n ", "").split("\r\n")


def test_default_plan_reproduces_the_study_plans_dates():
    plan = schedule.build_plan()
    assert plan.start == schedule.PLAN_START == date(2024, 12, 15)
    assert plan.end == schedule.PLAN_END == date(2025, 1, 21)
    assert len(plan.days) == days_needed(20)
    assert all(day.day.weekday() != 5 for day in plan.days)  # no Saturdays
    assert plan.total_hours == pytest.approx(total_hours())
    assert all(day.hours <= PER_DAY + 1e-9 for day in plan.days)
    assert all(day.hours == pytest.approx(PER_DAY) for day in plan.days[:-1])  # days are full


def test_every_deliverable_gets_its_hours_in_course_order():
    plan = schedule.build_plan()
    tasks = [task for day in plan.days for task in day.tasks]
    order = list(dict.fromkeys(task.deliverable for task in tasks))
    assert order == [d.name for d in curriculum.all_deliverables()]
    for deliverable in curriculum.all_deliverables():
        spent = sum(t.hours for t in tasks if t.deliverable == deliverable.name)
        assert spent == pytest.approx(deliverable.hours)
    assert [t.done_fraction for t in tasks if t.deliverable == "feedforward_nn"] == pytest.approx(
        [10 / 27, 20 / 27, 1.0]
    )


def test_days_off_and_more_hours_move_the_end_date():
    holidays = [date(2024, 12, 25), date(2025, 1, 1)]
    plan = schedule.build_plan(days_off=holidays)
    assert plan.end == nth_study_day(schedule.PLAN_START, days_needed(20), holidays)
    assert plan.end > schedule.PLAN_END
    assert not set(holidays) & {day.day for day in plan.days}
    fast = schedule.build_plan(date(2025, 3, 3), hours_per_week=40)  # a Monday
    assert len(fast.days) == days_needed(40)
    assert fast.end == nth_study_day(date(2025, 3, 3), days_needed(40))


def test_readme_states_the_registrys_total_hours_and_holiday_end():
    text = " ".join((paths.REPO_ROOT / "README.md").read_text(encoding="utf-8").split())
    assert f"({total_hours():g} h in all," in text
    end = schedule.build_plan(days_off=[date(2024, 12, 25), date(2025, 1, 1)]).end
    assert f"with 25 Dec and 1 Jan off it ends on {end.day} {end:%B}" in text


def test_cli_prints_the_schedule_and_writes_an_icalendar_file(tmp_path, capsys):
    ics_path = tmp_path / "plan.ics"
    assert main(["plan", "--ics", str(ics_path)]) == 0
    out = capsys.readouterr().out
    days = days_needed(20)
    assert f"Sun 15 Dec 2024 to Tue 21 Jan 2025, {days} study days, {total_hours():g} h" in out
    assert "  Sun 2024-12-15   3.3 h  feedforward_nn 3.3 h (to 37%)" in out
    assert "Attention Is All You Need" in out

    raw = ics_path.read_bytes()
    assert raw.startswith(b"BEGIN:VCALENDAR\r\n") and raw.endswith(b"END:VCALENDAR\r\n")
    assert all(len(line) <= 75 for line in raw.split(b"\r\n"))  # folded at 75 octets
    lines = unfold(raw.decode("utf-8"))
    starts = [line.split(":", 1)[1] for line in lines if line.startswith("DTSTART;VALUE=DATE:")]
    assert len(starts) == days and starts[0] == "20241215" and starts[-1] == "20250121"
    assert "20241221" not in starts  # a Saturday
    assert lines.count("BEGIN:VEVENT") == lines.count("END:VEVENT") == days
    first = lines[lines.index("BEGIN:VEVENT") : lines.index("END:VEVENT")]
    assert "SUMMARY:dl2llm Week 1: feedforward_nn (3.3 h)" in first
    description = next(line for line in first if line.startswith("DESCRIPTION:"))
    assert "Goodfellow\\, I.\\, Bengio\\, Y." in description  # commas escaped
    assert "\\n" in description and "\n" not in description


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["plan", "--start", "2024-02-30"], "bad date '2024-02-30'"),
        (["plan", "--start", "15/12/2024"], "bad date '15/12/2024'"),
        (["plan", "--hours-per-week", "-5"], "--hours-per-week must be positive, got -5"),
        (["plan", "--hours-per-week", "0"], "--hours-per-week must be positive, got 0"),
        (["plan", "--hours-per-week", "200"], "more than 24 hours a day"),
        (["plan", "--hours-per-week", "inf"], "more than 24 hours a day"),
        (["plan", "--hours-per-week", "nan"], "must be positive, got nan"),
        (["plan", "--day-off", "Christmas"], "bad date 'Christmas'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_resources_cite_what_the_plan_names_and_what_we_implement():
    every = [r for week in curriculum.WEEKS for r in curriculum.resources_of(week)]
    assert all(isinstance(r, curriculum.Resource) for r in every)
    assert all(r.url.startswith("https://") for r in every)
    assert all(r.kind in {"paper", "book", "course", "docs", "blog"} for r in every)
    named_by_plan = {
        "week1": ["Goodfellow", "CS231n", "PyTorch Tutorials", "TensorFlow Tutorials"],
        "week2": ["Vaswani", "Tokenizers documentation", "Illustrated Transformer"],
        "week3": ["Mikolov, T., Sutskever", "Devlin", "Fine-tune a pretrained model"],
        "week4": ["Hu, E. J.", "Mixed Precision", "Hinton"],
        "week5": ["Stiennon", "Responsible AI", "ONNX Runtime", "FastAPI"],
    }
    implemented = {
        "week1": ["Kingma", "Hochreiter", "Kneser"],
        "week2": ["Sennrich", "Kudo, T. (2018)"],
        "week3": ["Pennington", "Zhao"],
        "week4": ["Houlsby", "Li, X. L. & Liang"],
        "week5": ["Schulman", "Rafailov"],
        "capstone": ["Lewis", "Cormack"],
    }
    weeks = {week.key: week for week in curriculum.WEEKS}
    for key, names in named_by_plan.items():
        plan_ones = [r.citation for r in curriculum.resources_of(weeks[key]) if r.in_plan]
        for name in names:
            assert any(name in c for c in plan_ones), (key, name)
    for key, names in implemented.items():
        citations = [r.citation for r in curriculum.resources_of(weeks[key])]
        for name in names:
            assert any(name in c for c in citations), (key, name)


def test_every_week_has_readings_and_every_reading_a_week():
    readings = curriculum.load_readings(curriculum.READINGS)
    assert set(readings) == {week.key for week in curriculum.WEEKS}  # no stale keys
    order = [r.in_plan for r in curriculum.resources_of(curriculum.WEEKS[0])]
    assert order == sorted(order, reverse=True)  # the plan's own readings first


def test_every_deliverable_has_hours_and_sound_expected_ranges():
    for deliverable in curriculum.all_deliverables():
        assert deliverable.hours > 0, deliverable.name
        assert len(set(deliverable.headline)) == len(deliverable.headline), deliverable.name
        for metric in deliverable.metrics:
            if metric.expected is not None:
                low, high = metric.expected
                assert low <= high, (deliverable.name, metric.name)
                assert deliverable.expected_range(metric.name) == metric.expected
    assert curriculum.get("bias_audit").expected_range("sentiment_abs_gap_before") is None
    assert sum(week.hours for week in curriculum.WEEKS) == total_hours()
