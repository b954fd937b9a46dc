"""Text a person reads: invisible and direction-changing characters shown as escapes.

A workflow's answer can hold a right-to-left override (U+202E) that makes ``BLOCK`` read as
something else, zero-width characters, or terminal escape sequences that recolour or erase
what follows. Wherever the harness shows such text (the HTML report, the Markdown summary, the
terminal, pytest's failure text), :func:`shown` writes those characters as escapes such as
``\\u202e``, so what is shown is what is there.
"""

from __future__ import annotations

import re

INVISIBLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff"
    "\ud800-\udfff\U000e0000-\U000e007f]"
)
"""C0 controls but tab and newline, DEL, C1 controls, zero-width and bidirectional formatting
characters, line/paragraph separators, BOM, lone surrogates (which cannot be encoded) and the
invisible tag characters that can smuggle text past a reader."""


def escape_char(char: str) -> str:
    """``\\r``, ``\\u202e`` or ``\\U000e0041``: how an invisible character is written."""
    if char == "\r":
        return "\\r"
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def shown(text: str) -> str:
    """``text`` with every invisible or direction-changing character written as an escape."""
    return INVISIBLE.sub(lambda m: escape_char(m.group()), text)
