"""Helpers that checks use to state their verdict; the runner stamps the kind and line."""

from __future__ import annotations

from typing import Any

from harness.model import CheckOutcome


def passed(reason: str, *, score: float | None = None, expected: Any = None,
           obtained: Any = None, **evidence: Any) -> CheckOutcome:
    """A passing verdict with its one-line reason and the evidence behind it."""
    return CheckOutcome(kind="", verdict="pass", reason=reason, score=score, expected=expected,
                        obtained=obtained, evidence=evidence)


def failed(reason: str, *, score: float | None = None, expected: Any = None,
           obtained: Any = None, **evidence: Any) -> CheckOutcome:
    """A failing verdict with its one-line reason and the evidence a reviewer needs."""
    return CheckOutcome(kind="", verdict="fail", reason=reason, score=score, expected=expected,
                        obtained=obtained, evidence=evidence)


def errored(reason: str, **evidence: Any) -> CheckOutcome:
    """No verdict: what the check needed did not answer (a judge that failed, a cap reached).
    An error is never a pass; the gate blocks on it."""
    return CheckOutcome(kind="", verdict="error", reason=reason, evidence=evidence)


def excerpt(text: str, start: int, end: int, *, context: int = 40) -> str:
    """The matched span of ``text`` with a little context either side, marked with [[ ]]."""
    left = max(0, start - context)
    right = min(len(text), end + context)
    before = ("..." if left > 0 else "") + text[left:start]
    after = text[end:right] + ("..." if right < len(text) else "")
    return f"{before}[[{text[start:end]}]]{after}"
