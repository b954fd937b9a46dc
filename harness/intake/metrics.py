"""Incident metrics (``harness metrics``): what the incident records of a registry add up to.

The incident records in the case files become one pandas row per incident
(:func:`incident_frame`); :func:`compute_metrics` reduces the rows to counts by workflow,
category and severity, time to detection and containment, affected users and records, repeated
failure types, how often logs were missing, human review bypasses and, from run records, how
the incident cases fare after their fix. The renderers write the result as an aligned terminal
table, long-format CSV, JSON or a self-contained HTML page.

An incident that lacks a timeline step or an impact figure is left out of the metric that needs
it, and a note says which incidents were left out.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harness import __version__, checks
from harness.errors import InputError, TargetError
from harness.intake.registry_check import completeness
from harness.model import (
    CATEGORIES,
    EVIDENCE_FIELDS,
    SEVERITIES,
    TIMELINE_STEPS,
    Case,
    Incident,
)
from harness.pages import content_security_policy, environment
from harness.records import RunRecord, read_run
from harness.targets.replay import ReplayTarget

TEMPLATE = "metrics.html.j2"
REVIEW_CATEGORY = "human_review"
VERDICTS = ("pass", "fail", "error")
FORMATS = ("table", "csv", "json", "html")


# --- the data -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Timing:
    """Hours from one timeline step to the next, over the incidents that record both."""

    start: str
    end: str
    median_hours: float | None
    p90_hours: float | None
    measured: int
    excluded: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RepeatedFailure:
    """A workflow that failed the same way (same category) in more than one incident."""

    workflow: str
    category: str
    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RunResults:
    """The incident cases' verdicts in the latest run of one suite against one target."""

    suite: str
    target: str
    run_id: str
    started_at: str
    path: str
    complete: bool
    passed: int
    failed: int
    errored: int
    not_passing: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Metrics:
    """Everything ``harness metrics`` reports; rates are shares between 0 and 1."""

    incidents: int
    near_misses: int
    by_workflow: Mapping[str, int]
    by_category: Mapping[str, int]
    by_severity: Mapping[str, int]
    detection: Timing
    containment: Timing
    users: int
    records: int
    users_by_category: Mapping[str, int]
    records_by_category: Mapping[str, int]
    repeated: tuple[RepeatedFailure, ...]
    missing_log_rate: float | None
    missing_by_field: Mapping[str, float]
    reconstructed_rate: float | None
    """Share of incidents with evidence rebuilt after the fact rather than logged."""
    reconstructed_by_field: Mapping[str, float]
    referenced_rate: float | None
    """Share of incidents whose record links a ticket, postmortem or report (references)."""
    bypasses: tuple[str, ...]
    post_fix: tuple[RunResults, ...]
    notes: tuple[str, ...]


# --- incidents as rows ----------------------------------------------------------------------


def approval_bypassed(case: Case) -> bool:
    """Whether an incident bypassed human review: its category is ``human_review``, or one of
    its own human-review checks (``approval_required``, ``approval_not_bypassed``) fails on its
    evidence, i.e. a gated tool ran without the approval the case demands."""
    incident = case.incident
    if incident is None:
        return False
    if incident.category == REVIEW_CATEGORY:
        return True
    kinds = checks.kinds()
    review = [exp for exp in case.expect
              if exp.kind in kinds and kinds[exp.kind].category == REVIEW_CATEGORY]
    if not review:
        return False
    try:
        response = ReplayTarget().call(case.input, case=case, timeout_s=None)
    except TargetError:
        return False  # no evidence to judge
    return any(exp.evaluate(response, case).verdict == "fail" for exp in review)


def _row(case: Case, incident: Incident) -> dict[str, Any]:
    (kept,) = completeness([case])
    missing = {f"missing_{name}": name not in kept.present for name in EVIDENCE_FIELDS}
    rebuilt = {f"reconstructed_{name}": name in kept.reconstructed for name in EVIDENCE_FIELDS}
    return {
        "id": case.id,
        "path": str(case.path),
        "workflow": case.workflow,
        "category": incident.category,
        "severity": incident.severity,
        "status": incident.status,
        "near_miss": incident.near_miss,
        "owner": incident.owner,
        **{step: incident.timeline.get(step) for step in TIMELINE_STEPS},
        "users": incident.impact.get("users"),
        "records": incident.impact.get("records"),
        **missing,
        "evidence_missing": sum(missing.values()),
        **rebuilt,
        "evidence_reconstructed": sum(rebuilt.values()),
        "references": len(incident.references),
        "approval_bypassed": approval_bypassed(case),
    }


def incident_frame(cases: Iterable[Case]) -> pd.DataFrame:
    """One row per incident case (baseline cases are skipped).

    Columns: ``id``, ``path``, ``workflow``, ``category``, ``severity``, ``status``,
    ``near_miss``, ``owner``, one UTC timestamp per timeline step (``NaT`` when not recorded),
    ``users`` and ``records`` (nullable integers), ``missing_<field>`` per evidence field (absent
    or listed in ``evidence.missing``), ``evidence_missing`` (how many of them),
    ``reconstructed_<field>`` per evidence field (rebuilt rather than logged, see
    ``evidence.reconstructed``), ``evidence_reconstructed`` (how many of them), ``references``
    (how many the record links) and ``approval_bypassed`` (see :func:`approval_bypassed`).
    """
    rows = [_row(case, case.incident) for case in cases if case.incident is not None]
    columns = ["id", "path", "workflow", "category", "severity", "status", "near_miss",
               "owner", *TIMELINE_STEPS, "users", "records",
               *(f"missing_{name}" for name in EVIDENCE_FIELDS), "evidence_missing",
               *(f"reconstructed_{name}" for name in EVIDENCE_FIELDS),
               "evidence_reconstructed", "references", "approval_bypassed"]
    frame = pd.DataFrame.from_records(rows, columns=columns)
    for step in TIMELINE_STEPS:
        frame[step] = pd.to_datetime(frame[step], utc=True)
    for name in ("users", "records", "evidence_missing", "evidence_reconstructed",
                 "references"):
        frame[name] = frame[name].astype("Int64")
    for name in ("near_miss", "approval_bypassed", *(f"missing_{n}" for n in EVIDENCE_FIELDS),
                 *(f"reconstructed_{n}" for n in EVIDENCE_FIELDS)):
        frame[name] = frame[name].astype(bool)
    return frame


# --- the metrics ----------------------------------------------------------------------------


def _plural(count: int, word: str, many: str | None = None) -> str:
    return f"{count} {word if count == 1 else many or word + 's'}"


def _timing(frame: pd.DataFrame, start: str, end: str, label: str,
            notes: list[str]) -> Timing:
    hours = (frame[end] - frame[start]).dt.total_seconds() / 3600
    known = hours.dropna()
    excluded = tuple(frame["id"][hours.isna()])
    if excluded:
        notes.append(f"time to {label}: {_plural(len(excluded), 'incident')} without both "
                     f"{start} and {end} left out ({', '.join(excluded)})")
    return Timing(
        start=start,
        end=end,
        median_hours=float(known.median()) if len(known) else None,
        p90_hours=float(known.quantile(0.9)) if len(known) else None,
        measured=len(known),
        excluded=excluded,
    )


def _impact(frame: pd.DataFrame, column: str, notes: list[str]) -> tuple[int, dict[str, int]]:
    unknown = tuple(frame["id"][frame[column].isna()])
    if unknown:
        notes.append(f"impact.{column} not recorded for {_plural(len(unknown), 'incident')}; "
                     f"left out of the sums ({', '.join(unknown)})")
    by_category = frame.groupby("category")[column].sum()
    return int(frame[column].sum()), {
        category: int(by_category[category]) for category in CATEGORIES
        if category in by_category.index
    }


def _repeated(frame: pd.DataFrame) -> tuple[RepeatedFailure, ...]:
    groups = frame.groupby(["workflow", "category"], sort=True)["id"]
    return tuple(
        RepeatedFailure(workflow=str(workflow), category=str(category), ids=tuple(sorted(ids)))
        for (workflow, category), ids in groups
        if len(ids) > 1
    )


def _latest_runs(runs: Iterable[RunRecord], notes: list[str]) -> tuple[RunResults, ...]:
    latest: dict[tuple[str, str], RunRecord] = {}
    for run in runs:
        key = (run.header.suite, run.header.target)
        order = (run.header.started_at, run.header.run_id)
        held = latest.get(key)
        if held is None or order > (held.header.started_at, held.header.run_id):
            latest[key] = run
    results = []
    for (suite, target), run in sorted(latest.items()):
        incidents = [result for result in run.results if result.incident]
        counted = {verdict: sum(r.verdict == verdict for r in incidents) for verdict in VERDICTS}
        if not run.complete:
            notes.append(f"run {run.header.run_id} ({suite}, {target}) did not finish; its "
                         "finished cases are counted")
        results.append(RunResults(
            suite=suite, target=target, run_id=run.header.run_id,
            started_at=run.header.started_at, path=str(run.path), complete=run.complete,
            passed=counted["pass"], failed=counted["fail"], errored=counted["error"],
            not_passing=tuple(r.case_id for r in incidents if r.verdict != "pass"),
        ))
    return tuple(results)


def compute_metrics(cases: Iterable[Case], runs: Sequence[RunRecord] = (), *,
                    notes: Sequence[str] = ()) -> Metrics:
    """The metrics of the incident cases among ``cases``, with the results of the latest run
    per (suite, target) among ``runs``; ``notes`` (e.g. from :func:`load_runs`) are kept.

    Medians and 90th percentiles interpolate linearly between the closest ranks.
    """
    frame = incident_frame(cases)
    said = list(notes)
    count = len(frame)
    if not count:
        said.append("no incident cases: only baseline cases were given")
    users, users_by_category = _impact(frame, "users", said)
    records, records_by_category = _impact(frame, "records", said)
    missing_any = frame["evidence_missing"] > 0
    return Metrics(
        incidents=count,
        near_misses=int(frame["near_miss"].sum()),
        by_workflow={str(k): int(v) for k, v in frame["workflow"].value_counts().sort_index()
                     .items()},
        by_category={c: int((frame["category"] == c).sum()) for c in CATEGORIES},
        by_severity={s: int((frame["severity"] == s).sum()) for s in SEVERITIES},
        detection=_timing(frame, "impact_started", "detected", "detection", said),
        containment=_timing(frame, "detected", "contained", "containment", said),
        users=users,
        records=records,
        users_by_category=users_by_category,
        records_by_category=records_by_category,
        repeated=_repeated(frame),
        missing_log_rate=float(missing_any.mean()) if count else None,
        missing_by_field={name: float(frame[f"missing_{name}"].mean()) if count else 0.0
                          for name in EVIDENCE_FIELDS},
        reconstructed_rate=float((frame["evidence_reconstructed"] > 0).mean()) if count
        else None,
        reconstructed_by_field={name: float(frame[f"reconstructed_{name}"].mean())
                                if count else 0.0 for name in EVIDENCE_FIELDS},
        referenced_rate=float((frame["references"] > 0).mean()) if count else None,
        bypasses=tuple(frame["id"][frame["approval_bypassed"]]),
        post_fix=_latest_runs(runs, said),
        notes=tuple(said),
    )


def load_runs(folder: Path, *, notes: list[str] | None = None) -> list[RunRecord]:
    """Every run record (``*.jsonl``) under ``folder``; a file that cannot be read is skipped
    and ``notes`` (when given) gets a line saying which and why."""
    if not folder.is_dir():
        raise InputError("runs folder not found", path=folder)
    runs = []
    for file in sorted(folder.rglob("*.jsonl")):
        try:
            runs.append(read_run(file))
        except InputError as exc:
            if notes is not None:
                notes.append(f"skipped unreadable run record {exc}")
    return runs


# --- plain renderers ------------------------------------------------------------------------

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069]")


def _plain(value: Any) -> str:
    """Text safe for a terminal: control and direction-changing characters as escapes."""
    return _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", str(value))


def _hours(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def _aligned(rows: Sequence[Sequence[Any]], *, indent: str = "  ") -> list[str]:
    cells = [[_plain(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    numeric = [all(re.fullmatch(r"[-\d.%]+|n/a", row[i]) for row in cells[1:]) and len(cells) > 1
               for i in range(len(widths))]
    return [
        indent + "  ".join(
            cell.rjust(widths[i]) if numeric[i] and i else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ).rstrip()
        for row in cells
    ]


def _section(title: str, rows: Sequence[Sequence[Any]], *, empty: str = "none") -> list[str]:
    lines = ["", title, "-" * len(title)]
    lines.extend(_aligned(rows) if len(rows) > 1 else [f"  {empty}"])
    return lines


def _timing_rows(timing: Timing, total: int) -> list[list[Any]]:
    rows: list[list[Any]] = [["statistic", "hours"],
                             ["median", _hours(timing.median_hours)],
                             ["p90", _hours(timing.p90_hours)],
                             ["measured", f"{timing.measured} of {total}"]]
    if timing.excluded:
        rows.append(["left out", ", ".join(timing.excluded)])
    return rows


def to_table(metrics: Metrics) -> str:
    """The metrics as aligned plain text with a heading per section, for a terminal."""
    m = metrics
    lines = [f"Incident metrics: {_plural(m.incidents, 'incident')}, "
             f"{_plural(m.near_misses, 'near miss', 'near misses')}"]
    lines += _section("Incidents by workflow",
                      [["workflow", "incidents"], *m.by_workflow.items()])
    lines += _section("Incidents by category",
                      [["category", "incidents"], *m.by_category.items()])
    lines += _section("Incidents by severity",
                      [["severity", "incidents"], *m.by_severity.items()])
    lines += _section("Time to detection (impact_started -> detected)",
                      _timing_rows(m.detection, m.incidents))
    lines += _section("Time to containment (detected -> contained)",
                      _timing_rows(m.containment, m.incidents))
    impact: list[list[Any]] = [
        ["category", "users", "records"],
        *[[c, m.users_by_category.get(c, 0), m.records_by_category.get(c, 0)]
          for c in CATEGORIES if c in m.users_by_category or c in m.records_by_category],
        ["total", m.users, m.records],
    ]
    lines += _section("Affected users and records", impact)
    lines += _section("Repeated failure types (same workflow and category)",
                      [["workflow", "category", "incidents"],
                       *[[r.workflow, r.category, ", ".join(r.ids)] for r in m.repeated]])
    lines += _section("Missing log rate (incidents lacking evidence)",
                      [["evidence", "missing"], ["any field", _share(m.missing_log_rate)],
                       *[[name, _share(rate)] for name, rate in m.missing_by_field.items()]])
    lines += _section("Evidence quality (incidents with evidence rebuilt, not logged)",
                      [["evidence", "reconstructed"],
                       ["any field", _share(m.reconstructed_rate)],
                       *[[name, _share(rate)] for name, rate in m.reconstructed_by_field.items()],
                       ["records with references", _share(m.referenced_rate)]])
    lines += _section(f"Human review bypasses: {len(m.bypasses)}",
                      [["incident"], *[[case_id] for case_id in m.bypasses]])
    lines += _section("Post-fix results (incident cases, latest run per suite and target)",
                      [["suite", "target", "pass", "fail", "error", "run"],
                       *[[r.suite, r.target, r.passed, r.failed, r.errored, r.run_id]
                         for r in m.post_fix]],
                      empty="no run records given")
    if m.notes:
        lines += ["", "Notes", "-----", *(f"  - {_plain(note)}" for note in m.notes)]
    return "\n".join(lines) + "\n"


def _number(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def long_rows(metrics: Metrics) -> list[tuple[str, str, Any]]:
    """The metrics as (metric, key, value) rows: the long format that CSV output uses."""
    m = metrics
    rows: list[tuple[str, str, Any]] = [("incidents", "all", m.incidents),
                                        ("near_misses", "all", m.near_misses)]
    rows += [("by_workflow", k, v) for k, v in m.by_workflow.items()]
    rows += [("by_category", k, v) for k, v in m.by_category.items()]
    rows += [("by_severity", k, v) for k, v in m.by_severity.items()]
    for name, timing in (("time_to_detection_hours", m.detection),
                         ("time_to_containment_hours", m.containment)):
        rows += [(name, "median", _number(timing.median_hours, 2)),
                 (name, "p90", _number(timing.p90_hours, 2)),
                 (name, "measured", timing.measured),
                 (name, "left_out", " ".join(timing.excluded))]
    rows.append(("affected_users", "total", m.users))
    rows += [("affected_users", k, v) for k, v in m.users_by_category.items()]
    rows.append(("affected_records", "total", m.records))
    rows += [("affected_records", k, v) for k, v in m.records_by_category.items()]
    rows += [("repeated_failures", f"{r.workflow}/{r.category}", " ".join(r.ids))
             for r in m.repeated]
    rows.append(("missing_log_rate", "any", _number(m.missing_log_rate, 4)))
    rows += [("missing_log_rate", k, _number(v, 4)) for k, v in m.missing_by_field.items()]
    rows.append(("reconstructed_rate", "any", _number(m.reconstructed_rate, 4)))
    rows += [("reconstructed_rate", k, _number(v, 4))
             for k, v in m.reconstructed_by_field.items()]
    rows.append(("referenced_rate", "any", _number(m.referenced_rate, 4)))
    rows += [("human_review_bypasses", "count", len(m.bypasses)),
             ("human_review_bypasses", "ids", " ".join(m.bypasses))]
    for r in m.post_fix:
        key = f"{r.suite}/{r.target}"
        rows += [("post_fix_results", f"{key}/pass", r.passed),
                 ("post_fix_results", f"{key}/fail", r.failed),
                 ("post_fix_results", f"{key}/error", r.errored),
                 ("post_fix_results", f"{key}/run_id", r.run_id)]
    rows += [("note", str(n), note) for n, note in enumerate(m.notes, start=1)]
    return rows


def to_csv(metrics: Metrics) -> str:
    """The metrics as CSV in long format: a header ``metric,key,value``, then one row each."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("metric", "key", "value"))
    writer.writerows(long_rows(metrics))
    return buffer.getvalue()


def to_json(metrics: Metrics) -> str:
    """The metrics as a JSON object (hours and rates unrounded)."""
    return json.dumps(asdict(metrics), indent=2, ensure_ascii=False) + "\n"


# --- HTML -----------------------------------------------------------------------------------

CHART_WIDTH = 640
LABEL_WIDTH = 170
BAR_WIDTH = 360
ROW_HEIGHT = 26
BAR_HEIGHT = 16
TOP = 6


def _chart(key: str, title: str, rows: Sequence[tuple[str, float, str]]) -> dict[str, Any]:
    """A horizontal bar chart laid out for the template: one bar per (label, value, shown)."""
    biggest = max([value for _, value, _ in rows] + [0]) or 1
    laid = []
    for i, (label, value, shown) in enumerate(rows):
        y = TOP + i * ROW_HEIGHT
        width = value / biggest * BAR_WIDTH if value else 0.0
        laid.append({
            "label": label, "shown": shown, "width": round(max(width, 2.0) if value else 0, 1),
            "bar_y": y + (ROW_HEIGHT - BAR_HEIGHT) / 2, "text_y": y + ROW_HEIGHT / 2 + 4,
        })
    return {
        "key": key, "title": title, "rows": laid,
        "description": "; ".join(f"{label}: {shown}" for label, _, shown in rows),
        "width": CHART_WIDTH, "height": TOP * 2 + len(rows) * ROW_HEIGHT,
        "label_x": LABEL_WIDTH - 8, "bar_x": LABEL_WIDTH, "track_width": BAR_WIDTH,
        "bar_height": BAR_HEIGHT, "value_x": LABEL_WIDTH + BAR_WIDTH + 10,
    }


def _timing_chart(metrics: Metrics) -> dict[str, Any]:
    rows = []
    for label, timing in (("detection", metrics.detection),
                          ("containment", metrics.containment)):
        for stat, value in (("median", timing.median_hours), ("p90", timing.p90_hours)):
            rows.append((f"{label} {stat}", value or 0.0, f"{_hours(value)} h"))
    return _chart("timing", "Time to detection and containment (hours)", rows)


def build_view(metrics: Metrics) -> dict[str, Any]:
    """Everything the HTML template shows, as plain values, lists and mappings."""
    m = metrics
    return {
        "version": __version__,
        "metrics": m,
        "charts": [
            _chart("category", "Incidents by category",
                   [(c, n, str(n)) for c, n in m.by_category.items()]),
            _chart("severity", "Incidents by severity",
                   [(s, n, str(n)) for s, n in m.by_severity.items()]),
            _timing_chart(m),
        ],
        "timings": [
            {"label": "Time to detection", "span": "impact started \u2192 detected",
             "median": _hours(m.detection.median_hours), "p90": _hours(m.detection.p90_hours),
             "measured": m.detection.measured, "excluded": m.detection.excluded},
            {"label": "Time to containment", "span": "detected \u2192 contained",
             "median": _hours(m.containment.median_hours),
             "p90": _hours(m.containment.p90_hours),
             "measured": m.containment.measured, "excluded": m.containment.excluded},
        ],
        "impact": [
            {"category": c, "users": m.users_by_category.get(c, 0),
             "records": m.records_by_category.get(c, 0)}
            for c in CATEGORIES if c in m.users_by_category or c in m.records_by_category
        ],
        "missing_any": _share(m.missing_log_rate),
        "missing": [{"field": name, "share": _share(rate)}
                    for name, rate in m.missing_by_field.items()],
        "reconstructed_any": _share(m.reconstructed_rate),
        "reconstructed": [{"field": name, "share": _share(rate)}
                          for name, rate in m.reconstructed_by_field.items()],
        "referenced": _share(m.referenced_rate),
    }


def to_html(metrics: Metrics) -> str:
    """The metrics as one self-contained HTML page: inline SVG charts, one inline stylesheet
    allowed by its hash in a Content-Security-Policy, no scripts."""
    template = environment().get_template(TEMPLATE)
    return template.render(view=build_view(metrics), csp=content_security_policy(template))


def render(metrics: Metrics, fmt: str) -> str:
    """The metrics in one of :data:`FORMATS`."""
    renderers = {"table": to_table, "csv": to_csv, "json": to_json, "html": to_html}
    if fmt not in renderers:
        problem = f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}"
        raise InputError(problem, field="--format")
    return renderers[fmt](metrics)
