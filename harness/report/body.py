"""The parts of a validation report that sign-off depends on: its signed body and its pins.

Two parts of a report are derived from the sign-off ledger, each between its markers: the
sign-off section (:data:`SIGNOFF_BEGIN`, :data:`SIGNOFF_END`) and the decision banner's head
(:data:`STATUS_BEGIN`, :data:`STATUS_END`), which says RESTORE, AWAITING SIGN-OFF or BLOCK as
the sign-offs stand. They are left out of the report's digest (the markers stay in it), so a
report is re-rendered with its sign-offs without changing what was signed, and ``harness
verify`` renders them again from the ledger and compares. Inside the sign-off section, a
``<meta name="harness-chain-head">`` tag pins the ledger's head (record count and last hash),
so a ledger cut short is found.
"""

from __future__ import annotations

import re
from pathlib import Path

from harness.digest import sha256_text

SIGNOFF_BEGIN = "<!-- harness:signoff:begin -->"
SIGNOFF_END = "<!-- harness:signoff:end -->"
STATUS_BEGIN = "<!-- harness:status:begin -->"
STATUS_END = "<!-- harness:status:end -->"
DERIVED = {"signoff": (SIGNOFF_BEGIN, SIGNOFF_END), "status": (STATUS_BEGIN, STATUS_END)}
"""The derived parts by name, with their markers. A report has one sign-off section; reports
written before the banner was derived have no status part."""
CHAIN_HEAD_META = "harness-chain-head"
ZERO_HASH = "0" * 64
_HEAD_META = re.compile(rf'<meta name="{CHAIN_HEAD_META}" content="(\d+):([0-9a-f]{{64}})">')
_ANY_HEAD_META = re.compile(rf"<meta\b[^>]*{CHAIN_HEAD_META}[^>]*>", re.IGNORECASE)


# --- the report's body and the chain head it pins ------------------------------------------


def _span(html: str, name: str) -> tuple[int, int] | None:
    """Where the derived part ``name``'s content starts and ends (between its markers); None
    when a status part is absent. Raises ValueError for markers repeated, missing or out of
    order."""
    begin, end_marker = DERIVED[name]
    begins, ends = html.count(begin), html.count(end_marker)
    if name == "status" and begins == ends == 0:
        return None
    if begins != 1 or ends != 1:
        problem = f"expected one {begin} and one {end_marker} marker, found {begins} and {ends}"
        raise ValueError(problem)
    start = html.index(begin) + len(begin)
    end = html.index(end_marker)
    if end < start:
        problem = f"the {end_marker} marker comes before {begin}"
        raise ValueError(problem)
    return start, end


def _spans(html: str) -> dict[str, tuple[int, int]]:
    spans = {name: span for name in DERIVED if (span := _span(html, name)) is not None}
    ordered = sorted(spans.values())
    if len(ordered) == 2 and ordered[0][1] > ordered[1][0]:
        problem = "the sign-off section and the status part overlap"
        raise ValueError(problem)
    return spans


def derived_parts(html: str) -> dict[str, str]:
    """The content of each derived part of a report, by name."""
    return {name: html[start:end] for name, (start, end) in _spans(html).items()}


def splice(html: str, parts: dict[str, str]) -> str:
    """The report with the content of its derived parts replaced by ``parts``; every part
    named must be present. The body around them stays byte for byte the same."""
    spans = _spans(html)
    missing = [name for name in parts if name not in spans]
    if missing:
        problem = f"the report has no {missing[0]} part to re-render"
        raise ValueError(problem)
    for name, (start, end) in sorted(spans.items(), key=lambda item: -item[1][0]):
        if name in parts:
            html = html[:start] + parts[name] + html[end:]
    return html


def report_body_sha256(html: str) -> str:
    """SHA-256 of the report with the content of its derived parts dropped (markers kept).

    Raises ValueError when the markers are missing, repeated, out of order or overlapping.
    """
    body, last = [], 0
    for start, end in sorted(_spans(html).values()):
        body.append(html[last:start])
        last = end
    body.append(html[last:])
    return sha256_text("".join(body))


def chain_head_meta(count: int, last_hash: str) -> str:
    """The tag a report renders inside its sign-off section to pin the ledger's head."""
    return f'<meta name="{CHAIN_HEAD_META}" content="{count}:{last_hash}">'


def read_chain_head(html: str) -> tuple[int, str]:
    """The (count, last hash) a report pins inside its sign-off section.

    Raises ValueError when the section holds no such tag, more than one, or a malformed one.
    """
    section = derived_parts(html)["signoff"]
    tags = _ANY_HEAD_META.findall(section)
    if len(tags) != 1:
        problem = (f"expected one <meta name=\"{CHAIN_HEAD_META}\"> inside the sign-off "
                   f"section, found {len(tags)}")
        raise ValueError(problem)
    found = _HEAD_META.fullmatch(tags[0])
    if found is None:
        problem = f"malformed chain head {tags[0]!r}: expected {chain_head_meta(0, 'HASH')!r}"
        raise ValueError(problem)
    return int(found.group(1)), found.group(2)


def report_file_body_sha256(path: Path) -> str:
    """:func:`report_body_sha256` of an HTML file, read as exact UTF-8 (no newline changes)."""
    return report_body_sha256(path.read_bytes().decode("utf-8"))
