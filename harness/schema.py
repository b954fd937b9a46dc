"""The shape of case and suite files, declared once.

The same declarations validate what the loader reads (every problem named with its field path
and line) and print the JSON Schema that ``harness schema`` gives to editors.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness import model


class Invalid(Exception):
    """A value does not fit its declaration; ``field`` is the dotted path, ``line`` its line."""

    def __init__(self, problem: str, *, field: str, line: int | None) -> None:
        self.problem = problem
        self.field = field
        self.line = line
        super().__init__(f"{field}: {problem}")


def line_of(container: Any, key: Any, default: int | None) -> int | None:
    """The line a key (mapping) or index (list) stands on, as the YAML loader marked it."""
    lines = getattr(container, "lines", None)
    if lines and key in lines:
        return int(lines[key])
    return default


def describe(value: Any) -> str:
    """How an error message names what it found: "a string ('x')", "a list", ..."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({value})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"a string ({shown!r})"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def join_path(parent: str, key: Any) -> str:
    """A field path one step deeper: ``timeline`` + ``detected``, ``expect`` + ``0``."""
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else str(key)


class Node:
    """A declared value: checks a loaded value and describes itself as JSON Schema."""

    description: str = ""

    def check(self, value: Any, where: str, line: int | None) -> Any:
        raise NotImplementedError

    def json_schema(self) -> dict[str, Any]:
        raise NotImplementedError

    def _schema(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.description:
            body["description"] = self.description
        return body


@dataclass
class Text(Node):
    description: str = ""
    choices: tuple[str, ...] = ()
    allow_numbers: bool = False

    def check(self, value: Any, where: str, line: int | None) -> Any:
        if self.allow_numbers and isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            expected = "one of " + ", ".join(self.choices) if self.choices else "a string"
            raise Invalid(f"expected {expected}, found {describe(value)}", field=where, line=line)
        if self.choices and value not in self.choices:
            hint = difflib.get_close_matches(value, self.choices, n=1)
            tip = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise Invalid(
                f"expected one of {', '.join(self.choices)}, found {value!r}{tip}",
                field=where,
                line=line,
            )
        return value

    def json_schema(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": ["string", "number"] if self.allow_numbers else "string"}
        if self.choices:
            body = {"enum": list(self.choices)}
        return self._schema(body)


@dataclass
class Number(Node):
    description: str = ""
    minimum: float | None = None
    maximum: float | None = None
    integer: bool = False

    def check(self, value: Any, where: str, line: int | None) -> Any:
        kinds = int if self.integer else int | float
        if isinstance(value, bool) or not isinstance(value, kinds):
            expected = "a whole number" if self.integer else "a number"
            raise Invalid(f"expected {expected}, found {describe(value)}", field=where, line=line)
        if self.minimum is not None and value < self.minimum:
            problem = f"expected at least {self.minimum}, found {value}"
            raise Invalid(problem, field=where, line=line)
        if self.maximum is not None and value > self.maximum:
            problem = f"expected at most {self.maximum}, found {value}"
            raise Invalid(problem, field=where, line=line)
        return value

    def json_schema(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": "integer" if self.integer else "number"}
        if self.minimum is not None:
            body["minimum"] = self.minimum
        if self.maximum is not None:
            body["maximum"] = self.maximum
        return self._schema(body)


@dataclass
class Flag(Node):
    description: str = ""

    def check(self, value: Any, where: str, line: int | None) -> Any:
        if not isinstance(value, bool):
            problem = f"expected true or false, found {describe(value)}"
            raise Invalid(problem, field=where, line=line)
        return value

    def json_schema(self) -> dict[str, Any]:
        return self._schema({"type": "boolean"})


@dataclass
class Timestamp(Node):
    """An ISO 8601 date (``date_only``) or date-time; a date-time without zone is taken as UTC."""

    description: str = ""
    date_only: bool = False

    def check(self, value: Any, where: str, line: int | None) -> Any:
        expected = "an ISO 8601 date (YYYY-MM-DD)" if self.date_only else (
            "an ISO 8601 date-time (e.g. 2026-03-02T08:15:00Z)"
        )
        if not isinstance(value, str):
            raise Invalid(f"expected {expected}, found {describe(value)}", field=where, line=line)
        try:
            if self.date_only:
                return dt.date.fromisoformat(value)
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            raise Invalid(f"expected {expected}, found {value!r}", field=where, line=line) from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)

    def json_schema(self) -> dict[str, Any]:
        return self._schema({"type": "string", "format": "date" if self.date_only else "date-time"})


@dataclass
class AnyValue(Node):
    description: str = ""

    def check(self, value: Any, where: str, line: int | None) -> Any:
        return value

    def json_schema(self) -> dict[str, Any]:
        return self._schema({})


@dataclass
class ListOf(Node):
    item: Node
    description: str = ""
    min_items: int = 0
    allow_single: bool = False

    def check(self, value: Any, where: str, line: int | None) -> Any:
        if self.allow_single and not isinstance(value, list):
            value = [value]
        if not isinstance(value, list):
            raise Invalid(f"expected a list, found {describe(value)}", field=where, line=line)
        if len(value) < self.min_items:
            raise Invalid(
                f"expected at least {self.min_items} item(s), found {len(value)}",
                field=where,
                line=line,
            )
        return [
            self.item.check(item, join_path(where, i), line_of(value, i, line))
            for i, item in enumerate(value)
        ]

    def json_schema(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": "array", "items": self.item.json_schema()}
        if self.min_items:
            body["minItems"] = self.min_items
        if self.allow_single:
            body = {"anyOf": [self.item.json_schema(), body]}
        return self._schema(body)


@dataclass
class Record(Node):
    """A mapping with declared keys; unknown keys are errors (with a "did you mean")."""

    fields: Mapping[str, Node]
    description: str = ""
    required: tuple[str, ...] = ()
    extra: Node | None = None  # when set, undeclared keys are allowed and checked against it

    def check(self, value: Any, where: str, line: int | None) -> Any:
        if not isinstance(value, Mapping):
            raise Invalid(f"expected a mapping, found {describe(value)}", field=where, line=line)
        line = getattr(value, "line", line)
        for key in value:
            if not isinstance(key, str):
                raise Invalid(
                    f"keys must be strings, found {describe(key)}",
                    field=where or "(top level)",
                    line=line_of(value, key, line),
                )
        missing = [name for name in self.required if name not in value]
        if missing:
            raise Invalid(
                f"missing required field {missing[0]!r}",
                field=join_path(where, missing[0]),
                line=line,
            )
        checked: dict[str, Any] = {}
        for key, item in value.items():
            node = self.fields.get(key, self.extra)
            key_line = line_of(value, key, line)
            if node is None:
                hint = difflib.get_close_matches(key, list(self.fields), n=1)
                tip = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise Invalid(
                    f"unknown field {key!r}{tip}; expected one of {', '.join(self.fields)}",
                    field=join_path(where, key),
                    line=key_line,
                )
            checked[key] = node.check(item, join_path(where, key), key_line)
        return checked

    def json_schema(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": "object",
            "properties": {k: v.json_schema() for k, v in self.fields.items()},
            "additionalProperties": self.extra.json_schema() if self.extra else False,
        }
        if self.required:
            body["required"] = list(self.required)
        return self._schema(body)


@dataclass
class Custom(Node):
    """A value checked by a function (e.g. one ``expect`` entry, checked by the registry).

    ``schema`` is its JSON Schema, or a function that makes it when asked: one ``expect``
    entry's schema lists the check kinds known when ``harness schema`` runs.
    """

    checker: Callable[[Any, str, int | None], Any]
    schema: dict[str, Any] | Callable[[], dict[str, Any]] = field(default_factory=dict)
    description: str = ""

    def check(self, value: Any, where: str, line: int | None) -> Any:
        return self.checker(value, where, line)

    def json_schema(self) -> dict[str, Any]:
        return self._schema(self.schema() if callable(self.schema) else dict(self.schema))


# --- the case file --------------------------------------------------------------------------

_TOOL_CALL = Record(
    {"name": Text(), "args": AnyValue(), "result": AnyValue(),
     "at": Text(description="When the call was made (ISO 8601)."),
     "annotations": Record({}, extra=AnyValue(), description=(
         "The tool's declared behaviour (MCP tool annotations: readOnlyHint, "
         "destructiveHint, idempotentHint, openWorldHint)."))},
    required=("name",),
    description="A tool call: its name, arguments, result and, where known, when it was made.",
)
_SOURCE = Record(
    {
        "id": Text(allow_numbers=True),
        "title": Text(),
        "url": Text(),
        "updated_at": Text(description="When the source was last updated (ISO 8601)."),
    },
    required=("id",),
    description="A retrieved or cited source.",
)
_APPROVAL = Record(
    {
        "step": Text(),
        "approver": Text(),
        "role": Text(),
        "status": Text(description="approved, rejected or pending."),
        "at": Text(description="When the decision was made (ISO 8601)."),
    },
    required=("step", "status"),
    description="A human approval step.",
)

def _reconstructed(value: Any, where: str, line: int | None) -> bool | list[str]:
    if isinstance(value, bool):
        return value
    if not isinstance(value, list):
        raise Invalid(f"expected true, false or a list of evidence fields, found "
                      f"{describe(value)}", field=where, line=line)
    for index, item in enumerate(value):
        if item not in model.EVIDENCE_FIELDS:
            raise Invalid(f"expected one of {', '.join(model.EVIDENCE_FIELDS)}, found "
                          f"{describe(item)}", field=join_path(where, index),
                          line=line_of(value, index, line))
    return list(dict.fromkeys(value))


EVIDENCE = Record(
    {
        "input": AnyValue(description="The input the workflow received."),
        "prompt_version": Text(allow_numbers=True),
        "model_route": Text(description="Which model (and provider) answered."),
        "sources": ListOf(_SOURCE),
        "tool_calls": ListOf(_TOOL_CALL),
        "approvals": ListOf(_APPROVAL),
        "output": Text(description="What the workflow answered."),
        "missing": ListOf(Text(), description="Evidence that could not be collected."),
        "reconstructed": Custom(
            _reconstructed,
            schema={"anyOf": [{"type": "boolean"},
                              {"type": "array", "items": {"enum": list(model.EVIDENCE_FIELDS)}}],
                    "description": "Evidence rebuilt after the fact rather than logged: true "
                                   "(all of it), false, or the fields rebuilt."}),
        "trace": Record(
            {"format": Text(), "convention": Text(allow_numbers=True),
             "trace_id": Text(allow_numbers=True), "file": Text()},
            description="The trace the evidence was imported from: its format, the semantic "
                        "conventions read, its id and file."),
        "notes": Text(),
    },
    description="What the workflow did during the incident. The replay target answers with it.",
)

_REFERENCE = Record(
    {"title": Text(), "url": Text(), "kind": Text(
        description="What it is, e.g. ticket, postmortem, public_report, news, decision.")},
    required=("title",),
    description="A document about the incident.",
)

INCIDENT_FIELDS: dict[str, Node] = {
    "category": Text(choices=model.CATEGORIES, description="Which of the six failure kinds."),
    "severity": Text(choices=model.SEVERITIES, description="sev1 (worst) to sev4."),
    "severity_basis": ListOf(Text(), description="The severity rules that fired when the "
                                                 "severity was derived from the impact."),
    "status": Text(choices=model.STATUSES),
    "near_miss": Flag(description="True when the failure was caught before it reached anyone."),
    "owner": Text(description="Who owns the fix (notified when the case regresses)."),
    "business_owner": Text(description="Who owns the workflow on the business side."),
    "timeline": Record(
        {step: Timestamp() for step in model.TIMELINE_STEPS},
        description="When impact started, and when it was detected, contained, resolved, closed.",
    ),
    "impact": Record(
        {
            "users": Number(integer=True, minimum=0),
            "records": Number(integer=True, minimum=0),
            "data_classes": ListOf(Text()),
            "summary": Text(),
        },
        extra=AnyValue(),
        description="Who and what was affected.",
    ),
    "root_cause": Text(),
    "fix": Record(
        {"kind": Text(choices=model.FIX_KINDS), "ref": Text(allow_numbers=True),
         "summary": Text(),
         "authors": ListOf(Text(), description="Who wrote the fix: they cannot approve its "
                                               "validation report.")},
        description="What was changed: its kind, a reference (pull request, ticket), authors.",
    ),
    "prevention": Text(),
    "references": ListOf(_REFERENCE, description="Links to the ticket, the postmortem, public "
                                                 "reports: {title, url, kind}."),
    "evidence": EVIDENCE,
}
INCIDENT_REQUIRED = ("category", "severity", "status", "owner")


def _turn(expect_entry: Custom) -> Custom:
    """One entry of ``turns``: the user's message, or ``{user, expect}``; checked into
    ``{user, expect, line}``."""
    record = Record(
        {"user": Text(description="What the user says in this turn."),
         "expect": ListOf(expect_entry, min_items=1,
                          description="Checks on the response to this turn.")},
        required=("user",),
    )

    def check(value: Any, where: str, line: int | None) -> dict[str, Any]:
        if isinstance(value, str):
            turn: dict[str, Any] = {"user": value, "expect": []}
        elif isinstance(value, Mapping):
            turn = {"expect": [], **record.check(value, where, line)}
            line = getattr(value, "line", line)
        else:
            raise Invalid(f"expected the user's message (a string) or a mapping "
                          f"{{user: ..., expect: [...]}}, found {describe(value)}",
                          field=where, line=line)
        if not turn["user"].strip():
            field_ = where if isinstance(value, str) else join_path(where, "user")
            raise Invalid("expected a non-empty message", field=field_,
                          line=line_of(value, "user", line))
        return {**turn, "line": line}

    def json_schema() -> dict[str, Any]:  # made when asked, as the expect entries' is
        return {"anyOf": [{"type": "string", "minLength": 1}, record.json_schema()]}

    return Custom(check, schema=json_schema,
                  description="One user turn: the message, or {user, expect}.")


def case_record(expect_entry: Custom) -> Record:
    """The case file declaration; ``expect_entry`` checks one ``expect`` item (registry-aware)."""
    return Record(
        {
            "id": Text(allow_numbers=True, description="Unique id; defaults to the file name."),
            "title": Text(),
            "workflow": Text(description="Defaults to the folder name under cases/."),
            **INCIDENT_FIELDS,
            "input": AnyValue(description="Passed to the target; defaults to evidence.input. "
                                          "Not with turns."),
            "turns": ListOf(_turn(expect_entry), min_items=1, description=(
                "A scripted conversation instead of input: the target is called once per turn "
                "with the conversation so far (messages); expect judges the final turn's "
                "response, or the whole conversation with expect_on: transcript.")),
            "context": Record({}, extra=AnyValue(), description=(
                "With turns: fields every turn's request carries besides message and messages "
                "(e.g. the signed-in customer).")),
            "expect_on": Text(choices=model.EXPECT_ON, description=(
                "With turns: what expect judges, the final turn's response (final, default) or "
                "the whole conversation (transcript: every answer joined, every tool call, "
                "source and approval).")),
            "as_of": Timestamp(date_only=True, description="The date the case is judged at."),
            "expect": ListOf(expect_entry, min_items=1,
                             description="Checks, each a one-key mapping kind: params."),
            "trials": Number(integer=True, minimum=1, description="How often to run (default 1)."),
            "min_pass_rate": Number(minimum=0, maximum=1,
                                    description="Share of trials that must pass (default 1.0)."),
            "timeout_s": Number(minimum=0, description="Seconds one target call may take."),
            "check_budget_s": Number(minimum=0.001, description="Seconds one check may take on "
                                                                "one response (default 5)."),
            "tags": ListOf(Text(allow_numbers=True)),
            "draft": Flag(description="Drafted by tooling (e.g. harness case from-trace): a "
                                      "person must review it; harness check reports it."),
            "reference": Text(description="A known-good answer: what judge checks compare with "
                                          "and are calibrated on."),
            "acceptable_outputs": ListOf(Text(), description="More known-good answers, for "
                                                            "calibrating judges."),
            "retired": Record(
                {"reason": Text(description="Why the case no longer guards anything."),
                 "date": Timestamp(date_only=True, description="When it was retired.")},
                required=("reason",),
                description="The case is kept (an incident record is never deleted) but no "
                            "longer run; the gate blocks until a reviewer accepts the "
                            "retirement by signing the validation that shows it."),
        },
        required=("expect",),
        description="An incident case (incident record and regression case) or a baseline case.",
    )


CALL_OPTIONS: dict[str, Node] = {
    "max_concurrency": Number(integer=True, minimum=1,
                              description="Most calls of this target at once (default: the "
                                          "run's --concurrency)."),
    "rate_limit": Number(minimum=0.001, description="Most calls per second (default: none)."),
    "retries": Number(integer=True, minimum=0, maximum=20,
                      description="Retries of a transient failure (HTTP 429/5xx, connection "
                                  "error, timeout); default 0."),
    "retry_backoff_s": Number(minimum=0, description="First retry's wait in seconds, doubled "
                                                     "each retry, plus jitter (default 0.5)."),
}
"""Options every target takes, beside its adapter's own."""


# --- the suite file -------------------------------------------------------------------------


GATE = Record(
    {
        "baseline": Text(description="What harness validate compares against by default: a "
                                     "target name or a run record file."),
        "candidate": Text(description="The target harness validate runs by default."),
        "severities": ListOf(Text(choices=model.SEVERITIES),
                             description="Incident severities whose still-failing cases block "
                                         "(default all). Regressions and errors always block."),
        "categories": ListOf(Text(choices=model.CATEGORIES),
                             description="Incident categories whose still-failing cases block "
                                         "(default all)."),
        "signoff": Record(
            {"required_roles": Record(
                {}, extra=ListOf(Text(), min_items=1),
                description="Roles whose approval restoration needs: 'default' for every "
                            "validation, a category name for validations covering it.")},
            description="Who must sign a validation report before restoration."),
        "judges": Record(
            {"max_false_pass_rate": Number(minimum=0, maximum=1, description=(
                "Every judge the candidate run relied on must have a calibration (harness "
                "judge calibrate) with a false-pass rate at most this."))},
            description="What the gate requires of the judges behind judge checks."),
        "settle_trials": Number(integer=True, minimum=2,
                                description="A case whose trials disagree is judged by its pass "
                                            "rate once it ran at least this many trials; "
                                            "otherwise it blocks."),
    },
    description="Gate policy for comparing two runs (see harness gate).",
)


EXAMPLES = Record(
    {"examples": ListOf(Record(
        {"case": Text(description="The id of a case of the suite: its judge checks judge "
                                  "this example."),
         "output": Text(description="The answer to judge."),
         "expected": Text(choices=("pass", "fail"),
                          description="The right verdict: pass for an acceptable answer, "
                                      "fail for one showing the incident's failure."),
         "sources": ListOf(AnyValue(), description="Sources the answer had (default: the "
                                                   "case's evidence sources)."),
         "note": Text(description="Why the verdict is right (shown with disagreements).")},
        required=("case", "output", "expected")), min_items=1)},
    required=("examples",),
    description="Labelled examples for harness judge calibrate.",
)


TOOLS = Record(
    {"write_tools": ListOf(Text(), description="Tools that act on something, whatever their "
                                               "names and arguments say."),
     "read_tools": ListOf(Text(), description="Tools that only read.")},
    description="The project's own list of write and read tools (tools.yaml beside suites/), "
                "which drafting consults before names, arguments and annotations.",
)


PRICE = Record({"input": Number(minimum=0, description="Per million prompt tokens."),
                "output": Number(minimum=0, description="Per million completion tokens.")},
               required=("input", "output"))


def suite_record(target_entry: Custom, judge_entry: Custom | None = None) -> Record:
    """The suite file declaration; ``target_entry`` checks one named target (adapter-aware),
    ``judge_entry`` one judge (a target with what it may receive and cost)."""
    return Record(
        {
            "name": Text(description="The suite's name."),
            "description": Text(),
            "cases": ListOf(Text(), min_items=1, allow_single=True,
                            description="Globs of case files, relative to the folder holding "
                                        "suites/."),
            "targets": Record({}, extra=target_entry,
                              description="Named targets, each one adapter with its options."),
            "defaults": Record(
                {
                    "trials": Number(integer=True, minimum=1),
                    "min_pass_rate": Number(minimum=0, maximum=1),
                    "timeout_s": Number(minimum=0),
                    "check_budget_s": Number(minimum=0.001),
                    "target": Text(description="The target used when none is named."),
                },
                description="Defaults for every case of the suite.",
            ),
            "gate": GATE,
            "judges": Record({}, extra=judge_entry or target_entry,
                             description="Named judges for judge checks: each a target, with "
                                         "receives (redacted or raw), max_calls, max_cost."),
            "embedders": Record({}, extra=judge_entry or target_entry,
                                description="Named embedders for semantic checks: an openai "
                                            "target with api: embeddings, or python."),
            "prices": Record({}, extra=PRICE,
                             description="Model -> price per million tokens (input, output), "
                                         "for cost checks and judges' max_cost."),
        },
        required=("name", "cases", "targets"),
        description="A suite: which cases, against which targets.",
    )
