"""``harness case close``: a finished draft becomes a closed incident case, in one command.

A draft closes when nothing is left to fill (no ``TODO: ...``, an owner named) and its checks
fail on the incident's own evidence, as ``harness check`` requires of every incident case (a
case that passes on what went wrong guards nothing). Closing removes ``draft: true`` and the
draft's header comment, sets ``status: closed`` and records ``timeline.closed``; the rest of
the file, comments included, stays as the person wrote it. The file is rewritten only once the
result loads.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from harness.errors import InputError
from harness.intake import registry_check, writer
from harness.loader import cases_root, load_case, read_yaml

_DRAFT = re.compile(r"^draft:\s*(?:true|True|yes)\s*(?:#.*)?$")
_STATUS = re.compile(r"^status:.*$")
_TIMELINE = re.compile(r"^timeline:\s*(.*)$")
HEADERS = ("# Draft incident case", "# Drafted by `harness")


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a draft cannot close yet: what is left to fill, and what the proof found."""

    left: tuple[str, ...] = ()
    findings: tuple[registry_check.Finding, ...] = ()

    def lines(self) -> list[str]:
        shown = []
        if self.left:
            shown.append(f"left to fill: {', '.join(self.left)}")
        shown += [finding.render() for finding in self.findings]
        return shown


class NotClosable(Exception):
    """The draft is not finished; :attr:`refusal` says what is missing."""

    def __init__(self, path: Path, refusal: Refusal) -> None:
        self.path = path
        self.refusal = refusal
        super().__init__(f"{path}: cannot close")


def _closed_timeline(lines: list[str], moment: str) -> list[str]:
    """``lines`` with ``closed: moment`` in the timeline (added when the timeline has none)."""
    start = next((i for i, line in enumerate(lines) if _TIMELINE.match(line)), None)
    if start is None:
        return [*lines, "timeline:\n", f"  closed: {moment}\n"]
    inline = _TIMELINE.match(lines[start])
    rest = inline.group(1).split("#", 1)[0].strip() if inline else ""
    if rest:  # flow style: {detected: ..., contained: ...}
        steps = yaml.safe_load(rest) or {}
        if "closed" not in steps:
            steps["closed"] = moment
        flow = yaml.safe_dump(steps, default_flow_style=True, sort_keys=False).strip()
        return [*lines[:start], f"timeline: {flow}\n", *lines[start + 1:]]
    end = start + 1
    while end < len(lines) and (lines[end].startswith((" ", "\t")) or not lines[end].strip()):
        end += 1
    block = lines[start + 1:end]
    if any(re.match(r"^\s+closed\s*:", line) for line in block):
        return lines
    while block and not block[-1].strip():
        block.pop()
        end -= 1
    # the indent of the timeline's first step: a blank line above it has none to copy
    step = next((line for line in block if line.strip()), None)
    indent = step[: len(step) - len(step.lstrip())] if step else "  "
    return [*lines[:end], f"{indent}closed: {moment}\n", *lines[end:]]


def closed_text(text: str, moment: str) -> str:
    """The text of a case file once closed (see the module)."""
    lines = text.splitlines(keepends=True)
    if lines and lines[0].startswith(HEADERS):
        while lines and lines[0].startswith("#"):
            lines.pop(0)
    lines = [line for line in lines if not _DRAFT.match(line.rstrip("\n"))]
    lines = [_STATUS.sub("status: closed", line.rstrip("\n")) + "\n" if _STATUS.match(line)
             else line for line in lines]
    if not any(_STATUS.match(line) for line in lines):
        lines.append("status: closed\n")
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    return "".join(_closed_timeline(lines, moment))


def close_case(path: Path, *, now: dt.datetime | None = None, no_cache: bool = False) -> Path:
    """Close the draft incident case at ``path`` (see the module); :class:`NotClosable` says
    what is left, :class:`InputError` is bad input (a file that does not load, a baseline case,
    a case that is not a draft)."""
    case = load_case(path)
    if case.incident is None:
        raise InputError("a baseline case has no incident to close", path=path)
    data, text = read_yaml(path)
    if data.get("draft") is not True and case.incident.status == "closed":
        raise InputError("already closed", path=path, field="status")
    left = tuple(writer.left_to_fill(data))
    root = cases_root(path)
    judging = registry_check.Judging(registry_check.load_suites(root), [case], enabled=True,
                                     no_cache=no_cache)
    findings = tuple(registry_check.evidence_findings([case], judging, root))
    if left or findings:
        raise NotClosable(path, Refusal(left, findings))
    moment = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    stamp = moment.isoformat().replace("+00:00", "Z")
    writer.write_case(path, closed_text(text, stamp), replace=True)
    return path
