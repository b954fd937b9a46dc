"""The Markdown summary of a validation: for a CI job summary or a pull-request comment.

Only ids, titles, verdicts and reasons appear, never outputs: a summary is pasted where many
people read it. Every value is escaped so a title cannot inject markup into the comment.
"""

from __future__ import annotations

import re
from typing import Any

from harness.compare import CaseComparison, Comparison, Transition
from harness.gate import AWAITING, SIGNOFF_MISSING, Decision
from harness.visible import shown

_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def escape(text: object) -> str:
    """Markdown-escape a value for a table cell or a list item (one line), with invisible and
    direction-changing characters written as escapes (:func:`harness.visible.shown`)."""
    flat = " ".join(shown(str(text)).split())
    return _SPECIAL.sub(r"\\\1", flat)


def _rate(case: CaseComparison, side: str) -> str:
    result = case.baseline if side == "baseline" else case.candidate
    if result is None:
        return "—"
    return f"{result.verdict} ({result.pass_rate:.0%})"


def render_markdown(
    comparison: Comparison,
    decision: Decision,
    *,
    report_path: str | None = None,
    report_sha256: str | None = None,
    chain_head: tuple[int, str] | None = None,
) -> str:
    """The summary as Markdown text; ``decision`` is the decision as the sign-offs stand."""
    base, cand = comparison.baseline.header, comparison.candidate.header
    icon = ICONS.get(decision.outcome, "⛔")
    waiting = [reason for reason in decision.blocking if reason.rule == SIGNOFF_MISSING]
    blocking = [reason for reason in decision.blocking if reason.rule != SIGNOFF_MISSING]
    lines = [
        f"## {icon} {decision.outcome}: {escape(cand.suite)}",
        "",
        f"Baseline `{escape(base.target)}` (run {escape(base.run_id)}) → candidate "
        f"`{escape(cand.target)}` (run {escape(cand.run_id)}).",
        "",
        "| transition | cases |",
        "|---|---:|",
    ]
    lines += [f"| {t.value} | {n} |" for t, n in comparison.counts().items() if n]
    if blocking:
        lines += ["", "### Blocking", ""]
        lines += [_reason_line(reason) for reason in blocking]
        owners = decision.owners()
        if owners:
            lines += ["", "Owners to notify: " + ", ".join(escape(o) for o in owners)]
        business = [r.person for r in decision.recipients() if r.role == "business_owner"]
        if business:
            lines += ["", "Business owners to notify: "
                      + ", ".join(escape(b) for b in sorted(business))]
    if waiting:
        lines += ["", "### Awaiting sign-off", ""]
        lines += [_reason_line(reason) for reason in waiting]
    if decision.notes:
        lines += ["", "### Notes", ""]
        lines += [_reason_line(reason) for reason in decision.notes]
    incidents = [case for case in comparison.cases if case.incident]
    if incidents:
        lines += [
            "", "### Incident cases", "",
            "| case | title | category | severity | owner | baseline | candidate | transition |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for case in incidents:
            result = case.latest
            mark = " ⚠" if case.transition in _ALARMING else ""
            lines.append(
                f"| {escape(case.case_id)} | {escape(result.title or '')} | "
                f"{escape(result.category or '')} | {escape(result.severity or '')} | "
                f"{escape(result.owner or '')} | {_rate(case, 'baseline')} | "
                f"{_rate(case, 'candidate')} | {case.transition.value}{mark} |"
            )
    if report_path:
        lines += ["", f"Report: `{escape(report_path)}`"
                  + (f" (SHA-256 `{report_sha256}`)" if report_sha256 else "")]
    if chain_head and chain_head[0]:
        lines += [f"Sign-off ledger: last record {chain_head[0]} of this report, hash "
                  f"`{chain_head[1]}`"]
    return "\n".join(lines) + "\n"


ICONS = {"RESTORE": "✅", AWAITING: "⏳", "BLOCK": "⛔"}
_ALARMING = {Transition.REGRESSED, Transition.STILL_FAILING, Transition.REMOVED,
             Transition.ERROR, Transition.FLAKY}


def _reason_line(reason: Any) -> str:
    about = [reason.category, reason.severity]
    if reason.owner:
        about.append(f"owner {reason.owner}")
    if reason.business_owner:
        about.append(f"business owner {reason.business_owner}")
    tags = ", ".join(escape(a) for a in about if a)
    who = f"**{escape(reason.case_id)}** " if reason.case_id else ""
    extra = f" ({tags})" if tags else ""
    return f"- {who}`{reason.rule}`{extra}: {escape(reason.message)}"
