"""Execute a course notebook headless, the way CI and ``dl2llm run`` do.

    python -m dl2llm.notebooks weeks/week2_transformers/annotated_transformer.ipynb --quick

The deliverable flags travel to the notebook through the environment
(``DL2LLM_QUICK``, ``DL2LLM_SEED``, ``DL2LLM_DEVICE``, ``DL2LLM_OUT``); the
notebook reads them with :func:`dl2llm.runtime.notebook_settings`. The executed
copy, outputs included, is saved next to the results as ``<name>.executed.ipynb``.
A quick run never overwrites a full-mode run's results: see
:func:`dl2llm.results.run_output_dir`.
"""

from __future__ import annotations

import os
from pathlib import Path

from dl2llm.hardware import current_load
from dl2llm.results import START_LOAD_ENV, run_output_dir
from dl2llm.runtime import UsageError, deliverable_parser, run_main


def execute(path: Path, out: Path, quick: bool, seed: int, device: str, timeout_s: int) -> Path:
    """Run every cell of ``path``; raises ``CellExecutionError`` on the first failure."""
    import nbformat
    from nbclient import NotebookClient

    if not path.is_file():
        raise UsageError(f"notebook not found: {path}")
    out = run_output_dir(out, path.stem, quick)
    os.environ.update(
        DL2LLM_QUICK="1" if quick else "0",
        DL2LLM_SEED=str(seed),
        DL2LLM_DEVICE=device,
        DL2LLM_OUT=str(out.resolve()),
    )
    load = current_load()
    os.environ[START_LOAD_ENV] = "" if load is None else str(load)
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=timeout_s,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    out.mkdir(parents=True, exist_ok=True)
    executed = out / f"{path.stem}.executed.ipynb"
    nbformat.write(notebook, executed)
    return executed


def main(argv: list[str] | None = None) -> int:
    parser = deliverable_parser("Execute a dl2llm notebook headless.")
    parser.add_argument("notebook", type=Path, help="path to the .ipynb file")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    args = parser.parse_args(argv)
    executed = execute(args.notebook, args.out, args.quick, args.seed, args.device, args.timeout)
    print(f"executed notebook saved to {executed}")
    return 0


if __name__ == "__main__":
    run_main(main)
