"""OpenTelemetry GenAI spans (the ``gen_ai.*`` semantic conventions) -> case evidence.

Read by operation (``gen_ai.operation.name``): ``chat`` / ``text_completion`` /
``generate_content`` / ``invoke_agent`` spans hold messages (``gen_ai.input.messages`` and
``gen_ai.output.messages``, JSON in the parts format of 1.36 and later; before that
``gen_ai.prompt`` / ``gen_ai.completion`` as JSON, as ``gen_ai.prompt.N.*`` attributes or on
``gen_ai.content.*`` events), the model (``gen_ai.response.model``, else
``gen_ai.request.model``) and its provider (``gen_ai.provider.name``, else ``gen_ai.system``);
``execute_tool`` spans a tool call (``gen_ai.tool.name``, ``gen_ai.tool.call.id``,
``gen_ai.tool.call.arguments``, ``gen_ai.tool.call.result``; a ``datastore`` tool's result is
also read as sources); ``retrieval`` spans their documents (``gen_ai.retrieval.documents``);
``gen_ai.tool.definitions`` the tools' MCP annotations. The conventions' version is the schema
URL the spans carry (``https://opentelemetry.io/schemas/1.37.0``), or what their attributes show.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from harness.intake.traces.common import (
    APPROVAL_NAME,
    Event,
    Message,
    Span,
    Trace,
    approval_of,
    documents_of,
    first,
    input_value,
    last_text,
    messages_of,
    nested,
    slug,
    text_of,
)
from harness.intake.traces.spans import root_of

NAME = "OpenTelemetry GenAI semantic conventions"
RETRIEVAL = ("retrieval", "retrieve")


def detect(spans: Iterable[Span]) -> bool:
    """Whether spans follow the GenAI conventions: an attribute under ``gen_ai.``."""
    return any(key.startswith("gen_ai.") for span in spans for key in span.attributes)


def convention(spans: list[Span]) -> str:
    """Which GenAI conventions the spans follow, as exactly as they say."""
    urls = sorted({span.schema_url for span in spans if span.schema_url})
    if urls:
        versions = [url.rstrip("/").rsplit("/", 1)[-1] for url in urls]
        return f"{NAME} {', '.join(versions)} (schema URL {', '.join(urls)})"
    if any("gen_ai.input.messages" in span.attributes or "gen_ai.output.messages"
           in span.attributes for span in spans):
        return f"{NAME}, 1.36 or later (gen_ai.input.messages; no schema URL)"
    return f"{NAME}, before 1.36 (gen_ai.prompt / gen_ai.completion; no schema URL)"


MESSAGE_EVENTS = {"gen_ai.system.message": "system", "gen_ai.user.message": "user",
                  "gen_ai.assistant.message": "assistant", "gen_ai.tool.message": "tool"}
"""Span events of the event-based conventions (1.28 to 1.35): one message each."""


def _event_messages(events: Iterable[Event], *, inputs: bool) -> list[Message]:
    """Messages recorded as events: ``gen_ai.<role>.message`` events are the input,
    ``gen_ai.choice`` events the output (their ``message``, or ``content``)."""
    found = []
    for event in events:
        attrs = event.attributes
        if inputs and event.name in MESSAGE_EVENTS:
            item = {"role": MESSAGE_EVENTS[event.name], **{
                key.removeprefix("gen_ai."): value for key, value in attrs.items()}}
            found += messages_of(item, MESSAGE_EVENTS[event.name])
        elif not inputs and event.name == "gen_ai.choice":
            message = first(attrs, "message", "gen_ai.choice.message")
            found += messages_of(message if message is not None else
                                 {"role": "assistant", "content": attrs.get("content")},
                                 "assistant")
    return found


def _messages(attrs: Mapping[str, Any], events: Iterable[Event], new: str, old: str,
              role: str) -> list[Message]:
    """Messages from ``gen_ai.input.messages`` (on the span, or on a
    ``gen_ai.client.inference.operation.details`` event), else the older ``gen_ai.prompt`` (as
    JSON, as ``gen_ai.prompt.N.content`` attributes, or on a ``gen_ai.content.prompt`` event),
    else the event-based conventions' message and choice events."""
    events = list(events)
    if new in attrs:
        return messages_of(attrs[new], role)
    if old in attrs:
        return messages_of(attrs[old], role)
    indexed = nested(attrs, old)
    if indexed:
        return messages_of(indexed, role)
    for event in events:
        for name in (new, old):
            if name in event.attributes:
                return messages_of(event.attributes[name], role)
    return _event_messages(events, inputs=role != "assistant")


def parse(spans: list[Span], trace: Trace) -> None:
    """Collect one trace's spans into ``trace``."""
    root = root_of(spans)
    trace.convention = convention(spans)
    trace.workflow = slug(spans[0].resource.get("service.name")) or slug(
        first(spans[0].attributes, "gen_ai.agent.name"))
    for span in sorted(spans, key=lambda s: (s.start is None, s.start or dt.datetime.min)):
        attrs = span.attributes
        key = trace.key(span.start)
        trace.add_span_times(span.start, span.end)
        trace.add_prompt_versions(span.resource)
        trace.add_prompt_versions(attrs)
        trace.add_tool_definitions(attrs.get("gen_ai.tool.definitions"))
        operation = text_of(attrs.get("gen_ai.operation.name")) or ""
        if operation == "execute_tool" or "gen_ai.tool.name" in attrs:
            name = text_of(attrs.get("gen_ai.tool.name")) or span.name.removeprefix(
                "execute_tool ")
            trace.add_tool(key, name, attrs.get("gen_ai.tool.call.arguments"),
                           attrs.get("gen_ai.tool.call.result"),
                           call_id=text_of(attrs.get("gen_ai.tool.call.id")))
            if text_of(attrs.get("gen_ai.tool.type")) == "datastore":
                trace.add_sources(key, documents_of(attrs.get("gen_ai.tool.call.result")))
        elif operation in RETRIEVAL or "gen_ai.retrieval.documents" in attrs:
            trace.add_sources(key, documents_of(attrs.get("gen_ai.retrieval.documents")))
        elif span is not root and APPROVAL_NAME.search(span.name):
            trace.add_decision(key, approval_of([attrs], at=span.end or span.start,
                                                name=span.name))
        else:
            inputs = _messages(attrs, span.events, "gen_ai.input.messages", "gen_ai.prompt",
                               "user")
            outputs = _messages(attrs, span.events, "gen_ai.output.messages",
                                "gen_ai.completion", "assistant")
            trace.add_model(first(attrs, "gen_ai.response.model", "gen_ai.request.model"),
                            first(attrs, "gen_ai.provider.name", "gen_ai.system"))
            trace.add_llm(key, inputs, outputs)
            if span is root:
                trace.input = input_value(last_text(inputs, "user"))
                trace.output = last_text(outputs, "assistant")
        for event in span.events:
            if APPROVAL_NAME.search(event.name):
                trace.add_decision(trace.key(event.at or span.start),
                                   approval_of([event.attributes], at=event.at, name=event.name))
