"""What differs between two responses: the output word by word, and the tool calls aligned by
name and arguments.

:mod:`harness.compare` computes these once per case and ``harness compare`` and the HTML
report show the same result: the report marks the word diff inline, the terminal prints it as
:func:`output_lines`, and both print the tool calls as :func:`call_lines`.

Tool calls are aligned before they are diffed (:func:`align_calls`): a call missing at the start
reads as one removed call, not as every later call changed. Calls with the same name and the
same arguments are the same call; of the calls left over, one found in both runs at a different
place is ``moved``, and a removed and an added call of the same name are one ``changed`` call,
shown argument by argument. A call's time (``at``) and its annotations are not compared.
"""

from __future__ import annotations

import difflib
import json
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from harness.model import ToolCall

MAX_DIFF_WORDS = 2_000
"""Outputs longer than this many words are diffed only up to it; the rest is counted."""
MAX_DIFF_CHARS = 50_000
"""Nor beyond this many characters, however long one word is."""
MAX_DIFF_WORK = 100_000
"""Pairs of equal words across the two texts beyond which a word repeated throughout the text
no longer anchors the diff: repetitive text (a workflow looping on one sentence) otherwise takes
minutes to diff."""
MAX_SHOWN_CHANGES = 12
"""Changes shown as lines (a change: words removed, added or replaced in one place); the rest
are counted."""
MAX_SHOWN_CHARS = 200
"""Longest stretch of words, or rendering of a value, shown on one line."""
CONTEXT_WORDS = 5
"""Unchanged words shown on either side of a change."""

_TOKEN = re.compile(r"\S+|\s+")

# --- outputs, word by word ------------------------------------------------------------------


def _diffed(text: str) -> list[str]:
    """The words of ``text``, with the whitespace between them, up to the caps."""
    tokens = _TOKEN.findall(text[:MAX_DIFF_CHARS])
    words = 0
    for index, token in enumerate(tokens):
        if not token[0].isspace():
            words += 1
            if words > MAX_DIFF_WORDS:
                return tokens[:index]
    return tokens


def _is_space(token: str) -> bool:
    return token[0].isspace()


def _common_ends(old: list[str], new: list[str]) -> tuple[int, int]:
    """How many tokens the two lists share at their start, and then at their end."""
    head = 0
    shorter = min(len(old), len(new))
    while head < shorter and old[head] == new[head]:
        head += 1
    tail = 0
    while tail < shorter - head and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    return head, tail


def word_diff(before: str, after: str) -> tuple[tuple[str, str], ...]:
    """A word-level diff as (op, text) pairs; op is ``equal``, ``delete`` or ``insert``.

    Only the first :data:`MAX_DIFF_WORDS` words (at most :data:`MAX_DIFF_CHARS` characters) of
    each text are compared; :func:`not_diffed` counts what is left out. Words anchor the
    alignment, whitespace only extends it; past :data:`MAX_DIFF_WORK` the most frequent words
    stop anchoring it too."""
    old, new = _diffed(before), _diffed(after)
    head, tail = _common_ends(old, new)
    middle_old, middle_new = old[head:len(old) - tail], new[head:len(new) - tail]
    counts = Counter(token for token in middle_new if not _is_space(token))
    work = sum(counts[token] for token in middle_old if not _is_space(token))
    matcher = difflib.SequenceMatcher(_is_space, middle_old, middle_new,
                                      autojunk=work > MAX_DIFF_WORK)
    parts: list[tuple[str, str]] = [("equal", "".join(old[:head]))]
    for tag, a1, a2, b1, b2 in matcher.get_opcodes():
        if tag == "equal":
            parts.append(("equal", "".join(middle_old[a1:a2])))
            continue
        if tag in ("delete", "replace"):
            parts.append(("delete", "".join(middle_old[a1:a2])))
        if tag in ("insert", "replace"):
            parts.append(("insert", "".join(middle_new[b1:b2])))
    parts.append(("equal", "".join(old[len(old) - tail:])))
    merged: list[tuple[str, str]] = []
    for op, text in parts:
        if not text:
            continue
        if merged and merged[-1][0] == op == "equal":
            merged[-1] = ("equal", merged[-1][1] + text)
        else:
            merged.append((op, text))
    return tuple(merged)


def not_diffed(text: str) -> int:
    """How many characters at the end of ``text`` :func:`word_diff` leaves out."""
    return len(text) - sum(len(token) for token in _diffed(text))


def _flat(text: str) -> str:
    """A stretch of words on one line, cut to :data:`MAX_SHOWN_CHARS` with a count."""
    words = " ".join(text.split())
    if not words:
        return f"(whitespace {text[:20]!r})"
    if len(words) > MAX_SHOWN_CHARS:
        return f"{words[:MAX_SHOWN_CHARS]}\u2026 ({len(words) - MAX_SHOWN_CHARS:,} more characters)"
    return words


def _context(text: str, *, lead: bool, trail: bool) -> str:
    """Unchanged words around changes: the last few before the first change (``lead``), the
    first few after the last one (``trail``), or both ends of a stretch between two."""
    words = text.split()
    if lead and len(words) > CONTEXT_WORDS:
        return "\u2026 " + " ".join(words[-CONTEXT_WORDS:])
    if trail and len(words) > CONTEXT_WORDS:
        return " ".join(words[:CONTEXT_WORDS]) + " \u2026"
    if len(words) > 2 * CONTEXT_WORDS:
        return f"{' '.join(words[:CONTEXT_WORDS])} \u2026 {' '.join(words[-CONTEXT_WORDS:])}"
    return " ".join(words)


def output_lines(parts: Sequence[tuple[str, str]], *, omitted: int = 0) -> list[str]:
    """A word diff as compact lines: ``- `` removed words, ``+ `` added words, and a few
    unchanged words of context (indented); at most :data:`MAX_SHOWN_CHANGES` changes, the rest
    counted, and a note when the outputs were longer than the diff covers."""
    changes: list[list[int]] = []  # the indexes of each run of parts that are not equal
    for index, (op, _) in enumerate(parts):
        if op == "equal":
            continue
        if changes and changes[-1][-1] == index - 1:
            changes[-1].append(index)
        else:
            changes.append([index])
    shown, hidden = changes[:MAX_SHOWN_CHANGES], changes[MAX_SHOWN_CHANGES:]
    lines: list[str] = []
    if shown:
        first, last = shown[0][0], shown[-1][-1]
        for index in range(max(first - 1, 0), min(last + 2, len(parts))):
            op, text = parts[index]
            if op == "equal":
                context = _context(text, lead=index < first, trail=index > last)
                if context:
                    lines.append(f"  {context}")
            else:
                lines.append(f"{'-' if op == 'delete' else '+'} {_flat(text)}")
    if hidden:
        lines.append(f"\u2026 {len(hidden)} more change(s) not shown")
    if omitted:
        lines.append(f"\u2026 {omitted:,} characters not compared: a diff covers the first "
                     f"{MAX_DIFF_WORDS:,} words (at most {MAX_DIFF_CHARS:,} characters) of "
                     "each output")
    return lines


# --- tool calls, aligned --------------------------------------------------------------------


class CallOp(StrEnum):
    """What happened to one tool call between the baseline and the candidate."""

    REMOVED = "removed"
    ADDED = "added"
    CHANGED = "changed"
    MOVED = "moved"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class ValueChange:
    """One difference inside a tool call, at a path such as ``args['order_id']`` or
    ``result``; ``before`` is unset for an added value, ``after`` for a removed one."""

    path: str
    op: Literal["changed", "added", "removed"]
    before: Any = None
    after: Any = None

    def to_dict(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"path": self.path, "op": self.op}
        if self.op != "added":
            shown["before"] = self.before
        if self.op != "removed":
            shown["after"] = self.after
        return shown


@dataclass(frozen=True, slots=True)
class CallChange:
    """One tool call across both runs. Indexes count from 0 in each run's list; ``args`` are
    the candidate's (the baseline's for a removed call)."""

    op: CallOp
    name: str
    baseline_index: int | None
    candidate_index: int | None
    args: Mapping[str, Any] = field(default_factory=dict)
    changes: tuple[ValueChange, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op.value, "name": self.name, "baseline_index": self.baseline_index,
                "candidate_index": self.candidate_index, "args": dict(self.args),
                "changes": [change.to_dict() for change in self.changes]}


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=repr)


def _key(call: ToolCall) -> tuple[str, str]:
    return call.name, _canonical(dict(call.args))


def _path(steps: Sequence[Any]) -> str:
    """``args['order_id']`` from deepdiff's list of steps ``['args', 'order_id']``."""
    if not steps:
        return "call"
    head, *rest = steps
    return str(head) + "".join(f"[{step!r}]" for step in rest)


def _value_changes(before: ToolCall, after: ToolCall) -> tuple[ValueChange, ...]:
    old = {"args": dict(before.args), "result": before.result}
    new = {"args": dict(after.args), "result": after.result}
    if _canonical(old) == _canonical(new):
        return ()
    from deepdiff import DeepDiff  # imported here: only calls that changed need it
    from deepdiff.helper import NotPresent

    found: list[ValueChange] = []
    for levels in DeepDiff(old, new, view="tree").values():
        for level in levels:
            path = _path(level.path(output_format="list"))
            if isinstance(level.t1, NotPresent):
                found.append(ValueChange(path, "added", after=level.t2))
            elif isinstance(level.t2, NotPresent):
                found.append(ValueChange(path, "removed", before=level.t1))
            else:
                found.append(ValueChange(path, "changed", before=level.t1, after=level.t2))
    return tuple(sorted(found, key=lambda change: change.path))


def _slots(old: list[tuple[str, str]],
           new: list[tuple[str, str]]) -> list[tuple[int | None, int | None]]:
    """(baseline index, candidate index) along a longest matching subsequence of the two lists
    of keys; ``None`` on the side a call is missing from."""
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    slots: list[tuple[int | None, int | None]] = []
    for tag, a1, a2, b1, b2 in matcher.get_opcodes():
        if tag == "equal":
            slots.extend(zip(range(a1, a2), range(b1, b2), strict=True))
            continue
        slots.extend((index, None) for index in range(a1, a2))
        slots.extend((None, index) for index in range(b1, b2))
    return slots


def _partners(old: list[tuple[str, str]], new: list[tuple[str, str]],
              slots: list[tuple[int | None, int | None]]) -> dict[int, tuple[int, CallOp]]:
    """For each added call that is really a removed one: that call's index, and ``moved``
    (same name and arguments) or ``changed`` (same name), paired in order."""
    removed = [i for i, j in slots if j is None and i is not None]
    added = [j for i, j in slots if i is None and j is not None]
    partners: dict[int, tuple[int, CallOp]] = {}
    matches: tuple[tuple[CallOp, Callable[[tuple[str, str]], object]], ...] = (
        (CallOp.MOVED, lambda key: key), (CallOp.CHANGED, lambda key: key[0]))
    for kind, same in matches:
        for j in added:
            if j in partners:
                continue
            found = next((i for i in removed if same(old[i]) == same(new[j])), None)
            if found is not None:
                partners[j] = (found, kind)
                removed.remove(found)
    return partners


def align_calls(before: Sequence[ToolCall], after: Sequence[ToolCall]) -> tuple[CallChange, ...]:
    """The two runs' tool calls aligned, in the candidate's order with removed calls where the
    baseline had them.

    A longest matching subsequence of (name, arguments) pairs are the unchanged calls (or
    ``changed``, where only the result differs). Of the rest, a removed and an added call with
    the same name and arguments are one ``moved`` call, then a removed and an added call with
    the same name are one ``changed`` call, each paired in order."""
    old, new = [_key(call) for call in before], [_key(call) for call in after]
    slots = _slots(old, new)
    partners = _partners(old, new, slots)
    paired = {i for i, _ in partners.values()}
    aligned: list[CallChange] = []
    for i, j in slots:
        if j is None:
            if i is not None and i not in paired:
                gone = before[i]
                aligned.append(CallChange(CallOp.REMOVED, gone.name, i, None, gone.args))
            continue
        call = after[j]
        if i is not None:
            origin, kind = i, CallOp.UNCHANGED
        elif j in partners:
            origin, kind = partners[j]
        else:
            aligned.append(CallChange(CallOp.ADDED, call.name, None, j, call.args))
            continue
        changes = _value_changes(before[origin], call)
        if changes and kind is CallOp.UNCHANGED:
            kind = CallOp.CHANGED
        aligned.append(CallChange(kind, call.name, origin, j, call.args, changes))
    return tuple(aligned)


def _shown_value(value: Any) -> str:
    text = _canonical(value)
    if len(text) > MAX_SHOWN_CHARS:
        return f"{text[:MAX_SHOWN_CHARS]}\u2026 ({len(text) - MAX_SHOWN_CHARS:,} more characters)"
    return text


def call_lines(aligned: Sequence[CallChange]) -> list[str]:
    """The aligned tool calls as lines: a count of each kind, then every call that is not
    unchanged, numbered from 1 in its run: ``- #1 name {args}`` removed, ``+ #3 ...`` added,
    ``~ #2 name`` changed with a line per difference, ``> #4 -> #2 ...`` moved."""
    counts = Counter(change.op for change in aligned)
    lines = [", ".join(f"{counts[op]} {op.value}" for op in CallOp if counts[op])]
    for change in aligned:
        old = None if change.baseline_index is None else change.baseline_index + 1
        new = None if change.candidate_index is None else change.candidate_index + 1
        call = f"{change.name} {_shown_value(dict(change.args))}"
        if change.op is CallOp.REMOVED:
            lines.append(f"- #{old} {call}")
        elif change.op is CallOp.ADDED:
            lines.append(f"+ #{new} {call}")
        elif change.op is CallOp.MOVED:
            lines.append(f"> #{old} -> #{new} {call}")
        elif change.op is CallOp.CHANGED:
            where = f"#{new}" if old == new else f"#{old} -> #{new}"
            lines.append(f"~ {where} {change.name}")
            for value in change.changes:
                before = "absent" if value.op == "added" else _shown_value(value.before)
                after = "absent" if value.op == "removed" else _shown_value(value.after)
                lines.append(f"    {value.path}: {before} -> {after}")
    return lines
