"""Langfuse traces -> case evidence.

Accepted as one trace with its ``observations`` (``GET /api/public/traces/{id}``), a list of
them, the public API's envelope ``{"data": [...], "meta": {...}}`` with each trace's full
observations embedded, or JSON Lines of traces. Observations are read by ``type``
(``GENERATION``; ``TOOL``; ``RETRIEVER``; ``SPAN`` / ``AGENT`` / ``CHAIN``), then by what their
metadata declares (``kind``, ``type``: ``tool``, ``retrieval``, ``human_approval``), then by
name (``tool:...``, ``...retriev...``, ``human-approval: <step>``). A generation's
``promptName`` and ``promptVersion`` are the prompt version (``name@version``); a document's
``last_crawled`` is when its source was last seen. A tool call links to the generation that
requested it through ``metadata.tool_call_id``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.errors import InputError
from harness.intake.traces.common import (
    APPROVAL_NAME,
    Trace,
    approval_of,
    documents_of,
    first,
    input_value,
    items_of,
    mapping,
    messages_of,
    output_text,
    parsed,
    prompt_versions,
    slug,
    text_of,
    time_of,
)

NAME = "Langfuse public API (trace with observations)"
_TOOL_PREFIX = re.compile(r"^tool[:./](.+)$", re.IGNORECASE)
_KIND_KEYS = ("type", "kind", "span_kind", "observation_type")


def _is_trace(item: Any) -> bool:
    return isinstance(item, Mapping) and isinstance(item.get("observations"), list)


def detect(data: Any) -> bool:
    """Whether a parsed file holds Langfuse traces."""
    if _is_trace(data):
        return True
    items = data.get("data") if isinstance(data, Mapping) else data
    return isinstance(items, list) and bool(items) and all(
        _is_trace(item) or (isinstance(item, Mapping) and "observations" in item)
        for item in items)


def traces(data: Any, path: Path) -> list[tuple[str, Mapping[str, Any]]]:
    """The file's traces, with their ids, in file order."""
    if _is_trace(data):
        found = [mapping(data, path, "(top level)")]
    else:
        key = "data" if isinstance(data, Mapping) else "(top level)"
        raw = items_of(data.get("data") if isinstance(data, Mapping) else data, path, key)
        found = [mapping(item, path, f"{key}[{i}]") for i, item in enumerate(raw)]
    if not found:
        raise InputError("no traces found; expected a Langfuse trace with its observations",
                         path=path)
    return [(text_of(item.get("id")) or "", item) for item in found]


def _kind(observation: Mapping[str, Any], metadata: Mapping[str, Any]) -> str:
    """generation, tool, retrieval, approval or other: by type, then metadata, then name."""
    kind = str(observation.get("type") or "").casefold()
    declared = {str(metadata.get(key) or "").casefold() for key in _KIND_KEYS}
    name = str(observation.get("name") or "")
    if kind == "generation":
        return "generation"
    if any(APPROVAL_NAME.search(value) for value in declared if value):
        return "approval"
    if kind == "tool" or "tool" in declared or _TOOL_PREFIX.match(name):
        return "tool"
    if kind == "retriever" or declared & {"retrieval", "retriever"} or "retriev" in name.lower():
        return "retrieval"
    if APPROVAL_NAME.search(name):
        return "approval"
    return "other"


def parse(data: Mapping[str, Any], trace: Trace, path: Path) -> None:
    """Collect one trace into ``trace``."""
    observations = [mapping(item, path, f"observations[{i}]")
                    for i, item in enumerate(items_of(data.get("observations"), path,
                                                      "observations"))]
    if not observations and data.get("input") is None and data.get("output") is None:
        raise InputError("no observations, input or output found in the trace", path=path)
    others = {str(o["traceId"]) for o in observations if o.get("traceId")} - {
        str(data.get("id"))}
    if data.get("id") is not None and others:
        problem = (f"observations of trace {data['id']} name other traces "
                   f"({', '.join(sorted(others))})")
        raise InputError(problem, path=path)
    trace.convention = NAME
    trace.workflow = slug(data.get("name"))
    trace.input = input_value(data.get("input"))
    trace.output = output_text(data.get("output"))
    if isinstance(data.get("metadata"), Mapping):
        trace.add_prompt_versions(data["metadata"])
    trace.add_span_times(time_of(data.get("timestamp")), None)
    ordered = sorted(observations, key=lambda o: (time_of(o.get("startTime")) is None,
                                                  time_of(o.get("startTime")) or dt.datetime.min))
    for observation in ordered:
        start, end = time_of(observation.get("startTime")), time_of(observation.get("endTime"))
        key = trace.key(start)
        trace.add_span_times(start, end)
        metadata = parsed(observation.get("metadata"))
        metadata = metadata if isinstance(metadata, Mapping) else {}
        trace.add_prompt_versions(metadata)
        kind = _kind(observation, metadata)
        name = str(observation.get("name") or "")
        call_id = text_of(metadata.get("tool_call_id"))
        if kind == "generation":
            trace.add_model(observation.get("model"),
                            first(metadata, "provider", "ls_provider", "gen_ai.system"))
            prompt, version = observation.get("promptName"), observation.get("promptVersion")
            if version is not None and not prompt_versions(metadata):
                trace.add_prompt_version(f"{prompt}@{version}" if prompt else str(version))
            trace.add_llm(key, messages_of(observation.get("input"), "user"),
                          messages_of(observation.get("output"), "assistant"))
        elif kind == "tool":
            prefixed = _TOOL_PREFIX.match(name)
            tool = text_of(metadata.get("tool_name")) or (prefixed.group(1) if prefixed else name)
            trace.add_tool(key, tool, observation.get("input"), observation.get("output"),
                           call_id=call_id)
        elif kind == "retrieval":
            trace.add_sources(key, documents_of(observation.get("output")))
        elif kind == "approval":
            parts = [observation.get("input"), metadata, observation.get("output")]
            trace.add_decision(key, approval_of(parts, at=end or start, name=name),
                               call_id=call_id, result=observation.get("output"))
