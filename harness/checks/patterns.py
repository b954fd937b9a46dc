"""Regular expressions from case files, on an engine that stops at the check's budget.

Python's ``re`` cannot be interrupted: a pattern such as ``^(\\w+\\s?)*$`` on twenty words
ending in ``!`` backtracks for hours. Patterns here are compiled with the ``regex`` package
(compatible with ``re``'s syntax), whose matching stops when the check's time budget
(:mod:`harness.budget`) runs out.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import regex

from harness.budget import BudgetExceeded, remaining
from harness.errors import CheckParamError

Pattern = Any  # regex.Pattern[str], which the regex package's stubs do not export
Match = Any


def compile_pattern(source: str, *, param: str, ignore_case: bool = False) -> Pattern:
    """The compiled pattern; an invalid one is a :class:`CheckParamError` naming ``param``."""
    try:
        return regex.compile(source, regex.IGNORECASE if ignore_case else 0)
    except (regex.error, ValueError, OverflowError) as exc:
        raise CheckParamError(f"invalid regular expression: {exc}", param=param) from None


def search(pattern: Pattern, text: str) -> Match | None:
    """The first match, stopping at the check's deadline (:class:`BudgetExceeded`)."""
    try:
        return pattern.search(text, timeout=remaining())
    except TimeoutError:
        raise BudgetExceeded from None


def finditer(pattern: Pattern, text: str) -> Iterator[Match]:
    """Every match, stopping at the check's deadline (:class:`BudgetExceeded`)."""
    try:
        yield from pattern.finditer(text, timeout=remaining())
    except TimeoutError:
        raise BudgetExceeded from None
