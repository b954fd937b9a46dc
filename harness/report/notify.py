"""Who must be told of a decision, as a file CI sends (``--notify FILE``).

A blocked restoration is only half handled until the people who answer for the case know: the
case's ``owner`` (who fixes the workflow) and its ``business_owner`` (who answers for it to
customers and the business). :func:`notifications` gives one notification per person and role,
with every blocking case that concerns them, why it blocks (the failing checks and their
one-line reasons) and the report to read. The file is written whatever the decision, so a CI
step can always read it; with nothing blocking its ``notifications`` list is empty.
"""

from __future__ import annotations

from typing import Any

from harness.gate import Decision, Reason

FORMAT_VERSION = 1


def _case(reasons: list[Reason]) -> dict[str, Any]:
    first = reasons[0]
    return {"case_id": first.case_id, "title": first.title, "severity": first.severity,
            "category": first.category,
            "reasons": [{key: body[key] for key in ("rule", "message", "checks")}
                        for body in (reason.to_dict() for reason in reasons)]}


def notifications(decision: Decision, *, suite: str, baseline_run: str, candidate_run: str,
                  report: str | None) -> dict[str, Any]:
    """The notifications of ``decision``: a JSON-ready document, ``version`` first."""
    by_case: dict[str, list[Reason]] = {}
    for reason in decision.blocking:
        if reason.case_id:
            by_case.setdefault(reason.case_id, []).append(reason)
    sent = []
    for recipient in decision.recipients():
        cases = [_case(by_case[case_id]) for case_id in recipient.case_ids]
        ids = ", ".join(recipient.case_ids)
        sent.append({
            "to": recipient.person,
            "role": recipient.role,
            "subject": f"{decision.outcome} {suite}: {ids} "
                       f"{'blocks' if len(cases) == 1 else 'block'} the candidate",
            "cases": cases,
            "report": report,
        })
    return {"version": FORMAT_VERSION, "decision": decision.outcome, "suite": suite,
            "baseline_run": baseline_run, "candidate_run": candidate_run, "report": report,
            "notifications": sent}
