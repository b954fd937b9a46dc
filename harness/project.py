"""The project's own code: ``module:attribute`` references, imported from the project folder.

A suite's ``python:`` targets and checks name code of the project (the folder holding
``cases/`` and ``suites/``). Only the code that runs targets and checks imports it; reading a
suite to decide never does. The project folder is appended to ``sys.path``, never put first, so
a file in it called ``deepdiff.py`` or a folder ``cryptography/`` cannot stand in for a library
the harness itself imports.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any


class ReferenceProblem(ValueError):
    """A ``module:attribute`` reference that does not lead to a callable; the message says why.

    Callers turn it into the error of their layer (bad input at a target's line, a check's
    parameter), so it is not a :class:`~harness.errors.HarnessError` itself.
    """


def append_to_path(root: Path) -> None:
    """Make the project's modules importable, after everything already on ``sys.path``."""
    entry = str(root)
    if entry not in sys.path:
        sys.path.append(entry)


def import_reference(reference: str, *, root: Path | None, what: str = "callable") -> Any:
    """Import ``package.module:attribute`` (dotted attributes allowed) and return it.

    ``root`` (the project folder) is appended to ``sys.path`` first. Raises
    :class:`ReferenceProblem` for a malformed reference, a module that cannot be imported or
    raises while importing, a missing attribute, or an attribute that is not callable.
    """
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        problem = f"expected 'package.module:{what}', found {reference!r}"
        raise ReferenceProblem(problem)
    if root is not None:
        append_to_path(root)
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        problem = f"cannot import module {module_name!r}: {exc}"
        raise ReferenceProblem(problem) from None
    except Exception as exc:  # a module that fails while importing is a bad reference too
        problem = f"importing module {module_name!r} raised {type(exc).__name__}: {exc}"
        raise ReferenceProblem(problem) from None
    for part in attribute.split("."):
        if not hasattr(obj, part):
            problem = f"module {module_name!r} has no attribute {attribute!r}"
            raise ReferenceProblem(problem)
        obj = getattr(obj, part)
    if not callable(obj):
        problem = f"{reference!r} is not callable"
        raise ReferenceProblem(problem)
    return obj
