"""The Keras twin of the week 1 MLP lands within 2 accuracy points of PyTorch."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dl2llm import paths


@pytest.mark.slow
def test_keras_backend_matches_pytorch(tmp_path):
    script = paths.REPO_ROOT / "weeks/week1_foundations/feedforward_nn.py"
    subprocess.run(
        [sys.executable, str(script), "--quick", "--backend", "keras", "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    metrics = json.loads((tmp_path / "feedforward_nn.json").read_text())["metrics"]
    assert metrics["keras_gap_points"] <= 2.0
    assert metrics["keras_test_accuracy"] > 0.6
    assert (tmp_path / "feedforward_nn_generalization.png").stat().st_size > 10_000
