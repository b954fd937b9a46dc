"""The catalogue of check kinds ``harness checks`` prints: every kind the registry knows, by
incident category (in the model's order, then the project's own kinds), as text, a Markdown
table (the README's, kept equal by a test) or JSON."""

from __future__ import annotations

import json

from harness.checks.registry import CheckKind, kinds
from harness.model import CATEGORIES

FORMATS = ("text", "markdown", "json")


def listed() -> list[CheckKind]:
    """Every known kind, by category in the model's order, custom kinds last, then by name."""
    def order(kind: CheckKind) -> tuple[int, str]:
        rank = CATEGORIES.index(kind.category) if kind.category in CATEGORIES else len(CATEGORIES)
        return rank, kind.name

    return sorted(kinds().values(), key=order)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render(fmt: str) -> str:
    """The catalogue in one of :data:`FORMATS`."""
    shown = listed()
    if fmt == "json":
        return json.dumps([{"kind": k.name, "category": k.category, "summary": k.summary,
                            "params": dict(k.params), "shorthand": k.shorthand,
                            "example": k.example} for k in shown], indent=2)
    lines = []
    if fmt == "markdown":
        lines += ["| kind | category | what it checks | parameters | example |",
                  "|---|---|---|---|---|"]
        for k in shown:
            params = "<br>".join(f"`{name}`: {_cell(text)}" for name, text in k.params.items())
            example = f"`{_cell(k.example)}`" if k.example else ""
            lines.append(f"| `{k.name}` | {k.category or 'custom'} | {_cell(k.summary)} | "
                         f"{params} | {example} |")
        return "\n".join(lines)
    for k in shown:
        lines += [f"{k.name}  [{k.category or 'custom'}]", f"    {k.summary}"]
        for name, text in k.params.items():
            marker = " (bare value)" if name == k.shorthand else ""
            lines.append(f"    - {name}{marker}: {text}")
        if k.example:
            lines.append(f"    example: {k.example}")
    return "\n".join(lines)
