"""The study plan on the calendar (dl2llm.schedule) and the resources behind it."""

from __future__ import annotations

from datetime import date

import pytest

from dl2llm import curriculum, schedule
from dl2llm.cli import main

PER_DAY = 20 / 6  # the default hours per study day


def unfold(ics: str) -> list[str]:
    """RFC 5545 unfolding: a CRLF followed by a space continues the previous line."""
    return ics.replace("\r\n ", "").split("\r\n")


def test_default_plan_reproduces_the_study_plans_dates():
    plan = schedule.build_plan()
    assert plan.start == schedule.PLAN_START == date(2024, 12, 15)
    assert plan.end == schedule.PLAN_END == date(2025, 1, 21)
    assert len(plan.days) == 33
    assert all(day.day.weekday() != 5 for day in plan.days)  # no Saturdays
    assert plan.total_hours == pytest.approx(108.0)
    assert all(day.hours <= PER_DAY + 1e-9 for day in plan.days)
    assert all(day.hours == pytest.approx(PER_DAY) for day in plan.days[:-1])  # days are full


def test_every_deliverable_gets_its_hours_in_course_order():
    plan = schedule.build_plan()
    tasks = [task for day in plan.days for task in day.tasks]
    order = list(dict.fromkeys(task.deliverable for task in tasks))
    assert order == [d.name for d in curriculum.all_deliverables()]
    for deliverable in curriculum.all_deliverables():
        spent = sum(t.hours for t in tasks if t.deliverable == deliverable.name)
        assert spent == pytest.approx(curriculum.hours_of(deliverable))
    assert [t.done_fraction for t in tasks if t.deliverable == "feedforward_nn"] == pytest.approx(
        [10 / 27, 20 / 27, 1.0]
    )


def test_days_off_and_more_hours_move_the_end_date():
    holidays = [date(2024, 12, 25), date(2025, 1, 1)]
    plan = schedule.build_plan(days_off=holidays)
    assert plan.end == date(2025, 1, 23)
    assert not set(holidays) & {day.day for day in plan.days}
    fast = schedule.build_plan(date(2025, 3, 3), hours_per_week=40)  # a Monday
    assert len(fast.days) == 17  # ceil(108 / (40 / 6))
    assert fast.end == date(2025, 3, 21)  # Mon 3-Fri 7, Sun 9-Fri 14, Sun 16-Fri 21


def test_cli_prints_the_schedule_and_writes_an_icalendar_file(tmp_path, capsys):
    ics_path = tmp_path / "plan.ics"
    assert main(["plan", "--ics", str(ics_path)]) == 0
    out = capsys.readouterr().out
    assert "Sun 15 Dec 2024 to Tue 21 Jan 2025, 33 study days, 108 h at 20 h/week" in out
    assert "  Sun 2024-12-15   3.3 h  feedforward_nn 3.3 h (to 37%)" in out
    assert "Attention Is All You Need" in out

    raw = ics_path.read_bytes()
    assert raw.startswith(b"BEGIN:VCALENDAR\r\n") and raw.endswith(b"END:VCALENDAR\r\n")
    assert all(len(line) <= 75 for line in raw.split(b"\r\n"))  # folded at 75 octets
    lines = unfold(raw.decode("utf-8"))
    starts = [line.split(":", 1)[1] for line in lines if line.startswith("DTSTART;VALUE=DATE:")]
    assert len(starts) == 33 and starts[0] == "20241215" and starts[-1] == "20250121"
    assert "20241221" not in starts  # a Saturday
    assert lines.count("BEGIN:VEVENT") == lines.count("END:VEVENT") == 33
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
    assert all(r.url.startswith("https://") for r in every)
    assert all(r.kind in {"paper", "book", "course", "docs", "blog"} for r in every)
    named_by_plan = {
        1: ["Goodfellow", "CS231n", "PyTorch Tutorials", "TensorFlow Tutorials"],
        2: ["Vaswani", "Tokenizers documentation", "Illustrated Transformer"],
        3: ["Mikolov, T., Sutskever", "Devlin", "Fine-tune a pretrained model"],
        4: ["Hu, E. J.", "Mixed Precision", "Hinton"],
        5: ["Stiennon", "Responsible AI", "ONNX Runtime", "FastAPI"],
    }
    implemented = {
        1: ["Kingma", "Hochreiter", "Kneser"],
        2: ["Sennrich", "Kudo, T. (2018)"],
        3: ["Pennington", "Zhao"],
        4: ["Houlsby", "Li, X. L. & Liang"],
        5: ["Schulman", "Rafailov"],
        6: ["Lewis", "Cormack"],
    }
    for number, names in named_by_plan.items():
        week = curriculum.WEEKS[number - 1]
        plan_ones = [r.citation for r in curriculum.resources_of(week) if r.in_plan]
        for name in names:
            assert any(name in c for c in plan_ones), (number, name)
    for number, names in implemented.items():
        citations = [r.citation for r in curriculum.resources_of(curriculum.WEEKS[number - 1])]
        for name in names:
            assert any(name in c for c in citations), (number, name)


def test_hours_and_expected_ranges_cover_the_registry():
    names = {d.name for d in curriculum.all_deliverables()}
    assert set(curriculum.HOURS) == names
    assert sum(curriculum.HOURS.values()) == 108
    for name, ranges in curriculum.EXPECTED.items():
        deliverable = curriculum.get(name)
        assert set(ranges) <= set(deliverable.headline), name  # no stale metric names
        assert all(low <= high for low, high in ranges.values())
