"""Output-quality checks: what the workflow's answer text says."""

from __future__ import annotations

import difflib
import re

from harness.checks.outcome import excerpt, failed, passed
from harness.checks.registry import Params, register
from harness.errors import CheckParamError
from harness.model import Case, Check, CheckOutcome, TargetResponse

DIFF_LINES = 40

IGNORE_CASE = "Compare without regard to case (default false)."


def _diff(expected: str, obtained: str) -> str:
    lines = list(
        difflib.unified_diff(
            expected.splitlines(), obtained.splitlines(), "expected", "obtained", lineterm=""
        )
    )
    if len(lines) > DIFF_LINES:
        lines = [*lines[:DIFF_LINES], f"... ({len(lines) - DIFF_LINES} more diff lines)"]
    return "\n".join(lines)


@register(
    "equals",
    summary="The whole output equals a value (after trimming surrounding white space).",
    params={"value": "The expected output.", "ignore_case": IGNORE_CASE},
    shorthand="value",
    category="output_quality",
    example='- equals: "Your order A-1001 has shipped."',
)
def equals(params: Params) -> Check:
    expected = params.value("value")
    if not isinstance(expected, str | int | float) or isinstance(expected, bool):
        raise CheckParamError("expected a string or a number", param="value")
    expected = str(expected)
    ignore_case = params.flag("ignore_case")

    def check(response: TargetResponse, case: Case) -> CheckOutcome:
        obtained = response.output.strip()
        want = expected.strip()
        same = obtained.casefold() == want.casefold() if ignore_case else obtained == want
        if same:
            return passed("output equals the expected text", expected=want, obtained=obtained)
        return failed("output differs from the expected text", expected=want,
                      obtained=obtained, diff=_diff(want, obtained))

    return check


def _find(text: str, needle: str, ignore_case: bool) -> tuple[int, int]:
    """The span of ``needle`` in ``text`` as indexes of ``text``, or (-1, -1)."""
    if not ignore_case:
        at = text.find(needle)
        return (at, at + len(needle)) if at >= 0 else (-1, -1)
    # Case folding can change a text's length ("ß" -> "ss"): map folded indexes back.
    origin = [i for i, char in enumerate(text) for _ in char.casefold()]
    folded_needle = needle.casefold()
    at = text.casefold().find(folded_needle)
    if at < 0:
        return -1, -1
    return origin[at], origin[at + len(folded_needle) - 1] + 1


def _contains_check(params: Params, *, negate: bool) -> Check:
    text = params.text("text")
    if not text:
        raise CheckParamError("expected a non-empty string", param="text")
    ignore_case = params.flag("ignore_case")

    def check(response: TargetResponse, case: Case) -> CheckOutcome:
        output = response.output
        at, end = _find(output, text, ignore_case)
        expected = f"not {text!r}" if negate else repr(text)
        if at < 0:
            verdict = passed if negate else failed
            return verdict(f"output does not contain {text!r}", expected=expected,
                           obtained=output)
        span = excerpt(output, at, end)
        verdict = failed if negate else passed
        return verdict(f"output contains {text!r}", expected=expected, obtained=output,
                       match=span)

    return check


@register(
    "contains",
    summary="The output contains a text.",
    params={"text": "The text to find.", "ignore_case": IGNORE_CASE},
    shorthand="text",
    category="output_quality",
    example='- contains: {text: "30 days", ignore_case: true}',
)
def contains(params: Params) -> Check:
    return _contains_check(params, negate=False)


@register(
    "not_contains",
    summary="The output does not contain a text.",
    params={"text": "The text that must not appear.", "ignore_case": IGNORE_CASE},
    shorthand="text",
    category="output_quality",
    example='- not_contains: "full refund"',
)
def not_contains(params: Params) -> Check:
    return _contains_check(params, negate=True)


def _regex_check(params: Params, *, negate: bool) -> Check:
    source = params.text("pattern")
    flags = re.IGNORECASE if params.flag("ignore_case") else 0
    try:
        pattern = re.compile(source, flags)
    except re.error as exc:
        raise CheckParamError(f"invalid regular expression: {exc}", param="pattern") from None

    def check(response: TargetResponse, case: Case) -> CheckOutcome:
        output = response.output
        found = pattern.search(output)
        expected = f"no match of /{source}/" if negate else f"a match of /{source}/"
        if found is None:
            verdict = passed if negate else failed
            return verdict(f"output does not match /{source}/", expected=expected,
                           obtained=output)
        span = excerpt(output, found.start(), found.end())
        verdict = failed if negate else passed
        return verdict(f"output matches /{source}/ at {found.group(0)!r}", expected=expected,
                       obtained=output, match=span)

    return check


@register(
    "regex",
    summary="The output matches a regular expression (Python syntax, searched anywhere).",
    params={"pattern": "The regular expression.", "ignore_case": IGNORE_CASE},
    shorthand="pattern",
    category="output_quality",
    example='- regex: {pattern: "within 30 (calendar )?days", ignore_case: true}',
)
def regex(params: Params) -> Check:
    return _regex_check(params, negate=False)


@register(
    "not_regex",
    summary="The output does not match a regular expression.",
    params={"pattern": "The regular expression that must not match.",
            "ignore_case": IGNORE_CASE},
    shorthand="pattern",
    category="output_quality",
    example='- not_regex: "refunded .* A-1002"',
)
def not_regex(params: Params) -> Check:
    return _regex_check(params, negate=True)
