"""The grader-only side of a check: the reference functions and the named mistakes, as a ``gradekit`` Reference.

Both come from ``source/<assignment>/``, which nothing but the grader's process reads: the reference functions are the
solution cells of the instructor's notebook (``notebook.reference_functions``), the mistakes are ``mistakes.py``
beside it (``MISTAKES``: check class -> {hint: wrong implementation}). They are loaded by file path, never put on an
import path, so the student's kernel cannot import them and the release cannot ship them.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

from gradekit.checks import Reference

from autograder.notebook import reference_functions


@functools.lru_cache(maxsize=16)
def _module(path: str, mtime: float):
    spec = importlib.util.spec_from_file_location(f"_grader_only_mistakes_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def mistakes(assignment) -> dict:
    """Every named mistake the assignment's checks try, by check class."""
    known: dict = {}
    for path in assignment.mistake_files:
        known |= getattr(_module(str(path), Path(path).stat().st_mtime), "MISTAKES", {})
    return known


def reference(assignment) -> Reference:
    return Reference(reference_functions(assignment), mistakes(assignment))
