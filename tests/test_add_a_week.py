"""Adding a week takes only the steps of CONTRIBUTING.md's "How to add a week".

A made-up week 6, "Mixture of experts", is added the documented way into a copy of the
repository layout under ``tmp_path``: a library module, a thin deliverable script, its
``Week`` entry before the capstone (with its hours and expected range) and its readings
in a copy of ``readings.toml``. ``dl2llm plan``, ``list``, ``run``, ``progress`` and
``readme`` then pick it up with no other edit. The real repository is not touched.
"""

from __future__ import annotations

import dataclasses
import os
import textwrap

import pytest

from dl2llm import cli, curriculum, paths, progress, schedule
from dl2llm.curriculum import READY, Deliverable, Metric, Week
from dl2llm.results import save_results

W6 = "weeks/week6_mixture_of_experts"
HOURS = 6
LOAD_BALANCE = (0.9, 1.0)
COURSE_HOURS = sum(d.hours for d in curriculum.all_deliverables())  # before the new week
COURSE_DELIVERABLES = len(curriculum.all_deliverables())

# Step 1: the lesson, in the library. A real week puts it in src/dl2llm/moe.py; here it is
# a top-level module on PYTHONPATH, as nothing may be added to the installed package.
LESSON = '''
"""Top-1 routing of tokens to experts, and how evenly it spreads them."""


def run_lesson(n_tokens: int, n_experts: int) -> dict[str, float]:
    """Route token ``t`` to expert ``t % n_experts``: a perfectly balanced router."""
    load = [0] * n_experts
    for token in range(n_tokens):
        load[token % n_experts] += 1
    return {"expert_load_balance": min(load) / max(load), "n_tokens": n_tokens}
'''

# Step 2: the deliverable, a thin script: flags, one library call, printed results, save.
SCRIPT = '''
"""Week 6: top-1 routing over a few experts, and its load balance."""

from moe_lesson import run_lesson

from dl2llm.runtime import deliverable_parser, run_main, start_run


def main(argv: list[str] | None = None) -> int:
    run = start_run("moe_routing", deliverable_parser(__doc__), argv)
    config = {"n_tokens": 64 if run.args.quick else 4096, "n_experts": 4}
    metrics = run_lesson(**config)
    print(f"expert load balance: {metrics['expert_load_balance']:.3f}")
    run.save(metrics, config=config)
    return 0


if __name__ == "__main__":
    run_main(main)
'''

# Step 5: its readings, a [[week6]] table in readings.toml.
READING = """
[[week6]]
kind = "paper"
citation = "Shazeer, N. et al. (2017). Outrageously Large Neural Networks (MoE layer). ICLR."
url = "https://arxiv.org/abs/1701.06538"
in_plan = true
"""


@pytest.fixture
def week6(tmp_path, monkeypatch) -> Week:
    """The course with the new week 6 registered the documented way; returns that week."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "moe_lesson.py").write_text(textwrap.dedent(LESSON))
    (tmp_path / W6).mkdir(parents=True)
    (tmp_path / W6 / "moe_routing.py").write_text(textwrap.dedent(SCRIPT))
    monkeypatch.setattr(paths, "REPO_ROOT", tmp_path)  # deliverable paths are repo-relative
    pythonpath = os.pathsep.join(
        filter(None, [str(tmp_path / "src"), os.environ.get("PYTHONPATH")])
    )
    monkeypatch.setenv("PYTHONPATH", pythonpath)

    # Step 4: the Week entry, before the capstone, which moves to the next number.
    week = Week(
        6,
        "Mixture of experts",
        ("Sparse expert layers", "Top-1 routing and load balancing"),
        ("Understand how a router spreads tokens over experts.",),
        (
            Deliverable(
                "moe_routing",
                f"{W6}/moe_routing.py",
                "top-1 routing: load balance over four experts",
                READY,
                (Metric("expert_load_balance", LOAD_BALANCE), Metric("n_tokens")),
                hours=HOURS,
            ),
        ),
    )
    *plan_weeks, capstone = curriculum.WEEKS
    moved = dataclasses.replace(capstone, number=capstone.number + 1)
    monkeypatch.setattr(curriculum, "WEEKS", (*plan_weeks, week, moved))

    readings = tmp_path / "readings.toml"
    readings.write_text(curriculum.READINGS.read_text(encoding="utf-8") + READING)
    monkeypatch.setattr(curriculum, "READINGS", readings)
    return week


def test_the_plan_gives_the_new_week_its_hours_and_readings(week6):
    (moe,) = week6.deliverables
    plan = schedule.build_plan()
    assert plan.total_hours == pytest.approx(COURSE_HOURS + HOURS)
    tasks = [task for day in plan.days for task in day.tasks]
    assert sum(t.hours for t in tasks if t.deliverable == moe.name) == pytest.approx(HOURS)
    assert {t.week for t in tasks if t.deliverable == moe.name} == {6}

    text = schedule.format_plan(plan)
    header = f"Week 6: Mixture of experts ({HOURS} h)"
    assert header in text
    assert text.index("Week 5:") < text.index(header) < text.index("Capstone: A domain")
    reading = "    read: Shazeer, N. et al. (2017). Outrageously Large Neural Networks"
    assert reading in text.split(header, 1)[1].split("Capstone:", 1)[0]  # under week 6
    assert "Week 7" not in text  # the capstone keeps its label and its readings
    assert "    read: Lewis, P. et al. (2020)" in text.split("Capstone:", 1)[1]
    ics = schedule.to_ical(plan).replace("\r\n ", "")  # unfolded
    assert "Week 6 readings:\\nShazeer\\, N." in ics


def test_list_run_and_progress_show_and_judge_it(week6, tmp_path, capsys):
    results = tmp_path / "results"
    assert cli.main(["run", "moe_routing", "--quick", "--out", str(results)]) == 0
    assert cli.main(["list", "--results", str(results)]) == 0
    listed = capsys.readouterr().out.splitlines()
    row = listed.index("Week 6: Mixture of experts")
    assert listed[row + 1].split()[:3] == ["moe_routing", "script", "[quick]"]
    assert "expert_load_balance=1" in listed[row + 1]
    assert listed[row + 2].startswith("Capstone: ")

    full = tmp_path / "full"  # a full-mode result file, with the balance out of its range
    metrics = {"expert_load_balance": 0.5, "n_tokens": 4096}
    save_results("moe_routing", metrics, out_dir=full, config={}, seed=0, quick=False, started=0)
    weeks = progress.collect(full, tmp_path / "exercises")
    (status,) = next(w for w in weeks if w.week == week6).deliverables
    assert [(m.name, m.expected, m.verdict) for m in status.metrics] == [
        ("expert_load_balance", LOAD_BALANCE, progress.OUT_OF_RANGE),
        ("n_tokens", None, progress.NO_RANGE),
    ]
    lines = progress.format_progress(weeks).splitlines()
    assert f"of {COURSE_DELIVERABLES + 1};" in lines[0]
    row = lines.index("Week 6: Mixture of experts")
    assert lines[row + 1].split()[:3] == ["moe_routing", "full", "run,"]
    judged = lines[row + 2]
    assert "expected [0.9, 1]" in judged and judged.endswith(progress.OUT_OF_RANGE)


def test_the_readme_map_lists_it(week6, tmp_path, monkeypatch):
    readme = tmp_path / "README.md"
    readme.write_text(f"{cli.MAP_BEGIN}\n{cli.MAP_END}\n{cli.RES_BEGIN}\n{cli.RES_END}\n")
    monkeypatch.setattr(cli, "README", readme)
    assert cli.main(["readme", "--check"]) == 1  # the map lacks the new week
    assert cli.main(["readme"]) == 0
    text = readme.read_text()
    row = f"| [`moe_routing.py`]({W6}/moe_routing.py) | script | `dl2llm run moe_routing` |"
    assert "### Week 6: Mixture of experts" in text and row in text
    assert text.index("### Week 6:") < text.index("### Capstone:")
