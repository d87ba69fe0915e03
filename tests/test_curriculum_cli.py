"""The registry, the README it generates, and the `dl2llm` command's error handling."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from dl2llm import cli, curriculum, paths


def dl2llm(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dl2llm.cli", *args],
        capture_output=True,
        text=True,
        cwd=paths.REPO_ROOT,
        env=env,
    )


def test_readme_map_agrees_with_registry():
    text = (paths.REPO_ROOT / "README.md").read_text()
    block = text.split(cli.MAP_BEGIN, 1)[1].split(cli.MAP_END, 1)[0]
    assert block.strip() == curriculum.readme_map().strip()


def test_readme_check_command_detects_drift(tmp_path, monkeypatch):
    stale = tmp_path / "README.md"
    stale.write_text(f"x\n{cli.MAP_BEGIN}\nold\n{cli.MAP_END}\n{cli.RES_BEGIN}\n{cli.RES_END}\n")
    monkeypatch.setattr(cli, "README", stale)
    assert cli.main(["readme", "--check"]) == 1
    assert cli.main(["readme"]) == 0
    assert cli.main(["readme", "--check"]) == 0
    assert "| [`feedforward_nn.py`]" in stale.read_text()


def test_the_capstone_is_marked_not_numbered():
    capstones = [week for week in curriculum.WEEKS if week.capstone]
    assert capstones == [curriculum.WEEKS[-1]]  # one capstone, and it comes last
    numbers = [week.number for week in curriculum.WEEKS]
    assert numbers == sorted(set(numbers))  # unique, in course order
    assert [w.label for w in curriculum.WEEKS[:-1]] == [f"Week {n}" for n in numbers[:-1]]
    moved = dataclasses.replace(capstones[0], number=numbers[-1] + 1)
    assert (moved.label, moved.key) == ("Capstone", "capstone")


def test_deliverables_are_hashable_records():
    deliverables = curriculum.all_deliverables()
    assert len(set(deliverables)) == len(deliverables)
    assert all(curriculum.week_of(d) in curriculum.WEEKS for d in deliverables)


def test_lookup_by_stem_and_extension():
    assert curriculum.get("annotated_transformer.ipynb").kind == "notebook"
    assert curriculum.get("attention_demo").path.endswith("attention_demo.py")
    with pytest.raises(curriculum.UnknownDeliverable, match="unknown deliverable 'nope'"):
        curriculum.get("nope")


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "no_such_thing"], "unknown deliverable 'no_such_thing'"),
        (["bogus"], "invalid choice"),
        (["assets", "fetch", "no-such-asset"], "unknown asset 'no-such-asset'"),
        (["list", "--results"], "expected one argument"),
    ],
)
def test_bad_input_is_one_line_without_traceback(args, message):
    result = dl2llm(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]


def test_bad_deliverable_flag_is_one_line():
    script = paths.REPO_ROOT / curriculum.get("feedforward_nn").path
    result = subprocess.run(
        [sys.executable, str(script), "--seed", "abc"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "--seed" in result.stderr


def test_list_shows_results_from_results_dir(tmp_path):
    from dl2llm.results import save_results

    save_results(
        "feedforward_nn",
        {"test_accuracy": 0.777, "numpy_test_accuracy": 0.75},
        out_dir=tmp_path,
        config={},
        seed=0,
        quick=False,
        started=0.0,
    )
    result = dl2llm("list", "--results", str(tmp_path))
    assert result.returncode == 0
    line = next(x for x in result.stdout.splitlines() if "feedforward_nn" in x)
    assert "[full]" in line and "test_accuracy=0.777" in line


def test_curriculum_ends_with_the_tuned_models_audit_and_the_report(tmp_path):
    from dl2llm.cli import capstone_follow_ups

    assert capstone_follow_ups(True, tmp_path) == [
        ("evaluation_metrics", ["--report", "--report-dir", str(tmp_path)])
    ]
    adapter = tmp_path / "fine_tuning_pipeline_adapter.safetensors"
    adapter.write_bytes(b"")
    steps = capstone_follow_ups(False, tmp_path)
    assert steps[0] == ("bias_audit", ["--model", "smollm2", "--adapter", str(adapter)])
    assert steps[1][1][-1] == str(paths.REPO_ROOT / "capstone")


def test_results_table_names_the_machine_and_the_deliverables_without_a_full_run(tmp_path):
    from dl2llm import curriculum
    from dl2llm.results import save_results

    machine = {"cpu": "Test CPU", "cores": 2, "features": ["avx2"], "load_1min": 0.25}
    save_results(
        "feedforward_nn", {"test_accuracy": 0.8}, out_dir=tmp_path, config={}, seed=0,
        quick=False, started=0.0, machine=machine,
    )  # fmt: skip
    save_results(
        "pretrain_gpt", {"val_loss": 9.0}, out_dir=tmp_path, config={}, seed=0,
        quick=True, started=0.0, machine=machine,
    )  # fmt: skip
    lines = curriculum.results_table(tmp_path).splitlines()
    row = next(line for line in lines if "`feedforward_nn`" in line)
    assert "test_accuracy = 0.8" in row
    assert "2-core Test CPU (AVX2); load 0.25 -> " in row
    assert not any(line.startswith("| ") and "`pretrain_gpt`" in line for line in lines)
    assert "`pretrain_gpt`" in lines[-1] and "No full-mode record" in lines[-1]
