"""dl2llm progress: results next to expected ranges, exercises, and the HTML page."""

from __future__ import annotations

import base64
import time
from html.parser import HTMLParser

import pytest
from test_exercises import RRF_SOLUTION

from dl2llm import curriculum, progress
from dl2llm.cli import main
from dl2llm.exercises import get
from dl2llm.exercises.workspace import exercise_path
from dl2llm.results import save_results


class Collector(HTMLParser):
    """Tags, attributes and text of a page (also proves that it parses)."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.external: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        for name in ("src", "href"):
            if attrs.get(name, "").startswith(("http", "//", "file:")) or tag in ("link", "script"):
                self.external.append(f"{tag} {attrs}")

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture
def learner(tmp_path):
    """A results folder with one full run (with a plot), one quick run, and a workspace."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results, workspace = tmp_path / "results", tmp_path / "exercises"
    results.mkdir()
    figure, axis = plt.subplots(figsize=(2, 1))
    axis.plot([0, 1], [1, 0])
    figure.savefig(results / "feedforward_nn_curves.png")
    plt.close(figure)
    save_results(
        "feedforward_nn",
        {"test_accuracy": 0.801, "numpy_test_accuracy": 0.41, "train_accuracy": 0.99},
        out_dir=results,
        config={},
        seed=0,
        quick=False,
        started=time.perf_counter(),
        artifacts=["feedforward_nn_curves.png", "feedforward_nn_missing.png"],
    )
    save_results(
        "lstm_language_model",
        {"test_perplexity": 900.0, "kn_test_perplexity": 850.0},
        out_dir=results,
        config={},
        seed=0,
        quick=True,
        started=time.perf_counter(),
    )
    exercise = get("reciprocal_rank_fusion")
    assert main(["exercise", "start", exercise.name, "--dir", str(workspace)]) == 0
    exercise_path(exercise, workspace).write_text(RRF_SOLUTION)
    assert main(["exercise", "check", exercise.name, "--dir", str(workspace)]) == 0
    assert main(["exercise", "start", "mlp_backprop", "--dir", str(workspace)]) == 0
    return results, workspace


def test_collect_judges_full_runs_against_the_expected_ranges(learner):
    results, workspace = learner
    weeks = progress.collect(results, workspace)
    assert [w.week for w in weeks] == list(curriculum.WEEKS)
    feedforward, lstm = weeks[0].deliverables
    assert feedforward.mode == "full"
    assert [(m.name, m.value, m.verdict) for m in feedforward.metrics] == [
        ("test_accuracy", 0.801, "ok"),
        ("numpy_test_accuracy", 0.41, "OUT OF RANGE"),
    ]  # only headline metrics, in headline order
    expected = curriculum.get("feedforward_nn").expected_range("test_accuracy")
    assert expected is not None and feedforward.metrics[0].expected == expected
    assert [p.name for p in feedforward.plots] == ["feedforward_nn_curves.png"]  # missing skipped
    assert lstm.mode == "quick" and {m.verdict for m in lstm.metrics} == {"quick run"}
    assert weeks[1].deliverables[0].mode is None
    assert dict(weeks[0].exercises) == {"mlp_backprop": "started", "adam_step": "not started"}
    capstone = next(w for w in weeks if w.week.capstone)
    assert dict(capstone.exercises) == {"reciprocal_rank_fusion": "passed"}
    assert progress.summary_counts(weeks)["full_runs"] == 1
    assert progress.summary_counts(weeks)["quick_runs"] == 1
    assert progress.summary_counts(weeks)["exercises_passed"] == 1


def test_cli_prints_progress_and_writes_a_self_contained_page(learner, tmp_path, capsys):
    results, workspace = learner
    page = tmp_path / "progress.html"
    capsys.readouterr()  # drop what the fixture printed
    argv = ["progress", "--results", str(results), "--workspace", str(workspace)]
    assert main([*argv, "--html", str(page)]) == 0
    out = capsys.readouterr().out
    total = len(curriculum.all_deliverables())
    assert out.startswith(f"deliverables: 1 run in full mode, 1 in quick mode, of {total};")
    lines = out.splitlines()
    assert any(line.split()[:2] == ["feedforward_nn", "full"] for line in lines)
    metric = next(line for line in lines if "numpy_test_accuracy" in line)
    assert metric.split() == [
        "numpy_test_accuracy",
        "0.41",
        "expected",
        "[0.73,",
        "0.8]",
        "OUT",
        "OF",
        "RANGE",
    ]
    assert ["exercise", "reciprocal_rank_fusion", "passed"] in [line.split() for line in lines]
    assert ["attention_demo", "not", "run"] in [line.split() for line in lines]

    html = page.read_text(encoding="utf-8")
    parsed = Collector()
    parsed.feed(html)
    assert parsed.external == []  # nothing loaded from elsewhere
    png = (results / "feedforward_nn_curves.png").read_bytes()
    assert parsed.images == ["data:image/png;base64," + base64.b64encode(png).decode("ascii")]
    text = " ".join(t.strip() for t in parsed.text if t.strip())
    summary = f"Deliverables run in full mode: 1 of {total} (quick mode: 1). Exercises passing: 1"
    assert f"{summary} of" in text
    assert "numpy_test_accuracy 0.41 [0.73, 0.8] OUT OF RANGE" in text
    assert "test_accuracy 0.801 [0.77, 0.82] ok" in text
    assert "reciprocal_rank_fusion passed" in text and "mlp_backprop started" in text
    assert '<td class="bad">OUT OF RANGE</td>' in html


def test_missing_results_folder_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["progress", "--results", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "results folder" in err and "does not exist" in err and err.count("\n") == 1


def test_an_interval_is_judged_by_its_point_estimate():
    from dl2llm.progress import IN_RANGE, OUT_OF_RANGE, _verdict

    interval = {"mean": 0.55, "low": 0.52, "high": 0.58, "n": 1018}
    assert _verdict(interval, (0.3, 0.7), "full") == IN_RANGE
    assert _verdict(interval, (0.6, 0.7), "full") == OUT_OF_RANGE
