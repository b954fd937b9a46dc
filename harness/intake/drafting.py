"""Draft regression checks and draft case files from an incident's category and evidence.

``harness case from-trace`` turns the trace of a conversation that went wrong into a case file
for a person to finish: :mod:`harness.intake.traces` reads the evidence, :func:`draft_checks`
proposes the checks for the incident's category, and :func:`write_draft_case` writes a loadable case
marked ``draft: true``. Each category's checks are chosen to fail on the evidence they came
from, so the draft reproduces the incident; the person keeps those that would have caught it
without failing a correct answer.

The plaintext of personal or secret data never lands in a ``data_exposure`` draft: its checks
carry salted digests (:func:`harness.canaries.canary_digest`) and its evidence is
redacted, each value replaced by ``[redacted:<detector>]``.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.canaries import canary_digest
from harness.checks.automation import WRITE_TOOLS
from harness.detectors import DETECTORS, find_sensitive
from harness.errors import InputError
from harness.files import write_atomic
from harness.intake.traces import (
    APPROVAL_NAME,
    DEFAULT_STEP,
    FORMAT_NAMES,
    ImportedTrace,
    import_trace,
)
from harness.model import CATEGORIES, SEVERITIES, STATUSES, plain

DEFAULT_SEVERITY = "sev3"
DEFAULT_OWNER = "unassigned"
DEFAULT_MAX_AGE_DAYS = 365
"""The age limit of a drafted ``source_fresh`` check."""
MAX_CLAIMS = 3
"""How many sentences of the bad output a drafted ``forbidden_claims`` check lists."""
WRITE_VERBS = frozenset({
    "issue", "update", "cancel", "delete", "create", "refund", "charge", "transfer", "void",
    "modify", "remove", "close", "set", "write", "pay", "grant", "revoke", "apply",
})
"""The first word of a tool name that acts on a record (``issue_refund``, ``update_record``)."""
PROMISES = re.compile(
    r"\b(refund\w*|guarantee\w*|waive\w*|free|full|credit\w*|compensat\w*|promis\w*|always|"
    r"never|reimburs\w*|discount\w*|exception|eligible|entitled|approved|covered)\b",
    re.IGNORECASE,
)
"""Words that make a sentence a commitment a policy may forbid."""
RECORD_ID = re.compile(r"\b[A-Z]{1,5}-\d{3,}\b")
"""Record ids as customers write them (``A-1001``, ``INV-20931``)."""
_SHAPE = re.compile(r"^([A-Z]{1,5})-\d{3,}$")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_URL = re.compile(r"https?://\S+")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


# --- what a draft checks --------------------------------------------------------------------------


def draft_checks(
    category: str,
    evidence: Mapping[str, Any],
    *,
    reference: str | None = None,
    salt: str | None = None,
) -> list[dict[str, Any]]:
    """The ``expect`` entries (one-key mappings ``kind: params``) drafted for an incident.

    ``reference`` is a corrected answer (policy and output_quality); ``salt`` makes the
    data_exposure digests reproducible (default: a random one). Raises :class:`InputError`
    (with the evidence field) when the evidence cannot show the category's failure.
    """
    if category not in CATEGORIES:
        problem = f"unknown category {category!r}; expected one of {', '.join(CATEGORIES)}"
        raise InputError(problem, field="category")
    if category == "data_exposure":
        return _exposure_checks(evidence, salt)
    if category == "automation_error":
        return _automation_checks(evidence)
    if category == "human_review":
        return _review_checks(evidence)
    if category == "retrieval":
        return _retrieval_checks(evidence)
    return _output_checks(evidence, reference)


def _leaves(value: Any, key: str | None = None) -> Iterator[tuple[str | None, str]]:
    """Every string and number in a JSON-like value with the mapping key above it; mapping
    keys are leaves too (a key may itself hold an email address)."""
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, str | int | float):
        yield key, str(value)
    elif isinstance(value, Mapping):
        for name, item in value.items():
            yield None, str(name)
            yield from _leaves(item, str(name))
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _leaves(item, key)


def _hits(text: str, key: str | None) -> list[tuple[str, int, int, str]]:
    """Detector hits in ``text``, scanned as ``key: text`` as no_pii scans tool arguments (the
    argument name is context: "phone: 5551234567"); offsets are into ``text``."""
    prefix = f"{key}: " if key else ""
    found = []
    for detector, start, end, _ in sorted(find_sensitive(prefix + text), key=lambda h: h[1]):
        if end <= len(prefix):
            continue
        start = max(start, len(prefix))
        found.append((detector, start - len(prefix), end - len(prefix),
                      (prefix + text)[start:end]))
    return found


def sensitive_values(evidence: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(detector, value) of each personal or secret value in the evidence output and tool-call
    arguments, as ``no_pii`` finds them, in the order they appear, without repeats."""
    found: dict[str, str] = {}
    output = evidence.get("output")
    places = [(None, output)] if isinstance(output, str) else []
    for call in evidence.get("tool_calls") or []:
        if isinstance(call, Mapping):
            places.extend(_leaves(call.get("args")))
    for key, text in places:
        for detector, _, _, value in _hits(text, key):
            found.setdefault(value, detector)
    return [(detector, value) for value, detector in found.items()]


def _exposure_checks(evidence: Mapping[str, Any], salt: str | None) -> list[dict[str, Any]]:
    found = sensitive_values(evidence)
    if not found:
        problem = ("no personal or secret data found in the output or the tool-call arguments "
                   f"({', '.join(DETECTORS)}); names and postal addresses are not detected: "
                   "write a no_leak check with them by hand")
        raise InputError(problem, field="evidence.output")
    salt = salt if salt is not None else secrets.token_hex(8)
    try:
        digests = list(dict.fromkeys(canary_digest(value, salt) for _, value in found))
    except ValueError as exc:
        raise InputError(str(exc), field="salt") from None
    fired = {detector for detector, _ in found}
    return [
        {"no_pii": {"detectors": [name for name in DETECTORS if name in fired]}},
        {"no_leak": {"digests": digests}},
    ]


def is_write_tool(name: str) -> bool:
    """Whether a tool acts on a record: a known write tool, or a name starting with a verb
    like issue, update, cancel or delete (``issueRefund`` counts too)."""
    words = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).casefold().replace("-", "_")
    return name in WRITE_TOOLS or words.split("_", 1)[0] in WRITE_VERBS


def _calls(evidence: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [call for call in evidence.get("tool_calls") or []
            if isinstance(call, Mapping) and isinstance(call.get("name"), str)]


def _writes(evidence: Mapping[str, Any], purpose: str) -> list[Mapping[str, Any]]:
    writes = [call for call in _calls(evidence) if is_write_tool(call["name"])]
    if not writes:
        names = ", ".join(call["name"] for call in _calls(evidence)) or "none"
        problem = (f"no write call in the evidence (calls: {names}); {purpose} needs a call "
                   f"that acts on a record, such as {', '.join(WRITE_TOOLS)}")
        raise InputError(problem, field="evidence.tool_calls")
    return writes


def _is_id_key(key: str) -> bool:
    return key == "id" or key.endswith(("_id", "Id"))


def _shape(value: Any) -> str | None:
    match = _SHAPE.match(value) if isinstance(value, str) else None
    return match.group(1) if match else None


def named_record(case_input: Any, args: Mapping[str, Any]) -> tuple[str, Any, bool] | None:
    """The record the input names for a write call: (argument, value, whether the input has it
    as a field). An input field that the call also has wins, the one whose value differs
    first; else an id in the message shaped like the argument's value (``A-1001``)."""
    keys = [key for key, value in args.items()
            if _is_id_key(str(key)) and isinstance(value, str | int) and not isinstance(value,
                                                                                        bool)]
    if isinstance(case_input, Mapping):
        shared = [key for key in keys if isinstance(case_input.get(key), str | int)]
        differing = [key for key in shared if case_input[key] != args[key]]
        if shared:
            key = (differing or shared)[0]
            return key, case_input[key], True
        message = case_input.get("message")
    else:
        message = case_input
    if not isinstance(message, str):
        return None
    named = RECORD_ID.findall(message)
    for key in keys:
        shape = _shape(args[key])
        for record in named:
            if shape is not None and _shape(record) == shape:
                return key, record, False
    return None


def _automation_checks(evidence: Mapping[str, Any]) -> list[dict[str, Any]]:
    wrong = _writes(evidence, "an automation_error draft")[-1]
    name = wrong["name"]
    args = dict(wrong.get("args") or {})
    checks: list[dict[str, Any]] = [
        {"tool_not_called": {"name": name, "args": args} if args else {"name": name}},
    ]
    record = named_record(evidence.get("input"), args)
    if record is not None:
        arg, value, is_field = record
        checks.append({"tool_args": {"name": name, "args": {arg: value}}})
        if is_field:
            checks.append({"record_target": {"tools": [name], "arg": arg}})
    return checks


def _review_checks(evidence: Mapping[str, Any]) -> list[dict[str, Any]]:
    gated = _writes(evidence, "a human_review draft")[0]["name"]
    steps = [approval.get("step") for approval in evidence.get("approvals") or []
             if isinstance(approval, Mapping)]
    steps += [call.get("args", {}).get("step") for call in _calls(evidence)
              if APPROVAL_NAME.search(call["name"]) and isinstance(call.get("args"), Mapping)]
    step = next((s for s in steps if isinstance(s, str) and s), DEFAULT_STEP)
    return [{"approval_required": {"step": step, "before": gated}}]


def _retrieval_checks(evidence: Mapping[str, Any]) -> list[dict[str, Any]]:
    ids = [str(source["id"]) for source in evidence.get("sources") or []
           if isinstance(source, Mapping) and source.get("id") is not None]
    if not ids:
        problem = "no sources in the evidence; a retrieval draft needs the sources it used"
        raise InputError(problem, field="evidence.sources")
    return [{"not_cites": ids}, {"source_fresh": {"max_age_days": DEFAULT_MAX_AGE_DAYS}}]


def specific_claims(text: str, *, limit: int = MAX_CLAIMS) -> list[str]:
    """The 1 to ``limit`` most specific sentences of an answer, in their order: those with
    figures and commitments (refund, guarantee, waive, ...). Citations and sentences that
    carry contact details are not claims."""
    sentences = [part.strip() for part in _SENTENCE.split(text) if part.strip()]
    claims = [s for s in sentences if not _URL.search(s) and not find_sensitive(s)
              and not s.casefold().startswith("source")]
    if not claims:
        return sentences[:1] or [text.strip()]
    scored = [(2 * len({w.casefold() for w in PROMISES.findall(s)}) + bool(re.search(r"\d", s)),
               index, s) for index, s in enumerate(claims)]
    chosen = sorted((item for item in scored if item[0] > 0), key=lambda i: (-i[0], i[1]))
    if not chosen:
        chosen = [max(scored, key=lambda item: len(item[2]))]
    return [s for _, _, s in sorted(chosen[:limit], key=lambda item: item[1])]


def _output_checks(evidence: Mapping[str, Any], reference: str | None) -> list[dict[str, Any]]:
    output = evidence.get("output")
    if not isinstance(output, str) or not output.strip():
        problem = "no output in the evidence; the draft forbids what the bad answer claimed"
        raise InputError(problem, field="evidence.output")
    if reference is not None and not reference.strip():
        raise InputError("expected a corrected answer, found an empty text", field="reference")
    checks: list[dict[str, Any]] = [{"forbidden_claims": specific_claims(output)}]
    if reference is not None:
        checks.append({"similar": {"reference": reference.strip()}})
    else:
        checks.append({"not_similar": output})
    return checks


# --- redaction ------------------------------------------------------------------------------------


def _redact_text(text: str, key: str | None, known: list[tuple[str, str]]) -> str:
    spans: list[tuple[int, int, str]] = []
    for detector, start, end, _ in sorted(_hits(text, key), key=lambda h: (h[1], -h[2])):
        if not spans or start >= spans[-1][1]:
            spans.append((start, end, detector))
    for start, end, detector in reversed(spans):
        text = f"{text[:start]}[redacted:{detector}]{text[end:]}"
    for detector, value in sorted(known, key=lambda item: -len(item[1])):
        text = text.replace(value, f"[redacted:{detector}]")
    return text


def redact(value: Any, known: list[tuple[str, str]], key: str | None = None) -> Any:
    """``value`` with every detected personal or secret value, and every ``known`` value,
    replaced by ``[redacted:<detector>]``, in strings, numbers and mapping keys alike."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        return _redact_text(value, key, known)
    if isinstance(value, int | float):
        text = _redact_text(str(value), key, known)
        return value if text == str(value) else text
    if isinstance(value, Mapping):
        return {_redact_text(str(name), None, known): redact(item, known, str(name))
                for name, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item, known, key) for item in value]
    return value


# --- the case file --------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Block style with list items indented under their key, multi-line text as ``|``."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value,
                                   style="|" if "\n" in value else None)


_Dumper.add_representer(str, _represent_text)


def _yaml(key: str, value: Any, comment: str | None = None) -> str:
    text = yaml.dump({key: value}, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                     width=96, default_flow_style=False)
    return (f"# {comment}\n" if comment else "") + text


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

    Free-text record fields not given read ``TODO: ...``; ``owner`` defaults to
    ``unassigned`` and ``severity`` to ``sev3``, each with a comment saying so. For
    data_exposure the evidence is redacted first. ``origin`` (where the evidence came from)
    goes into the header comment.
    """
    _choice(category, CATEGORIES, "category", path)
    _choice(severity, SEVERITIES, "severity", path)
    _choice(status, STATUSES, "status", path)
    for name, value in (("id", id), ("workflow", workflow), ("owner", owner)):
        if value is not None and not value.strip():
            raise InputError("expected a non-empty text", path=path, field=name)
    if not expect:
        raise InputError("expected at least one check", path=path, field="expect")
    if path.exists():
        problem = "file already exists; a draft never overwrites a case (choose another path)"
        raise InputError(problem, path=path)
    header = [
        "Draft incident case: review it before it counts.",
        "  1. Fill in every TODO and check the record (title, severity, owner, timeline).",
        "  2. Keep the checks that would have caught the incident and that a correct answer",
        "     passes; add what is missing (see `harness checks`).",
        "  3. Delete the line `draft: true`.",
    ]
    if origin:
        header.append(f"Evidence: {origin}.")
    if category == "data_exposure":
        evidence = redact(evidence, sensitive_values(evidence))
        header += [
            "The evidence is redacted: each personal or secret value reads [redacted:<detector>]",
            "and the checks hold salted digests, never the values. Replaying this file's",
            "evidence therefore passes the exposure checks; they fail on the original trace.",
        ]
    parts = ["".join(f"# {line}\n" for line in header)]
    parts.append(_yaml("draft", True))
    parts.append(_yaml("id", id))
    parts.append(_yaml("title", title or "TODO: one line saying what went wrong"))
    parts.append(_yaml("workflow", workflow))
    parts.append(_yaml("category", category))
    parts.append(_yaml("severity", severity or DEFAULT_SEVERITY, None if severity else
                       f"not given: {DEFAULT_SEVERITY} until someone rates the impact "
                       "(sev1 worst .. sev4)"))
    parts.append(_yaml("status", status))
    parts.append(_yaml("owner", owner or DEFAULT_OWNER, None if owner else
                       "not given: name the person who owns the fix"))
    if timeline:
        parts.append(_yaml("timeline", dict(timeline),
                           "from the trace: when the conversation happened; adjust to the "
                           "incident's own timeline"))
    parts.append(_yaml("impact", {"summary": "TODO: who and what was affected"}))
    parts.append(_yaml("root_cause", "TODO: why it happened"))
    parts.append(_yaml("fix", {"summary": "TODO: what was changed, with a reference"}))
    parts.append(_yaml("prevention", "TODO: what keeps it from happening again"))
    parts.append(_yaml("evidence", plain(evidence)))
    if "input" not in evidence:
        parts.append(_yaml("input", "TODO: the input that led to the incident",
                           "the trace shows no input"))
    if as_of is not None:
        parts.append(_yaml("as_of", as_of.isoformat(),
                           "the date the case is judged at (source ages, for one)"))
    parts.append(_yaml("expect", plain(expect),
                       "drafted from the evidence, so that the case fails on it"))
    write_atomic(path, "".join(parts))
    return path


# --- from a trace file ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DraftCase:
    """A draft case written from a trace: where it is, what the trace held, what it checks."""

    path: Path
    trace: ImportedTrace
    expect: tuple[dict[str, Any], ...]

    def summary(self) -> list[str]:
        """What the command prints: the file, the checks, the evidence the trace lacks."""
        kinds = ", ".join(next(iter(entry)) for entry in self.expect)
        lines = [f"drafted {self.path} from {FORMAT_NAMES[self.trace.format]} in "
                 f"{self.trace.path}: {len(self.expect)} check(s): {kinds}"]
        missing = self.trace.evidence.get("missing") or []
        if missing:
            lines.append(f"the trace lacks: {', '.join(missing)}")
        lines.append("review it, fill in the TODOs, then delete `draft: true`")
        return lines


def draft_from_trace(
    trace_path: Path,
    *,
    category: str,
    id: str,
    workflow: str | None = None,
    out: Path | None = None,
    format: str | None = None,
    reference: str | None = None,
    title: str | None = None,
    owner: str | None = None,
    severity: str | None = None,
    root: Path | None = None,
    salt: str | None = None,
) -> DraftCase:
    """Import a trace, draft the category's checks and write the draft case.

    ``workflow`` defaults to the one the trace names (service or trace name), then to the
    folder of ``out``; ``out`` defaults to ``cases/<workflow>/<id>.yaml`` under ``root``
    (default: the current folder). ``as_of`` is the date of the trace.
    """
    trace = import_trace(trace_path, format=format)
    workflow = workflow or trace.workflow or (out.parent.name if out is not None else None)
    if not workflow:
        problem = "the trace names no workflow; name it (--workflow)"
        raise InputError(problem, path=trace_path, field="workflow")
    if out is None:
        for name, value in (("id", id), ("workflow", workflow)):
            if not _NAME.match(value):
                problem = (f"{value!r} cannot name a file; use letters, digits, '.', '_' and "
                           f"'-' (or choose the file with --out)")
                raise InputError(problem, field=name)
        out = (root or Path.cwd()) / "cases" / workflow / f"{id}.yaml"
    try:
        expect = draft_checks(category, trace.evidence, reference=reference, salt=salt)
    except InputError as exc:
        raise InputError(exc.problem, path=trace_path, field=exc.field) from None
    moment = trace.ended_at or trace.started_at
    origin = f"{FORMAT_NAMES[trace.format]} from {trace_path}"
    if moment is None:
        as_of = dt.datetime.now(dt.UTC).date()
        origin += "; the trace has no timestamps, so as_of is the day of drafting"
    else:
        as_of = dt.datetime.fromisoformat(moment).date()
    timeline = {"impact_started": trace.started_at} if trace.started_at else None
    write_draft_case(out, id=id, workflow=workflow, category=category, evidence=trace.evidence,
                     expect=expect, title=title, owner=owner, severity=severity, as_of=as_of,
                     timeline=timeline, origin=origin)
    return DraftCase(path=out, trace=trace, expect=tuple(expect))
