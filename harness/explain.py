"""Plain-text explanations of case results: what failed, expected against obtained, and why.

Pure functions that compute lines; pytest's failure report and the terminal print them.
"""

from __future__ import annotations

from typing import Any

from harness.model import CaseResult, CheckOutcome, Trial
from harness.visible import shown

MAX_SHOWN = 300
"""Longest excerpt of an obtained value shown in failure text."""


def shorten(value: Any, limit: int = MAX_SHOWN) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = text.replace("\n", "\\n")
    if len(text) > limit:
        text = f"{text[:limit]}... ({len(text) - limit} more characters)"
    return text


def headline(result: CaseResult) -> str:
    """One line: the case, its verdict, and its pass rate against the threshold."""
    passed = result.passes
    total = len(result.trials)
    if result.verdict == "error":
        errors = sum(trial.verdict == "error" for trial in result.trials)
        return f"{result.case_id} errored: {errors} of {total} trial(s) ended in an error"
    return (
        f"{result.case_id} {'passed' if result.verdict == 'pass' else 'failed'}: "
        f"{passed} of {total} trial(s) passed (needs {result.min_pass_rate:.0%})"
    )


def check_lines(outcome: CheckOutcome, indent: str = "  ") -> list[str]:
    """A check's verdict with its reason and, unless it passed, its evidence."""
    placed = [f"turn {outcome.turn}"] if outcome.turn is not None else []
    placed += [f"line {outcome.line}"] if outcome.line else []
    where = f" ({', '.join(placed)})" if placed else ""
    label = {"pass": "pass ", "fail": "FAIL ", "error": "ERROR"}[outcome.verdict]
    lines = [f"{indent}{label} {outcome.kind}{where}: {outcome.reason}"]
    if outcome.verdict == "pass":
        return lines
    pad = indent + "      "
    if outcome.expected is not None:
        lines.append(f"{pad}expected: {shorten(outcome.expected)}")
    if outcome.obtained is not None:
        lines.append(f"{pad}obtained: {shorten(outcome.obtained)}")
    if outcome.score is not None:
        lines.append(f"{pad}score:    {outcome.score:g}")
    for key, value in outcome.evidence.items():
        if isinstance(value, str) and "\n" in value:
            lines.append(f"{pad}{key}:")
            lines.extend(f"{pad}  {part}" for part in value.splitlines())
        else:
            lines.append(f"{pad}{key}: {shorten(value)}")
    return lines


def conversation_lines(trial: Trial, indent: str = "") -> list[str]:
    """A multi-turn trial's conversation, one line per message, long messages shortened."""
    lines = [f"{indent}conversation:"] if trial.turns else []
    for number, turn in enumerate(trial.turns, start=1):
        lines.append(f"{indent}  turn {number} user:      {shorten(turn.user)}")
        answer = (shorten(turn.response.output) if turn.response is not None
                  else f"(no answer: {turn.error})")
        lines.append(f"{indent}  turn {number} assistant: {answer}")
    return lines


def trial_lines(trial: Trial, *, numbered: bool) -> list[str]:
    lines = [f"trial {trial.index}: {trial.verdict}"] if numbered else []
    indent = "  " if numbered else ""
    if trial.error is not None:
        lines.append(f"{indent}ERROR target: {trial.error}")
    for outcome in trial.checks:
        lines.extend(check_lines(outcome, indent))
    lines.extend(conversation_lines(trial, indent))
    return lines


def explain(result: CaseResult) -> str:
    """The failure text of a case: headline, where it is defined, and every check of every
    trial that did not pass (passing trials are summarised); invisible and direction-changing
    characters written as escapes."""
    lines = [headline(result)]
    about = [result.category, result.severity]
    if result.owner:
        about.append(f"owner {result.owner}")
    tags = ", ".join(a for a in about if a)
    lines.append(f"{result.path}:{result.line}" + (f"  [{tags}]" if tags else ""))
    numbered = len(result.trials) > 1
    for trial in result.trials:
        if trial.verdict == "pass" and numbered:
            lines.append(f"trial {trial.index}: pass")
            continue
        lines.extend(trial_lines(trial, numbered=numbered))
    return shown("\n".join(lines))
