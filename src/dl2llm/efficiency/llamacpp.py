"""llama.cpp as a point of comparison: its own virtual environment, built on demand, and a worker.

llama-cpp-python is not a dependency of the project: it lives in its own virtual environment,
``benchmarks/.venv-llamacpp``, which :func:`build_llamacpp` creates (a source build on one
core: minutes). :func:`run_llamacpp` runs ``benchmarks/llamacpp_worker.py`` with that
environment's Python on the shipped 4-bit GGUF of SmolLM2 (the file the fp32 model was
dequantized from) and returns its timed greedy answers. Every failure comes back as a
``"skipped: ..."`` reason with the command that fixes it, never as an exception: the
benchmark that asks (:mod:`dl2llm.efficiency.generation_bench`) reports the row as skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from dl2llm import paths
from dl2llm.assets import asset_file, get

LLAMACPP_VENV = paths.REPO_ROOT / "benchmarks" / ".venv-llamacpp"
LLAMACPP_WORKER = paths.REPO_ROOT / "benchmarks" / "llamacpp_worker.py"
LLAMACPP_PACKAGE = "llama-cpp-python==0.3.16"
BUILD_COMMAND = "nice -n 19 .venv/bin/python benchmarks/bench_generation.py --build-llamacpp"


def llamacpp_python() -> Path:
    """The Python interpreter of the llama.cpp virtual environment."""
    return LLAMACPP_VENV / "bin" / "python"


def build_llamacpp() -> str | None:
    """Create the llama.cpp venv and build llama-cpp-python (one build thread); why it failed."""
    try:
        subprocess.run([sys.executable, "-m", "venv", str(LLAMACPP_VENV)], check=True)
        env = {**os.environ, "CMAKE_BUILD_PARALLEL_LEVEL": "1"}
        pip = [str(llamacpp_python()), "-m", "pip", "install", LLAMACPP_PACKAGE]
        subprocess.run(pip, check=True, env=env)
    except (OSError, subprocess.CalledProcessError) as err:
        return f"skipped: building {LLAMACPP_PACKAGE} failed ({err}); retry with `{BUILD_COMMAND}`"
    return None


def gguf_path() -> Path:
    """The shipped GGUF file (the source of the fp32 model)."""
    (name,) = get("smollm2-gguf").files
    return asset_file("smollm2-gguf", name)


def run_llamacpp(
    prompts: list[list[int]], threads: int, new_tokens: int, warmup_tokens: int
) -> dict[str, Any] | str:
    """The worker's reply (see ``llamacpp_worker.py``), or why there is none."""
    if not llamacpp_python().is_file():
        return (
            f"skipped: no llama.cpp environment at {LLAMACPP_VENV}; build it with `{BUILD_COMMAND}`"
        )
    request = {
        "model": str(gguf_path()),
        "threads": threads,
        "new_tokens": new_tokens,
        "warmup_tokens": warmup_tokens,
        "prompts": prompts,
    }
    done = subprocess.run(
        [str(llamacpp_python()), str(LLAMACPP_WORKER)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        error = (done.stderr.strip().splitlines() or ["no message"])[-1]
        return f"skipped: the llama.cpp worker failed ({error}); rebuild with `{BUILD_COMMAND}`"
    return json.loads(done.stdout)
