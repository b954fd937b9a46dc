"""What every trace format shares: values, chat messages, sources and approvals, and the
:class:`Trace` collector that turns what a parser found into case evidence.

A field the trace shows no sign of (no tool, retriever or approval span, call or request) is
recorded as empty: the workflow did none of it. A field the trace shows a sign of but holds
nothing for (a model answered, yet no model name was logged; a retriever ran, yet its documents
were not) is named in ``evidence["missing"]``: missing evidence is only what the trace should
have had and did not. Approvals are read from approval tool calls (``request_approval``: a
request, pending unless its result says otherwise) and from spans, runs, observations or events
named like ``approval`` or ``human_review`` (decisions, which replace the request for the same
step, whose name they carry as ``step``, or after a colon in their own name).
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import InputError
from harness.model import EVIDENCE_FIELDS

FORMATS = ("otel", "openinference", "langsmith", "langfuse")
FORMAT_NAMES = {
    "otel": "OpenTelemetry GenAI spans",
    "openinference": "OpenInference spans",
    "langsmith": "LangSmith runs",
    "langfuse": "Langfuse traces",
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


# --- values ---------------------------------------------------------------------------------------


def time_of(value: Any) -> dt.datetime | None:
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


def iso(moment: dt.datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``, to the precision the moment has (s, ms or us)."""
    if moment is None:
        return None
    precision = ("seconds" if not moment.microsecond else
                 "milliseconds" if not moment.microsecond % 1000 else "microseconds")
    return moment.isoformat(timespec=precision).replace("+00:00", "Z")


def parsed(value: Any) -> Any:
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


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings and lists as one mapping of dotted keys (``a.b.0.c``) to leaf values."""
    flat: dict[str, Any] = {}
    if isinstance(value, Mapping) and value:
        for key, item in value.items():
            flat.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            flat.update(flatten(item, f"{prefix}.{index}" if prefix else str(index)))
    elif prefix:
        flat[prefix] = value
    return flat


def nested(flat: Mapping[str, Any], prefix: str) -> Any:
    """The value under ``prefix`` rebuilt from dotted keys; digit segments become list items."""
    tree: dict[str, Any] = {}
    start = prefix + "."
    for key, value in flat.items():
        if key == prefix:
            return parsed(value)
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


def first(fields: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        value = fields.get(key)
        if value is not None and value != "":
            return value
    return None


def mapping_at(fields: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """``fields[key]`` when it is a mapping, else an empty one (absent and malformed alike)."""
    value = fields.get(key)
    return value if isinstance(value, Mapping) else {}


def text_of(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str | int | float):
        text = str(value).strip()
        return text or None
    return None


def slug(value: Any) -> str | None:
    text = text_of(value)
    return text if text and _SLUG.match(text) else None


def args_of(value: Any) -> dict[str, Any]:
    """Tool-call arguments as a mapping; anything else is kept under ``input``."""
    value = parsed(value)
    if value is None or value == "":
        return {}
    if isinstance(value, Mapping):
        if set(value) == {"input"}:
            inner = parsed(value["input"])
            if isinstance(inner, Mapping):
                return dict(inner)
        return dict(value)
    return {"input": value}


def result_of(value: Any) -> Any:
    """A tool's result, unwrapped from ``{output: ...}`` and LangChain messages, JSON parsed."""
    value = parsed(value)
    if isinstance(value, Mapping) and set(value) == {"output"}:
        value = parsed(value["output"])
    if isinstance(value, Mapping) and isinstance(value.get("kwargs"), Mapping):
        value = value["kwargs"]
    if isinstance(value, Mapping) and "content" in value and "tool_call_id" in value:
        value = parsed(value["content"])
    return value


def prompt_versions(fields: Mapping[str, Any]) -> list[str]:
    found = []
    for key, value in flatten({k: parsed(v) for k, v in fields.items()}).items():
        text = text_of(value)
        if text and PROMPT_VERSION_KEY.search(key):
            found.append(text)
    return found


# --- messages -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message, whatever the format: its role, text, tool calls and tool results."""

    role: str
    text: str = ""
    calls: tuple[tuple[str | None, str, dict[str, Any]], ...] = ()
    responses: tuple[tuple[str | None, Any], ...] = ()


def role_of(item: Mapping[str, Any], default: str) -> str:
    raw = text_of(item.get("role")) or text_of(item.get("type")) or default
    return _ROLES.get(raw.casefold(), raw.casefold())


def content_text(content: Any) -> str:
    content = parsed(content)
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
            text = first(part, "text", "content")
            if isinstance(text, str):
                texts.append(text)
    return "\n".join(texts)


def tool_request(item: Any) -> tuple[str | None, str, dict[str, Any]] | None:
    if not isinstance(item, Mapping):
        return None
    if isinstance(item.get("tool_call"), Mapping):  # OpenInference
        item = item["tool_call"]
    function = item.get("function") if isinstance(item.get("function"), Mapping) else item
    name = text_of(function.get("name"))
    if name is None:
        return None
    args = first(function, "arguments", "args", "input")
    return text_of(item.get("id")), name, args_of(args)


def message_of(item: Mapping[str, Any], default_role: str) -> Message:
    if isinstance(item.get("message"), Mapping) and "role" not in item:
        item = item["message"]  # OpenInference and LangChain generations
    if isinstance(item.get("kwargs"), Mapping):  # a serialized LangChain message
        kind = item.get("id")
        kind = kind[-1] if isinstance(kind, list) and kind else ""
        item = {"type": kind, **item["kwargs"]}
    role = role_of(item, default_role)
    parts = item.get("parts")
    text = content_text(parts if parts is not None else first(item, "content", "contents",
                                                                  "text"))
    calls = [tool_request(call) for call in item.get("tool_calls") or []]
    calls += [tool_request(part) for part in parts or []
              if isinstance(part, Mapping) and part.get("type") == "tool_call"]
    responses = [(text_of(part.get("id")), result_of(first(part, "response", "result")))
                 for part in parts or []
                 if isinstance(part, Mapping) and part.get("type") == "tool_call_response"]
    if role == "tool" and item.get("tool_call_id") is not None:
        responses.append((text_of(item["tool_call_id"]), result_of(item.get("content"))))
    return Message(role=role, text=text, calls=tuple(c for c in calls if c),
                    responses=tuple(responses))


def messages_of(value: Any, default_role: str) -> list[Message]:
    """The messages in a message list, one message, a LangChain generation list, or text."""
    value = parsed(value)
    if isinstance(value, str):
        return [Message(role=default_role, text=value)] if value.strip() else []
    if isinstance(value, Mapping):
        for key in ("messages", "generations", "choices"):
            if isinstance(value.get(key), list):
                return messages_of(value[key], default_role)
        message = message_of(value, default_role)
        return [message] if message.text or message.calls or message.responses else []
    found: list[Message] = []
    if isinstance(value, list):
        for item in value:
            if isinstance(item, list | str | Mapping):
                found.extend(messages_of(item, default_role))
    return found


def last_text(messages: Iterable[Message], role: str) -> str | None:
    texts = [m.text for m in messages if m.role == role and m.text.strip()]
    return texts[-1] if texts else None


def input_value(value: Any) -> Any:
    """The workflow's input: a mapping as recorded, with a chat turn or plain text read as
    ``{message: text}``, the convention of the case files."""
    value = parsed(value)
    if isinstance(value, str):
        return {"message": value} if value.strip() else None
    if isinstance(value, list):
        text = last_text(messages_of(value, "user"), "user")
        return {"message": text} if text else None
    if not isinstance(value, Mapping) or not value:
        return None
    if isinstance(value.get("messages"), list):
        rest = {key: item for key, item in value.items() if key != "messages"}
        text = last_text(messages_of(value["messages"], "user"), "user")
        return {**rest, "message": text} if text else (rest or None)
    if len(value) == 1:
        ((key, item),) = value.items()
        if key in _INPUT_TEXT_KEYS and isinstance(item, str):
            return {"message": item}
    return dict(value)


def output_text(value: Any) -> str | None:
    """The answer in a recorded output: text, a message (list), or a mapping holding one."""
    value = parsed(value)
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, Mapping):
        for key in _TEXT_KEYS:
            text = output_text(value[key]) if key in value else None
            if text:
                return text
    messages = messages_of(value, "assistant")
    return last_text(messages, "assistant")


# --- sources and approvals ------------------------------------------------------------------------


def source_of(doc: Any) -> dict[str, str] | None:
    """A retrieved document as a case source: id, title, url, updated_at (those it has)."""
    doc = parsed(doc)
    if isinstance(doc, Mapping) and isinstance(doc.get("document"), Mapping):
        doc = doc["document"]  # OpenInference
    if not isinstance(doc, Mapping):
        return None
    metadata = parsed(doc.get("metadata"))
    fields = dict(metadata) if isinstance(metadata, Mapping) else {}
    fields.update({key: value for key, value in doc.items() if value is not None})
    url = text_of(first(fields, "url", "uri", "link", "href", "source"))
    title = text_of(first(fields, "title", "name"))
    source = {
        "id": text_of(first(fields, "id", "document_id", "doc_id", "source_id")) or url or title,
        "title": title,
        "url": url,
        "updated_at": text_of(first(fields, "updated_at", "updatedAt", "last_updated",
                                   "lastUpdated", "last_modified", "lastModified",
                                   "modified_at", "modified", "last_crawled",
                                   "lastCrawled")),
    }
    if source["id"] is None:
        return None
    return {key: value for key, value in source.items() if value is not None}


def documents_of(value: Any) -> list[dict[str, str]]:
    value = parsed(value)
    if isinstance(value, Mapping):
        value = first(value, "documents", "docs", "results", "output")
        value = parsed(value)
    if not isinstance(value, list):
        return []
    return [source for source in map(source_of, value) if source]


def status_of(value: Any) -> str | None:
    if isinstance(value, bool):
        return "approved" if value else "rejected"
    text = text_of(value)
    if text is None:
        return None
    word = text.casefold()
    if word in _APPROVED:
        return "approved"
    if word in _REJECTED:
        return "rejected"
    return word


def step_in_name(name: str | None) -> str | None:
    """The step an approval span names after a colon (``human-approval:
    refund_over_threshold``), when it reads as one."""
    if not name or ":" not in name:
        return None
    return slug(name.rsplit(":", 1)[1])


def approval_of(parts: Iterable[Any], *, at: dt.datetime | None,
                name: str | None = None) -> dict[str, str]:
    """An approval record from the mappings that describe it (arguments, metadata, result);
    later parts win. A plain-text part may be the decision ("approved"); the step not given in
    any part is the one the span's ``name`` carries, else :data:`DEFAULT_STEP`."""
    fields: dict[str, Any] = {}
    decision = None
    for part in parts:
        part = parsed(part)
        if isinstance(part, Mapping):
            values = {key: parsed(value) for key, value in part.items()}
            fields.update({key.rsplit(".", 1)[-1].casefold(): value
                           for key, value in flatten(values).items()})
        elif text_of(part):
            decision = part
    approval = {
        "step": text_of(first(fields, "step", "approval_step", "gate")) or step_in_name(name)
        or DEFAULT_STEP,
        "approver": text_of(first(fields, "approver", "approved_by", "reviewer", "decided_by",
                                 "rejected_by")),
        "role": text_of(first(fields, "role", "approver_role", "reviewer_role")),
        "status": status_of(first(fields, "status", "decision", "outcome")) or status_of(decision)
        or "pending",
        "at": iso(time_of(first(fields, "at", "decided_at", "approved_at", "rejected_at",
                                "timestamp"))) or iso(at),
    }
    return {key: value for key, value in approval.items() if value is not None}


# --- collecting evidence --------------------------------------------------------------------------


Key = tuple[dt.datetime | None, int]
"""Where a step sorts: its start time, then the order it was found in."""


@dataclass
class Trace:
    """What a parser found in one trace, in the order it found it; :meth:`finish` builds the
    evidence.

    ``shows`` names what the trace holds a sign of (``tools``, ``retrieval``, ``approvals``):
    a field the trace shows no sign of is recorded as empty (the workflow did none of it), and
    only a field it shows a sign of, yet holds nothing for, is missing."""

    input: Any = None
    output: str | None = None
    workflow: str | None = None
    trace_id: str | None = None
    convention: str | None = None
    tools: list[tuple[Key, dict[str, Any]]] = field(default_factory=list)
    requested: list[tuple[Key, str | None, dict[str, Any]]] = field(default_factory=list)
    responses: dict[str, Any] = field(default_factory=dict)
    executed: dict[str, tuple[Key, Any]] = field(default_factory=dict)
    """Requested calls run by something other than a tool span (an approval step), by id."""
    sources: list[tuple[Key, dict[str, str]]] = field(default_factory=list)
    decisions: list[tuple[Key, dict[str, str]]] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    prompt_versions: list[str] = field(default_factory=list)
    answers: list[tuple[Key, str]] = field(default_factory=list)
    user_turns: list[tuple[Key, str]] = field(default_factory=list)
    moments: list[dt.datetime] = field(default_factory=list)
    annotations: dict[str, dict[str, Any]] = field(default_factory=dict)
    shows: set[str] = field(default_factory=set)
    seen: int = 0

    def key(self, start: dt.datetime | None) -> Key:
        """A sort key: the start time, then the order of discovery."""
        self.seen += 1
        return (start, self.seen)

    def add_span_times(self, start: dt.datetime | None, end: dt.datetime | None) -> None:
        self.moments.extend(moment for moment in (start, end) if moment is not None)

    def add_tool(self, key: Key, name: str, args: Any, result: Any, *,
                 call_id: str | None = None) -> None:
        """A tool the workflow ran (a tool span, run or observation), at its start time."""
        self.shows.add("tools")
        call: dict[str, Any] = {"name": name, "args": args_of(args), "result": result_of(result)}
        if call_id is not None:
            call["id"] = call_id
        self.tools.append((key, call))

    def add_sources(self, key: Key, found: Iterable[dict[str, str]]) -> None:
        self.shows.add("retrieval")
        self.sources.extend((key, source) for source in found)

    def add_decision(self, key: Key, decision: dict[str, str],
                     call_id: str | None = None, result: Any = None) -> None:
        """An approval step's decision; ``call_id`` when it ran a call the model requested."""
        self.shows.add("approvals")
        self.decisions.append((key, decision))
        if call_id is not None:
            self.executed[call_id] = (key, result)

    def add_tool_definitions(self, definitions: Any) -> None:
        """Tools the model was offered (OpenAI, Anthropic or MCP shapes): their MCP
        annotations (``readOnlyHint``, ``destructiveHint``), by name."""
        for item in definitions if isinstance(definitions, list) else [definitions]:
            item = parsed(item)
            if not isinstance(item, Mapping):
                continue
            function = item.get("function")
            if not isinstance(function, Mapping):
                function = item
            name = text_of(function.get("name"))
            hints = parsed(first(function, "annotations") or first(item, "annotations"))
            if name and isinstance(hints, Mapping) and hints:
                self.annotations[name] = dict(hints)

    def add_model(self, model: Any, provider: Any = None) -> None:
        name = text_of(model)
        if name is None:
            return
        vendor = text_of(provider)
        route = f"{vendor}/{name}" if vendor and "/" not in name else name
        if route not in self.models:
            self.models.append(route)

    def add_prompt_versions(self, fields: Mapping[str, Any]) -> None:
        for version in prompt_versions(fields):
            self.add_prompt_version(version)

    def add_prompt_version(self, version: str) -> None:
        if version not in self.prompt_versions:
            self.prompt_versions.append(version)

    def add_llm(self, key: Key, inputs: list[Message], outputs: list[Message]) -> None:
        """An LLM call: the user's turn, the answer, the tool calls it asked for and the tool
        results it was given."""
        user = last_text(inputs, "user")
        if user:
            self.user_turns.append((key, user))
        for message in inputs:
            for call_id, result in message.responses:
                if call_id is not None:
                    self.responses[call_id] = result
        for message in outputs:
            for call_id, name, args in message.calls:
                self.shows.add("tools")
                self.requested.append((key, call_id, {"name": name, "args": args}))
        answer = last_text(outputs, "assistant")
        if answer:
            self.answers.append((key, answer))

    def _calls(self) -> list[tuple[Key, dict[str, Any]]]:
        """The calls the workflow made: every tool it ran, and the calls the model requested
        that no tool span recorded but something ran (an approval step), or all requested
        calls, with the results it was given, when the trace has no tool spans at all."""
        ran = {call.get("id") for _, call in self.tools if call.get("id")}
        calls = list(self.tools)
        for key, call_id, call in self.requested:
            if call_id is not None and call_id in ran:
                continue
            if call_id is not None and call_id in self.executed:
                at, result = self.executed[call_id]
                calls.append((at, {**call, "id": call_id, "result": result_of(result)}))
            elif not self.tools:
                result = self.responses.get(call_id) if call_id else None
                calls.append((key, {**call, "result": result, "asked": True}))
        return calls

    def finish(self, path: Path, fmt: str) -> ImportedTrace:
        calls = ordered(self._calls())
        tool_calls = []
        for key, call in calls:
            shown: dict[str, Any] = {"name": call["name"], "args": call["args"],
                                     "result": call["result"]}
            if key[0] is not None and not call.get("asked"):
                # when it ran; a call known only from the model's request has no time of its own
                shown["at"] = iso(key[0])
            if call["name"] in self.annotations:
                shown["annotations"] = self.annotations[call["name"]]
            tool_calls.append(shown)
        decided = {decision["step"] for _, decision in self.decisions}
        requests = [(key, approval_of([call["args"], call["result"]], at=None))
                    for key, call in calls if APPROVAL_NAME.search(call["name"])]
        approvals = [decision for _, decision in ordered(
            self.decisions + [(k, a) for k, a in requests if a["step"] not in decided])]
        sources: dict[str, dict[str, str]] = {}
        for _, found in ordered(self.sources):
            sources.setdefault(found["id"], found)
        user_turns = ordered(self.user_turns)
        answers = ordered(self.answers)
        found_fields: dict[str, Any] = {
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
        signs = {"sources": "retrieval", "tool_calls": "tools", "approvals": "approvals"}
        if requests:
            self.shows.add("approvals")
        evidence: dict[str, Any] = {}
        missing = []
        for name in EVIDENCE_FIELDS:
            value = found_fields[name]
            if value:
                evidence[name] = value
            elif name in signs and signs[name] not in self.shows:
                evidence[name] = []  # no sign of any: the workflow did none
            else:
                missing.append(name)
        evidence["missing"] = missing
        return ImportedTrace(
            path=path, format=fmt, evidence=evidence,
            started_at=iso(min(self.moments)) if self.moments else None,
            ended_at=iso(max(self.moments)) if self.moments else None,
            workflow=self.workflow, trace_id=self.trace_id, convention=self.convention,
        )


def ordered(items: list[tuple[Key, Any]]) -> list[tuple[Key, Any]]:
    """``(key, item)`` pairs in time order when every one has a time, else in the order they
    were found (keys from :meth:`Trace.key`)."""
    if all(key[0] is not None for key, _ in items):
        return sorted(items, key=lambda pair: pair[0])
    return sorted(items, key=lambda pair: pair[0][1])


# --- spans (OpenTelemetry and OpenInference) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    at: dt.datetime | None
    attributes: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Span:
    where: str
    name: str
    kind: str
    trace_id: str | None
    span_id: str | None
    parent_id: str | None
    start: dt.datetime | None
    end: dt.datetime | None
    attributes: Mapping[str, Any]
    events: tuple[Event, ...] = ()
    resource: Mapping[str, Any] = field(default_factory=dict)
    scope: str = ""
    """The instrumentation scope's name and version (``openinference.instrumentation.langchain
    0.1.46``), where the transport says."""
    schema_url: str = ""
    """The semantic conventions' schema URL (``https://opentelemetry.io/schemas/1.37.0``)."""


def mapping(value: Any, path: Path, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        problem = f"expected a mapping, found {type(value).__name__}"
        raise InputError(problem, path=path, field=where)
    return value


def items_of(value: Any, path: Path, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        problem = f"expected a list, found {type(value).__name__}"
        raise InputError(problem, path=path, field=where)
    return value


