"""The data model: what a case, a suite, a target's response and a run's results are.

Everything here is a frozen dataclass built by the loader (from YAML), by a target (from the
workflow's answer) or by the runner (from evaluating checks). Nothing here does I/O.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from harness.budget import DEFAULT_CHECK_BUDGET_S, BudgetExceeded, check_budget, deadline
from harness.errors import TargetError

# the model's constants, re-exported from the module the command line reads them from
from harness.vocabulary import CATEGORIES as CATEGORIES
from harness.vocabulary import EVIDENCE_FIELDS as EVIDENCE_FIELDS
from harness.vocabulary import FIX_KINDS as FIX_KINDS
from harness.vocabulary import SEVERITIES as SEVERITIES
from harness.vocabulary import STATUSES as STATUSES
from harness.vocabulary import TIMELINE_STEPS as TIMELINE_STEPS

Verdict = Literal["pass", "fail", "error"]


def plain(value: Any) -> Any:
    """``value`` with every mapping a dict and every list or tuple a list (YAML nodes included),
    so that comparisons see no container types and evidence is JSON-ready."""
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


# --- what a target returns ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One tool call the workflow made, with its arguments and result."""

    name: str
    args: Mapping[str, Any] = field(default_factory=dict)
    result: Any = None
    at: str | None = None
    """When the call was made (ISO 8601), where the target or trace says."""
    annotations: Mapping[str, Any] = field(default_factory=dict)
    """The tool's declared behaviour, as MCP tool annotations (``readOnlyHint``,
    ``destructiveHint``, ...), where known."""


@dataclass(frozen=True, slots=True)
class Source:
    """One document the workflow retrieved or cited."""

    id: str
    title: str | None = None
    url: str | None = None
    updated_at: str | None = None


@dataclass(frozen=True, slots=True)
class Approval:
    """One human approval step: who approved (or rejected) what, in which role, when."""

    step: str
    status: str
    approver: str | None = None
    role: str | None = None
    at: str | None = None


RESPONSE_FIELDS = ("output", "tool_calls", "sources", "approvals", "metadata")


@dataclass(frozen=True, slots=True)
class TargetResponse:
    """What the workflow under test answered for one input.

    ``reported`` names the fields the target actually returned, so a check can tell
    "made no tool calls" from "does not report its tool calls".
    """

    output: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    sources: tuple[Source, ...] = ()
    approvals: tuple[Approval, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    reported: frozenset[str] = frozenset({"output"})

    @classmethod
    def parse(cls, value: Any) -> TargetResponse:
        """Build a response from what a target returned; a plain string is the output.

        Raises :class:`TargetError` naming the malformed field.
        """
        if isinstance(value, TargetResponse):
            return value
        if isinstance(value, str):
            return cls(output=value)
        if not isinstance(value, Mapping):
            reason = (
                "malformed response: expected a string or a mapping with "
                f"{', '.join(RESPONSE_FIELDS)}, found {type(value).__name__}"
            )
            raise TargetError(reason)
        unknown = sorted(str(k) for k in value if k not in RESPONSE_FIELDS)
        if unknown:
            reason = (
                f"malformed response: unknown field(s) {', '.join(unknown)}; "
                f"expected {', '.join(RESPONSE_FIELDS)}"
            )
            raise TargetError(reason)
        output = value.get("output", "")
        if output is None:
            output = ""
        if not isinstance(output, str):
            raise TargetError(
                f"malformed response: output must be a string, found {type(output).__name__}"
            )
        metadata = value.get("metadata") or {}
        if not isinstance(metadata, Mapping):
            raise TargetError(
                f"malformed response: metadata must be a mapping, found {type(metadata).__name__}"
            )
        return cls(
            output=output,
            tool_calls=_parse_items(value.get("tool_calls"), "tool_calls", _tool_call),
            sources=_parse_items(value.get("sources"), "sources", _source),
            approvals=_parse_items(value.get("approvals"), "approvals", _approval),
            metadata=dict(metadata),
            reported=frozenset(k for k in RESPONSE_FIELDS if value.get(k) is not None),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, as targets send it and run records store it."""
        return {
            "output": self.output,
            "tool_calls": [_call_dict(c) for c in self.tool_calls],
            "sources": [
                {"id": s.id, "title": s.title, "url": s.url, "updated_at": s.updated_at}
                for s in self.sources
            ],
            "approvals": [
                {"step": a.step, "approver": a.approver, "role": a.role, "status": a.status,
                 "at": a.at}
                for a in self.approvals
            ],
            "metadata": dict(self.metadata),
            "reported": sorted(self.reported),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TargetResponse:
        """Read back what :meth:`to_dict` wrote."""
        fields = {k: v for k, v in data.items() if k != "reported"}
        parsed = cls.parse(fields)
        reported = data.get("reported")
        if reported is None:
            return parsed
        return TargetResponse(
            output=parsed.output,
            tool_calls=parsed.tool_calls,
            sources=parsed.sources,
            approvals=parsed.approvals,
            metadata=parsed.metadata,
            reported=frozenset(reported),
        )


_Item = TypeVar("_Item")


def _parse_items(value: Any, name: str,
                 build: Callable[[Mapping[str, Any]], _Item]) -> tuple[_Item, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        found = type(value).__name__
        raise TargetError(f"malformed response: {name} must be a list, found {found}")
    items: list[_Item] = []
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise TargetError(
                f"malformed response: {name}[{index}] must be a mapping, "
                f"found {type(item).__name__}"
            )
        try:
            items.append(build(item))
        except (KeyError, TypeError, ValueError) as exc:
            raise TargetError(f"malformed response: {name}[{index}]: {exc}") from None
    return tuple(items)


def _text(item: Mapping[str, Any], key: str, *, required: bool = False) -> str | None:
    value = item.get(key)
    if value is None:
        if required:
            raise ValueError(f"missing required field {key!r}")
        return None
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if not isinstance(value, str | int | float):
        raise ValueError(f"{key} must be a string, found {type(value).__name__}")
    return str(value)


def _tool_call(item: Mapping[str, Any]) -> ToolCall:
    args = item.get("args") or {}
    if not isinstance(args, Mapping):
        raise ValueError(f"args must be a mapping, found {type(args).__name__}")
    annotations = item.get("annotations") or {}
    if not isinstance(annotations, Mapping):
        raise ValueError(f"annotations must be a mapping, found {type(annotations).__name__}")
    return ToolCall(name=_text(item, "name", required=True) or "", args=dict(args),
                    result=item.get("result"), at=_text(item, "at"),
                    annotations=dict(annotations))


def _call_dict(call: ToolCall) -> dict[str, Any]:
    """A tool call's JSON form; ``at`` and ``annotations`` only when known, so a record of a
    target that reports neither reads as it always did."""
    shown: dict[str, Any] = {"name": call.name, "args": dict(call.args), "result": call.result}
    if call.at is not None:
        shown["at"] = call.at
    if call.annotations:
        shown["annotations"] = dict(call.annotations)
    return shown


def _source(item: Mapping[str, Any]) -> Source:
    return Source(
        id=_text(item, "id", required=True) or "",
        title=_text(item, "title"),
        url=_text(item, "url"),
        updated_at=_text(item, "updated_at"),
    )


def _approval(item: Mapping[str, Any]) -> Approval:
    return Approval(
        step=_text(item, "step", required=True) or "",
        status=_text(item, "status", required=True) or "",
        approver=_text(item, "approver"),
        role=_text(item, "role"),
        at=_text(item, "at"),
    )


# --- what a target receives --------------------------------------------------------------

Message = dict[str, str]
"""One message of a conversation: ``{"role": "user" | "assistant", "content": text}``."""


def message_text(case_input: Any) -> str:
    """The user message a single-turn case's input stands for: a string is the message, any
    other input its JSON (as the ``openai`` target has always sent it)."""
    if isinstance(case_input, str):
        return case_input

    def fallback(item: Any) -> str:
        if isinstance(item, dt.date | dt.datetime | dt.time):
            return item.isoformat()
        return str(item)  # e.g. YAML !!binary: building a request never fails

    return json.dumps(case_input, ensure_ascii=False, default=fallback)


def with_messages(case_input: Any) -> Any:
    """A mapping input with ``messages``, the conversation it stands for, added when it has
    none: one user message, its :func:`message_text`. A turn's request (see
    :func:`turn_request`) and an ``openai``-style input already have theirs; any other input
    (a string, a list) is returned as it is, so a workflow written for it keeps working."""
    if isinstance(case_input, Mapping) and "messages" not in case_input:
        return {**case_input, "messages": [{"role": "user", "content": message_text(case_input)}]}
    return case_input


def turn_request(context: Mapping[str, Any], user: str,
                 history: Sequence[Message]) -> dict[str, Any]:
    """What a target receives for one turn of a conversation: the case's ``context``, the
    turn's ``message``, and ``messages``: the conversation so far, ending with this turn."""
    return {**context, "message": user,
            "messages": [*map(dict, history), {"role": "user", "content": user}]}


# --- what a user writes --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """The verdict of one check on one response, with what a person needs to see why."""

    kind: str
    verdict: Verdict
    reason: str
    score: float | None = None
    expected: Any = None
    obtained: Any = None
    evidence: Mapping[str, Any] = field(default_factory=dict)
    line: int | None = None
    turn: int | None = None
    """The turn (1-based) whose response a per-turn check judged; None for the case's own
    checks."""

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"


Check = Callable[[TargetResponse, "Case"], CheckOutcome]
"""A built check: judges one response to one case. Made by a factory from the registry."""


@dataclass(frozen=True, slots=True)
class Expectation:
    """One entry of a case's ``expect`` list: a check kind, its parameters, and where it stands."""

    kind: str
    params: Any
    check: Check
    line: int | None = None
    bounded: bool = False
    """The kind's work is linear in the response (see ``CheckKind.bounded``): only its
    patterns need the deadline, no timer signal guards it."""

    @property
    def timed(self) -> bool:
        """Whether a timer signal guards the check: not when it is bounded, nor when it waits
        on a judge or embedder (bounded by their timeouts, retries and caps instead: a budget
        of local computation would stop it mid-call)."""
        return not self.bounded and not getattr(self.check, "resources", None)

    def evaluate(self, response: TargetResponse, case: Case) -> CheckOutcome:
        """Run the check within the case's budget; a check that raises or runs past its budget
        gives an ``error`` outcome, never an exception (or a hang)."""
        if self.timed:
            guard: contextlib.AbstractContextManager[None] = check_budget(case.check_budget_s)
        elif self.bounded:
            guard = deadline(case.check_budget_s)
        else:
            guard = contextlib.nullcontext()
        try:
            with guard:
                outcome = self.check(response, case)
        except BudgetExceeded:
            return CheckOutcome(
                kind=self.kind,
                verdict="error",
                reason=f"{self.kind} ran past its budget of {case.check_budget_s:g} s "
                       f"(check_budget_s) and was stopped: its verdict is unknown",
                line=self.line,
            )
        except Exception as exc:  # a broken check is data about the run, not a crash of it
            return CheckOutcome(
                kind=self.kind,
                verdict="error",
                reason=f"check raised {type(exc).__name__}: {exc}",
                line=self.line,
            )
        return CheckOutcome(
            kind=self.kind,
            verdict=outcome.verdict,
            reason=outcome.reason,
            score=outcome.score,
            expected=outcome.expected,
            obtained=outcome.obtained,
            evidence=outcome.evidence,
            line=self.line,
        )


EXPECT_ON = ("final", "transcript")
"""What a multi-turn case's own ``expect`` checks judge: the final turn's response (default)
or the whole conversation (see :func:`harness.runner.transcript`)."""


@dataclass(frozen=True, slots=True)
class Turn:
    """One user message of a scripted conversation, and the checks on the answer to it."""

    user: str
    expect: tuple[Expectation, ...] = ()
    line: int | None = None


@dataclass(frozen=True, slots=True)
class Incident:
    """The incident record half of a case file: what happened, who owns it, what was done."""

    category: str
    severity: str
    status: str
    owner: str
    near_miss: bool = False
    severity_basis: tuple[str, ...] = ()
    business_owner: str | None = None
    timeline: Mapping[str, dt.datetime] = field(default_factory=dict)
    impact: Mapping[str, Any] = field(default_factory=dict)
    root_cause: str | None = None
    fix: Mapping[str, Any] = field(default_factory=dict)
    prevention: str | None = None
    references: tuple[Mapping[str, Any], ...] = ()
    """Documents about the incident: ``{title, url, kind}`` (ticket, postmortem, report)."""


@dataclass(frozen=True, slots=True)
class Case:
    """One regression case: an input, the checks its response must pass, and how often to try.

    ``incident`` is ``None`` for a baseline case (normal behaviour, no incident).
    """

    id: str
    path: Path
    line: int
    workflow: str
    title: str | None
    input: Any
    expect: tuple[Expectation, ...]
    trials: int = 1
    min_pass_rate: float = 1.0
    timeout_s: float | None = None
    as_of: dt.date | None = None
    tags: tuple[str, ...] = ()
    incident: Incident | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)
    draft: bool = False
    digest: str = ""
    retired: str | None = None
    """Why the case was retired (kept, no longer run), or None."""
    check_budget_s: float = DEFAULT_CHECK_BUDGET_S
    """Longest time one check may take on one response (see :mod:`harness.budget`)."""
    reference: str | None = None
    """A known-good answer: what judge checks may compare with, and are calibrated on."""
    acceptable_outputs: tuple[str, ...] = ()
    """More known-good answers, for calibrating judges."""
    turns: tuple[Turn, ...] = ()
    """A scripted conversation: the target is called once per turn with the conversation so
    far. Empty for a single-turn case; with turns, ``input`` is the case's ``context`` (what
    every turn's request carries besides the conversation)."""
    expect_on: str = "final"
    """What ``expect`` judges in a multi-turn case: ``final`` or ``transcript``."""

    @property
    def is_incident(self) -> bool:
        return self.incident is not None

    @property
    def expectations(self) -> tuple[Expectation, ...]:
        """Every check of the case: its own ``expect``, then each turn's."""
        return self.expect + tuple(e for turn in self.turns for e in turn.expect)


@dataclass(frozen=True, slots=True)
class CallPolicy:
    """How a target may be called: how many calls at once, how fast, how often retried.

    Retries apply to transient failures only (HTTP 429 and 5xx, connection errors, timeouts),
    with exponential backoff and jitter, waiting at least what a Retry-After header asks.
    """

    max_concurrency: int | None = None
    rate_limit: float | None = None
    retries: int = 0
    retry_backoff_s: float = 0.5


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """A named target of a suite: the adapter kind, its main argument and its options."""

    name: str
    kind: str
    main: Any
    options: Mapping[str, Any] = field(default_factory=dict)
    path: Path | None = None
    line: int | None = None
    calls: CallPolicy = field(default_factory=CallPolicy)
    digest: str = ""


@dataclass(frozen=True, slots=True)
class JudgeSpec:
    """A judge of the suite's ``judges:`` section: a target, and what it may receive and cost.

    ``receives`` is ``redacted`` (the default: the run's redaction applies to what it is
    sent) or ``raw``; ``max_calls`` and ``max_cost`` cap it per run (reaching a cap makes the
    checks that need it an ``error``).
    """

    target: TargetSpec
    receives: str = "redacted"
    max_calls: int | None = None
    max_cost: float | None = None
    timeout_s: float = 60.0
    digest: str = ""
    """What the verdicts depend on (the target's digest and ``receives``; not the caps):
    cached verdicts and calibrations are bound to it."""


@dataclass(frozen=True, slots=True)
class Suite:
    """A suite file: which cases, against which targets, with which defaults and gate policy."""

    name: str
    path: Path
    root: Path
    cases: tuple[Case, ...]
    targets: Mapping[str, TargetSpec]
    description: str | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)
    gate: Mapping[str, Any] = field(default_factory=dict)
    digest: str = ""
    judges: Mapping[str, JudgeSpec] = field(default_factory=dict)
    embedders: Mapping[str, JudgeSpec] = field(default_factory=dict)
    prices: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    """Model -> price per million tokens (``input``, ``output``), for cost checks and caps."""


# --- what a run produces -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Exchange:
    """One turn of a conversation as a trial ran it: the user's message and the workflow's
    response, or why there is none."""

    user: str
    response: TargetResponse | None = None
    error: str | None = None
    duration_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Trial:
    """One call of the target for a case (one conversation, for a multi-turn case), and the
    verdicts of the case's checks on it.

    For a multi-turn case ``turns`` holds every turn that ran, ``checks`` the per-turn checks
    (each with its ``turn``) and then the case's own, and ``response`` what the case's own
    checks judged (the final turn's response, or the whole conversation).
    """

    index: int
    verdict: Verdict
    checks: tuple[CheckOutcome, ...] = ()
    response: TargetResponse | None = None
    error: str | None = None
    duration_s: float = 0.0
    attempts: int = 1
    turns: tuple[Exchange, ...] = ()


def passing(trials: Sequence[Trial]) -> int:
    """How many of ``trials`` passed: counted here, and only here."""
    return sum(trial.verdict == "pass" for trial in trials)


@dataclass(frozen=True, slots=True)
class CaseResult:
    """All trials of one case, and the case's verdict: ``error`` if any trial errored, else
    ``pass`` when the pass rate reaches ``min_pass_rate``, else ``fail``."""

    case_id: str
    verdict: Verdict
    trials: tuple[Trial, ...]
    pass_rate: float
    min_pass_rate: float
    path: str
    line: int
    workflow: str
    title: str | None = None
    input: Any = None
    incident: bool = False
    category: str | None = None
    severity: str | None = None
    owner: str | None = None
    case_digest: str = ""
    duration_s: float = 0.0
    business_owner: str | None = None
    """The incident's ``business_owner``, to be told when the case blocks (record version 3)."""
    strictness: Mapping[str, Any] | None = None
    """How strict the case was when it ran, for the gate to compare across runs: its checks
    (kind and parameters digest), ``trials``, ``min_pass_rate``, its input's digest and the
    suite's ``settle_trials``. None in run records written before version 2."""

    @property
    def passes(self) -> int:
        """How many of its trials passed."""
        return passing(self.trials)
