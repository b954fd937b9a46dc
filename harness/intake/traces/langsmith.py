"""LangSmith runs -> case evidence.

Accepted as a run tree (a root run with nested ``child_runs``, as ``Client.read_run(...,
load_child_runs=True)`` gives it), a list of runs (``[...]`` or ``{"runs": [...]}``) or JSON Lines
of runs; a run is keyed by ``id`` or ``run_id``. Runs are grouped into traces by ``trace_id``
(else by the root they descend from). Read by ``run_type``: the root's ``inputs`` and
``outputs`` are the workflow's input and answer; ``llm`` runs hold messages, the model
(``llm_output.model_name``, the response's ``model``, ``ls_model_name``) and provider
(``ls_provider``); ``tool`` runs a tool call; ``retriever`` runs documents; runs named like an
approval a decision. A prompt pulled from the LangSmith hub (``lc_hub_owner``, ``lc_hub_repo``,
``lc_hub_commit_hash`` in a run's metadata) is the prompt version ``owner/repo:commit``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
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
    mapping_at,
    messages_of,
    output_text,
    parsed,
    slug,
    text_of,
    time_of,
)

NAME = "LangSmith run schema"
MAX_DEPTH = 200


def detect(data: Any) -> bool:
    """Whether a parsed file holds LangSmith runs."""
    if isinstance(data, Mapping):
        return "run_type" in data or isinstance(data.get("runs"), list)
    return isinstance(data, list) and any(isinstance(item, Mapping) and "run_type" in item
                                          for item in data)


def _id(run: Mapping[str, Any]) -> str | None:
    return text_of(first(run, "id", "run_id"))


def _flattened(run: Mapping[str, Any], path: Path, where: str,
               depth: int = 0) -> Iterator[Mapping[str, Any]]:
    """A run and every run below it (``child_runs``), each once."""
    if depth > MAX_DEPTH:
        raise InputError(f"runs nested deeper than {MAX_DEPTH} levels", path=path, field=where)
    yield run
    for index, child in enumerate(items_of(run.get("child_runs"), path, f"{where}.child_runs")):
        child_where = f"{where}.child_runs[{index}]"
        yield from _flattened(mapping(child, path, child_where), path, child_where, depth + 1)


def runs_of(data: Any, path: Path) -> list[Mapping[str, Any]]:
    """Every run of the file, run trees flattened."""
    if isinstance(data, Mapping) and "run_type" in data:
        return list(_flattened(data, path, "(top level)"))
    if isinstance(data, Mapping):
        raw, prefix = items_of(data.get("runs"), path, "runs"), "runs"
    else:
        raw, prefix = items_of(data, path, "(top level)"), ""
    runs: list[Mapping[str, Any]] = []
    for index, run in enumerate(raw):
        where = f"{prefix}[{index}]"
        runs.extend(_flattened(mapping(run, path, where), path, where))
    if not runs:
        raise InputError("no runs found; expected the runs of at least one trace", path=path)
    return runs


def traces(data: Any, path: Path) -> list[tuple[str, list[Mapping[str, Any]]]]:
    """The file's runs grouped by trace, in the order the traces first appear."""
    runs = runs_of(data, path)
    by_id = {run_id: run for run in runs if (run_id := _id(run))}

    def trace_of(run: Mapping[str, Any]) -> str:
        given = text_of(run.get("trace_id"))
        if given:
            return given
        seen = set()
        while (parent := text_of(run.get("parent_run_id"))) in by_id and parent not in seen:
            seen.add(parent)
            run = by_id[parent]
        return _id(run) or ""

    groups: dict[str, list[Mapping[str, Any]]] = {}
    for run in runs:
        groups.setdefault(trace_of(run), []).append(run)
    return list(groups.items())


def _hub_version(metadata: Mapping[str, Any]) -> str | None:
    owner, repo = text_of(metadata.get("lc_hub_owner")), text_of(metadata.get("lc_hub_repo"))
    if not repo:
        return None
    commit = text_of(metadata.get("lc_hub_commit_hash"))
    name = f"{owner}/{repo}" if owner and owner != "-" else repo
    return f"{name}:{commit}" if commit else name


def _call_id(outputs: Any) -> str | None:
    """The id of the call a tool run answered (its ToolMessage's ``tool_call_id``)."""
    answer = parsed(outputs)
    for _ in range(3):
        if not isinstance(answer, Mapping):
            return None
        if answer.get("tool_call_id") is not None:
            return text_of(answer["tool_call_id"])
        answer = parsed(first(answer, "kwargs", "output"))
    return None


def parse(runs: list[Mapping[str, Any]], trace: Trace) -> None:
    """Collect one trace's runs into ``trace``."""
    trace.convention = f"{NAME} ({'run tree' if any('child_runs' in r for r in runs) else 'runs'})"
    ids = {run_id for run in runs if (run_id := _id(run))}
    roots = [run for run in runs
             if not run.get("parent_run_id") or text_of(run["parent_run_id"]) not in ids]
    root = roots[0] if len(roots) == 1 else None  # several: the export lacks the root run
    if root is not None:
        trace.workflow = slug(root.get("name"))
        trace.input = input_value(root.get("inputs"))
        trace.output = output_text(root.get("outputs"))
    ordered = sorted(runs, key=lambda run: (time_of(run.get("start_time")) is None,
                                            time_of(run.get("start_time")) or dt.datetime.min))
    for run in ordered:
        start, end = time_of(run.get("start_time")), time_of(run.get("end_time"))
        key = trace.key(start)
        trace.add_span_times(start, end)
        extra = mapping_at(run, "extra")
        metadata = mapping_at(extra, "metadata")
        trace.add_prompt_versions(metadata)
        hub = _hub_version(metadata)
        if hub:
            trace.add_prompt_version(hub)
        kind = str(run.get("run_type") or "").casefold()
        name = text_of(run.get("name")) or kind
        outputs = run.get("outputs")
        if kind == "llm":
            invocation = mapping_at(extra, "invocation_params")
            llm_output = outputs.get("llm_output") if isinstance(outputs, Mapping) else None
            answered = (first(llm_output, "model_name", "model")
                        if isinstance(llm_output, Mapping) else None)
            if answered is None and isinstance(outputs, Mapping):
                answered = text_of(outputs.get("model"))
            trace.add_model(
                answered or first(metadata, "ls_model_name")
                or first(invocation, "model", "model_name"),
                metadata.get("ls_provider"),
            )
            inputs = mapping_at(run, "inputs")
            trace.add_tool_definitions(first(invocation, "tools") or first(inputs, "tools"))
            trace.add_llm(key, messages_of(first(inputs, "messages", "prompts"), "user"),
                          messages_of(outputs, "assistant"))
        elif kind == "tool":
            trace.add_tool(key, name, run.get("inputs"), outputs, call_id=_call_id(outputs))
        elif kind == "retriever":
            trace.add_sources(key, documents_of(outputs))
        elif run is not root and APPROVAL_NAME.search(name):
            trace.add_decision(key, approval_of([run.get("inputs"), metadata, outputs],
                                                at=end or start, name=name))
