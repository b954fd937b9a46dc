"""OpenInference spans (Arize's semantic conventions) -> case evidence.

Read by span kind (``openinference.span.kind``): the root's ``input.value`` and
``output.value`` are the workflow's input and answer; ``LLM`` spans hold messages
(``llm.input_messages.N.message.*``, ``llm.output_messages.N.message.*`` with their
``tool_calls``), the model (``llm.model_name``, ``llm.provider`` / ``llm.system``) and the tools
offered (``llm.tools.N.tool.json_schema``, whose MCP annotations are kept); ``TOOL`` spans a tool
call (``tool.name``; arguments from ``tool_call.function.arguments``, else ``input.value``,
which instrumentors often write as a Python repr); ``RETRIEVER`` spans their documents
(``retrieval.documents.N.document.*``). The prompt version is
``llm.prompt_template.version``. Spans may come over OTLP (JSON or protobuf) or as a flat list.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from harness.intake.traces.common import (
    APPROVAL_NAME,
    Message,
    Span,
    Trace,
    approval_of,
    documents_of,
    first,
    input_value,
    messages_of,
    nested,
    output_text,
    parsed,
    slug,
    text_of,
)
from harness.intake.traces.spans import root_of

NAME = "OpenInference semantic conventions"
KIND = "openinference.span.kind"


def detect(spans: Iterable[Span]) -> bool:
    """Whether spans follow OpenInference: a span kind of its own."""
    return any(span.kind or KIND in span.attributes for span in spans)


def convention(spans: list[Span]) -> str:
    """The conventions, with the instrumentation that wrote the spans when the transport
    names it (``openinference.instrumentation.langchain 0.1.46``)."""
    scopes = sorted({span.scope for span in spans if span.scope})
    return f"{NAME} ({', '.join(scopes)})" if scopes else NAME


def _messages(attrs: Mapping[str, Any], prefix: str, role: str) -> list[Message]:
    value = nested(attrs, prefix)
    return messages_of(value, role) if value else []


def _tool_args(attrs: Mapping[str, Any]) -> Any:
    """A tool span's arguments: ``tool_call.function.arguments``, else its input, else
    ``tool.parameters`` unless that is the tool's JSON Schema."""
    arguments = nested(attrs, "tool_call.function.arguments")
    if arguments is not None:
        return arguments
    value = parsed(attrs.get("input.value"))
    if isinstance(value, Mapping):
        return value
    parameters = parsed(attrs.get("tool.parameters"))
    if isinstance(parameters, Mapping) and not {"properties", "$schema"} & set(parameters):
        return parameters
    return value


def _call_id(attrs: Mapping[str, Any]) -> str | None:
    """The id of the call a tool span ran: ``tool_call.id``, else the ``tool_call_id`` of the
    tool message it answered with."""
    given = text_of(first(attrs, "tool_call.id", "tool.id"))
    if given:
        return given
    answer = parsed(attrs.get("output.value"))
    if isinstance(answer, Mapping) and isinstance(answer.get("kwargs"), Mapping):
        answer = answer["kwargs"]
    return text_of(answer.get("tool_call_id")) if isinstance(answer, Mapping) else None


def parse(spans: list[Span], trace: Trace) -> None:
    """Collect one trace's spans into ``trace``."""
    root = root_of(spans)
    trace.convention = convention(spans)
    if root is not None:
        trace.workflow = slug(root.resource.get("service.name")) or slug(root.name)
        trace.input = input_value(root.attributes.get("input.value"))
        trace.output = output_text(root.attributes.get("output.value"))
    for span in sorted(spans, key=lambda s: (s.start is None, s.start or dt.datetime.min)):
        attrs = span.attributes
        key = trace.key(span.start)
        trace.add_span_times(span.start, span.end)
        trace.add_prompt_versions({k: v for k, v in attrs.items() if not k.startswith(
            ("llm.input_messages", "llm.output_messages", "input.", "output."))})
        if span.kind == "LLM":
            trace.add_model(attrs.get("llm.model_name"),
                            first(attrs, "llm.provider", "llm.system"))
            tools = nested(attrs, "llm.tools")
            if isinstance(tools, list):
                trace.add_tool_definitions([first(tool.get("tool", {}), "json_schema")
                                            if isinstance(tool, Mapping) else None
                                            for tool in tools])
            trace.add_llm(key, _messages(attrs, "llm.input_messages", "user"),
                          _messages(attrs, "llm.output_messages", "assistant"))
        elif span.kind == "TOOL":
            name = text_of(first(attrs, "tool.name", "tool_call.function.name")) or span.name
            trace.add_tool(key, name, _tool_args(attrs), attrs.get("output.value"),
                           call_id=_call_id(attrs))
        elif span.kind == "RETRIEVER":
            trace.add_sources(key, documents_of(nested(attrs, "retrieval.documents") or []))
        elif span is not root and APPROVAL_NAME.search(span.name):
            metadata = parsed(attrs.get("metadata"))
            parts = [{k: v for k, v in attrs.items() if not k.startswith("metadata")},
                     metadata if isinstance(metadata, Mapping) else {},
                     parsed(attrs.get("output.value"))]
            trace.add_decision(key, approval_of(parts, at=span.end or span.start,
                                                name=span.name))
        for event in span.events:
            if APPROVAL_NAME.search(event.name):
                trace.add_decision(trace.key(event.at or span.start),
                                   approval_of([event.attributes], at=event.at, name=event.name))
