"""Conventions shared by every deliverable script.

Each script accepts the same four flags (``--quick``, ``--seed``, ``--device``,
``--out``), seeds every random generator it uses, and reports its numbers
through :func:`dl2llm.results.save_results`. The shape of a script::

    def main(argv=None):
        parser = deliverable_parser(__doc__)
        run = start_run("my_lesson", parser, argv)      # flags, clock, seeds, --threads
        metrics, artifacts = my_lesson(run.args.quick)  # the lesson lives in the library
        print_metrics(metrics)
        run.save(metrics, config={...}, artifacts=artifacts)
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import torch

from dl2llm import paths
from dl2llm.assets import AssetError
from dl2llm.errors import UsageError
from dl2llm.hardware import machine_facts
from dl2llm.results import run_output_dir, save_results


class ArgumentParser(argparse.ArgumentParser):
    """``argparse`` with a one-line error message (no usage dump) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def deliverable_parser(description: str, threads: int | None | bool = False) -> ArgumentParser:
    """An ``ArgumentParser`` with the four flags every deliverable has.

    ``threads``: also offer ``--threads`` (torch CPU threads); an int is its default, ``None``
    leaves torch's own default unless the flag is given, ``False`` offers no flag.
    """
    parser = ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny settings that finish in seconds (used by CI)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--device",
        default="cpu",
        help="torch device: cpu, cuda, cuda:0 or auto (default: cpu)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=paths.results_dir(),
        help="folder for the results JSON and plots (default: results/)",
    )
    if threads is not False:
        default = "torch's default" if threads is None else threads
        parser.add_argument(
            "--threads",
            type=check_positive,
            default=threads,
            help=f"torch CPU threads (default: {default})",
        )
    return parser


@dataclass
class Run:
    """One run of a deliverable: its flags, start time and machine; it ends with :meth:`save`."""

    name: str
    args: argparse.Namespace
    started: float
    machine: dict[str, Any] = field(default_factory=machine_facts)

    def save(
        self,
        metrics: dict[str, Any],
        config: dict[str, Any],
        artifacts: list[str] | None = None,
    ) -> Path:
        """Write ``results/<name>.json`` (:func:`~dl2llm.results.save_results`) and say where."""
        path = save_results(
            self.name,
            metrics,
            out_dir=self.args.out,
            config=config,
            seed=self.args.seed,
            quick=self.args.quick,
            started=self.started,
            artifacts=artifacts,
            machine=self.machine,
        )
        print(f"results: {path}")
        return path


def start_run(name: str, parser: ArgumentParser, argv: list[str] | None) -> Run:
    """Parse the flags, start the clock, seed every generator, set ``--threads`` if offered.

    A quick run whose ``--out`` holds a full-mode record of ``name`` writes to
    ``<out>/quick/`` instead (:func:`~dl2llm.results.run_output_dir`), plots included.
    """
    args = parser.parse_args(argv)
    args.out = run_output_dir(args.out, name, args.quick)  # :meth:`Run.save` prints where
    started = time.perf_counter()
    set_seed(args.seed)
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    return Run(name, args, started)


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and PyTorch so that runs repeat exactly."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)


def resolve_device(name: str) -> torch.device:
    """Turn ``--device`` into a ``torch.device``, refusing devices that are absent."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise UsageError(f"--device: unknown device '{name}' (use cpu, cuda or auto)") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA GPU is available here (use --device cpu)")
    if device.type not in ("cpu", "cuda"):
        raise UsageError(f"--device: unsupported device type '{device.type}' (use cpu or cuda)")
    return device


def check_positive(value: str) -> int:
    """``argparse`` type for a positive integer, with a readable error."""
    try:
        number = int(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{value}'") from err
    if number <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {number}")
    return number


def run_main(main: Callable[[list[str] | None], int | None]) -> NoReturn:
    """Run a script's ``main`` and turn user errors into one line and exit status 2.

    Bad input (:class:`UsageError`) and missing or damaged assets
    (:class:`~dl2llm.assets.AssetError`) are the user's to fix, so they get a
    message that says what was wrong, not a traceback.
    """
    try:
        code = main(None)
    except (UsageError, AssetError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)


def notebook_settings() -> argparse.Namespace:
    """The deliverable flags inside a notebook (set by :mod:`dl2llm.notebooks`).

    Opened by hand in Jupyter, a notebook gets the full-mode defaults.
    """
    return argparse.Namespace(
        quick=os.environ.get("DL2LLM_QUICK", "0") == "1",
        seed=int(os.environ.get("DL2LLM_SEED", "0")),
        device=os.environ.get("DL2LLM_DEVICE", "cpu"),
        out=Path(os.environ.get("DL2LLM_OUT", paths.results_dir())),
    )
