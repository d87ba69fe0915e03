"""The results helpers: one line per metric on the terminal."""

from dl2llm.results import print_metrics


def test_print_metrics_aligns_scalars_and_intervals_and_skips_records(capsys):
    metrics = {"f1": 0.123456, "n": 44, "gain": {"mean": 0.1, "low": 0.02, "high": 0.19, "n": 9}}
    print_metrics(metrics | {"rows": [1, 2], "details": {"a": 1}})
    assert capsys.readouterr().out.splitlines()[1:] == [
        "metric  value",
        "f1      0.1235",
        "n       44",
        "gain    0.1 [0.02, 0.19]",
    ]


def _record(out, name, quick):
    import time

    from dl2llm.results import save_results

    return save_results(
        name, {"acc": 0.5 if quick else 0.9}, out_dir=out, config={}, seed=0, quick=quick,
        started=time.perf_counter(),
    )  # fmt: skip


def test_a_quick_run_never_overwrites_a_full_record(tmp_path):
    import json

    from dl2llm.results import load_results, run_output_dir

    assert _record(tmp_path, "demo", quick=True) == tmp_path / "demo.json"  # nothing to keep
    assert _record(tmp_path, "demo", quick=False) == tmp_path / "demo.json"  # full replaces quick
    assert run_output_dir(tmp_path, "demo", quick=True) == tmp_path / "quick"
    assert run_output_dir(tmp_path, "demo", quick=False) == tmp_path
    assert _record(tmp_path, "demo", quick=True) == tmp_path / "quick" / "demo.json"
    assert load_results("demo", tmp_path)["metrics"] == {"acc": 0.9}
    assert json.loads((tmp_path / "quick" / "demo.json").read_text())["mode"] == "quick"


def test_a_script_run_quick_beside_a_full_record_writes_its_plots_elsewhere(tmp_path):
    from dl2llm.runtime import deliverable_parser, start_run

    _record(tmp_path, "demo", quick=False)
    run = start_run("demo", deliverable_parser("demo"), ["--quick", "--out", str(tmp_path)])
    assert run.args.out == tmp_path / "quick"
    full = start_run("demo", deliverable_parser("demo"), ["--out", str(tmp_path)])
    assert full.args.out == tmp_path


def test_records_name_the_machine_and_its_load_at_start_and_end(tmp_path, monkeypatch):
    import json
    import os

    from dl2llm.hardware import cpu_model
    from dl2llm.results import START_LOAD_ENV

    monkeypatch.setenv(START_LOAD_ENV, "1.25")
    machine = json.loads(_record(tmp_path, "demo", quick=False).read_text())["machine"]
    assert machine["cpu"] == cpu_model()
    assert machine["cores"] == len(os.sched_getaffinity(0))
    assert machine["load_1min"] == 1.25
    assert machine["load_1min_end"] >= 0
    monkeypatch.delenv(START_LOAD_ENV)
    unknown = json.loads(_record(tmp_path, "other", quick=False).read_text())["machine"]
    assert unknown["load_1min"] is None  # never the end's load passed off as the start's


def test_committed_results_are_full_mode_runs():
    import json
    import subprocess

    from dl2llm.paths import REPO_ROOT

    tracked = subprocess.run(
        ["git", "ls-files", "results/*.json"], cwd=REPO_ROOT, capture_output=True, text=True
    ).stdout.split()
    modes = {name: json.loads((REPO_ROOT / name).read_text())["mode"] for name in tracked}
    assert set(modes.values()) <= {"full"}, modes
