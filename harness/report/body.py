"""The parts of a validation report that sign-off depends on: its signed body and its pins.

A report carries a sign-off section between :data:`SIGNOFF_BEGIN` and :data:`SIGNOFF_END`. The
section is derived from the sign-off ledger, so it is left out of the report's digest: a report
can be re-rendered with its sign-offs without changing what was signed. Inside the section, a
``<meta name="harness-chain-head">`` tag pins the ledger's head (record count and last hash), so
a ledger cut short is found.
"""

from __future__ import annotations

import re
from pathlib import Path

from harness.digest import sha256_text

SIGNOFF_BEGIN = "<!-- harness:signoff:begin -->"
SIGNOFF_END = "<!-- harness:signoff:end -->"
CHAIN_HEAD_META = "harness-chain-head"
ZERO_HASH = "0" * 64
_HEAD_META = re.compile(rf'<meta name="{CHAIN_HEAD_META}" content="(\d+):([0-9a-f]{{64}})">')
_ANY_HEAD_META = re.compile(rf"<meta\b[^>]*{CHAIN_HEAD_META}[^>]*>", re.IGNORECASE)


# --- the report's body and the chain head it pins ------------------------------------------


def _signoff_span(html: str) -> tuple[int, int]:
    """Where the sign-off section's content starts and ends (between the two markers)."""
    begins, ends = html.count(SIGNOFF_BEGIN), html.count(SIGNOFF_END)
    if begins != 1 or ends != 1:
        problem = (f"expected one {SIGNOFF_BEGIN} and one {SIGNOFF_END} marker, "
                   f"found {begins} and {ends}")
        raise ValueError(problem)
    start = html.index(SIGNOFF_BEGIN) + len(SIGNOFF_BEGIN)
    end = html.index(SIGNOFF_END)
    if end < start:
        problem = f"the {SIGNOFF_END} marker comes before {SIGNOFF_BEGIN}"
        raise ValueError(problem)
    return start, end


def report_body_sha256(html: str) -> str:
    """SHA-256 of the report with the sign-off section's content dropped (markers kept).

    Raises ValueError when the markers are missing, repeated or out of order.
    """
    start, end = _signoff_span(html)
    return sha256_text(html[:start] + html[end:])


def chain_head_meta(count: int, last_hash: str) -> str:
    """The tag a report renders inside its sign-off section to pin the ledger's head."""
    return f'<meta name="{CHAIN_HEAD_META}" content="{count}:{last_hash}">'


def read_chain_head(html: str) -> tuple[int, str]:
    """The (count, last hash) a report pins inside its sign-off section.

    Raises ValueError when the section holds no such tag, more than one, or a malformed one.
    """
    start, end = _signoff_span(html)
    section = html[start:end]
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
