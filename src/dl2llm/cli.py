"""The ``dl2llm`` command: list, run and document the course; manage offline assets.

dl2llm list                       weeks, deliverables and their last results
dl2llm run attention_demo --quick run one deliverable (name = file stem)
dl2llm curriculum [--quick]       run every ready deliverable, then write SUMMARY.md
dl2llm assets fetch | list | verify
dl2llm readme [--check]           regenerate (or check) the README's generated parts
dl2llm predict-sentiment "text" ...  classify text with the fine-tuned MiniLM (week 3)
dl2llm plan [--start DATE] [--hours-per-week N] [--ics FILE]  the study schedule
dl2llm progress [--html FILE]     runs, results vs expected ranges, exercises
dl2llm exercise start | check | list [NAME]  write the pieces yourself, checked
dl2llm model-card sentiment|gpt2|smollm2  a model card (Mitchell et al. 2019) from results
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dl2llm import assets, curriculum, paths
from dl2llm.asset_fetch import fetch
from dl2llm.io import atomic_write_text
from dl2llm.responsible.cards import PROJECT_MODELS, write_model_card
from dl2llm.results import format_value
from dl2llm.runtime import ArgumentParser, UsageError

README = paths.REPO_ROOT / "README.md"
MAP_BEGIN, MAP_END = "<!-- curriculum-map:begin -->", "<!-- curriculum-map:end -->"
RES_BEGIN, RES_END = "<!-- results:begin -->", "<!-- results:end -->"


def cmd_list(args: argparse.Namespace) -> int:
    for week in curriculum.WEEKS:
        print(f"{week.label}: {week.title}")
        for d in week.deliverables:
            summary = curriculum.headline(d, args.results)
            if d.status != curriculum.READY:
                shown = "(planned)"
            elif summary is None:
                shown = "not run yet"
            else:
                metrics = ", ".join(f"{k}={format_value(v)}" for k, v in summary["metrics"].items())
                shown = f"[{summary['mode']}] {metrics} ({summary['wall_time_s']} s)"
            print(f"  {d.name:<32} {d.kind:<8} {shown}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    deliverable = curriculum.get(args.name)
    if deliverable.status != curriculum.READY:
        raise UsageError(f"deliverable '{deliverable.name}' is planned but not implemented yet")
    return curriculum.run(deliverable, args.quick, args.out, args.extra)


def capstone_follow_ups(quick: bool, out: Path) -> list[tuple[str, list[str]]]:
    """What runs after every deliverable: the tuned model's bias audit, then the report.

    The audit needs the fine-tuning pipeline's adapter, which is made after week 5's
    audit; the report needs every capstone result. A quick run writes its report into
    ``out`` rather than over the committed ``capstone/REPORT.md``.
    """
    steps = []
    adapter = out / "fine_tuning_pipeline_adapter.safetensors"
    if adapter.is_file():
        steps.append(("bias_audit", ["--model", "smollm2", "--adapter", str(adapter)]))
    report_dir = out if quick else paths.REPO_ROOT / "capstone"
    steps.append(("evaluation_metrics", ["--report", "--report-dir", str(report_dir)]))
    return steps


def cmd_curriculum(args: argparse.Namespace) -> int:
    failed = []
    for deliverable in curriculum.ready_deliverables():
        print(f"== {deliverable.command(args.quick)}", flush=True)
        if curriculum.run(deliverable, args.quick, args.out) != 0:
            failed.append(deliverable.name)
    for name, extra in capstone_follow_ups(args.quick, args.out):
        deliverable = curriculum.get(name)
        print(f"== {deliverable.command(args.quick)} {' '.join(extra)}", flush=True)
        if curriculum.run(deliverable, args.quick, args.out, extra) != 0:
            failed.append(f"{name} {extra[0]}")
    summary = args.out / "SUMMARY.md"
    atomic_write_text(summary, "# dl2llm results\n\n" + curriculum.results_table(args.out))
    print(f"wrote {summary}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def cmd_assets(args: argparse.Namespace) -> int:
    if args.action == "fetch":
        fetched = fetch(args.names or None, force=args.force)
        print(f"assets: {len(fetched)} fetched, all present in {paths.home()}")
        return 0
    if args.action == "verify":
        bad = [(n, assets.problem(n, full=True)) for n in (args.names or list(assets.ASSETS))]
        for name, issue in bad:
            print(f"{'ok' if issue is None else 'BAD':<4} {name}" + (f": {issue}" if issue else ""))
        return 1 if any(issue for _, issue in bad) else 0
    for row in assets.status():
        print(f"{row['name']:<17} {row['state']:<9} {row['size']:>9}  {row['description']}")
        print(f"{'':<17} licence: {row['licence']}; source: {row['source']}")
    print(f"cache: {paths.home()}")
    return 0


def replace_block(text: str, begin: str, end: str, body: str) -> str:
    """Replace what lies between two marker comments."""
    if begin not in text or end not in text:
        raise UsageError(f"README.md lacks the markers {begin} ... {end}")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{body}{end}{tail}"


def cmd_readme(args: argparse.Namespace) -> int:
    text = README.read_text(encoding="utf-8")
    updated = replace_block(text, MAP_BEGIN, MAP_END, curriculum.readme_map())
    if args.results_table:
        table = curriculum.results_table(args.out)
        updated = replace_block(updated, RES_BEGIN, RES_END, table)
    if args.check:
        if updated != text:
            print("README.md is out of date: run `dl2llm readme`", file=sys.stderr)
            return 1
        print("README.md agrees with the curriculum registry")
        return 0
    atomic_write_text(README, updated)
    print(f"updated {README}")
    return 0


def cmd_predict_sentiment(args: argparse.Namespace) -> int:
    from dl2llm import classification

    for text, (label, prob) in zip(
        args.texts, classification.classify(args.texts, args.quick), strict=True
    ):
        print(f"{label:<8} {prob:.3f}  {text}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from dl2llm import schedule

    start = schedule.parse_date(args.start)
    days_off = [schedule.parse_date(day) for day in args.day_off]
    plan = schedule.build_plan(start, args.hours_per_week, days_off)
    print(schedule.format_plan(plan), end="")
    if args.ics:
        atomic_write_text(args.ics, schedule.to_ical(plan))
        print(f"wrote {args.ics} ({len(plan.days)} events)")
    return 0


def cmd_progress(args: argparse.Namespace) -> int:
    from dl2llm import progress

    if not args.results.is_dir():
        raise UsageError(f"results folder {args.results} does not exist")
    weeks = progress.collect(args.results, args.workspace)
    print(progress.format_progress(weeks), end="")
    if args.html:
        atomic_write_text(args.html, progress.to_html(weeks))
        print(f"wrote {args.html}")
    return 0


def cmd_exercise(args: argparse.Namespace) -> int:
    from dl2llm import exercises
    from dl2llm.exercises import framework, workspace

    if args.action == "list":
        for name, exercise in exercises.EXERCISES.items():
            state = workspace.status(exercise, args.dir)
            print(f"  {name:<30} week {exercise.week}  {state:<24} {exercise.title}")
        return 0
    if not args.name:
        raise UsageError(f"`dl2llm exercise {args.action}` needs an exercise name (see list)")
    exercise = exercises.get(args.name)
    if args.action == "start":
        path = workspace.start(exercise, args.dir, args.force)
        print(f"wrote {path}: fill in the bodies, then `dl2llm exercise check {exercise.name}`")
        return 0
    if args.library:
        label, results = "the library", framework.check_namespace(exercise, exercise.library())
    else:
        path = args.file or workspace.exercise_path(exercise, args.dir)
        label, results = str(path), framework.check_file(exercise, path)
        if args.file is None:
            workspace.record_check(exercise, args.dir, path, results)
    print(f"{exercise.name}: checking {label} ({len(results)} cases)")
    print(framework.format_results(results), end="")
    return 0 if all(r.passed for r in results) else 1


def cmd_model_card(args: argparse.Namespace) -> int:
    out = args.out or args.results / f"MODEL_CARD_{args.model}.md"
    print(write_model_card(args.model, args.results, out))
    return 0


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="dl2llm",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)

    p = sub.add_parser("list", help="weeks, deliverables and their latest results")
    p.add_argument("--results", type=Path, default=paths.results_dir(), help="results folder")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("run", help="run one deliverable by name (its file's stem)")
    p.add_argument("name", help="e.g. attention_demo or annotated_transformer")
    p.add_argument("--quick", action="store_true", help="tiny settings (seconds)")
    p.add_argument("--out", type=Path, default=paths.results_dir(), help="results folder")
    p.add_argument("extra", nargs=argparse.REMAINDER, help="more flags for the deliverable")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("curriculum", help="run every ready deliverable and write SUMMARY.md")
    p.add_argument("--quick", action="store_true", help="quick mode for every deliverable")
    p.add_argument("--out", type=Path, default=paths.results_dir(), help="results folder")
    p.set_defaults(func=cmd_curriculum)

    p = sub.add_parser("assets", help="fetch, list or verify the offline models and data")
    p.add_argument("action", choices=["fetch", "list", "verify"])
    p.add_argument("names", nargs="*", help="asset names (default: all)")
    p.add_argument("--force", action="store_true", help="fetch again even if present")
    p.set_defaults(func=cmd_assets)

    p = sub.add_parser("readme", help="regenerate the README's week map (and results table)")
    p.add_argument("--check", action="store_true", help="fail if the README is out of date")
    p.add_argument("--results-table", action="store_true", help="also rewrite the results table")
    p.add_argument("--out", type=Path, default=paths.results_dir(), help="results folder")
    p.set_defaults(func=cmd_readme)

    p = sub.add_parser(
        "predict-sentiment", help="classify text with the model from bert_fine_tuning"
    )
    p.add_argument("texts", nargs="+", metavar="TEXT", help="one or more sentences")
    p.add_argument("--quick", action="store_true", help="use the quick-mode model")
    p.set_defaults(func=cmd_predict_sentiment)

    p = sub.add_parser("plan", help="a day-by-day study schedule (and an iCalendar file)")
    p.add_argument("--start", default="2024-12-15", help="first day, YYYY-MM-DD (the plan's)")
    p.add_argument(
        "--hours-per-week", type=float, default=20.0, help="study hours a week (default: 20)"
    )
    p.add_argument(
        "--day-off", action="append", default=[], metavar="YYYY-MM-DD", help="skip a day"
    )
    p.add_argument("--ics", type=Path, metavar="FILE", help="also write an iCalendar file")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("progress", help="deliverables run, results vs expected, exercises")
    p.add_argument("--results", type=Path, default=paths.results_dir(), help="results folder")
    p.add_argument("--workspace", type=Path, default=Path("exercises"), help="exercise workspace")
    p.add_argument("--html", type=Path, metavar="FILE", help="also write a self-contained page")
    p.set_defaults(func=cmd_progress)

    p = sub.add_parser("exercise", help="start, check or list the from-scratch exercises")
    p.add_argument("action", choices=["start", "check", "list"])
    p.add_argument("name", nargs="?", help="exercise name (see `dl2llm exercise list`)")
    p.add_argument("--dir", type=Path, default=Path("exercises"), help="learner workspace")
    p.add_argument("--force", action="store_true", help="start: overwrite an existing file")
    p.add_argument("--file", type=Path, help="check: this file instead of the workspace's")
    p.add_argument("--library", action="store_true", help="check: dl2llm's own implementation")
    p.set_defaults(func=cmd_exercise)
    p = sub.add_parser("model-card", help="write a project model's model card from its results")
    p.add_argument("model", choices=sorted(PROJECT_MODELS))
    p.add_argument("--results", type=Path, default=paths.results_dir(), help="results folder")
    p.add_argument("--out", type=Path, help="default: <results>/MODEL_CARD_<model>.md")
    p.set_defaults(func=cmd_model_card)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, assets.AssetError, curriculum.UnknownDeliverable) as err:
        print(f"dl2llm: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
