"""rl_hf_demo: win rates count ties half; bad sweep flags exit 2 with one line."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from dl2llm import paths
from dl2llm.alignment.rlhf import win_rate

SCRIPT = paths.REPO_ROOT / "weeks/week5_alignment_deployment/rl_hf_demo.py"


def test_win_rate_counts_ties_half():
    tuned = torch.tensor([1.0, 2.0, 3.0, 4.0])
    reference = torch.tensor([0.0, 2.0, 5.0, 1.0])
    assert win_rate(tuned, reference) == pytest.approx((1 + 0.5 + 0 + 1) / 4)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--betas", "0.1,0"], "beta > 0"),
        (["--kl-coefs", "-1"], "kl_coef must be >= 0"),
        (["--betas", "x"], "comma-separated numbers"),
    ],
)
def test_bad_flags_exit_2_with_one_line(flags, message, tmp_path):
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path), *flags],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2
    assert message in run.stderr
    assert not (tmp_path / "rl_hf_demo.json").exists()
