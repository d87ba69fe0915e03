"""The machinery of an exercise: starter files, check cases and the checker.

An :class:`Exercise` declares

- the library code it mirrors (``mirrors``, dotted names), and a ``library()``
  function that returns those implementations under the names the learner writes;
- a starter ``template``: imports, signatures, docstrings and shape comments, with
  every body ``raise NotImplementedError``;
- ``cases()``: a list of :class:`Case`, each with a name, a ``run`` that calls the
  code under test on fixed inputs, an ``expected`` computed by the reference
  library (PyTorch, ``peft``, ``tiktoken``, Hugging Face ``tokenizers``...) and a
  tolerance.

:func:`check_namespace` runs every case against any object that holds the names
(the learner's module, imported by path with :mod:`importlib`, or the library);
a failing case reports which case, expected and got. The CI tests run every
check against the library (all must pass) and against the untouched starter (all
must fail), so a check can neither pass vacuously nor be wrong.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from dl2llm.runtime import UsageError

MAX_SHOWN = 6  # array entries shown in a failure message


@dataclass(frozen=True)
class Case:
    """One check: ``run(code)`` must give ``expected()`` within ``atol + rtol * |expected|``."""

    name: str
    run: Callable[[Any], Any]
    expected: Callable[[], Any]
    atol: float = 1e-6
    rtol: float = 1e-5


@dataclass(frozen=True)
class Exercise:
    """A from-scratch piece of the course that a learner writes and the checker grades."""

    name: str
    title: str
    week: int
    mirrors: tuple[str, ...]
    template: str
    cases: Callable[[], list[Case]]
    library: Callable[[], Any]

    @property
    def file_name(self) -> str:
        return f"{self.name}.py"


@dataclass(frozen=True)
class CaseResult:
    """The outcome of one case; ``message`` says what differed (empty when it passed)."""

    name: str
    passed: bool
    message: str = ""


def _as_array(value: Any) -> np.ndarray | None:
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch.Tensor
        return value.detach().cpu().double().numpy()
    if isinstance(value, np.ndarray):
        return value
    return None


def _preview(array: np.ndarray) -> str:
    flat = array.ravel()
    shown = ", ".join(f"{v:.6g}" for v in flat[:MAX_SHOWN])
    return f"[{shown}{', ...' if flat.size > MAX_SHOWN else ''}] (shape {tuple(array.shape)})"


def _compare_arrays(got: np.ndarray, expected: np.ndarray, atol: float, rtol: float) -> str:
    if got.shape != expected.shape:
        return f"shape {tuple(got.shape)}, expected shape {tuple(expected.shape)}"
    if expected.dtype.kind not in "fc" and got.dtype.kind not in "fc":
        if np.array_equal(got, expected):
            return ""
        index = tuple(int(i) for i in np.argwhere(got != expected)[0])
        return f"at index {index}: got {got[index]}, expected {expected[index]}"
    close = np.isclose(
        got.astype(float), expected.astype(float), atol=atol, rtol=rtol, equal_nan=True
    )
    if close.all():
        return ""
    index = tuple(int(i) for i in np.argwhere(~close)[0])
    return (
        f"{int((~close).sum())} of {close.size} values differ (atol={atol:g}, rtol={rtol:g}); "
        f"first at index {index}: got {got[index]:.8g}, expected {expected[index]:.8g}\n"
        f"      got      {_preview(got)}\n      expected {_preview(expected)}"
    )


def compare(got: Any, expected: Any, atol: float, rtol: float, where: str = "") -> str:
    """``""`` when ``got`` matches ``expected``, else what differs (recursing into containers)."""
    at = f"{where}: " if where else ""
    expected_array = _as_array(expected)
    if expected_array is not None:
        got_array = _as_array(got)
        if got_array is None:
            return f"{at}got a {type(got).__name__}, expected an array/tensor"
        problem = _compare_arrays(got_array, expected_array, atol, rtol)
        return f"{at}{problem}" if problem else ""
    if isinstance(expected, Mapping):
        if not isinstance(got, Mapping) or set(got) != set(expected):
            return f"{at}got {got!r:.200}, expected keys {sorted(expected)!r}"
        problems = (compare(got[k], expected[k], atol, rtol, f"{where}[{k!r}]") for k in expected)
        return next((p for p in problems if p), "")
    if isinstance(expected, Sequence) and not isinstance(expected, str | bytes):
        if not isinstance(got, Sequence) or isinstance(got, str | bytes):
            return f"{at}got {type(got).__name__} {got!r:.200}, expected a sequence"
        if len(got) != len(expected):
            return (
                f"{at}got {len(got)} items, expected {len(expected)}: "
                f"got {got!r:.300}, expected {expected!r:.300}"
            )
        problems = (
            compare(g, e, atol, rtol, f"{where}[{i}]")
            for i, (g, e) in enumerate(zip(got, expected, strict=True))
        )
        return next((p for p in problems if p), "")
    if isinstance(expected, float) and not isinstance(got, str | bytes):
        try:
            value = float(got)
        except (TypeError, ValueError):
            return f"{at}got {got!r:.200}, expected the number {expected:.8g}"
        if math.isclose(value, expected, rel_tol=rtol, abs_tol=atol) or (
            math.isnan(value) and math.isnan(expected)
        ):
            return ""
        return f"{at}got {value:.8g}, expected {expected:.8g} (atol={atol:g}, rtol={rtol:g})"
    if got != expected:
        return f"{at}got {got!r:.300}, expected {expected!r:.300}"
    return ""


def run_case(case: Case, code: Any) -> CaseResult:
    """Run one case; an exception in the code under test is a failure, with its last frame."""
    try:
        got = case.run(code)
    except NotImplementedError:
        return CaseResult(case.name, False, "not implemented yet (raises NotImplementedError)")
    except Exception as err:  # the learner's code may raise anything
        frame = traceback.extract_tb(err.__traceback__)[-1]
        where = f"{Path(frame.filename).name}:{frame.lineno}"
        return CaseResult(case.name, False, f"raised {type(err).__name__}: {err} (at {where})")
    problem = compare(got, case.expected(), case.atol, case.rtol)
    return CaseResult(case.name, not problem, problem)


def check_namespace(exercise: Exercise, code: Any) -> list[CaseResult]:
    """Every case of ``exercise`` against ``code`` (a module or namespace with its names)."""
    return [run_case(case, code) for case in exercise.cases()]


def load_module(path: str | Path, module_name: str) -> ModuleType:
    """Import a learner's file by path. Unreadable files raise :class:`UsageError`."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"no file {path}: run `dl2llm exercise start {module_name}` first")
    try:
        path.read_bytes()
    except OSError as err:
        raise UsageError(f"cannot read {path}: {err.strerror}") from err
    spec = importlib.util.spec_from_file_location(f"dl2llm_exercise_{module_name}", path)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot import {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pickling look modules up here
    spec.loader.exec_module(module)
    return module


def check_file(exercise: Exercise, path: str | Path) -> list[CaseResult]:
    """Import ``path`` and run every case; an import error fails every case with its reason."""
    try:
        module = load_module(path, exercise.name)
    except UsageError:
        raise
    except Exception as err:  # a syntax error or a failing import in the learner's file
        reason = f"the file does not import: {type(err).__name__}: {err}"
        return [CaseResult(case.name, False, reason) for case in exercise.cases()]
    return check_namespace(exercise, module)


def format_results(results: list[CaseResult]) -> str:
    """One line per case (PASS/FAIL), the reason indented under each failure, then a total."""
    lines = []
    for result in results:
        lines.append(f"  {'PASS' if result.passed else 'FAIL'}  {result.name}")
        if not result.passed:
            lines += [f"        {line}" for line in result.message.splitlines()]
    passed = sum(r.passed for r in results)
    lines.append(f"{passed}/{len(results)} cases pass")
    return "\n".join(lines) + "\n"
