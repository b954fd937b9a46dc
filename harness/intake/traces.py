"""Logged traces of an AI workflow -> the ``evidence`` of an incident case.

An incident usually starts from one conversation that went wrong, and the record of what the
workflow did in it is a trace in the observability tool of the day. This module reads the four
common exports into one :class:`ImportedTrace` whose ``evidence`` has the shape of a case file's
``evidence`` (input, prompt version, model route, sources, tool calls in time order, approvals,
output), so ``harness case from-trace`` can draft a case from it:

* ``otel``: OpenTelemetry GenAI spans as OTLP JSON (``resourceSpans``), one object or JSON Lines;
* ``openinference``: OpenInference spans as exported JSON (a list of spans, or ``{data: [...]}``,
  with flat or nested attributes);
* ``langsmith``: LangSmith runs (a list, or ``{runs: [...]}``), one object or JSON Lines;
* ``langfuse``: a Langfuse trace with its ``observations``.

A field the trace does not show is left out of the evidence and named in ``evidence["missing"]``
rather than recorded as empty: a trace without tool spans may come from a workflow that called no
tools or from one whose tools were not instrumented, and only a person can tell which.
Approvals are read from approval tool calls (``request_approval``: a request, pending unless its
result says otherwise) and from spans or events named like ``approval`` or ``human_review``
(decisions, which replace the request for the same step).
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import InputError
from harness.files import read_text
from harness.model import EVIDENCE_FIELDS

FORMATS = ("otel", "openinference", "langsmith", "langfuse")
FORMAT_NAMES = {
    "otel": "OpenTelemetry GenAI spans (OTLP JSON)",
    "openinference": "OpenInference spans",
    "langsmith": "LangSmith runs",
    "langfuse": "a Langfuse trace",
}
MAX_TRACE_BYTES = 50 * 1024 * 1024
"""Trace files larger than this are refused."""
MAX_LITERAL_CHARS = 100_000
"""Python-literal tool inputs (LangChain writes ``"{'order_id': 'A-1'}"``) longer than this are
kept as text rather than parsed."""
DEFAULT_STEP = "approval"
"""The approval step recorded when a trace names none."""

APPROVAL_NAME = re.compile(r"(?i)approv|human[\s_.-]?review|manual[\s_.-]?review|sign[\s_.-]?off")
"""Span, event and tool names that stand for a human approval step."""
PROMPT_VERSION_KEY = re.compile(r"(?i)(?:^|[._])prompt[._]?(?:template[._])?version$")
"""Attribute and metadata keys that hold the prompt version (``gen_ai.prompt.version``,
``llm.prompt_template.version``, ``prompt_version``)."""
_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_ROLES = {"human": "user", "humanmessage": "user", "user": "user",
          "ai": "assistant", "aimessage": "assistant", "assistant": "assistant",
          "aimessagechunk": "assistant", "model": "assistant",
          "system": "system", "systemmessage": "system", "developer": "system",
          "tool": "tool", "toolmessage": "tool", "function": "tool"}
_APPROVED = frozenset({"approved", "approve", "granted", "accepted", "accept", "allowed", "yes"})
_REJECTED = frozenset({"rejected", "reject", "denied", "deny", "declined", "decline", "no"})
_TEXT_KEYS = ("output", "answer", "response", "content", "text", "result", "completion")
_INPUT_TEXT_KEYS = ("input", "message", "question", "query", "text", "prompt")


@dataclass(frozen=True, slots=True)
class ImportedTrace:
    """What a trace file says the workflow did, as case evidence.

    ``evidence`` holds the fields of a case's ``evidence`` that the trace shows, and ``missing``,
    the list of those it does not. Times are ISO 8601 in UTC. ``workflow`` is the name the trace
    gives the workflow (OTel ``service.name``, the root span's, run's or trace's name) when it
    can name a folder.
    """

    path: Path
    format: str
    evidence: dict[str, Any]
    started_at: str | None = None
    ended_at: str | None = None
    workflow: str | None = None
    trace_id: str | None = None
    convention: str | None = None
    """The semantic conventions the trace was read with (and their version, where known)."""


def import_trace(path: Path, *, format: str | None = None) -> ImportedTrace:
    """Read a trace file (format detected from its content unless ``format`` is given).

    Every problem (unreadable, not JSON, unknown format, no spans, several traces in one file)
    raises :class:`InputError` naming the file and, where there is one, the line.
    """
    data = read_json(path)
    if format is None:
        chosen = detect_format(data, path)
    elif format in FORMATS:
        chosen = format
    else:
        problem = f"unknown trace format {format!r}; expected one of {', '.join(FORMATS)}"
        raise InputError(problem, path=path, field="format")
    trace = _Trace()
    _PARSERS[chosen](data, trace, path)
    return trace.finish(path, chosen)


def import_traces(path: Path, *, format: str | None = None,
                  trace_id: str | None = None) -> list[ImportedTrace]:
    """Every trace of a trace file (the one ``trace_id`` names, when given)."""
    trace = import_trace(path, format=format)
    if trace_id is not None and trace.trace_id not in (None, trace_id):
        raise InputError(f"no trace {trace_id!r} in the file", path=path, field="trace_id")
    return [trace]


# --- reading the file -----------------------------------------------------------------------------


def read_json(path: Path) -> Any:
    """A JSON document, or the items of a JSON Lines file (one JSON value a line).

    A JSON Lines file of OTLP objects reads as one object with all their ``resourceSpans``.
    """
    text = read_text(path, limit=MAX_TRACE_BYTES, kind="a trace file")
    if not text.strip():
        raise InputError("file is empty; expected a JSON trace export", path=path, line=1)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg != "Extra data":
            problem = f"not JSON: {exc.msg} (column {exc.colno})"
            raise InputError(problem, path=path, line=exc.lineno) from None
    return _json_lines(text, path)


def _json_lines(text: str, path: Path) -> Any:
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except json.JSONDecodeError as exc:
            problem = f"not JSON Lines: {exc.msg} (column {exc.colno})"
            raise InputError(problem, path=path, line=number) from None
    if all(isinstance(item, Mapping) and "resourceSpans" in item for item in items):
        return {"resourceSpans": [rs for item in items for rs in item["resourceSpans"] or []]}
    return items


def detect_format(data: Any, path: Path) -> str:
    """Which of :data:`FORMATS` a parsed trace file is, from its shape."""
    if isinstance(data, Mapping):
        if "resourceSpans" in data:
            return "otel"
        if "observations" in data:
            return "langfuse"
        if isinstance(data.get("runs"), list):
            return "langsmith"
        for key in ("data", "spans"):
            if isinstance(data.get(key), list) and _openinference_items(data[key]):
                return "openinference"
        found = f"a mapping with keys {', '.join(map(str, list(data)[:8]))}"
    elif isinstance(data, list):
        mappings = [item for item in data if isinstance(item, Mapping)]
        if mappings and any("run_type" in item for item in mappings):
            return "langsmith"
        if _openinference_items(data):
            return "openinference"
        found = f"a list of {len(data)} item(s)" + (
            f" with keys {', '.join(map(str, list(mappings[0])[:8]))}" if mappings else ""
        )
    else:
        found = type(data).__name__
    problem = (f"unknown trace format: expected {', '.join(FORMAT_NAMES.values())}; found "
               f"{found} (name the format with --format {'|'.join(FORMATS)})")
    raise InputError(problem, path=path)


def _openinference_items(items: list[Any]) -> bool:
    for item in items:
        if not isinstance(item, Mapping):
            continue
        attributes = item.get("attributes")
        if "span_kind" in item or (isinstance(attributes, Mapping) and any(
            str(key).startswith("openinference.span.kind") for key in _flatten(attributes)
        )):
            return True
    return False


# --- values ---------------------------------------------------------------------------------------


def _time(value: Any) -> dt.datetime | None:
    """A moment from OTLP nanoseconds (number or digit string) or an ISO 8601 string; UTC."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int | float):
        if value <= 0:
            return None
        for limit, scale in ((1e17, 1e9), (1e14, 1e6), (1e11, 1e3), (0, 1)):
            if abs(value) >= limit:
                try:
                    return dt.datetime.fromtimestamp(value / scale, tz=dt.UTC)
                except (OverflowError, OSError, ValueError):
                    return None
        return None
    if not isinstance(value, str):
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.strip())  # nanoseconds: keep microseconds
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.astimezone(dt.UTC) if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _iso(moment: dt.datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``, to the precision the moment has (s, ms or us)."""
    if moment is None:
        return None
    precision = ("seconds" if not moment.microsecond else
                 "milliseconds" if not moment.microsecond % 1000 else "microseconds")
    return moment.isoformat(timespec=precision).replace("+00:00", "Z")


def _parsed(value: Any) -> Any:
    """A JSON (or Python-literal) object or array held in a string, parsed; else the value."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text or text[0] not in "[{":
        return value
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    if len(text) <= MAX_LITERAL_CHARS:
        try:
            literal = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return value
        if isinstance(literal, dict | list):
            return literal
    return value


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings and lists as one mapping of dotted keys (``a.b.0.c``) to leaf values."""
    flat: dict[str, Any] = {}
    if isinstance(value, Mapping) and value:
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            flat.update(_flatten(item, f"{prefix}.{index}" if prefix else str(index)))
    elif prefix:
        flat[prefix] = value
    return flat


def _nested(flat: Mapping[str, Any], prefix: str) -> Any:
    """The value under ``prefix`` rebuilt from dotted keys; digit segments become list items."""
    tree: dict[str, Any] = {}
    start = prefix + "."
    for key, value in flat.items():
        if key == prefix:
            return _parsed(value)
        if not key.startswith(start):
            continue
        *parents, last = key[len(start):].split(".")
        node = tree
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            node[last] = value
    return _listed(tree) if tree else None


def _listed(tree: Any) -> Any:
    if not isinstance(tree, dict):
        return tree
    items = {key: _listed(value) for key, value in tree.items()}
    if items and all(key.isdigit() for key in items):
        return [items[key] for key in sorted(items, key=int)]
    return items


def _first(fields: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        value = fields.get(key)
        if value is not None and value != "":
            return value
    return None


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str | int | float):
        text = str(value).strip()
        return text or None
    return None


def _slug(value: Any) -> str | None:
    text = _text(value)
    return text if text and _SLUG.match(text) else None


def _args(value: Any) -> dict[str, Any]:
    """Tool-call arguments as a mapping; anything else is kept under ``input``."""
    value = _parsed(value)
    if value is None or value == "":
        return {}
    if isinstance(value, Mapping):
        if set(value) == {"input"}:
            inner = _parsed(value["input"])
            if isinstance(inner, Mapping):
                return dict(inner)
        return dict(value)
    return {"input": value}


def _result(value: Any) -> Any:
    """A tool's result, unwrapped from ``{output: ...}`` and LangChain messages, JSON parsed."""
    value = _parsed(value)
    if isinstance(value, Mapping) and set(value) == {"output"}:
        value = _parsed(value["output"])
    if isinstance(value, Mapping) and isinstance(value.get("kwargs"), Mapping):
        value = value["kwargs"]
    if isinstance(value, Mapping) and "content" in value and "tool_call_id" in value:
        value = _parsed(value["content"])
    return value


def _prompt_versions(fields: Mapping[str, Any]) -> list[str]:
    found = []
    for key, value in _flatten({k: _parsed(v) for k, v in fields.items()}).items():
        text = _text(value)
        if text and PROMPT_VERSION_KEY.search(key):
            found.append(text)
    return found


# --- messages -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Message:
    """One chat message, whatever the format: its role, text, tool calls and tool results."""

    role: str
    text: str = ""
    calls: tuple[tuple[str | None, str, dict[str, Any]], ...] = ()
    responses: tuple[tuple[str | None, Any], ...] = ()


def _role(item: Mapping[str, Any], default: str) -> str:
    raw = _text(item.get("role")) or _text(item.get("type")) or default
    return _ROLES.get(raw.casefold(), raw.casefold())


def _content_text(content: Any) -> str:
    content = _parsed(content)
    if isinstance(content, str):
        return content
    if isinstance(content, Mapping):
        content = [content]
    if not isinstance(content, list):
        return ""
    texts = []
    for part in content:
        if isinstance(part, str):
            texts.append(part)
            continue
        if not isinstance(part, Mapping):
            continue
        if isinstance(part.get("message_content"), Mapping):  # OpenInference contents
            part = part["message_content"]
        if part.get("type", "text") == "text":
            text = _first(part, "text", "content")
            if isinstance(text, str):
                texts.append(text)
    return "\n".join(texts)


def _tool_request(item: Any) -> tuple[str | None, str, dict[str, Any]] | None:
    if not isinstance(item, Mapping):
        return None
    if isinstance(item.get("tool_call"), Mapping):  # OpenInference
        item = item["tool_call"]
    function = item.get("function") if isinstance(item.get("function"), Mapping) else item
    name = _text(function.get("name"))
    if name is None:
        return None
    args = _first(function, "arguments", "args", "input")
    return _text(item.get("id")), name, _args(args)


def _message(item: Mapping[str, Any], default_role: str) -> _Message:
    if isinstance(item.get("message"), Mapping) and "role" not in item:
        item = item["message"]  # OpenInference and LangChain generations
    if isinstance(item.get("kwargs"), Mapping):  # a serialized LangChain message
        kind = item.get("id")
        kind = kind[-1] if isinstance(kind, list) and kind else ""
        item = {"type": kind, **item["kwargs"]}
    role = _role(item, default_role)
    parts = item.get("parts")
    text = _content_text(parts if parts is not None else _first(item, "content", "contents",
                                                                  "text"))
    calls = [_tool_request(call) for call in item.get("tool_calls") or []]
    calls += [_tool_request(part) for part in parts or []
              if isinstance(part, Mapping) and part.get("type") == "tool_call"]
    responses = [(_text(part.get("id")), _result(part.get("response"))) for part in parts or []
                 if isinstance(part, Mapping) and part.get("type") == "tool_call_response"]
    if role == "tool" and item.get("tool_call_id") is not None:
        responses.append((_text(item["tool_call_id"]), _result(item.get("content"))))
    return _Message(role=role, text=text, calls=tuple(c for c in calls if c),
                    responses=tuple(responses))


def _messages(value: Any, default_role: str) -> list[_Message]:
    """The messages in a message list, one message, a LangChain generation list, or text."""
    value = _parsed(value)
    if isinstance(value, str):
        return [_Message(role=default_role, text=value)] if value.strip() else []
    if isinstance(value, Mapping):
        for key in ("messages", "generations", "choices"):
            if isinstance(value.get(key), list):
                return _messages(value[key], default_role)
        message = _message(value, default_role)
        return [message] if message.text or message.calls or message.responses else []
    found: list[_Message] = []
    if isinstance(value, list):
        for item in value:
            if isinstance(item, list | str | Mapping):
                found.extend(_messages(item, default_role))
    return found


def _last_text(messages: Iterable[_Message], role: str) -> str | None:
    texts = [m.text for m in messages if m.role == role and m.text.strip()]
    return texts[-1] if texts else None


def _input_value(value: Any) -> Any:
    """The workflow's input: a mapping as recorded, with a chat turn or plain text read as
    ``{message: text}``, the convention of the case files."""
    value = _parsed(value)
    if isinstance(value, str):
        return {"message": value} if value.strip() else None
    if isinstance(value, list):
        text = _last_text(_messages(value, "user"), "user")
        return {"message": text} if text else None
    if not isinstance(value, Mapping) or not value:
        return None
    if isinstance(value.get("messages"), list):
        rest = {key: item for key, item in value.items() if key != "messages"}
        text = _last_text(_messages(value["messages"], "user"), "user")
        return {**rest, "message": text} if text else (rest or None)
    if len(value) == 1:
        ((key, item),) = value.items()
        if key in _INPUT_TEXT_KEYS and isinstance(item, str):
            return {"message": item}
    return dict(value)


def _output_text(value: Any) -> str | None:
    """The answer in a recorded output: text, a message (list), or a mapping holding one."""
    value = _parsed(value)
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, Mapping):
        for key in _TEXT_KEYS:
            text = _output_text(value[key]) if key in value else None
            if text:
                return text
    messages = _messages(value, "assistant")
    return _last_text(messages, "assistant")


# --- sources and approvals ------------------------------------------------------------------------


def _source(doc: Any) -> dict[str, str] | None:
    """A retrieved document as a case source: id, title, url, updated_at (those it has)."""
    doc = _parsed(doc)
    if isinstance(doc, Mapping) and isinstance(doc.get("document"), Mapping):
        doc = doc["document"]  # OpenInference
    if not isinstance(doc, Mapping):
        return None
    metadata = _parsed(doc.get("metadata"))
    fields = dict(metadata) if isinstance(metadata, Mapping) else {}
    fields.update({key: value for key, value in doc.items() if value is not None})
    url = _text(_first(fields, "url", "uri", "link", "href", "source"))
    title = _text(_first(fields, "title", "name"))
    source = {
        "id": _text(_first(fields, "id", "document_id", "doc_id", "source_id")) or url or title,
        "title": title,
        "url": url,
        "updated_at": _text(_first(fields, "updated_at", "updatedAt", "last_updated",
                                   "last_modified", "modified_at", "modified")),
    }
    if source["id"] is None:
        return None
    return {key: value for key, value in source.items() if value is not None}


def _documents(value: Any) -> list[dict[str, str]]:
    value = _parsed(value)
    if isinstance(value, Mapping):
        value = _first(value, "documents", "docs", "results", "output")
        value = _parsed(value)
    if not isinstance(value, list):
        return []
    return [source for source in map(_source, value) if source]


def _status(value: Any) -> str | None:
    if isinstance(value, bool):
        return "approved" if value else "rejected"
    text = _text(value)
    if text is None:
        return None
    word = text.casefold()
    if word in _APPROVED:
        return "approved"
    if word in _REJECTED:
        return "rejected"
    return word


def _approval(parts: Iterable[Any], *, at: dt.datetime | None) -> dict[str, str]:
    """An approval record from the mappings that describe it (arguments, metadata, result);
    later parts win. A plain-text part may be the decision ("approved")."""
    fields: dict[str, Any] = {}
    decision = None
    for part in parts:
        part = _parsed(part)
        if isinstance(part, Mapping):
            parsed = {key: _parsed(value) for key, value in part.items()}
            fields.update({key.rsplit(".", 1)[-1].casefold(): value
                           for key, value in _flatten(parsed).items()})
        elif _text(part):
            decision = part
    approval = {
        "step": _text(_first(fields, "step", "approval_step", "gate")) or DEFAULT_STEP,
        "approver": _text(_first(fields, "approver", "approved_by", "reviewer", "decided_by",
                                 "rejected_by")),
        "role": _text(_first(fields, "role", "approver_role", "reviewer_role")),
        "status": _status(_first(fields, "status", "decision", "outcome")) or _status(decision)
        or "pending",
        "at": _iso(_time(_first(fields, "at", "decided_at", "approved_at", "rejected_at",
                                "timestamp"))) or _iso(at),
    }
    return {key: value for key, value in approval.items() if value is not None}


# --- collecting evidence --------------------------------------------------------------------------


_Key = tuple[dt.datetime | None, int]
"""Where a step sorts: its start time, then the order it was found in."""


@dataclass
class _Trace:
    """What the parsers found, in the order they found it; :meth:`finish` builds the evidence."""

    input: Any = None
    output: str | None = None
    workflow: str | None = None
    tools: list[tuple[_Key, dict[str, Any]]] = field(default_factory=list)
    requested: list[tuple[_Key, str | None, dict[str, Any]]] = field(default_factory=list)
    responses: dict[str, Any] = field(default_factory=dict)
    sources: list[tuple[_Key, dict[str, str]]] = field(default_factory=list)
    decisions: list[tuple[_Key, dict[str, str]]] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    prompt_versions: list[str] = field(default_factory=list)
    answers: list[tuple[_Key, str]] = field(default_factory=list)
    user_turns: list[tuple[_Key, str]] = field(default_factory=list)
    moments: list[dt.datetime] = field(default_factory=list)
    seen: int = 0

    def key(self, start: dt.datetime | None) -> _Key:
        """A sort key: the start time, then the order of discovery."""
        self.seen += 1
        return (start, self.seen)

    def add_span_times(self, start: dt.datetime | None, end: dt.datetime | None) -> None:
        self.moments.extend(moment for moment in (start, end) if moment is not None)

    def add_tool(self, key: _Key, name: str, args: Any, result: Any) -> None:
        self.tools.append((key, {"name": name, "args": _args(args), "result": _result(result)}))

    def add_model(self, model: Any, provider: Any = None) -> None:
        name = _text(model)
        if name is None:
            return
        vendor = _text(provider)
        route = f"{vendor}/{name}" if vendor and "/" not in name else name
        if route not in self.models:
            self.models.append(route)

    def add_prompt_versions(self, fields: Mapping[str, Any]) -> None:
        for version in _prompt_versions(fields):
            if version not in self.prompt_versions:
                self.prompt_versions.append(version)

    def add_llm(self, key: _Key, inputs: list[_Message], outputs: list[_Message]) -> None:
        """An LLM call: the user's turn, the answer, the tool calls it asked for and the tool
        results it was given."""
        user = _last_text(inputs, "user")
        if user:
            self.user_turns.append((key, user))
        for message in inputs:
            for call_id, result in message.responses:
                if call_id is not None:
                    self.responses[call_id] = result
        for message in outputs:
            for call_id, name, args in message.calls:
                self.requested.append((key, call_id, {"name": name, "args": args}))
        text = _last_text(outputs, "assistant")
        if text:
            self.answers.append((key, text))

    def finish(self, path: Path, fmt: str) -> ImportedTrace:
        calls = self.tools or [  # no tool spans: the calls the model asked for, with results
            (key, {**call, "result": self.responses.get(call_id) if call_id else None})
            for key, call_id, call in self.requested
        ]
        ordered = _ordered(calls)
        tool_calls = [call for _, call in ordered]
        decided = {approval["step"] for _, approval in self.decisions}
        requests = [(key, _approval([call["args"], call["result"]], at=None))
                    for key, call in ordered if APPROVAL_NAME.search(call["name"])]
        approvals = [approval for _, approval in _ordered(
            self.decisions + [(k, a) for k, a in requests if a["step"] not in decided])]
        sources: dict[str, dict[str, str]] = {}
        for _, source in _ordered(self.sources):
            sources.setdefault(source["id"], source)
        user_turns = _ordered(self.user_turns)
        answers = _ordered(self.answers)
        found: dict[str, Any] = {
            "input": self.input if self.input is not None else (
                {"message": user_turns[0][1]} if user_turns else None),
            "prompt_version": ", ".join(self.prompt_versions) or None,
            "model_route": ", ".join(self.models) or None,
            "sources": list(sources.values()),
            "tool_calls": tool_calls,
            "approvals": approvals,
            "output": self.output if self.output is not None else (
                answers[-1][1] if answers else None),
        }
        evidence = {name: found[name] for name in EVIDENCE_FIELDS if found[name]}
        evidence["missing"] = [name for name in EVIDENCE_FIELDS if not found[name]]
        return ImportedTrace(
            path=path, format=fmt, evidence=evidence,
            started_at=_iso(min(self.moments)) if self.moments else None,
            ended_at=_iso(max(self.moments)) if self.moments else None,
            workflow=self.workflow,
        )


def _ordered(items: list[tuple[_Key, Any]]) -> list[tuple[_Key, Any]]:
    """``(key, item)`` pairs in time order when every one has a time, else in the order they
    were found (keys from :meth:`_Trace.key`)."""
    if all(key[0] is not None for key, _ in items):
        return sorted(items, key=lambda pair: pair[0])
    return sorted(items, key=lambda pair: pair[0][1])


# --- spans (OpenTelemetry and OpenInference) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Event:
    name: str
    at: dt.datetime | None
    attributes: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class _Span:
    where: str
    name: str
    kind: str
    trace_id: str | None
    span_id: str | None
    parent_id: str | None
    start: dt.datetime | None
    end: dt.datetime | None
    attributes: Mapping[str, Any]
    events: tuple[_Event, ...] = ()
    resource: Mapping[str, Any] = field(default_factory=dict)


def _mapping(value: Any, path: Path, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        problem = f"expected a mapping, found {type(value).__name__}"
        raise InputError(problem, path=path, field=where)
    return value


def _items(value: Any, path: Path, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        problem = f"expected a list, found {type(value).__name__}"
        raise InputError(problem, path=path, field=where)
    return value


def _one_trace(spans: list[_Span], path: Path) -> _Span | None:
    """The root span of the file's only trace, or None when the export lacks it (several spans
    without a parent); no spans, or spans of several traces, are errors."""
    if not spans:
        raise InputError("no spans found; expected the spans of one trace", path=path)
    traces = list(dict.fromkeys(span.trace_id for span in spans if span.trace_id))
    if len(traces) > 1:
        shown = ", ".join(traces[:3]) + (", ..." if len(traces) > 3 else "")
        problem = (f"the file holds {len(traces)} traces ({shown}); export only the trace of "
                   f"the incident's conversation")
        raise InputError(problem, path=path)
    ids = {span.span_id for span in spans if span.span_id}
    roots = [span for span in spans if not span.parent_id or span.parent_id not in ids]
    return roots[0] if len(roots) == 1 else None


_OTLP_VALUES = (("stringValue", "string_value", str), ("boolValue", "bool_value", bool),
                ("intValue", "int_value", int), ("doubleValue", "double_value", float),
                ("bytesValue", "bytes_value", str))


def _otlp_value(value: Any) -> Any:
    """An OTLP ``AnyValue`` (``{stringValue: ...}``, ``{arrayValue: {values}}``, ...) as plain."""
    if not isinstance(value, Mapping):
        return value
    for camel, snake, kind in _OTLP_VALUES:
        for key in (camel, snake):
            if key in value:
                try:
                    return kind(value[key])
                except (TypeError, ValueError):
                    return value[key]
    array = _first(value, "arrayValue", "array_value")
    if isinstance(array, Mapping):
        return [_otlp_value(item) for item in array.get("values") or []]
    kvlist = _first(value, "kvlistValue", "kvlist_value")
    if isinstance(kvlist, Mapping):
        return _otlp_attributes(kvlist.get("values"))
    return None


def _otlp_attributes(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):  # some exporters write a plain mapping
        return dict(value)
    return {str(item["key"]): _otlp_value(item.get("value"))
            for item in value or [] if isinstance(item, Mapping) and "key" in item}


def _otel_spans(data: Any, path: Path) -> list[_Span]:
    batches = _items(_mapping(data, path, "(top level)").get("resourceSpans"), path,
                     "resourceSpans")
    spans = []
    for i, batch in enumerate(batches):
        where = f"resourceSpans[{i}]"
        batch = _mapping(batch, path, where)
        resource = _otlp_attributes((batch.get("resource") or {}).get("attributes"))
        scopes = _first(batch, "scopeSpans", "instrumentationLibrarySpans") or []
        for j, scope in enumerate(_items(scopes, path, f"{where}.scopeSpans")):
            scope_where = f"{where}.scopeSpans[{j}]"
            scope = _mapping(scope, path, scope_where)
            for k, raw in enumerate(_items(scope.get("spans"), path, f"{scope_where}.spans")):
                span_where = f"{scope_where}.spans[{k}]"
                raw = _mapping(raw, path, span_where)
                events = tuple(
                    _Event(name=str(event.get("name", "")), at=_time(event.get("timeUnixNano")),
                           attributes=_otlp_attributes(event.get("attributes")))
                    for event in _items(raw.get("events"), path, f"{span_where}.events")
                    if isinstance(event, Mapping)
                )
                spans.append(_Span(
                    where=span_where, name=str(raw.get("name", "")), kind="",
                    trace_id=_text(raw.get("traceId")), span_id=_text(raw.get("spanId")),
                    parent_id=_text(raw.get("parentSpanId")),
                    start=_time(raw.get("startTimeUnixNano")),
                    end=_time(raw.get("endTimeUnixNano")),
                    attributes=_otlp_attributes(raw.get("attributes")), events=events,
                    resource=resource,
                ))
    return spans


def _otel_messages(attrs: Mapping[str, Any], events: Iterable[_Event], new: str, old: str,
                   role: str) -> list[_Message]:
    """Messages from ``gen_ai.input.messages`` (or the older ``gen_ai.prompt``, as JSON, as
    ``gen_ai.prompt.N.content`` attributes, or on a ``gen_ai.content.prompt`` event)."""
    if new in attrs:
        return _messages(attrs[new], role)
    if old in attrs:
        return _messages(attrs[old], role)
    indexed = _nested(attrs, old)
    if indexed:
        return _messages(indexed, role)
    for event in events:
        if old in event.attributes:
            return _messages(event.attributes[old], role)
    return []


def _parse_otel(data: Any, trace: _Trace, path: Path) -> None:
    spans = _otel_spans(data, path)
    root = _one_trace(spans, path)
    trace.workflow = _slug(spans[0].resource.get("service.name"))
    for span in sorted(spans, key=lambda s: (s.start is None, s.start or dt.datetime.min)):
        attrs = span.attributes
        key = trace.key(span.start)
        trace.add_span_times(span.start, span.end)
        trace.add_prompt_versions(span.resource)
        trace.add_prompt_versions(attrs)
        operation = _text(attrs.get("gen_ai.operation.name")) or ""
        datastore = _text(attrs.get("gen_ai.tool.type")) == "datastore"
        if operation in ("retrieval", "retrieve") or datastore or (
            "gen_ai.retrieval.documents" in attrs
        ):
            documents = _first(attrs, "gen_ai.retrieval.documents", "gen_ai.tool.call.result")
            trace.sources.extend((key, source) for source in _documents(documents))
        elif operation == "execute_tool" or "gen_ai.tool.name" in attrs:
            name = _text(attrs.get("gen_ai.tool.name")) or span.name.removeprefix("execute_tool ")
            trace.add_tool(key, name, attrs.get("gen_ai.tool.call.arguments"),
                           attrs.get("gen_ai.tool.call.result"))
        elif span is not root and APPROVAL_NAME.search(span.name):
            trace.decisions.append((key, _approval([attrs], at=span.end or span.start)))
        else:
            inputs = _otel_messages(attrs, span.events, "gen_ai.input.messages",
                                    "gen_ai.prompt", "user")
            outputs = _otel_messages(attrs, span.events, "gen_ai.output.messages",
                                     "gen_ai.completion", "assistant")
            trace.add_model(_first(attrs, "gen_ai.response.model", "gen_ai.request.model"),
                            _first(attrs, "gen_ai.provider.name", "gen_ai.system"))
            trace.add_llm(key, inputs, outputs)
            if span is root:
                trace.input = _input_value(_last_text(inputs, "user"))
                trace.output = _last_text(outputs, "assistant")
        for event in span.events:
            if APPROVAL_NAME.search(event.name):
                event_key = trace.key(event.at or span.start)
                trace.decisions.append((event_key, _approval([event.attributes], at=event.at)))


def _openinference_spans(data: Any, path: Path) -> list[_Span]:
    if isinstance(data, Mapping):
        key = "data" if isinstance(data.get("data"), list) else "spans"
        items, prefix = _items(data.get(key), path, key), key
    else:
        items, prefix = _items(data, path, "(top level)"), ""
    spans = []
    for index, raw in enumerate(items):
        where = f"{prefix}[{index}]"
        raw = _mapping(raw, path, where)
        context = raw.get("context") if isinstance(raw.get("context"), Mapping) else {}
        attributes = _flatten(_mapping(raw.get("attributes") or {}, path, f"{where}.attributes"))
        events = tuple(
            _Event(name=str(event.get("name", "")), at=_time(event.get("timestamp")),
                   attributes=_flatten(event.get("attributes") or {}))
            for event in _items(raw.get("events"), path, f"{where}.events")
            if isinstance(event, Mapping)
        )
        spans.append(_Span(
            where=where, name=str(raw.get("name", "")),
            kind=str(raw.get("span_kind") or attributes.get("openinference.span.kind") or "")
            .upper(),
            trace_id=_text(_first(context, "trace_id") or raw.get("trace_id")),
            span_id=_text(_first(context, "span_id") or raw.get("span_id")),
            parent_id=_text(_first(raw, "parent_id", "parent_span_id")),
            start=_time(raw.get("start_time")), end=_time(raw.get("end_time")),
            attributes=attributes, events=events,
        ))
    return spans


def _oi_messages(attrs: Mapping[str, Any], prefix: str, role: str) -> list[_Message]:
    value = _nested(attrs, prefix)
    return _messages(value, role) if value else []


def _oi_tool_args(attrs: Mapping[str, Any]) -> Any:
    """A tool span's arguments: ``tool_call.function.arguments``, else its input, else
    ``tool.parameters`` unless that is the tool's JSON Schema."""
    arguments = _nested(attrs, "tool_call.function.arguments")
    if arguments is not None:
        return arguments
    value = _parsed(attrs.get("input.value"))
    if isinstance(value, Mapping):
        return value
    parameters = _parsed(attrs.get("tool.parameters"))
    if isinstance(parameters, Mapping) and not {"properties", "$schema"} & set(parameters):
        return parameters
    return value


def _parse_openinference(data: Any, trace: _Trace, path: Path) -> None:
    spans = _openinference_spans(data, path)
    root = _one_trace(spans, path)
    if root is not None:
        trace.workflow = _slug(root.name)
        trace.input = _input_value(root.attributes.get("input.value"))
        trace.output = _output_text(root.attributes.get("output.value"))
    for span in sorted(spans, key=lambda s: (s.start is None, s.start or dt.datetime.min)):
        attrs = span.attributes
        key = trace.key(span.start)
        trace.add_span_times(span.start, span.end)
        trace.add_prompt_versions({k: v for k, v in attrs.items() if not k.startswith(
            ("llm.input_messages", "llm.output_messages", "input.", "output."))})
        if span.kind == "LLM":
            trace.add_model(attrs.get("llm.model_name"),
                            _first(attrs, "llm.provider", "llm.system"))
            trace.add_llm(key, _oi_messages(attrs, "llm.input_messages", "user"),
                          _oi_messages(attrs, "llm.output_messages", "assistant"))
        elif span.kind == "TOOL":
            name = _text(_first(attrs, "tool.name", "tool_call.function.name")) or span.name
            trace.add_tool(key, name, _oi_tool_args(attrs), attrs.get("output.value"))
        elif span.kind == "RETRIEVER":
            documents = _nested(attrs, "retrieval.documents") or []
            trace.sources.extend((key, source) for source in _documents(documents))
        elif span is not root and APPROVAL_NAME.search(span.name):
            metadata = _parsed(attrs.get("metadata"))
            parts = [{k: v for k, v in attrs.items() if not k.startswith("metadata")},
                     metadata if isinstance(metadata, Mapping) else {},
                     _parsed(attrs.get("output.value"))]
            trace.decisions.append((key, _approval(parts, at=span.end or span.start)))
        for event in span.events:
            if APPROVAL_NAME.search(event.name):
                event_key = trace.key(event.at or span.start)
                trace.decisions.append((event_key, _approval([event.attributes], at=event.at)))


# --- LangSmith runs -------------------------------------------------------------------------------


def _parse_langsmith(data: Any, trace: _Trace, path: Path) -> None:
    if isinstance(data, Mapping):
        runs, prefix = _items(data.get("runs"), path, "runs"), "runs"
    else:
        runs, prefix = _items(data, path, "(top level)"), ""
    checked = [_mapping(run, path, f"{prefix}[{i}]") for i, run in enumerate(runs)]
    if not checked:
        raise InputError("no runs found; expected the runs of one trace", path=path)
    ids = {str(run.get("id")) for run in checked}
    roots = [run for run in checked
             if not run.get("parent_run_id") or str(run["parent_run_id"]) not in ids]
    traces = list(dict.fromkeys(str(run.get("trace_id") or run.get("id")) for run in roots))
    if len(traces) > 1:
        problem = (f"the file holds {len(traces)} traces ({', '.join(traces[:3])}"
                   f"{', ...' if len(traces) > 3 else ''}); export only the trace of the "
                   f"incident's conversation")
        raise InputError(problem, path=path)
    root = roots[0] if len(roots) == 1 else None  # several: the export lacks the root run
    if root is not None:
        trace.workflow = _slug(root.get("name"))
        trace.input = _input_value(root.get("inputs"))
        trace.output = _output_text(root.get("outputs"))
    ordered = sorted(checked, key=lambda run: (_time(run.get("start_time")) is None,
                                               _time(run.get("start_time")) or dt.datetime.min))
    for run in ordered:
        start, end = _time(run.get("start_time")), _time(run.get("end_time"))
        key = trace.key(start)
        trace.add_span_times(start, end)
        extra = run.get("extra") if isinstance(run.get("extra"), Mapping) else {}
        metadata = extra.get("metadata") if isinstance(extra.get("metadata"), Mapping) else {}
        trace.add_prompt_versions(metadata)
        kind = str(run.get("run_type") or "").casefold()
        name = _text(run.get("name")) or kind
        outputs = run.get("outputs")
        if kind == "llm":
            invocation = extra.get("invocation_params")
            invocation = invocation if isinstance(invocation, Mapping) else {}
            llm_output = outputs.get("llm_output") if isinstance(outputs, Mapping) else None
            answered = (_first(llm_output, "model_name", "model")
                        if isinstance(llm_output, Mapping) else None)
            trace.add_model(
                answered or _first(metadata, "ls_model_name")
                or _first(invocation, "model", "model_name"),
                metadata.get("ls_provider"),
            )
            inputs = run.get("inputs") if isinstance(run.get("inputs"), Mapping) else {}
            trace.add_llm(key, _messages(_first(inputs, "messages", "prompts"), "user"),
                          _messages(outputs, "assistant"))
        elif kind == "tool":
            trace.add_tool(key, name, run.get("inputs"), outputs)
        elif kind == "retriever":
            trace.sources.extend((key, source) for source in _documents(outputs))
        elif run is not root and APPROVAL_NAME.search(name):
            trace.decisions.append((key, _approval([run.get("inputs"), metadata, outputs],
                                                   at=end or start)))


# --- Langfuse traces ------------------------------------------------------------------------------


_TOOL_PREFIX = re.compile(r"^tool[:./](.+)$", re.IGNORECASE)
_KIND_KEYS = ("type", "kind", "span_kind", "observation_type")


def _langfuse_kind(observation: Mapping[str, Any], metadata: Mapping[str, Any]) -> str:
    """generation, tool, retrieval, approval or other: by type, then metadata, then name."""
    kind = str(observation.get("type") or "").casefold()
    declared = {str(metadata.get(key) or "").casefold() for key in _KIND_KEYS}
    name = str(observation.get("name") or "")
    if kind == "generation":
        return "generation"
    if kind == "tool" or "tool" in declared or _TOOL_PREFIX.match(name):
        return "tool"
    if kind == "retriever" or declared & {"retrieval", "retriever"} or "retriev" in name.lower():
        return "retrieval"
    if APPROVAL_NAME.search(name):
        return "approval"
    return "other"


def _parse_langfuse(data: Any, trace: _Trace, path: Path) -> None:
    data = _mapping(data, path, "(top level)")
    observations = [_mapping(item, path, f"observations[{i}]")
                    for i, item in enumerate(_items(data.get("observations"), path,
                                                    "observations"))]
    if not observations and data.get("input") is None and data.get("output") is None:
        raise InputError("no observations, input or output found in the trace", path=path)
    traces = {str(o["traceId"]) for o in observations if o.get("traceId")}
    if data.get("id") is not None:
        traces.add(str(data["id"]))
    if len(traces) > 1:
        problem = (f"observations belong to {len(traces)} traces ({', '.join(sorted(traces))}); "
                   f"export only the trace of the incident's conversation")
        raise InputError(problem, path=path)
    trace.workflow = _slug(data.get("name"))
    trace.input = _input_value(data.get("input"))
    trace.output = _output_text(data.get("output"))
    if isinstance(data.get("metadata"), Mapping):
        trace.add_prompt_versions(data["metadata"])
    trace.add_span_times(_time(data.get("timestamp")), None)
    ordered = sorted(observations, key=lambda o: (_time(o.get("startTime")) is None,
                                                  _time(o.get("startTime")) or dt.datetime.min))
    for observation in ordered:
        start, end = _time(observation.get("startTime")), _time(observation.get("endTime"))
        key = trace.key(start)
        trace.add_span_times(start, end)
        metadata = _parsed(observation.get("metadata"))
        metadata = metadata if isinstance(metadata, Mapping) else {}
        trace.add_prompt_versions(metadata)
        kind = _langfuse_kind(observation, metadata)
        name = str(observation.get("name") or "")
        if kind == "generation":
            trace.add_model(observation.get("model"),
                            _first(metadata, "provider", "ls_provider", "gen_ai.system"))
            prompt, version = observation.get("promptName"), observation.get("promptVersion")
            if version is not None and not _prompt_versions(metadata):
                label = f"{prompt}@{version}" if prompt else str(version)
                if label not in trace.prompt_versions:
                    trace.prompt_versions.append(label)
            trace.add_llm(key, _messages(observation.get("input"), "user"),
                          _messages(observation.get("output"), "assistant"))
        elif kind == "tool":
            prefixed = _TOOL_PREFIX.match(name)
            tool = _text(metadata.get("tool_name")) or (prefixed.group(1) if prefixed else name)
            trace.add_tool(key, tool, observation.get("input"), observation.get("output"))
        elif kind == "retrieval":
            trace.sources.extend((key, source)
                                 for source in _documents(observation.get("output")))
        elif kind == "approval":
            parts = [observation.get("input"), metadata, observation.get("output")]
            trace.decisions.append((key, _approval(parts, at=end or start)))


_PARSERS: dict[str, Callable[[Any, _Trace, Path], None]] = {
    "otel": _parse_otel,
    "openinference": _parse_openinference,
    "langsmith": _parse_langsmith,
    "langfuse": _parse_langfuse,
}
