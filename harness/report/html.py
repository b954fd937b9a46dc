"""Render the HTML validation report: the decision, its reasons and the evidence for each case.

The page is self-contained (one inline stylesheet, one inline script, charts as inline SVG) and
carries a Content-Security-Policy that allows exactly those two inline blocks by their SHA-256
hashes, so nothing a workflow answered can load, run or restyle anything. Run data reaches the
template only through autoescaping; control characters and bidirectional overrides are shown as
visible escapes such as ``\\u202e``.

The template only lays out what :func:`build_view` shaped here.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from markupsafe import Markup

from harness import __version__
from harness.calibration import Calibration
from harness.compare import CaseComparison, Comparison, OutputState, Transition
from harness.diff import MAX_DIFF_CHARS, MAX_DIFF_WORDS
from harness.gate import AWAITING, LIFTABLE, SIGNOFF_MISSING, Decision, GatePolicy, Reason
from harness.model import (
    CATEGORIES,
    EVIDENCE_FIELDS,
    SEVERITIES,
    Case,
    CaseResult,
    CheckOutcome,
    TargetResponse,
    Trial,
)
from harness.pages import content_security_policy, environment
from harness.records import RunRecord
from harness.report.status import SignoffPolicyView, Status

TEMPLATE = "report.html.j2"
DERIVED_TEMPLATE = "derived.html.j2"

SIGNOFF_COMMAND = "harness signoff REPORT --reviewer ID --decision approve|reject"

TRANSITIONS: dict[str, tuple[str, str, str]] = {
    # value: (label, meaning, bar colour)
    "fixed": ("Fixed", "failed in the baseline, passes in the candidate", "#1a7f37"),
    "regressed": ("Regressed", "passed in the baseline, fails in the candidate", "#cf222e"),
    "still_failing": ("Still failing", "fails in both runs", "#bc4c00"),
    "still_passing": ("Still passing", "passes in both runs", "#6e9f7a"),
    "new": ("New", "only in the candidate run", "#0969da"),
    "removed": ("Removed", "missing from the candidate run", "#6e7781"),
    "flaky": ("Flaky", "the candidate's trials disagree", "#9a6700"),
    "error": ("Error", "the candidate run errored", "#8250df"),
}
TRANSITION_RANK = {name: rank for rank, name in enumerate(
    ("regressed", "error", "flaky", "still_failing", "removed", "new", "fixed", "still_passing"))}
VERDICT_FILL = {"pass": "#1a7f37", "fail": "#cf222e", "error": "#8250df", "missing": "#afb8c1"}
VERDICTS = ("pass", "fail", "error")
STRUCTURED_LABELS = {"tool_calls": "Tool calls, what changed",
                     "sources": "Sources, what changed",
                     "approvals": "Approvals, what changed"}
NO_INCIDENT = "baseline case"
DIFF_NOTES = {
    OutputState.ONE_RUN: "Only one run has this case: nothing to diff",
    OutputState.STILL_PASSING: "Not computed: the case passes in both runs",
    OutputState.NO_RESPONSE: "Not computed: a run has no response for this case",
    OutputState.IDENTICAL: "The outputs are identical",
    OutputState.CHANGED: "",
}

SUMMARISE_ABOVE = 500
"""A comparison of more cases than this lists the cases that pass in both runs, and that no
reason names, by id and title only: the report then grows with what changed, not with the
suite. Their checks and responses stay in the run records (``harness compare --case``)."""

def render_html(
    comparison: Comparison,
    decision: Decision,
    *,
    policy: GatePolicy,
    generated_at: str,
    status: Status | None = None,
    signoff_policy: SignoffPolicyView | None = None,
    calibrations: Mapping[str, Calibration] | None = None,
    records: Mapping[str, Case] | None = None,
) -> str:
    """The validation report of ``comparison`` as one self-contained HTML page.

    ``decision`` is the gate on the runs, which the report's body shows; ``status`` what the
    sign-off ledger derives (the decision as the sign-offs stand, the sign-offs, the ledger
    head), which its derived parts show (default: the gate on the runs, nothing signed);
    ``signoff_policy`` the roles that must approve, when the suite requires sign-off;
    ``calibrations`` the judges' calibration records by configuration digest; ``records`` the
    suite's cases by id, whose incident references and evidence provenance the report shows.
    """
    template = environment().get_template(TEMPLATE)
    csp = content_security_policy(template)
    view = build_view(comparison, decision, policy=policy, generated_at=generated_at,
                      status=status or Status(decision, signoff_required=False),
                      signoff_policy=signoff_policy, calibrations=calibrations,
                      records=records)
    return template.render(report=view, csp=csp)


def render_derived(status: Status) -> dict[str, str]:
    """The derived parts of a report (see :mod:`harness.report.body`), by name: exactly what
    the page holds between each part's markers."""
    # A template module's macros are attributes Jinja adds as it runs the template: typed as
    # Any, since no stub can name them.
    macros: Any = environment().get_template(DERIVED_TEMPLATE).module
    return {"status": str(macros.status(_status(status))),
            "signoff": str(macros.signoff(_signoff(status)))}


# --- the view-model -------------------------------------------------------------------------


def build_view(
    comparison: Comparison,
    decision: Decision,
    *,
    policy: GatePolicy,
    generated_at: str,
    status: Status,
    signoff_policy: SignoffPolicyView | None = None,
    calibrations: Mapping[str, Calibration] | None = None,
    records: Mapping[str, Case] | None = None,
) -> dict[str, Any]:
    """Everything the template shows, as plain values, lists and mappings."""
    anchors = _anchors(case.case_id for case in comparison.cases)
    reasons_by_case: dict[str, list[dict[str, Any]]] = {}
    reasons = []
    for reason in decision.reasons:
        shown = _reason(reason, anchors)
        reasons.append(shown)
        if reason.case_id is not None:
            reasons_by_case.setdefault(reason.case_id, []).append(shown)
    blocking_ids = {r.case_id for r in decision.blocking if r.case_id}
    brief = len(comparison.cases) > SUMMARISE_ABOVE
    cases: list[dict[str, Any]] = []
    incidents: list[dict[str, Any]] = []
    unchanged: list[dict[str, Any]] = []
    for case in comparison.cases:
        anchor = anchors[case.case_id]
        if brief and case.transition is Transition.STILL_PASSING \
                and case.case_id not in reasons_by_case:
            unchanged.append({"id": case.case_id, "anchor": anchor, "incident": case.incident,
                              "title": case.latest.title or "(untitled)"})
            if case.incident:  # listed among the incidents all the same, without evidence
                incidents.append(_case(case, anchor, [], open_=False, index=0))
            continue
        shown_case = _case(case, anchor, reasons_by_case.get(case.case_id, []),
                           open_=case.case_id in blocking_ids, index=len(cases),
                           record=(records or {}).get(case.case_id))
        cases.append(shown_case)
        if case.incident:
            incidents.append(shown_case)
    counts = {t.value: n for t, n in comparison.counts().items()}
    baseline, candidate = comparison.baseline.header, comparison.candidate.header
    derived = render_derived(status)
    return {
        "title": f"{candidate.suite}: {baseline.target} \u2192 {candidate.target}",
        "suite": candidate.suite,
        "baseline_target": baseline.target,
        "candidate_target": candidate.target,
        "generated_at": generated_at,
        "version": __version__,
        "decision": _decision(decision, reasons, counts, comparison),
        "derived": {name: Markup(text) for name, text in derived.items()},  # rendered, escaped
        "counts": [
            {"name": name, "label": label, "meaning": meaning, "count": counts.get(name, 0),
             "zero": not counts.get(name, 0)}
            for name, (label, meaning, _) in TRANSITIONS.items()
        ],
        "total": len(comparison.cases),
        "total_label": _plural(len(comparison.cases), "case"),
        "charts": _charts(comparison, counts),
        "incidents": incidents,
        "cases": cases,
        "unchanged": unchanged,
        "unchanged_incidents": sum(case["incident"] for case in unchanged),
        "runs": {"baseline": comparison.baseline.path.name,
                 "candidate": comparison.candidate.path.name},
        "transition_options": [
            {"value": name, "label": f"{label} ({counts.get(name, 0)})"}
            for name, (label, _, _) in TRANSITIONS.items()
        ],
        "provenance": _provenance(comparison.baseline, comparison.candidate),
        "policy": _policy(policy),
        "signoff_policy": _signoff_policy(signoff_policy),
        "judges": _judges(comparison.candidate, calibrations or {}),
    }


def _judges(candidate: RunRecord, calibrations: Mapping[str, Calibration]) -> list[dict[str, Any]]:
    """Each judge the candidate's verdicts came from: its votes, and its calibration."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for result in candidate.results:
        for trial in result.trials:
            for check in trial.checks:
                for vote in check.evidence.get("votes") or ():
                    if not isinstance(vote, Mapping) or not vote.get("config_digest"):
                        continue
                    key = (str(vote.get("judge")), str(vote["config_digest"]))
                    row = rows.setdefault(key, {"name": key[0], "digest": key[1],
                                                "models": set(), "votes": 0, "cached": 0,
                                                "verdicts": {"pass": 0, "fail": 0}})
                    row["votes"] += 1
                    row["cached"] += bool(vote.get("cached"))
                    if vote.get("model"):
                        row["models"].add(str(vote["model"]))
                    if vote.get("verdict") in row["verdicts"]:
                        row["verdicts"][vote["verdict"]] += 1
    shown = []
    for (_, digest), row in sorted(rows.items()):
        record = calibrations.get(digest)
        shown.append({**row, "models": ", ".join(sorted(row["models"])) or "\u2014",
                      "calibration": _calibration(record)})
    return shown


def _calibration(record: Calibration | None) -> dict[str, Any]:
    if record is None:
        return {"ok": False, "text": "not calibrated: its verdicts are unproved (harness judge "
                                     "calibrate)", "file": None, "created_at": None}
    f = record.figures

    def rate(value: float | None) -> str:
        return "\u2014" if value is None else f"{value:.3f}"

    text = (f"{f.examples} example(s) ({f.bad} bad, {f.good} good, {f.errors} without a "
            f"verdict): accuracy {rate(f.accuracy)}, false-pass {rate(f.false_pass_rate)}, "
            f"false-fail {rate(f.false_fail_rate)}, kappa {rate(f.kappa)}")
    return {"ok": record.complete, "text": text, "file": record.path.name,
            "created_at": record.created_at}


def _anchors(case_ids: Iterable[str]) -> dict[str, str]:
    """A unique, attribute- and URL-safe element id for each case."""
    anchors: dict[str, str] = {}
    used: set[str] = set()
    for case_id in case_ids:
        base = "case-" + (re.sub(r"[^A-Za-z0-9_.-]+", "-", case_id)[:80] or "x")
        anchor, n = base, 1
        while anchor in used:
            n += 1
            anchor = f"{base}-{n}"
        used.add(anchor)
        anchors[case_id] = anchor
    return anchors


def _decision(decision: Decision, reasons: list[dict[str, Any]], counts: Mapping[str, int],
              comparison: Comparison) -> dict[str, Any]:
    """The body's account of the gate on the runs (the banner's head is derived: _status)."""
    incidents = sum(case.incident for case in comparison.cases)
    parts = [f"{counts[name]} {TRANSITIONS[name][0].lower()}"
             for name in TRANSITIONS if counts.get(name)]
    return {
        "summary": (f"{_plural(len(comparison.cases), 'case')} compared, "
                    f"{incidents} of them from incidents: "
                    + (", ".join(parts) if parts else "nothing to compare") + "."),
        "blocking": [r for r in reasons if r["blocking"]],
        "notes": [r for r in reasons if not r["blocking"]],
        "owners": decision.owners(),
        "business_owners": sorted(r.person for r in decision.recipients()
                                  if r.role == "business_owner"),
    }


OUTCOME_CSS = {"RESTORE": "restore", AWAITING: "await", "BLOCK": "block"}


def _status(status: Status) -> dict[str, Any]:
    """The banner's head: the decision as the sign-offs stand, and what sign-off says."""
    decision = status.decision
    blocking = [r for r in decision.blocking if r.rule != SIGNOFF_MISSING]
    if decision.allowed and status.signoff_required:
        verdict = ("Tests pass and every required role approved: the candidate may be "
                   "restored or deployed.")
    elif decision.allowed:
        verdict = "The candidate may be restored or deployed: nothing blocks it."
    elif decision.awaiting:
        verdict = ("Tests pass, but the candidate may not be restored or deployed until every "
                   "required role approves.")
    elif len(blocking) == 1:
        verdict = "Do not restore or deploy the candidate: 1 reason blocks it."
    else:
        verdict = f"Do not restore or deploy the candidate: {len(blocking)} reasons block it."
    lines = [reason.message for reason in decision.reasons
             if reason.rule.startswith("signoff")
             or (reason.rule in LIFTABLE and not reason.blocking)]
    return {"outcome": decision.outcome, "css": OUTCOME_CSS.get(decision.outcome, "block"),
            "verdict": verdict, "lines": lines}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _reason(reason: Reason, anchors: Mapping[str, str]) -> dict[str, Any]:
    return {
        "rule": reason.rule,
        "blocking": reason.blocking,
        "case_id": reason.case_id,
        "anchor": anchors.get(reason.case_id) if reason.case_id else None,
        "title": reason.title,
        "message": reason.message,
        "owner": reason.owner,
        "business_owner": reason.business_owner,
        "severity": reason.severity,
        "category": reason.category,
    }


# --- one case -------------------------------------------------------------------------------


def _pct(rate: float) -> str:
    return f"{rate * 100:.0f}%"


def _json(value: Any) -> str:
    """Pretty JSON; a short value stays on one line."""
    short = json.dumps(value, ensure_ascii=False, default=str)
    if len(short) <= 72:
        return short
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _shown(value: Any) -> str | None:
    """A check's expected/obtained value or an evidence item as text."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return _json(value)


def _verdict_css(verdict: str | None) -> str:
    return verdict if verdict in VERDICTS else "unknown"


def _shown_trial(result: CaseResult) -> Trial | None:
    """The trial that stands for the case: one with the case's verdict and a response."""
    if not result.trials:
        return None
    for trial in result.trials:
        if trial.verdict == result.verdict and trial.response is not None:
            return trial
    for trial in result.trials:
        if trial.verdict == result.verdict:
            return trial
    return result.trials[0]


def _check(check: CheckOutcome) -> dict[str, Any]:
    evidence = check.evidence
    if not isinstance(evidence, Mapping):
        evidence = {"evidence": evidence}
    return {
        "kind": check.kind,
        "line": check.line,
        "turn": check.turn,
        "verdict": check.verdict,
        "css": _verdict_css(check.verdict),
        "reason": check.reason,
        "score": None if check.score is None else f"{check.score:.3g}",
        "expected": _shown(check.expected),
        "obtained": _shown(check.obtained),
        "evidence": [{"name": str(k), "value": _shown(v) or "\u2014"} for k, v in evidence.items()],
    }


def _response(response: TargetResponse) -> dict[str, Any]:
    reported = response.reported
    shown_metadata = {k: v for k, v in response.metadata.items() if k != "trace"}
    return {
        "output": response.output,
        "fields": {name: name in reported for name in ("output", "tool_calls", "sources",
                                                        "approvals", "metadata")},
        "tool_calls": [{"name": call.name, "args": _json(dict(call.args)),
                        "result": _json(call.result)} for call in response.tool_calls],
        "sources": [
            {"id": s.id, "title": s.title or "", "url": s.url or "",
             "updated_at": s.updated_at or ""}
            for s in response.sources
        ],
        "approvals": [
            {"step": a.step, "status": a.status, "approver": a.approver or "\u2014",
             "role": a.role or "\u2014", "at": a.at or "\u2014"}
            for a in response.approvals
        ],
        "metadata": _json(shown_metadata) if shown_metadata else None,
        "trace": _trace(response.metadata.get("trace")),
    }


def _trace(trace: Any) -> dict[str, Any] | None:
    """A traced call's trace (``metadata.trace``): its id, whether its spans came, what was
    read from them, and the span tree, each span indented under its parent."""
    if not isinstance(trace, Mapping):
        return None
    spans = [span for span in trace.get("spans") or () if isinstance(span, Mapping)]
    return {
        "trace_id": str(trace.get("trace_id") or ""),
        "status": str(trace.get("status") or ""),
        "problem": str(trace.get("problem") or ""),
        "convention": str(trace.get("convention") or ""),
        "read": ", ".join(map(str, trace.get("read") or ())),
        "spans": [{"name": str(span.get("name") or ""),
                   "depth": int(min(max(_number(span.get("depth")), 0), MAX_SPAN_DEPTH)),
                   "kind": str(span.get("kind") or ""),
                   "duration": "" if span.get("duration_ms") is None
                   else f"{_number(span.get('duration_ms')):.1f} ms"}
                  for span in spans[:MAX_SPANS_SHOWN]],
        "more": max(0, len(spans) - MAX_SPANS_SHOWN),
    }


def _number(value: Any) -> float:
    """A number from a record (0 for anything else: a record is data, not trusted)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value)


MAX_SPANS_SHOWN = 200
MAX_SPAN_DEPTH = 8
"""Deeper spans are drawn at this indentation (the tree keeps their order)."""


def _side(result: CaseResult | None, interval: tuple[float, float] | None) -> dict[str, Any]:
    if result is None:
        return {"present": False, "verdict": "not run", "css": "missing", "rate": "\u2014",
                "sort": -1.0, "interval": None}
    passes = result.passes
    trial = _shown_trial(result)
    return {
        "present": True,
        "verdict": result.verdict,
        "css": _verdict_css(result.verdict),
        "rate": _pct(result.pass_rate),
        "sort": result.pass_rate,
        "needed": _pct(result.min_pass_rate),
        "interval": f"{_pct(interval[0])}\u2013{_pct(interval[1])}" if interval else None,
        "passes": passes,
        "trial_count": len(result.trials),
        "trials": [
            {"index": t.index, "verdict": t.verdict, "css": _verdict_css(t.verdict),
             "error": t.error, "duration": f"{t.duration_s:.3f} s"}
            for t in result.trials
        ],
        "show_trials": len(result.trials) > 1 or any(t.error for t in result.trials),
        "shown_trial": trial.index if trial else None,
        "response": _response(trial.response) if trial and trial.response else None,
        "response_label": _response_label(trial),
        "turns": _turns(trial) if trial else [],
        "checks": [_check(check) for check in trial.checks if check.turn is None]
        if trial else [],
        "duration": f"{result.duration_s:.3f} s",
    }


def _response_label(trial: Trial | None) -> str:
    """What the response shown is: a multi-turn trial's is the final turn's, unless its
    checks judged the whole conversation (then every turn's output and calls together)."""
    if trial is None or not trial.turns:
        return "Output"
    final = trial.turns[-1].response
    return "Final answer" if trial.response == final else "The whole conversation"


def _turns(trial: Trial) -> list[dict[str, Any]]:
    """A multi-turn trial's conversation: each turn's message, answer and checks."""
    return [
        {"number": number, "user": turn.user,
         "output": turn.response.output if turn.response is not None else None,
         "error": turn.error,
         "checks": [_check(check) for check in trial.checks if check.turn == number]}
        for number, turn in enumerate(trial.turns, start=1)
    ]


def _provenance_of(record: Case | None) -> dict[str, Any]:
    """An incident record's references (shown as text: the report links nowhere outside
    itself) and how its evidence was collected (logged, reconstructed, missing)."""
    if record is None or record.incident is None:
        return {"references": [], "evidence": None}
    references = [{"title": str(ref.get("title", "")), "kind": ref.get("kind"),
                   "url": str(ref["url"]) if ref.get("url") else None}
                  for ref in record.incident.references]
    listed = set(record.evidence.get("missing", ()))
    present = [name for name in EVIDENCE_FIELDS if name in record.evidence and name not in listed]
    said = record.evidence.get("reconstructed", False)
    rebuilt = list(present) if said is True else [n for n in present if n in (said or [])]
    logged = [name for name in present if name not in rebuilt]
    parts = [f"logged: {', '.join(logged) or 'none'}"]
    if rebuilt:
        parts.append(f"reconstructed after the fact: {', '.join(rebuilt)}")
    missing = [name for name in EVIDENCE_FIELDS if name not in present]
    if missing:
        parts.append(f"missing: {', '.join(missing)}")
    return {"references": references, "evidence": "; ".join(parts)}


def _case(case: CaseComparison, anchor: str, reasons: list[dict[str, Any]], *, open_: bool,
          index: int, record: Case | None = None) -> dict[str, Any]:
    result = case.latest
    label, meaning, _ = TRANSITIONS[case.transition.value]
    baseline = _side(case.baseline, case.baseline_interval)
    candidate = _side(case.candidate, case.candidate_interval)
    title = result.title or "(untitled)"
    category = result.category or "\u2014"
    severity = result.severity or "\u2014"
    owner = result.owner or "\u2014"
    kind = "incident" if case.incident else "baseline"
    diff_note = DIFF_NOTES[case.output_state]
    folder, slash, name = result.path.rpartition("/")
    search = " ".join(str(part) for part in (
        case.case_id, title, result.category or "", result.severity or "", result.owner or "",
        case.transition.value, label, kind, result.workflow, result.path,
        baseline["verdict"], candidate["verdict"],
    )).lower()
    return {
        **_provenance_of(record),
        "id": case.case_id,
        "anchor": anchor,
        "index": index,
        "incident": case.incident,
        "kind": kind,
        "title": title,
        "category": category,
        "severity": severity,
        "owner": owner,
        "transition": case.transition.value,
        "transition_label": label,
        "transition_meaning": meaning,
        "rank": TRANSITION_RANK[case.transition.value],
        "folder": folder + slash,  # may wrap; the file name (the case id) is kept whole
        "file": f"{name}:{result.line}",
        "workflow": result.workflow,
        "digest": result.case_digest or "\u2014",
        "case_changed": case.case_changed,
        "input": _json(result.input),
        "baseline": baseline,
        "candidate": candidate,
        "check_changes": [
            {"kind": c.kind, "line": _text(c.line), "turn": c.turn,
             "baseline": c.baseline or "absent",
             "baseline_css": _verdict_css(c.baseline), "candidate": c.candidate or "absent",
             "candidate_css": _verdict_css(c.candidate), "reason": c.reason}
            for c in case.check_changes
        ],
        "diff": [{"op": op if op in ("equal", "delete", "insert") else "equal", "text": text}
                 for op, text in case.output_diff],
        "diff_note": diff_note,
        "diff_omitted": (f"{case.output_diff_omitted:,} characters past the first "
                         f"{MAX_DIFF_WORDS:,} words (at most {MAX_DIFF_CHARS:,} characters) of "
                         "each output were not compared" if case.output_diff_omitted else ""),
        "similarity": None if case.similarity is None else f"{case.similarity:.1f}",
        "structured": [{"name": name, "label": STRUCTURED_LABELS.get(name, name),
                        "text": "\n".join(lines)}
                       for name, lines in case.structured_diffs.items()],
        "reasons": reasons,
        "open": open_,
        "alt": index % 2 == 1,
        "search": search,
        "sort": {
            "severity": result.severity or "~",
            "category": result.category or "~",
            "owner": (result.owner or "~").lower(),
            "title": title.lower(),
        },
    }


# --- charts ---------------------------------------------------------------------------------

CHART_WIDTH = 600
LABEL_WIDTH = 150
BAR_WIDTH = 290
ROW_HEIGHT = 24
BAR_HEIGHT = 15
TOP = 6


def _svg_label(text: str, limit: int = 22) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _chart(key: str, title: str, rows: list[tuple[str, list[tuple[str, int, str]]]],
           legend: list[tuple[str, str]]) -> dict[str, Any]:
    """A horizontal (stacked) bar chart laid out for the template: rows of segments, each
    (name, count, fill), with the numbers written beside the bars."""
    biggest = max([sum(n for _, n, _ in segments) for _, segments in rows] + [1])
    laid: list[dict[str, Any]] = []
    for i, (label, segments) in enumerate(rows):
        y = TOP + i * ROW_HEIGHT
        x = float(LABEL_WIDTH)
        bars = []
        for name, n, fill in segments:
            if not n:
                continue
            width = max(n / biggest * BAR_WIDTH, 2.0)
            bars.append({"x": round(x, 1), "width": round(width, 1), "fill": fill,
                         "title": f"{label}: {n} {name}"})
            x += width
        total = sum(n for _, n, _ in segments)
        shown = [f"{n} {name}" for name, n, _ in segments if n]
        if len(segments) == 1 or not shown:
            value = str(total)
        elif len(shown) == 1:
            value = shown[0]
        else:
            value = f"{total}: {', '.join(shown)}"
        laid.append({
            "label": _svg_label(label), "full_label": label,
            "y": y, "bar_y": y + (ROW_HEIGHT - BAR_HEIGHT) / 2, "text_y": y + ROW_HEIGHT / 2 + 4,
            "bars": bars, "value": value, "value_x": LABEL_WIDTH + BAR_WIDTH + 10,
        })
    legend_y = TOP + len(rows) * ROW_HEIGHT + 12
    items, x = [], float(LABEL_WIDTH)
    for name, fill in legend:
        items.append({"name": name, "fill": fill, "x": round(x, 1), "text_x": round(x + 14, 1),
                      "text_y": legend_y + 9})
        x += 14 + 7 * len(name) + 18
    height = legend_y + (18 if legend else 0) + 4
    description = "; ".join(f"{row['full_label']}: {row['value']}" for row in laid)
    return {
        "key": key, "title": title, "description": description,
        "width": CHART_WIDTH, "height": height, "label_x": LABEL_WIDTH - 8,
        "track_x": LABEL_WIDTH, "track_width": BAR_WIDTH,
        "rows": laid, "legend": items, "legend_y": legend_y,
        "bar_height": BAR_HEIGHT,
    }


def _by_verdict(comparison: Comparison, group: Any, order: Sequence[str]) -> list[
        tuple[str, list[tuple[str, int, str]]]]:
    counted: dict[str, Counter[str]] = {}
    for case in comparison.cases:
        name = group(case.latest) or NO_INCIDENT
        verdict = case.candidate.verdict if case.candidate else "missing"
        counted.setdefault(name, Counter())[verdict if verdict in VERDICT_FILL else "error"] += 1
    known = [name for name in order if name in counted]
    other = sorted(name for name in counted if name not in order and name != NO_INCIDENT)
    names = known + other + ([NO_INCIDENT] if NO_INCIDENT in counted else [])
    return [
        (name, [(v, counted[name][v], fill) for v, fill in VERDICT_FILL.items()])
        for name in names
    ]


def _charts(comparison: Comparison, counts: Mapping[str, int]) -> dict[str, Any]:
    transitions = _chart(
        "transitions", "Cases by transition, baseline \u2192 candidate",
        [(label, [(name, counts.get(name, 0), fill)])
         for name, (label, _, fill) in TRANSITIONS.items()],
        [],
    )
    present: set[str] = {case.candidate.verdict for case in comparison.cases if case.candidate}
    if any(case.candidate is None for case in comparison.cases):
        present.add("missing")
    legend = [(v, fill) for v, fill in VERDICT_FILL.items() if v in present]
    by_category = _chart("categories", "Cases by incident category, verdict in the candidate",
                         _by_verdict(comparison, lambda r: r.category, CATEGORIES), legend)
    by_severity = _chart("severities", "Cases by incident severity, verdict in the candidate",
                         _by_verdict(comparison, lambda r: r.severity, SEVERITIES), legend)
    return {"transitions": transitions, "others": [by_category, by_severity]}


# --- provenance and sign-off ----------------------------------------------------------------


def _run_counts(record: RunRecord) -> str:
    counted = Counter(result.verdict for result in record.results)
    return (f"{_plural(len(record.results), 'case')}: {counted['pass']} passed, "
            f"{counted['fail']} failed, {counted['error']} errored")


def _finished(record: RunRecord) -> str:
    if record.end is None:
        return "did not finish (no end line)"
    finished = str(record.end.get("finished_at") or "\u2014")
    return finished + (" (interrupted)" if record.end.get("interrupted") else "")


SHOULD_MATCH = ("Suite", "Suite digest", "Harness version")
"""Provenance fields that differ only when the two runs may not be comparable."""


def _provenance(baseline: RunRecord, candidate: RunRecord) -> list[dict[str, Any]]:
    def row(label: str, mono: bool, get: Any, *, css: str = "") -> dict[str, Any]:
        before, after = str(get(baseline)), str(get(candidate))
        return {"label": label, "mono": mono, "css": css, "baseline": before, "candidate": after,
                "differs": label in SHOULD_MATCH and before != after}

    return [
        row("Run id", True, lambda r: r.header.run_id, css="run-id"),
        row("Suite", False, lambda r: r.header.suite),
        row("Suite file", True, lambda r: r.header.suite_path or "\u2014"),
        row("Suite digest", True, lambda r: r.header.suite_digest),
        row("Target", False, lambda r: r.header.target),
        row("Target kind", False, lambda r: r.header.target_kind),
        row("Target digest", True, lambda r: r.header.target_digest),
        row("Harness version", False, lambda r: r.header.harness_version),
        row("Python", False, lambda r: r.header.python),
        row("Git commit", True, lambda r: r.header.git_commit or "not in a git work tree"),
        row("Started", False, lambda r: r.header.started_at),
        row("Finished", False, _finished),
        row("Results", False, _run_counts),
        row("Run record", True, lambda r: r.path),
    ]


def _policy(policy: GatePolicy) -> list[dict[str, str]]:
    def listed(chosen: frozenset[str], every: Sequence[str]) -> str:
        ordered = [x for x in every if x in chosen] + sorted(x for x in chosen if x not in every)
        names = ", ".join(ordered) or "none"
        return f"all ({names})" if set(every) <= chosen else names

    settle = (f"{policy.settle_trials} trials settle a flaky case by its verdict"
              if policy.settle_trials else "not set: a case whose trials disagree blocks")
    judges = (f"calibration required: false-pass rate <= {policy.max_false_pass_rate:g}"
              if policy.max_false_pass_rate is not None
              else "calibration not required (an uncalibrated judge is a note)")
    return [
        {"label": "Severities in scope", "value": listed(policy.severities, SEVERITIES)},
        {"label": "Categories in scope", "value": listed(policy.categories, CATEGORIES)},
        {"label": "Flaky cases", "value": settle},
        {"label": "Judges", "value": judges},
    ]


def _text(value: Any) -> str:
    return "\u2014" if value is None or value == "" else str(value)


def _signoff(status: Status) -> dict[str, Any]:
    """The sign-off section's derived part: the verified sign-offs and the ledger head."""
    entries = [{
        "reviewer": entry.reviewer, "name": entry.name, "role": entry.role,
        "meaning": entry.meaning, "decision": entry.decision,
        "decision_css": entry.decision if entry.decision in ("approve", "reject") else "other",
        "time": entry.time, "comment": entry.comment,
        "cases": ", ".join(entry.cases),
    } for entry in status.entries]
    head = None
    if status.head is not None:
        seq, last = status.head
        head = [{"label": "Last record of this report", "value": str(seq), "mono": False},
                {"label": "Its hash", "value": last, "mono": True}]
    return {"entries": entries, "chain_head": head, "chain_pin": _chain_pin(status.head),
            "command": SIGNOFF_COMMAND, "required": status.signoff_required}


def _signoff_policy(view: SignoffPolicyView | None) -> dict[str, Any] | None:
    if view is None:
        return None
    roles = []
    for scope, names in view.required_roles.items():
        if scope == "default":
            label = "Every validation"
        else:
            ids = view.incidents.get(scope, ())
            covered = f": {', '.join(ids)}" if ids else " (none in this validation)"
            label = f"{scope} incidents{covered}"
        roles.append({"scope": label, "roles": list(names)})
    authors = [{"reviewer": reviewer, "cases": ", ".join(cases)}
               for reviewer, cases in sorted(view.fix_authors.items())]
    return {"roles": roles, "fix_authors": authors}


def _chain_pin(head: tuple[int, str] | None) -> str | None:
    """``SEQ:HASH`` for the tag that pins the report's last ledger record, when well formed."""
    if head is None:
        return None
    seq, last = head
    if type(seq) is not int or seq < 0 or not isinstance(last, str):
        return None
    return f"{seq}:{last}" if re.fullmatch(r"[0-9a-f]{64}", last) else None
