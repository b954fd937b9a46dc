"""Logged traces of an AI workflow -> the ``evidence`` of incident cases.

An incident usually starts from one conversation that went wrong, and the record of what the
workflow did in it is a trace in the observability tool of the day. A trace file is recognised
by its content, whatever transport brought it (:mod:`.spans`), and each trace in it is read as a
case's ``evidence`` (input, prompt version, model route, sources, tool calls in time order with
when each ran, approvals, output) by the module of its format, each with ``detect`` and
``parse``:

* ``otel`` (:mod:`.otel`): OpenTelemetry GenAI spans, as OTLP JSON, OTLP protobuf or a span list;
* ``openinference`` (:mod:`.openinference`): OpenInference spans, on the same transports;
* ``langsmith`` (:mod:`.langsmith`): LangSmith run trees, run lists and run exports;
* ``langfuse`` (:mod:`.langfuse`): Langfuse traces with their observations.

A file may hold many traces (a JSON Lines export, an OTLP batch, an API page): each is
imported, or the one ``trace_id`` names. A file whose content none of the formats maps fails
loudly, naming what was looked for and what was found.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from harness.errors import InputError
from harness.files import read_bytes
from harness.intake.traces import langfuse, langsmith, openinference, otel, spans
from harness.intake.traces.common import (
    APPROVAL_NAME,
    DEFAULT_STEP,
    FORMAT_NAMES,
    FORMATS,
    MAX_TRACE_BYTES,
    ImportedTrace,
    Span,
    Trace,
)
from harness.intake.traces.otlp import ProtobufError, decode_traces, looks_like_protobuf
from harness.registry import Registry

__all__ = ["APPROVAL_NAME", "DEFAULT_STEP", "FORMATS", "FORMAT_NAMES", "ImportedTrace", "Span",
           "detect_format", "import_spans", "import_trace", "import_traces", "read_trace_file"]

FORMAT_MODULES: Registry[ModuleType] = Registry("trace format")
"""Each format's module, with its ``detect`` and ``parse``."""
FORMAT_MODULES.add("otel", otel)
FORMAT_MODULES.add("openinference", openinference)
FORMAT_MODULES.add("langsmith", langsmith)
FORMAT_MODULES.add("langfuse", langfuse)
SPAN_FORMATS = ("openinference", "otel")
"""The formats read from spans, in the order they are recognised: OpenInference spans may
carry OpenTelemetry GenAI attributes too, never the reverse."""


# --- reading the file ---------------------------------------------------------------------------


def read_trace_file(path: Path) -> Any:
    """A trace file's content: OTLP protobuf read as the OTLP JSON it stands for, a JSON
    document, or the items of a JSON Lines file (one JSON value a line; JSON Lines of OTLP
    requests read as one request with all their ``resourceSpans``)."""
    data = read_bytes(path, limit=MAX_TRACE_BYTES, kind="a trace file")
    if looks_like_protobuf(data):
        try:
            return decode_traces(data)
        except ProtobufError as exc:
            raise InputError(f"not an OTLP protobuf trace export: {exc}", path=path) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        problem = (f"neither JSON text nor OTLP protobuf: byte {exc.start} is not UTF-8, and "
                   f"the file does not start like an OTLP protobuf export")
        raise InputError(problem, path=path) from None
    if not text.strip():
        raise InputError("file is empty; expected a trace export", path=path, line=1)
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
    if items and all(isinstance(item, Mapping) and "resourceSpans" in item for item in items):
        return {"resourceSpans": [rs for item in items for rs in item["resourceSpans"] or []]}
    return items


# --- recognising it ------------------------------------------------------------------------


def _spans(data: Any, path: Path) -> list[Span] | None:
    if isinstance(data, Mapping) and "resourceSpans" in data:
        return spans.otlp_spans(data, path)
    if spans.is_span_list(data):
        return spans.flat_spans(data, path)
    return None


def _span_format(found: list[Span], path: Path) -> str:
    if not found:
        raise InputError("no spans found; expected the spans of at least one trace", path=path)
    for name in SPAN_FORMATS:
        if FORMAT_MODULES[name].detect(found):
            return name
    problem = (f"{len(found)} span(s) found, but none carries OpenInference attributes "
               f"(openinference.span.kind) or OpenTelemetry GenAI attributes (gen_ai.*): "
               f"nothing to read as evidence (name the format with --format "
               f"{'|'.join(FORMATS)} if the attributes are under other names)")
    raise InputError(problem, path=path)


def _found(data: Any) -> str:
    if isinstance(data, Mapping):
        return f"a mapping with keys {', '.join(map(str, list(data)[:8]))}"
    if isinstance(data, list):
        mappings = [item for item in data if isinstance(item, Mapping)]
        return f"a list of {len(data)} item(s)" + (
            f" with keys {', '.join(map(str, list(mappings[0])[:8]))}" if mappings else "")
    return type(data).__name__


def detect_format(data: Any, path: Path) -> str:
    """Which of :data:`FORMATS` a trace file's content is, from what it holds."""
    found = _spans(data, path)
    if found is not None:
        return _span_format(found, path)
    for name in ("langsmith", "langfuse"):
        if FORMAT_MODULES[name].detect(data):
            return name
    problem = (f"unknown trace format: looked for OTLP spans (resourceSpans, JSON or protobuf), "
               f"a span list, LangSmith runs (run_type) and Langfuse traces (observations); "
               f"found {_found(data)} (name the format with --format {'|'.join(FORMATS)})")
    raise InputError(problem, path=path)


# --- importing -----------------------------------------------------------------------------


def _collect(chosen: str, data: Any, path: Path) -> list[Trace]:
    collected = []
    if chosen in SPAN_FORMATS:
        found = _spans(data, path)
        if found is None:
            problem = (f"expected {FORMAT_NAMES[chosen]} (OTLP JSON or protobuf, or a span "
                       f"list); found {_found(data)}")
            raise InputError(problem, path=path, field="format")
        for trace_id, group in spans.by_trace(found, path).items():
            trace = Trace(trace_id=trace_id or None)
            FORMAT_MODULES[chosen].parse(group, trace)
            collected.append(trace)
    elif chosen == "langsmith":
        if not langsmith.detect(data):
            raise InputError(f"expected LangSmith runs; found {_found(data)}", path=path,
                             field="format")
        for trace_id, runs in langsmith.traces(data, path):
            trace = Trace(trace_id=trace_id or None)
            langsmith.parse(runs, trace)
            collected.append(trace)
    else:
        if not langfuse.detect(data):
            raise InputError(f"expected Langfuse traces; found {_found(data)}", path=path,
                             field="format")
        for trace_id, item in langfuse.traces(data, path):
            trace = Trace(trace_id=trace_id or None)
            langfuse.parse(item, trace, path)
            collected.append(trace)
    return collected


def import_traces(path: Path, *, format: str | None = None,
                  trace_id: str | None = None) -> list[ImportedTrace]:
    """Every trace of a trace file, in file order (only the one ``trace_id`` names, when
    given). The format is recognised from the content unless ``format`` names it.

    Every problem (unreadable, not JSON nor protobuf, unknown format, no spans, spans no format
    maps, no such trace) raises :class:`InputError` naming the file and, where there is one,
    the line.
    """
    data = read_trace_file(path)
    if format is None:
        chosen = detect_format(data, path)
    elif format in FORMATS:
        chosen = format
    else:
        problem = f"unknown trace format {format!r}; expected one of {', '.join(FORMATS)}"
        raise InputError(problem, path=path, field="format")
    collected = _collect(chosen, data, path)
    if trace_id is not None:
        collected = [trace for trace in collected if trace.trace_id == trace_id]
        if not collected:
            ids = ", ".join(t.trace_id or "?" for t in _collect(chosen, data, path)[:5])
            raise InputError(f"no trace {trace_id!r} in the file (traces: {ids})", path=path,
                             field="trace_id")
    return [trace.finish(path, chosen) for trace in collected]


def import_spans(found: list[Span], where: Path) -> ImportedTrace:
    """The spans of one trace, received rather than read from a file (a run's ``trace: otlp``
    target), read as evidence by the format their attributes show, as :func:`import_traces`
    reads a file's. Spans no format maps raise :class:`InputError` naming what was looked
    for."""
    chosen = _span_format(found, where)
    trace = Trace(trace_id=found[0].trace_id if found else None)
    FORMAT_MODULES[chosen].parse(found, trace)
    return trace.finish(where, chosen)


def import_trace(path: Path, *, format: str | None = None) -> ImportedTrace:
    """The one trace of a trace file; a file of several is an error naming them."""
    found = import_traces(path, format=format)
    if len(found) > 1:
        ids = ", ".join(trace.trace_id or "?" for trace in found[:3])
        more = ", ..." if len(found) > 3 else ""
        problem = (f"the file holds {len(found)} traces ({ids}{more}); choose one with "
                   f"--trace-id, or draft them all")
        raise InputError(problem, path=path)
    return found[0]
