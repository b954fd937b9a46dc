"""The transports spans arrive by, read into :class:`~harness.intake.traces.common.Span`s.

OpenTelemetry GenAI and OpenInference spans are both OpenTelemetry spans; what tells them
apart is their attributes (:mod:`~harness.intake.traces.otel`,
:mod:`~harness.intake.traces.openinference`), not how they were sent. Either may come as:

- **OTLP JSON**: ``{"resourceSpans": [...]}``, one request or JSON Lines of them (a collector's
  file exporter writes batches, so one trace may be spread over several lines);
- **OTLP protobuf**: the binary ``ExportTraceServiceRequest`` (:mod:`.otlp`), read here as the
  OTLP JSON it stands for;
- **a flat span list**: what Phoenix and OpenInference exporters write, ``[{name, context,
  attributes, ...}]`` or ``{"data": [...]}`` / ``{"spans": [...]}``, attributes flat
  (``llm.input_messages.0.message.role``) or nested.

A file may hold the spans of several traces: :func:`by_trace` groups them, in the order their
traces first appear.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.errors import InputError
from harness.intake.traces.common import (
    Event,
    Span,
    first,
    flatten,
    items_of,
    mapping,
    mapping_at,
    text_of,
    time_of,
)

_OTLP_VALUES = (("stringValue", "string_value", str), ("boolValue", "bool_value", bool),
                ("intValue", "int_value", int), ("doubleValue", "double_value", float),
                ("bytesValue", "bytes_value", str))


def otlp_value(value: Any) -> Any:
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
    array = first(value, "arrayValue", "array_value")
    if isinstance(array, Mapping):
        return [otlp_value(item) for item in array.get("values") or []]
    kvlist = first(value, "kvlistValue", "kvlist_value")
    if isinstance(kvlist, Mapping):
        return otlp_attributes(kvlist.get("values"))
    return None


def otlp_attributes(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):  # some exporters write a plain mapping
        return dict(value)
    return {str(item["key"]): otlp_value(item.get("value"))
            for item in value or [] if isinstance(item, Mapping) and "key" in item}


def _scope_label(scope: Any) -> str:
    if not isinstance(scope, Mapping):
        return ""
    return " ".join(part for part in (text_of(scope.get("name")), text_of(scope.get("version")))
                    if part)


def otlp_spans(data: Any, path: Path) -> list[Span]:
    """The spans of an OTLP JSON request (``resourceSpans``)."""
    batches = items_of(mapping(data, path, "(top level)").get("resourceSpans"), path,
                       "resourceSpans")
    spans = []
    for i, batch in enumerate(batches):
        where = f"resourceSpans[{i}]"
        batch = mapping(batch, path, where)
        resource = otlp_attributes((batch.get("resource") or {}).get("attributes"))
        resource_schema = text_of(batch.get("schemaUrl")) or ""
        scopes = first(batch, "scopeSpans", "instrumentationLibrarySpans") or []
        for j, scope in enumerate(items_of(scopes, path, f"{where}.scopeSpans")):
            scope_where = f"{where}.scopeSpans[{j}]"
            scope = mapping(scope, path, scope_where)
            label = _scope_label(first(scope, "scope", "instrumentationLibrary"))
            schema = text_of(scope.get("schemaUrl")) or resource_schema
            for k, raw in enumerate(items_of(scope.get("spans"), path, f"{scope_where}.spans")):
                span_where = f"{scope_where}.spans[{k}]"
                raw = mapping(raw, path, span_where)
                events = tuple(
                    Event(name=str(event.get("name", "")), at=time_of(event.get("timeUnixNano")),
                          attributes=otlp_attributes(event.get("attributes")))
                    for event in items_of(raw.get("events"), path, f"{span_where}.events")
                    if isinstance(event, Mapping)
                )
                attributes = otlp_attributes(raw.get("attributes"))
                spans.append(Span(
                    where=span_where, name=str(raw.get("name", "")),
                    kind=str(attributes.get("openinference.span.kind") or "").upper(),
                    trace_id=text_of(raw.get("traceId")), span_id=text_of(raw.get("spanId")),
                    parent_id=text_of(raw.get("parentSpanId")),
                    start=time_of(raw.get("startTimeUnixNano")),
                    end=time_of(raw.get("endTimeUnixNano")),
                    attributes=attributes, events=events, resource=resource, scope=label,
                    schema_url=schema,
                ))
    return spans


def is_span_list(data: Any) -> bool:
    """Whether a parsed file is a flat list of spans (or ``{data|spans: [...]}`` of them)."""
    items = _list_of(data)
    if not items:
        return False
    return any(isinstance(item, Mapping) and (
        "span_kind" in item or isinstance(item.get("context"), Mapping)
        or ("span_id" in item and "attributes" in item)) for item in items)


def _list_of(data: Any) -> list[Any] | None:
    if isinstance(data, list):
        return data
    if isinstance(data, Mapping):
        for key in ("data", "spans"):
            if isinstance(data.get(key), list):
                return list(data[key])
    return None


def flat_spans(data: Any, path: Path) -> list[Span]:
    """The spans of a flat span list (OpenInference and Phoenix exports)."""
    if isinstance(data, Mapping):
        key = "data" if isinstance(data.get("data"), list) else "spans"
        items, prefix = items_of(data.get(key), path, key), key
    else:
        items, prefix = items_of(data, path, "(top level)"), ""
    spans = []
    for index, raw in enumerate(items):
        where = f"{prefix}[{index}]"
        raw = mapping(raw, path, where)
        context = mapping_at(raw, "context")
        attributes = flatten(mapping(raw.get("attributes") or {}, path, f"{where}.attributes"))
        events = tuple(
            Event(name=str(event.get("name", "")), at=time_of(event.get("timestamp")),
                  attributes=flatten(event.get("attributes") or {}))
            for event in items_of(raw.get("events"), path, f"{where}.events")
            if isinstance(event, Mapping)
        )
        spans.append(Span(
            where=where, name=str(raw.get("name", "")),
            kind=str(raw.get("span_kind") or attributes.get("openinference.span.kind") or "")
            .upper(),
            trace_id=text_of(first(context, "trace_id") or raw.get("trace_id")),
            span_id=text_of(first(context, "span_id") or raw.get("span_id")),
            parent_id=text_of(first(raw, "parent_id", "parent_span_id")),
            start=time_of(raw.get("start_time")), end=time_of(raw.get("end_time")),
            attributes=attributes, events=events,
        ))
    return spans


def by_trace(spans: list[Span], path: Path) -> dict[str, list[Span]]:
    """The spans grouped by trace id, in the order the traces first appear (spans without an
    id belong to the file's one trace, named ``""``)."""
    if not spans:
        raise InputError("no spans found; expected the spans of at least one trace", path=path)
    groups: dict[str, list[Span]] = {}
    for span in spans:
        groups.setdefault(span.trace_id or "", []).append(span)
    if "" in groups and len(groups) > 1:  # id-less spans among identified ones: the first
        first_id = next(key for key in groups if key)
        groups[first_id] = groups.pop("") + groups[first_id]
    return groups


def root_of(spans: list[Span]) -> Span | None:
    """A trace's root span, or None when the export lacks it (several spans without a parent
    in the file)."""
    ids = {span.span_id for span in spans if span.span_id}
    roots = [span for span in spans if not span.parent_id or span.parent_id not in ids]
    return roots[0] if len(roots) == 1 else None
