"""Trace import: each export format read into case evidence, and every way a file can be wrong."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.errors import InputError
from harness.intake.traces import FORMATS, ImportedTrace, import_trace, import_traces

SAMPLES = Path(__file__).parent / "samples" / "traces"
MESSAGE = ("My espresso machine from order A-1005 arrived with a cracked water tank. "
           "I'd like a refund, please.")
OUTPUT = ("I've refunded $640.00 for order A-1005 to your card ending 1881. A confirmation is on "
          "its way to grace.kim@example.com, and we'll text +1-555-0129 when the bank releases "
          "it. We guarantee the money reaches you within 3 business days.\n\n"
          "Source: Refund and Returns Policy (updated 2024-01-10), "
          "https://kb.example.com/policies/refunds-2024")
SOURCES = [
    {"id": "refund-policy-2024", "title": "Refund and Returns Policy",
     "url": "https://kb.example.com/policies/refunds-2024", "updated_at": "2024-01-10"},
    {"id": "refund-approvals", "title": "Refund Approval Thresholds",
     "url": "https://kb.example.com/policies/refund-approvals", "updated_at": "2025-11-03"},
]
TOOL_CALLS = [
    {"name": "lookup_order", "args": {"order_id": "A-1005", "customer_id": "C-150"},
     "result": {"order_id": "A-1005", "customer_id": "C-150", "placed_on": "2026-02-25",
                "status": "delivered", "delivered_on": "2026-03-01",
                "items": [{"name": "Espresso machine", "price": 640.0, "final_sale": False}],
                "refund_eligible": True, "total": 640.0,
                "ship_to": {"name": "Grace Kim", "address": "301 Oak Avenue, Austin, TX 78701",
                            "phone": "+1-555-0129"}}},
    {"name": "request_approval",
     "args": {"step": "refund_over_threshold", "order_id": "A-1005", "amount": 640.0},
     "result": {"status": "pending", "ticket": "APR-2291"}},
    {"name": "issue_refund", "args": {"order_id": "A-1005", "amount": 640.0},
     "result": {"refund_id": "RF-1005", "status": "succeeded", "card_last4": "1881"}},
    {"name": "send_email",
     "args": {"to": "grace.kim@example.com", "template": "refund_confirmation",
              "order_id": "A-1005"},
     "result": {"status": "queued"}},
]
FULL_INPUT = {"customer_id": "C-150", "order_id": "A-1005", "message": MESSAGE}
PENDING = [{"step": "refund_over_threshold", "status": "pending"}]


def rejected(at: str) -> list[dict[str, str]]:
    return [{"step": "refund_over_threshold", "approver": "jordan.blake",
             "role": "support_manager", "status": "rejected", "at": at}]


# file, format, input, prompt_version, model_route, approvals, missing, ended_at
EXPECTED = [
    ("otel-refund.json", "otel", {"message": MESSAGE}, "v13", "openai/gpt-4o-2024-08-06",
     PENDING, [], "2026-03-10T09:42:07.010Z"),
    ("openinference-refund.json", "openinference", FULL_INPUT, "v13",
     "openai/gpt-4o-2024-08-06", rejected("2026-03-10T09:44:31Z"), [],
     "2026-03-10T09:44:31.250Z"),
    ("langsmith-refund.json", "langsmith", FULL_INPUT, None, "openai/gpt-4o-2024-08-06",
     PENDING, ["prompt_version"], "2026-03-10T09:42:07.010Z"),
    ("langfuse-refund.json", "langfuse", FULL_INPUT, "refund-assistant-system@13",
     "gpt-4o-2024-08-06", rejected("2026-03-10T09:44:31.250Z"), [],
     "2026-03-10T09:44:31.250Z"),
]


@pytest.mark.parametrize(
    ("name", "fmt", "case_input", "prompt", "route", "approvals", "missing", "ended"), EXPECTED,
    ids=[row[1] for row in EXPECTED],
)
def test_each_format_imports_the_refund_conversation(
    name: str, fmt: str, case_input: dict[str, Any], prompt: str | None, route: str,
    approvals: list[dict[str, str]], missing: list[str], ended: str,
) -> None:
    trace = import_trace(SAMPLES / name)
    expected: dict[str, Any] = {"input": case_input}
    if prompt is not None:
        expected["prompt_version"] = prompt
    expected.update({"model_route": route, "sources": SOURCES, "tool_calls": TOOL_CALLS,
                     "approvals": approvals, "output": OUTPUT, "missing": missing})
    assert trace.format == fmt
    # each tool call keeps when it ran, in the order it ran
    moments = [call.pop("at") for call in trace.evidence["tool_calls"]]
    assert moments == sorted(moments) and all(m.startswith("2026-03-10T09:4") for m in moments)
    assert trace.evidence == expected
    assert list(trace.evidence) == list(expected)  # the order of a case file's evidence
    assert trace.started_at == "2026-03-10T09:41:58.120Z"
    assert trace.ended_at == ended
    assert trace.workflow == "refund-assistant"
    assert trace.path == SAMPLES / name


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_forced_format_reads_its_own_sample_as_detection_does(fmt: str) -> None:
    name = next(row[0] for row in EXPECTED if row[1] == fmt)
    assert import_trace(SAMPLES / name, format=fmt) == import_trace(SAMPLES / name)


def test_a_forced_format_that_does_not_fit_names_the_file() -> None:
    with pytest.raises(InputError) as info:
        import_trace(SAMPLES / "otel-refund.json", format="langsmith")
    assert info.value.problem == "expected LangSmith runs; found a mapping with keys resourceSpans"
    assert str(info.value).startswith(f"{SAMPLES / 'otel-refund.json'}: ")


def test_an_unknown_format_name_is_refused() -> None:
    with pytest.raises(InputError) as info:
        import_trace(SAMPLES / "otel-refund.json", format="jaeger")
    assert info.value.field == "format"
    assert "expected one of otel, openinference, langsmith, langfuse" in str(info.value)


# --- small traces built in the tests -------------------------------------------------------------


def write(folder: Path, data: Any, name: str = "trace.json") -> Path:
    path = folder / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def value(item: Any) -> dict[str, Any]:
    if isinstance(item, bool):
        return {"boolValue": item}
    if isinstance(item, int):
        return {"intValue": str(item)}
    if isinstance(item, dict):
        return {"kvlistValue": {"values": [{"key": k, "value": value(v)}
                                           for k, v in item.items()]}}
    if isinstance(item, list):
        return {"arrayValue": {"values": [value(v) for v in item]}}
    return {"stringValue": item}


def span(name: str, attributes: dict[str, Any], *, start: int, span_id: str = "",
         parent: str = "", trace_id: str = "t1", events: list[dict[str, Any]] | None = None,
         ) -> dict[str, Any]:
    """An OTLP span starting ``start`` seconds after 2026-03-10T09:00:00Z, lasting one second."""
    base = 1_773_133_200 + start
    return {"traceId": trace_id, "spanId": span_id or f"s{start}", "parentSpanId": parent,
            "name": name, "startTimeUnixNano": str(base * 10**9),
            "endTimeUnixNano": str((base + 1) * 10**9),
            "attributes": [{"key": k, "value": value(v)} for k, v in attributes.items()],
            "events": events or []}


def otlp(*spans: dict[str, Any], resource: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": k, "value": value(v)}
                                    for k, v in (resource or {}).items()]},
        "scopeSpans": [{"scope": {"name": "test"}, "spans": list(spans)}]}]}


CHAT = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini"}


def test_a_single_chat_span_gives_input_route_and_output_and_lists_what_it_lacks(
    tmp_path: Path,
) -> None:
    messages = [{"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
                {"role": "user", "parts": [{"type": "text", "content": "Refund window?"}]}]
    answer = [{"role": "assistant", "parts": [{"type": "text", "content": "60 days."}]}]
    path = write(tmp_path, otlp(span("chat gpt-4o-mini", {
        **CHAT, "gen_ai.input.messages": json.dumps(messages),
        "gen_ai.output.messages": json.dumps(answer)}, start=0)))
    trace = import_trace(path)
    # no sign of a tool, a retriever or an approval: the workflow did none (not missing);
    # a model answered, and no prompt version was logged: that is missing
    assert trace.evidence == {
        "input": {"message": "Refund window?"}, "model_route": "gpt-4o-mini",
        "sources": [], "tool_calls": [], "approvals": [], "output": "60 days.",
        "missing": ["prompt_version"],
    }
    assert (trace.started_at, trace.ended_at) == ("2026-03-10T09:00:00Z", "2026-03-10T09:00:01Z")
    assert trace.workflow is None


def test_older_gen_ai_prompt_and_completion_attributes_are_read(tmp_path: Path) -> None:
    path = write(tmp_path, otlp(
        span("chat", {**CHAT, "gen_ai.prompt": json.dumps([{"role": "user",
                                                            "content": "Where is A-1002?"}]),
                      "gen_ai.completion": json.dumps([{"role": "assistant",
                                                        "content": "It has shipped."}])},
             start=0, span_id="a", parent="root"),
        span("chat", {**CHAT, "gen_ai.prompt.0.role": "user",
                      "gen_ai.prompt.0.content": "And A-1003?",
                      "gen_ai.completion.0.role": "assistant",
                      "gen_ai.completion.0.content": "Out for delivery."},
             start=2, span_id="b", parent="root"),
    ))
    evidence = import_trace(path).evidence
    assert evidence["input"] == {"message": "Where is A-1002?"}
    assert evidence["output"] == "Out for delivery."


def test_without_tool_spans_the_calls_the_model_asked_for_are_used_with_their_results(
    tmp_path: Path,
) -> None:
    ask = [{"role": "user", "parts": [{"type": "text", "content": "Refund A-1001"}]}]
    call = {"type": "tool_call", "id": "c1", "name": "issue_refund",
            "arguments": {"order_id": "A-1001"}}
    reply = {"type": "tool_call_response", "id": "c1", "response": {"status": "succeeded"}}
    path = write(tmp_path, otlp(
        span("chat", {**CHAT, "gen_ai.input.messages": json.dumps(ask),
                      "gen_ai.output.messages": json.dumps([{"role": "assistant",
                                                             "parts": [call]}])}, start=0),
        span("chat", {**CHAT, "gen_ai.input.messages": json.dumps(
            [*ask, {"role": "assistant", "parts": [call]}, {"role": "tool", "parts": [reply]}]),
            "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [
                {"type": "text", "content": "Refunded."}]}])}, start=3),
    ))
    evidence = import_trace(path).evidence
    assert evidence["tool_calls"] == [{"name": "issue_refund", "args": {"order_id": "A-1001"},
                                       "result": {"status": "succeeded"}}]
    assert evidence["output"] == "Refunded."


def test_span_prompt_version_datastore_tools_and_approval_events(tmp_path: Path) -> None:
    decision = {"name": "human_review", "timeUnixNano": str((1_773_133_200 + 9) * 10**9),
                "attributes": [{"key": "approval.step", "value": value("refund_over_threshold")},
                               {"key": "approval.approver", "value": value("jordan.blake")},
                               {"key": "approval.role", "value": value("support_manager")},
                               {"key": "approval.status", "value": value("Approved")}]}
    documents = [{"id": "kb-7", "metadata": {"title": "Final sale", "updated_at": "2025-01-02"}}]
    path = write(tmp_path, otlp(
        span("invoke_agent", {"gen_ai.operation.name": "invoke_agent",
                              "gen_ai.prompt.version": 14}, start=0, span_id="root",
             events=[decision]),
        span("execute_tool search_kb", {"gen_ai.operation.name": "execute_tool",
                                        "gen_ai.tool.name": "search_kb",
                                        "gen_ai.tool.type": "datastore",
                                        "gen_ai.tool.call.result": json.dumps(documents)},
             start=1, parent="root"),
        span("execute_tool issue_refund", {"gen_ai.operation.name": "execute_tool",
                                           "gen_ai.tool.name": "issue_refund",
                                           "gen_ai.tool.call.arguments": '{"order_id": "A-9"}'},
             start=2, parent="root"),
        resource={"service.name": "refund assistant"},  # not a folder name: no workflow
    ))
    trace = import_trace(path)
    assert trace.evidence["prompt_version"] == "14"
    assert trace.evidence["sources"] == [{"id": "kb-7", "title": "Final sale",
                                          "updated_at": "2025-01-02"}]
    # a datastore tool is a tool call too, and its results are sources
    assert trace.evidence["tool_calls"] == [
        {"name": "search_kb", "args": {}, "result": documents, "at": "2026-03-10T09:00:01Z"},
        {"name": "issue_refund", "args": {"order_id": "A-9"}, "result": None,
         "at": "2026-03-10T09:00:02Z"}]
    assert trace.evidence["approvals"] == [{"step": "refund_over_threshold",
                                            "approver": "jordan.blake",
                                            "role": "support_manager", "status": "approved",
                                            "at": "2026-03-10T09:00:09Z"}]
    assert trace.workflow is None


def test_json_lines_of_otlp_objects_read_as_one_trace(tmp_path: Path) -> None:
    first = otlp(span("chat", {**CHAT, "gen_ai.input.messages": json.dumps(
        [{"role": "user", "content": "hello"}])}, start=0))
    second = otlp(span("execute_tool lookup_order", {"gen_ai.tool.name": "lookup_order"},
                       start=1))
    path = write(tmp_path, json.dumps(first) + "\n\n" + json.dumps(second) + "\n")
    evidence = import_trace(path).evidence
    assert evidence["input"] == {"message": "hello"}
    assert [call["name"] for call in evidence["tool_calls"]] == ["lookup_order"]


def test_openinference_nested_attributes_read_like_flat_ones(tmp_path: Path) -> None:
    spans = [
        {"name": "agent", "context": {"trace_id": "t", "span_id": "r"}, "parent_id": None,
         "start_time": "2026-03-10T09:00:00.000000123+00:00",
         "attributes": {"openinference": {"span": {"kind": "AGENT"}},
                        "input": {"value": "Is my kettle covered?"},
                        "output": {"value": '{"answer": "Yes, for a year."}'}}},
        {"name": "ChatOpenAI", "context": {"trace_id": "t", "span_id": "l"}, "parent_id": "r",
         "start_time": "2026-03-10T09:00:01+00:00",
         "attributes": {"openinference": {"span": {"kind": "LLM"}},
                        "llm": {"model_name": "gpt-4o-mini",
                                "output_messages": [{"message.role": "assistant",
                                                     "message.content": "Yes, for a year."}]},
                        "metadata": '{"prompt_version": "v9"}'}},
    ]
    trace = import_trace(write(tmp_path, spans))
    assert trace.format == "openinference"
    assert trace.evidence == {
        "input": {"message": "Is my kettle covered?"}, "prompt_version": "v9",
        "model_route": "gpt-4o-mini", "sources": [], "tool_calls": [], "approvals": [],
        "output": "Yes, for a year.", "missing": [],
    }
    assert trace.started_at == "2026-03-10T09:00:00Z"


ANSWER = "Yes, in 5-8 business days."
AI_MESSAGE = {"lc": 1, "type": "constructor",
              "id": ["langchain", "schema", "messages", "AIMessage"],
              "kwargs": {"content": ANSWER, "type": "ai", "tool_calls": []}}


@pytest.mark.parametrize("outputs", [
    {"answer": ANSWER},
    {"output": AI_MESSAGE},
    {"messages": [{"role": "user", "content": "Do you ship to Canada?"},
                  {"role": "assistant", "content": [{"type": "text", "text": ANSWER}]}]},
], ids=["answer", "langchain-message", "messages"])
def test_langsmith_runs_wrapped_in_a_mapping_are_read(
    tmp_path: Path, outputs: dict[str, Any],
) -> None:
    runs = {"runs": [
        {"id": "r1", "name": "support-bot", "run_type": "chain", "parent_run_id": None,
         "start_time": "2026-03-10T09:00:00", "inputs": {"question": "Do you ship to Canada?"},
         "outputs": outputs},
        {"id": "r2", "name": "update_record", "run_type": "tool", "parent_run_id": "r1",
         "start_time": "2026-03-10T09:00:01", "inputs": {"customer_id": "C-1", "field": "x"},
         "outputs": {"output": "done"}},
    ]}
    trace = import_trace(write(tmp_path, runs))
    assert trace.format == "langsmith"
    assert trace.workflow == "support-bot"
    assert trace.evidence["input"] == {"message": "Do you ship to Canada?"}
    assert trace.evidence["output"] == ANSWER
    assert trace.evidence["tool_calls"] == [{"name": "update_record",
                                             "args": {"customer_id": "C-1", "field": "x"},
                                             "result": "done", "at": "2026-03-10T09:00:01Z"}]


def test_a_langfuse_trace_without_observations_keeps_its_input_and_output(
    tmp_path: Path,
) -> None:
    trace = import_trace(write(tmp_path, {"id": "t", "observations": [],
                                          "input": "hi", "output": {"content": "Hello!"}}))
    assert trace.evidence == {"input": {"message": "hi"}, "sources": [], "tool_calls": [],
                              "approvals": [], "output": "Hello!",
                              "missing": ["prompt_version", "model_route"]}
    assert isinstance(trace, ImportedTrace)
    assert trace.started_at is None


# --- malformed input -----------------------------------------------------------------------------


def error(path: Path) -> InputError:
    with pytest.raises(InputError) as info:
        import_trace(path)
    return info.value


def test_a_file_that_is_not_json_is_named_with_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, '{\n  "resourceSpans": [\n    {"resource": }\n  ]\n}\n')
    err = error(path)
    assert (err.path, err.line) == (str(path), 3)
    assert str(err).startswith(f"{path}:3: not JSON: Expecting value")


def test_a_bad_json_lines_line_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, '{"id": 1, "run_type": "chain"}\n{"id": 2, "run_type": "tool"}\n'
                           '{"id": 3,\n')
    err = error(path)
    assert (err.path, err.line) == (str(path), 3)
    assert "not JSON Lines" in err.problem


@pytest.mark.parametrize(("content", "problem"), [
    ("", "file is empty; expected a trace export"),
    ('{"resourceSpans": []}', "no spans found; expected the spans of at least one trace"),
    ('{"runs": []}', "no runs found; expected the runs of at least one trace"),
    ('{"observations": []}', "no observations, input or output found in the trace"),
    ('{"resourceSpans": [{"scopeSpans": [{"spans": ["oops"]}]}]}',
     "resourceSpans[0].scopeSpans[0].spans[0]: expected a mapping, found str"),
    ('{"resourceSpans": {"spans": []}}', "resourceSpans: expected a list, found dict"),
])
def test_traces_without_spans_or_with_misshapen_spans_are_refused(
    tmp_path: Path, content: str, problem: str,
) -> None:
    path = write(tmp_path, content)
    err = error(path)
    assert str(err).startswith(f"{path}")
    assert str(err).endswith(problem)


@pytest.mark.parametrize(("data", "found"), [
    ({"traceId": "x", "name": "chat"}, "found a mapping with keys traceId, name"),
    ([{"id": 1}, {"id": 2}], "found a list of 2 item(s) with keys id"),
    (42, "found int"),
])
def test_an_unknown_shape_lists_the_formats_and_what_was_found(
    tmp_path: Path, data: Any, found: str,
) -> None:
    path = write(tmp_path, data)
    err = error(path)
    assert err.path == str(path)
    assert ("unknown trace format: looked for OTLP spans (resourceSpans, JSON or protobuf), a "
            "span list, LangSmith runs (run_type) and Langfuse traces (observations)"
            in err.problem)
    assert found in err.problem
    assert "--format otel|openinference|langsmith|langfuse" in err.problem


def test_several_traces_in_one_file_are_each_imported_or_chosen(tmp_path: Path) -> None:
    path = write(tmp_path, otlp(span("chat", CHAT, start=0, trace_id="aaa"),
                                span("chat", CHAT, start=1, trace_id="bbb")))
    assert [t.trace_id for t in import_traces(path)] == ["aaa", "bbb"]
    assert [t.trace_id for t in import_traces(path, trace_id="bbb")] == ["bbb"]
    with pytest.raises(InputError, match=r"no trace 'ccc' in the file \(traces: aaa, bbb\)"):
        import_traces(path, trace_id="ccc")
    # the one-trace reader says how to choose
    assert error(path).problem == ("the file holds 2 traces (aaa, bbb); choose one with "
                                   "--trace-id, or draft them all")


def test_langsmith_runs_of_two_traces_are_two_traces(tmp_path: Path) -> None:
    runs = [{"id": "a", "run_type": "chain"}, {"id": "b", "run_type": "chain"}]
    assert [t.trace_id for t in import_traces(write(tmp_path, runs))] == ["a", "b"]


def test_unreadable_files_are_named(tmp_path: Path) -> None:
    assert str(error(tmp_path / "gone.json")) == f"{tmp_path / 'gone.json'}: file not found"
    assert error(tmp_path).problem == "expected a trace file, found a folder"
    binary = tmp_path / "trace.bin"
    binary.write_bytes(b'{"a":\n"\xff"}')
    err = error(binary)
    assert err.problem == ("neither JSON text nor OTLP protobuf: byte 7 is not UTF-8, and the "
                           "file does not start like an OTLP protobuf export")


def test_messages_recorded_as_events_are_read(tmp_path: Path) -> None:
    def event(name: str, attributes: dict[str, Any], at: int) -> dict[str, Any]:
        return {"name": name, "timeUnixNano": str((1_773_133_200 + at) * 10**9),
                "attributes": [{"key": k, "value": value(v)} for k, v in attributes.items()]}

    # the event-based conventions (1.28 to 1.35): a message per event, the answer as a choice
    older = write(tmp_path, otlp(span("chat gpt-4o", CHAT, start=0, events=[
        event("gen_ai.system.message", {"content": "You are a fares assistant."}, 0),
        event("gen_ai.user.message", {"content": "Can I claim it after travel?"}, 0),
        event("gen_ai.choice", {"index": 0, "finish_reason": "stop",
                                "message": json.dumps({"role": "assistant",
                                                       "content": "Yes, within 90 days."})}, 1),
    ])), name="events.json")
    evidence = import_trace(older).evidence
    assert evidence["input"] == {"message": "Can I claim it after travel?"}
    assert evidence["output"] == "Yes, within 90 days."
    # 1.37 and later may put the messages on an operation-details event
    details = write(tmp_path, otlp(span("chat gpt-4o", CHAT, start=0, events=[
        event("gen_ai.client.inference.operation.details", {
            "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [
                {"type": "text", "content": "Is my bag included?"}]}]),
            "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [
                {"type": "text", "content": "One checked bag."}]}])}, 1)])), name="d.json")
    evidence = import_trace(details).evidence
    assert (evidence["input"], evidence["output"]) == ({"message": "Is my bag included?"},
                                                       "One checked bag.")
