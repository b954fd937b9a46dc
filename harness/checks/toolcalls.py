"""Reading tool calls: paths into their arguments, comparing arguments, showing them.

Shared by the automation-error and human-review checks (and the JSON check's comparison).
Tool calls are named by their position in the response, ``tool_calls[i]`` (counting from 0).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from harness.checks.outcome import failed
from harness.errors import CheckParamError
from harness.model import CheckOutcome, TargetResponse, ToolCall, plain

DIFF_LINES = 20
VALUE_CHARS = 80

MISSING: Any = object()
"""What :func:`resolve` returns for a path that leads nowhere."""

PATH_HELP = "write e.g. note, items[0].sku or ['odd key']"


def call_dict(index: int, call: ToolCall) -> dict[str, Any]:
    """A tool call as evidence: its position in ``tool_calls``, name, arguments and result."""
    return {"index": index, "name": call.name, "args": plain(call.args),
            "result": plain(call.result)}


def call_names(response: TargetResponse) -> list[str]:
    return [call.name for call in response.tool_calls]


def times(count: int, noun: str = "time") -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def show(value: Any) -> str:
    """A value as a reason shows it: its repr, cut to a readable length."""
    text = repr(value)
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 3] + "..."


def unreported_calls(response: TargetResponse, claim: str) -> CheckOutcome | None:
    """A failure when the target did not report its tool calls, so ``claim`` cannot be checked."""
    if "tool_calls" in response.reported:
        return None
    return failed(f"the target reported no tool calls; cannot confirm {claim}",
                  expected=claim, obtained=None)


_NAME = re.compile(r"[^.\[\]]+")
_INDEX = re.compile(r"\[(\d+)\]")
_QUOTED = re.compile(r"""\[(['"])(.*?)\1\]""")


def parse_path(path: str) -> tuple[str | int, ...]:
    """``items[0].sku`` -> ``('items', 0, 'sku')``; ``['a.b']`` names a key with a dot in it.

    Raises ``ValueError`` for anything else.
    """
    segments: list[str | int] = []
    pos = 0
    while pos < len(path):
        if path[pos] == "[":
            found = _INDEX.match(path, pos) or _QUOTED.match(path, pos)
            if found is None:
                raise ValueError(path)
            segments.append(int(found.group(1)) if found.re is _INDEX else found.group(2))
        else:
            if segments:
                if path[pos] != ".":
                    raise ValueError(path)
                pos += 1
            found = _NAME.match(path, pos)
            if found is None:
                raise ValueError(path)
            segments.append(found.group(0))
        pos = found.end()
    if not segments:
        raise ValueError(path)
    return tuple(segments)


def read_path(param: str, path: Any) -> tuple[str | int, ...]:
    """A parameter's argument or field path, parsed; a bad one raises ``CheckParamError``."""
    if not isinstance(path, str):
        raise CheckParamError(f"expected a path string, found {path!r}", param=param)
    try:
        return parse_path(path)
    except ValueError:
        raise CheckParamError(f"cannot read path {path!r}; {PATH_HELP}", param=param) from None


def resolve(value: Any, segments: Sequence[str | int]) -> Any:
    """The value at ``segments`` inside ``value``, or :data:`MISSING`."""
    for segment in segments:
        if isinstance(segment, int) and isinstance(value, list | tuple):
            if segment >= len(value):
                return MISSING
            value = value[segment]
        elif isinstance(value, Mapping) and segment in value:
            value = value[segment]
        else:
            return MISSING
    return value


# --- comparing arguments -------------------------------------------------------------------


class _EpsilonNotice(logging.Filter):
    """Drops deepdiff's notice, logged on every comparison that has both ignore_order and a
    tolerance, that the tolerance is not applied inside nested objects (a documented limit)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "math_epsilon in conjunction with ignore_order" not in record.getMessage()


@contextlib.contextmanager
def _without_epsilon_notice() -> Iterator[None]:
    """For one comparison only: the filter is on deepdiff's logger while it runs, and off
    after, so nothing of another library's logging changes when this module is imported."""
    logger = logging.getLogger("deepdiff.diff")
    notice = _EpsilonNotice()
    logger.addFilter(notice)
    try:
        yield
    finally:
        logger.removeFilter(notice)


def deepdiff_path(segments: Sequence[str | int]) -> str:
    return "root" + "".join(f"[{s}]" if isinstance(s, int) else f"[{s!r}]" for s in segments)


def _project(obtained: Any, expected: Any) -> Any:
    """The parts of ``obtained`` that ``expected`` mentions, at every depth (partial match).

    Mappings inside a list are cut to the keys that any mapping of the expected list has.
    """
    if isinstance(expected, dict) and isinstance(obtained, dict):
        return {key: _project(value, expected[key]) for key, value in obtained.items()
                if key in expected}
    if isinstance(expected, list) and isinstance(obtained, list):
        template: dict[Any, Any] = {}
        for item in expected:
            if isinstance(item, dict):
                for key, value in item.items():
                    template.setdefault(key, value)
        return [_project(item, template) if template else item for item in obtained]
    return obtained


def _labelled(path: str | None, label: str) -> str:
    path = path or "root"
    return label + path[4:] if path.startswith("root") else path


def _describe(report: str, level: Any, label: str) -> str:
    if report.endswith("_added"):
        where = _labelled(level.path(use_t2=True), label)
        return f"{where}: not expected, obtained {show(level.t2)}"
    path = _labelled(level.path(), label)
    if report.endswith("_removed"):
        return f"{path}: expected {show(level.t1)}, missing from the call"
    if report in ("values_changed", "type_changes"):
        return f"{path}: expected {show(level.t1)}, obtained {show(level.t2)}"
    return f"{path}: {report.replace('_', ' ')}"


def diff_args(
    expected: Mapping[str, Any],
    obtained: Mapping[str, Any],
    *,
    partial: bool = True,
    exclude: Sequence[str] = (),
    ignore_order: bool = False,
    tolerance: float | None = None,
    label: str = "args",
) -> list[str]:
    """The differences between expected and obtained arguments, one readable line each
    (``args['order_id']: expected 'A-1001', obtained 'A-1002'``); empty when they agree.

    ``exclude`` holds deepdiff paths (``root['note']``). Integers and floats compare by value.
    """
    from deepdiff import DeepDiff  # imported on first use: it brings pandas and numpy

    want = plain(expected)
    got = plain(obtained)
    if partial:
        got = _project(got, want)
    with _without_epsilon_notice():
        tree = DeepDiff(want, got, view="tree", exclude_paths=list(exclude) or None,
                        ignore_order=ignore_order, math_epsilon=tolerance,
                        ignore_numeric_type_changes=True)
    return sorted(_describe(report, level, label) for report, levels in tree.items()
                  for level in levels)


def summarize(lines: Sequence[str]) -> str:
    """Diff lines joined on one line, the tail cut after :data:`DIFF_LINES`."""
    shown = list(lines[:DIFF_LINES])
    if len(lines) > DIFF_LINES:
        shown.append(f"... ({len(lines) - DIFF_LINES} more differences)")
    return "; ".join(shown)
