"""The one Jinja environment and Content-Security-Policy of every HTML page the harness writes
(the validation report, the metrics page).

Every ``{{ }}`` output is autoescaped and, before that, shown as text a person can trust:
control characters and bidirectional overrides become visible escapes such as ``\\u202e``,
and very long values are cut with a count. A page carries its style (and script, if any)
inline, allowed by their SHA-256 hashes and nothing else, so nothing a workflow answered or a
case file said can load, run or restyle anything.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, Template, select_autoescape
from markupsafe import Markup, escape

from harness.visible import INVISIBLE, escape_char, shown

MAX_SHOWN = 20_000
"""Longest text shown for one value; the rest is counted, not shown (the run record has it)."""


def _clip(text: str) -> tuple[str, int]:
    if len(text) <= MAX_SHOWN:
        return text, 0
    return text[:MAX_SHOWN], len(text) - MAX_SHOWN


def plain(value: str) -> str:
    """``value`` with invisible and direction-changing characters written as escapes, cut to
    :data:`MAX_SHOWN` characters. Still to be HTML-escaped (autoescaping does it)."""
    text, omitted = _clip(value)
    text = shown(text)
    if omitted:
        text += f" \u2026 [{omitted:,} more characters not shown]"
    return text


def visible(value: Any) -> Markup:
    """Template filter: HTML-escaped text whose invisible characters are shown as highlighted
    escapes (``\\u202e``), cut to :data:`MAX_SHOWN` characters with a note."""
    if value is None:
        return Markup("")
    text, omitted = _clip(value if isinstance(value, str) else str(value))
    parts: list[str] = []
    start = 0
    for match in INVISIBLE.finditer(text):
        parts.append(escape(text[start:match.start()]))
        parts.append(Markup('<span class="ctl">{}</span>').format(escape_char(match.group())))
        start = match.end()
    parts.append(escape(text[start:]))
    if omitted:
        parts.append(Markup('<span class="clipped"> \u2026 {:,} more characters not shown; '
                            "the run record has them</span>").format(omitted))
    return Markup("").join(parts)


def _finalize(value: Any) -> Any:
    """Every ``{{ }}`` output passes here before autoescaping: strings become :func:`plain`."""
    if isinstance(value, Markup):
        return value
    if isinstance(value, str):
        return plain(value)
    return value


@functools.cache
def environment() -> Environment:
    """The environment of every page: autoescaping on (for strings too), undefined names an
    error, every output through :func:`plain`, the ``visible`` filter."""
    env = Environment(
        loader=PackageLoader("harness", "report/templates"),
        autoescape=select_autoescape(enabled_extensions=("html", "j2"), default_for_string=True,
                                     default=True),
        undefined=StrictUndefined,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["visible"] = visible
    return env


def block(template: Template, name: str) -> str:
    """The rendered text of a static block of the template (the inline style or script)."""
    return "".join(template.blocks[name](template.new_context({})))


def csp_hash(text: str) -> str:
    """The CSP source expression allowing an inline block whose content is exactly ``text``."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def content_security_policy(template: Template) -> str:
    """The policy of a page rendered from ``template``: nothing from anywhere, but images as
    data URLs and the template's own ``style`` block, and its ``script`` block if it has
    one, each by its hash."""
    style = f"style-src {csp_hash(block(template, 'style'))}; "
    script = (f"script-src {csp_hash(block(template, 'script'))}; "
              if "script" in template.blocks else "")
    return (f"default-src 'none'; img-src data:; {style}{script}base-uri 'none'; "
            "form-action 'none'")
