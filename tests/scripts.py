"""Deliverable scripts imported as modules, so that tests call their ``parse`` and ``main``."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from dl2llm import paths


def load_script(relative_path: str) -> ModuleType:
    """The script at ``relative_path`` (from the repository root), freshly executed."""
    path = paths.REPO_ROOT / relative_path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
