"""The one check drafter: the regression checks an incident's category and evidence call for.

Both intake paths draft with it: ``harness incident new`` (from what is known at once) and
``harness case from-trace`` (from the workflow's trace). Each category's checks are chosen to fail
on the evidence they came from, so the draft reproduces the incident; a person keeps those that
would have caught it without failing a correct answer. When the evidence cannot show the
category's failure, :func:`drafted` says why and offers a placeholder a person replaces.

The plaintext of the personal or secret data a workflow exposed never lands in a
``data_exposure`` draft: its checks carry salted digests (:func:`harness.canaries.canary_digest`)
and its evidence is redacted, each value replaced by a marker that keeps the detector and the
same salted digest, which the exposure checks find on replay as the value itself. Where a message
was sent (``to``, ``cc``, ``recipients``) is its destination, not what it carried: the drafted
``no_pii`` allows those addresses, so a corrected workflow may still send there (review them).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from harness.canaries import canary_digest
from harness.checks.effects import Effect, WriteRules, effect
from harness.checks.exposure import RECIPIENT_FIELDS
from harness.detectors import DETECTORS, find_sensitive
from harness.errors import InputError
from harness.intake.traces import APPROVAL_NAME, DEFAULT_STEP
from harness.model import CATEGORIES, plain
from harness.redact import Redactor

DEFAULT_MAX_AGE_DAYS = 365
"""The age limit of a drafted ``source_fresh`` check."""
MAX_CLAIMS = 3
"""How many sentences of the bad output a drafted ``forbidden_claims`` check lists."""
PLACEHOLDER = "TODO: the text of the failure"
"""The placeholder check's text: a draft whose evidence cannot show the failure gets
``not_contains: TODO: ...``, which loads and says honestly that it is not finished."""
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


# --- what a draft checks --------------------------------------------------------------------------


def draft_checks(
    category: str,
    evidence: Mapping[str, Any],
    *,
    reference: str | None = None,
    salt: str | None = None,
    rules: WriteRules | None = None,
) -> list[dict[str, Any]]:
    """The ``expect`` entries (one-key mappings ``kind: params``) drafted for an incident.

    ``reference`` is a corrected answer (policy and output_quality); ``salt`` makes the
    data_exposure digests reproducible (default: a random one); ``rules`` is the project's list
    of write and read tools. Raises :class:`InputError` (with the evidence field) when the
    evidence cannot show the category's failure.
    """
    if category not in CATEGORIES:
        problem = f"unknown category {category!r}; expected one of {', '.join(CATEGORIES)}"
        raise InputError(problem, field="category")
    if category == "data_exposure":
        return _exposure_checks(evidence, salt)
    if category == "automation_error":
        return _automation_checks(evidence, rules)
    if category == "human_review":
        return _review_checks(evidence, rules)
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


def _places(evidence: Mapping[str, Any]) -> list[tuple[str | None, str]]:
    output = evidence.get("output")
    places: list[tuple[str | None, str]] = [(None, output)] if isinstance(output, str) else []
    for call in evidence.get("tool_calls") or []:
        if isinstance(call, Mapping):
            places.extend(_leaves(call.get("args")))
    return places


def _is_recipient(key: str | None) -> bool:
    return key is not None and key.casefold() in RECIPIENT_FIELDS


def sensitive_values(evidence: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(detector, value) of each personal or secret value in the evidence output and tool-call
    arguments, as ``no_pii`` finds them, in the order they appear, without repeats. Where a
    message went (``to``, ``cc``, ``recipients``, ...) is its destination, not what it carried:
    left out."""
    found: dict[str, str] = {}
    for key, text in _places(evidence):
        if _is_recipient(key):
            continue
        for detector, _, _, value in _hits(text, key):
            found.setdefault(value, detector)
    return [(detector, value) for value, detector in found.items()]


def recipients(evidence: Mapping[str, Any]) -> list[str]:
    """The addresses the evidence's tool calls sent to, as the detectors find them."""
    found = [value for key, text in _places(evidence) if _is_recipient(key)
             for _, _, _, value in _hits(text, key)]
    return list(dict.fromkeys(found))


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
    pii: dict[str, Any] = {"detectors": [name for name in DETECTORS if name in fired]}
    sent_to = [value for value in recipients(evidence)
               if value not in {text for _, text in found}]
    if sent_to:  # a message may still go there: what it carries is the finding
        pii["allow"] = sent_to
    return [{"no_pii": pii}, {"no_leak": {"digests": digests}}]


def _calls(evidence: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [call for call in evidence.get("tool_calls") or []
            if isinstance(call, Mapping) and isinstance(call.get("name"), str)]


def _writes(evidence: Mapping[str, Any], purpose: str,
            rules: WriteRules | None) -> list[tuple[Mapping[str, Any], Effect]]:
    """The calls that act on something (:mod:`harness.checks.effects`), with what they do."""
    judged = [(call, effect(call, rules)) for call in _calls(evidence)]
    writes = [(call, what) for call, what in judged if what.write]
    if not writes:
        names = ", ".join(call["name"] for call in _calls(evidence)) or "none"
        problem = (f"no write call in the evidence (calls: {names}); {purpose} needs a call "
                   f"that acts on something (by its name, its SQL or HTTP method, its "
                   f"annotations, or the project's write_tools)")
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


def _automation_checks(evidence: Mapping[str, Any],
                       rules: WriteRules | None) -> list[dict[str, Any]]:
    writes = _writes(evidence, "an automation_error draft", rules)
    destructive = [(call, what) for call, what in writes if what.destructive]
    # the call that did the damage: a destructive one, else one acting on another record than
    # the input names, else the first write (later ones, a confirmation email, follow it)
    misdirected = [(call, what) for call, what in writes
                   if (named := named_record(evidence.get("input"), dict(call.get("args") or {})))
                   and named[1] != (call.get("args") or {}).get(named[0])]
    wrong, _ = (destructive[-1] if destructive else misdirected[0] if misdirected
                else writes[0])
    name = wrong["name"]
    args = dict(wrong.get("args") or {})
    checks: list[dict[str, Any]] = [
        {"tool_not_called": {"name": name, "args": args} if args else {"name": name}},
    ]
    if destructive:  # forbidden by what it does, however the next one is worded
        tools = list(dict.fromkeys(call["name"] for call, _ in destructive))
        checks.append({"no_destructive_calls": {"tools": tools}})
    record = named_record(evidence.get("input"), args)
    if record is not None:
        arg, value, is_field = record
        checks.append({"tool_args": {"name": name, "args": {arg: value}}})
        if is_field:
            checks.append({"record_target": {"tools": [name], "arg": arg}})
    return checks


def _review_checks(evidence: Mapping[str, Any],
                   rules: WriteRules | None) -> list[dict[str, Any]]:
    gated = _writes(evidence, "a human_review draft", rules)[0][0]["name"]
    steps = [approval.get("step") for approval in evidence.get("approvals") or []
             if isinstance(approval, Mapping)]
    steps += [call.get("args", {}).get("step") for call in _calls(evidence)
              if APPROVAL_NAME.search(call["name"]) and isinstance(call.get("args"), Mapping)]
    step = next((s for s in steps if isinstance(s, str) and s), DEFAULT_STEP)
    params: dict[str, Any] = {"step": step, "before": gated}
    if any(call["name"] == gated and not effect(call, rules).write
           for call in _calls(evidence)):
        params["writes_only"] = True  # the tool also reads (SELECT): only its writes are gated
    return [{"approval_required": params}]


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


# --- redaction --------------------------------------------------------------------------------


def redact(value: Any, known: list[tuple[str, str]], *, salt: str | None = None) -> Any:
    """``value`` with every detected personal or secret value, and every ``known`` value,
    replaced by a redaction marker (:class:`harness.redact.Redactor`), in strings, numbers and
    mapping keys alike. With ``salt`` each marker keeps the value's salted digest
    (``[redacted:<detector>:sha256:...]``), so ``no_pii`` and ``no_leak`` find on replay the
    data the marker stands for."""
    return plain(Redactor(known=known, salt=salt).value(value))


# --- what a draft holds -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Drafted:
    """The checks drafted for an incident and its evidence as a case file keeps it."""

    expect: list[dict[str, Any]]
    evidence: dict[str, Any]
    problem: str | None = None
    """Why the evidence cannot show the failure, when ``expect`` is the placeholder."""
    field: str | None = None
    """The evidence field ``problem`` is about."""

    @property
    def placeholder(self) -> bool:
        return self.problem is not None


def drafted(category: str, evidence: Mapping[str, Any], *, reference: str | None = None,
            salt: str | None = None, strict: bool = True,
            rules: WriteRules | None = None) -> Drafted:
    """The checks for ``category`` drafted from ``evidence``, and the evidence to store
    (redacted, with digest markers, for data_exposure). With ``strict`` an evidence that cannot
    show the failure raises :class:`InputError`; otherwise the placeholder check is drafted and
    ``problem`` says why."""
    salt = salt if salt is not None else secrets.token_hex(8)
    stored = dict(evidence)
    if category == "data_exposure":
        stored = redact(stored, sensitive_values(evidence), salt=salt)
    try:
        expect = draft_checks(category, evidence, reference=reference, salt=salt,
                              rules=rules)
    except InputError as exc:
        if strict or exc.field == "category":
            raise
        return Drafted([{"not_contains": PLACEHOLDER}], stored, exc.problem, exc.field)
    return Drafted(expect, stored)
