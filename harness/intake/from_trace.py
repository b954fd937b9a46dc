"""``harness case from-trace``: a workflow's trace -> a draft incident case that reproduces it.

The trace is read as case evidence (:mod:`harness.intake.traces`), the category's checks are
drafted from it (:mod:`harness.intake.drafter`), and the draft is written through the one case
writer (:mod:`harness.intake.writer`), marked ``draft: true`` with every field a person must
still fill reading ``TODO: ...``. A file of several traces gives one draft per trace (or the one
``trace_id`` names). ``into`` fills an existing draft instead (one ``harness incident new``
wrote): its record is kept, its evidence and placeholder checks are replaced by the trace's.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.errors import InputError
from harness.intake import writer
from harness.intake.drafter import drafted
from harness.intake.traces import FORMAT_NAMES, ImportedTrace, import_traces
from harness.loader import cases_root, load_tool_rules, read_yaml
from harness.model import CATEGORIES, EVIDENCE_FIELDS, SEVERITIES, STATUSES

DEFAULT_SEVERITY = "sev3"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
HEADER = (
    "Draft incident case: review it before it counts.",
    "  1. Fill in every TODO and check the record (title, severity, owner, timeline);",
    "     `harness check` lists what is left.",
    "  2. Keep the checks that would have caught the incident and that a correct answer",
    "     passes; add what is missing (see `harness checks`).",
    "  3. Close it: `harness case close <this file>` (it refuses while anything is left).",
)
EXPOSURE_NOTE = (
    "The evidence is redacted: each personal or secret value reads",
    "[redacted:<detector>:<salted digest>], and the checks hold the same digests, never",
    "the values. no_pii and no_leak find each marker as the value it stands for, so the",
    "case fails on its own evidence as it did on the original trace.",
)


def _choice(value: str | None, choices: tuple[str, ...], name: str, path: Path) -> None:
    if value is not None and value not in choices:
        problem = f"expected one of {', '.join(choices)}, found {value!r}"
        raise InputError(problem, path=path, field=name)


def write_draft_case(
    path: Path,
    *,
    id: str,
    workflow: str,
    category: str,
    evidence: Mapping[str, Any],
    expect: list[dict[str, Any]],
    title: str | None = None,
    owner: str | None = None,
    severity: str | None = None,
    status: str = "open",
    as_of: dt.date | None = None,
    timeline: Mapping[str, str] | None = None,
    origin: str | None = None,
) -> Path:
    """Write a draft incident case that ``load_case`` accepts; never overwrites a file.

    ``evidence`` is stored as given (:func:`harness.intake.drafter.drafted` redacts a
    data_exposure one). Free-text record fields not given read ``TODO: ...``; ``owner``
    defaults to ``unassigned`` and ``severity`` to ``sev3``, each with a comment saying so.
    ``origin`` (where the evidence came from) goes into the header comment.
    """
    _choice(category, CATEGORIES, "category", path)
    _choice(severity, SEVERITIES, "severity", path)
    _choice(status, STATUSES, "status", path)
    for name, value in (("id", id), ("workflow", workflow), ("owner", owner)):
        if value is not None and not value.strip():
            raise InputError("expected a non-empty text", path=path, field=name)
    if not expect:
        raise InputError("expected at least one check", path=path, field="expect")
    header = list(HEADER) + ([f"Evidence: {origin}."] if origin else [])
    if category == "data_exposure":
        header += EXPOSURE_NOTE
    fields: list[tuple[str, Any, str | None]] = [
        ("draft", True, None),
        ("id", id, None),
        ("title", title or "TODO: one line saying what went wrong", None),
        ("workflow", workflow, None),
        ("category", category, None),
        ("severity", severity or DEFAULT_SEVERITY, None if severity else
         f"not given: {DEFAULT_SEVERITY} until someone rates the impact (sev1 worst .. sev4)"),
        ("status", status, None),
        ("owner", owner or writer.UNASSIGNED, None if owner else
         "not given: name the person who owns the fix"),
    ]
    if timeline:
        fields.append(("timeline", dict(timeline), "from the trace: when the conversation "
                                                   "happened; adjust to the incident's own "
                                                   "timeline"))
    fields += [
        ("impact", {"summary": "TODO: who and what was affected"}, None),
        ("root_cause", "TODO: why it happened", None),
        ("fix", {"summary": "TODO: what was changed, with a reference"}, None),
        ("prevention", "TODO: what keeps it from happening again", None),
        ("evidence", dict(evidence), None),
    ]
    if "input" not in evidence:
        fields.append(("input", "TODO: the input that led to the incident",
                       "the trace shows no input"))
    if as_of is not None:
        fields.append(("as_of", as_of.isoformat(),
                       "the date the case is judged at (source ages, for one)"))
    fields.append(("expect", expect, "drafted from the evidence, so that the case fails on it"))
    writer.write_case(path, writer.render(fields, header))
    return path


@dataclasses.dataclass(frozen=True, slots=True)
class DraftCase:
    """A draft case written from a trace: where it is, what the trace held, what it checks."""

    path: Path
    trace: ImportedTrace
    expect: tuple[dict[str, Any], ...]
    left: tuple[str, ...] = ()
    """The fields a person must still fill."""

    def summary(self) -> list[str]:
        """What the command prints: the file, the checks, the evidence the trace lacks."""
        kinds = ", ".join(next(iter(entry)) for entry in self.expect)
        which = f" (trace {self.trace.trace_id})" if self.trace.trace_id else ""
        lines = [f"drafted {self.path} from {FORMAT_NAMES[self.trace.format]} in "
                 f"{self.trace.path}{which}: {len(self.expect)} check(s): {kinds}"]
        if self.trace.convention:
            lines.append(f"read with: {self.trace.convention}")
        missing = self.trace.evidence.get("missing") or []
        if missing:
            lines.append(f"the trace lacks: {', '.join(missing)}")
        if self.left:
            lines.append(f"left to fill: {', '.join(self.left)}")
        lines.append("review it, then close it: harness case close " + str(self.path))
        return lines


def _as_of(trace: ImportedTrace) -> tuple[dt.date, str]:
    moment = trace.ended_at or trace.started_at
    if moment is None:
        return (dt.datetime.now(dt.UTC).date(),
                "; the trace has no timestamps, so as_of is the day of drafting")
    return dt.datetime.fromisoformat(moment).date(), ""


def _with_origin(trace: ImportedTrace, trace_path: Path) -> dict[str, Any]:
    """The trace's evidence with where it came from (``evidence.trace``)."""
    origin = {"format": trace.format, "file": str(trace_path)}
    if trace.convention:
        origin["convention"] = trace.convention
    if trace.trace_id:
        origin["trace_id"] = trace.trace_id
    return {**trace.evidence, "trace": origin}


def _ids(given: str | None, count: int, cases: Path, now: dt.datetime) -> list[str]:
    """One id per trace: ``given`` (``given-1``, ``given-2``, ... for several), else the next
    free ``INC-<year>-<n>`` of the registry, one after the other."""
    if given is not None:
        return [given] if count == 1 else [f"{given}-{n}" for n in range(1, count + 1)]
    first = writer.next_id(cases, now.year)
    prefix, number = first.rsplit("-", 1)
    return [f"{prefix}-{int(number) + n:0{len(number)}d}" for n in range(count)]


def draft_from_trace(
    trace_path: Path,
    *,
    category: str,
    id: str | None = None,
    workflow: str | None = None,
    out: Path | None = None,
    format: str | None = None,
    trace_id: str | None = None,
    reference: str | None = None,
    title: str | None = None,
    owner: str | None = None,
    severity: str | None = None,
    root: Path | None = None,
    salt: str | None = None,
    now: dt.datetime | None = None,
) -> list[DraftCase]:
    """Import a trace file, draft the category's checks and write one draft case per trace.

    ``workflow`` defaults to the one the trace names (service or trace name), then to the folder
    of ``out``; ``out`` (one trace only) defaults to ``cases/<workflow>/<id>.yaml`` under
    ``root`` (default: the current folder). ``id`` defaults to the registry's next free
    ``INC-<year>-<n>``; an existing file is never overwritten (fill a draft with
    :func:`draft_into`). ``as_of`` is the date of the trace.
    """
    traces = import_traces(trace_path, format=format, trace_id=trace_id)
    if out is not None and len(traces) > 1:
        problem = (f"the file holds {len(traces)} traces and --out names one file; leave --out "
                   f"out (one draft per trace) or choose one with --trace-id")
        raise InputError(problem, path=trace_path, field="out")
    base = root or Path.cwd()
    rules = load_tool_rules(base)
    ids = _ids(id, len(traces), base / "cases", now or dt.datetime.now(dt.UTC))
    # every check first: a batch writes all of its drafts or none
    plans = []
    for trace, case_id in zip(traces, ids, strict=True):
        name = workflow or trace.workflow or (out.parent.name if out is not None else None)
        if not name:
            problem = "the trace names no workflow; name it (--workflow)"
            raise InputError(problem, path=trace_path, field="workflow")
        path = out
        if path is None:
            for field, value in (("id", case_id), ("workflow", name)):
                if not _NAME.match(value):
                    problem = (f"{value!r} cannot name a file; use letters, digits, '.', '_' "
                               f"and '-' (or choose the file with --out)")
                    raise InputError(problem, field=field)
            path = base / "cases" / name / f"{case_id}.yaml"
        if path.exists():
            problem = ("a case file with this id already exists; nothing was written (fill a "
                       "draft with --into, or choose another --id)")
            raise InputError(problem, path=path, field="id")
        try:
            draft = drafted(category, trace.evidence, reference=reference, rules=rules,
                            salt=salt if salt is not None else secrets.token_hex(8))
        except InputError as exc:
            raise InputError(exc.problem, path=trace_path, field=exc.field) from None
        plans.append((trace, case_id, name, path, draft))
    written = []
    for trace, case_id, name, path, draft in plans:
        as_of, note = _as_of(trace)
        evidence = {**draft.evidence, "trace": _with_origin(trace, trace_path)["trace"]}
        write_draft_case(
            path, id=case_id, workflow=name, category=category, evidence=evidence,
            expect=draft.expect, title=title, owner=owner, severity=severity, as_of=as_of,
            timeline={"impact_started": trace.started_at} if trace.started_at else None,
            origin=f"{FORMAT_NAMES[trace.format]} from {trace_path}{note}")
        written.append(DraftCase(path=path, trace=trace, expect=tuple(draft.expect),
                                 left=tuple(writer.left_in_file(path))))
    return written


def _placeholder(entry: Any) -> bool:
    return (isinstance(entry, Mapping) and len(entry) == 1
            and str(next(iter(entry.values()))).startswith(writer.TODO))


def draft_into(
    trace_path: Path,
    case_path: Path,
    *,
    category: str | None = None,
    format: str | None = None,
    trace_id: str | None = None,
    reference: str | None = None,
    salt: str | None = None,
) -> DraftCase:
    """Fill an existing draft case with a trace: the trace's evidence replaces the fields it
    shows (what the draft had for the others stays), its drafted checks replace the
    placeholder ones (the draft's own checks stay first), ``input: TODO`` goes. The record
    (id, title, owner, severity, impact, timeline, ...) is kept as it is. Only a draft
    (``draft: true``) is filled."""
    data, _ = read_yaml(case_path)
    if data.get("draft") is not True:
        problem = "not a draft (no draft: true): a finished case is never rewritten"
        raise InputError(problem, path=case_path, field="draft")
    kind = data.get("category")
    if kind not in CATEGORIES:
        raise InputError("the draft has no category; give it one first", path=case_path,
                         field="category")
    if category is not None and category != kind:
        raise InputError(f"the draft's category is {kind}, not {category}", path=case_path,
                         field="category")
    traces = import_traces(trace_path, format=format, trace_id=trace_id)
    if len(traces) > 1:
        ids = ", ".join(t.trace_id or "?" for t in traces[:4])
        problem = (f"the file holds {len(traces)} traces ({ids}); choose the incident's with "
                   f"--trace-id")
        raise InputError(problem, path=trace_path, field="trace_id")
    (trace,) = traces
    draft = drafted(kind, trace.evidence, reference=reference,
                    rules=load_tool_rules(cases_root(case_path)),
                    salt=salt if salt is not None else secrets.token_hex(8))
    fields = writer.plain(data)
    before = dict(fields.get("evidence") or {})
    evidence = {key: value for key, value in before.items()
                if key not in (*EVIDENCE_FIELDS, "missing", "trace")}
    for name in EVIDENCE_FIELDS:
        if name in draft.evidence:
            evidence[name] = draft.evidence[name]
        elif name in before:
            evidence[name] = before[name]
    evidence["missing"] = [name for name in EVIDENCE_FIELDS if name not in evidence]
    evidence["trace"] = _with_origin(trace, trace_path)["trace"]
    fields["evidence"] = evidence
    if "input" in evidence and str(fields.get("input", "")).startswith(writer.TODO):
        del fields["input"]
    kept = [entry for entry in fields.get("expect") or [] if not _placeholder(entry)]
    fields["expect"] = kept + [entry for entry in draft.expect if entry not in kept]
    header = [*HEADER, f"Evidence: {FORMAT_NAMES[trace.format]} from {trace_path}."]
    if kind == "data_exposure":
        header += EXPOSURE_NOTE
    writer.write_case(case_path, writer.render(((k, v, None) for k, v in fields.items()), header),
                      replace=True)
    return DraftCase(path=case_path, trace=trace, expect=tuple(draft.expect),
                     left=tuple(writer.left_in_file(case_path)))

