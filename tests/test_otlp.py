"""OTLP protobuf decoding: messages built with OpenTelemetry's own classes read back as the
OTLP/JSON mapping, protobuf's semantics kept, and every way a hostile file can be malformed."""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
import random
import struct
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict, ParseDict
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from harness.intake.traces import import_trace
from harness.intake.traces.otlp import (
    MAX_VALUE_DEPTH,
    ProtobufError,
    decode_traces,
    looks_like_protobuf,
)

SAMPLES = Path(__file__).parent / "samples" / "traces"
TRACE_ID = "5b8efff798038103d269b633813fc60c"
ID_KEYS = ("traceId", "spanId", "parentSpanId")


# --- building messages ----------------------------------------------------------------------


def _string(key: str, value: str) -> dict[str, Any]:
    return {"key": key, "value": {"stringValue": value}}


def _int(key: str, value: int) -> dict[str, Any]:
    return {"key": key, "value": {"intValue": str(value)}}


def _ids(mapping: dict[str, Any], convert: Any) -> None:
    for key in ID_KEYS:
        if key in mapping:
            mapping[key] = convert(mapping[key])


def _walk_spans(mapping: dict[str, Any], convert: Any) -> dict[str, Any]:
    """Convert the ids of every span and link in an OTLP mapping, in place."""
    for resource_spans in mapping.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                _ids(span, convert)
                for link in span.get("links", []):
                    _ids(link, convert)
    return mapping


def _hex_to_base64(value: str) -> str:
    return base64.b64encode(bytes.fromhex(value)).decode("ascii")


def _base64_to_hex(value: str) -> str:
    return base64.b64decode(value).hex()


def build(otlp_json: dict[str, Any]) -> ExportTraceServiceRequest:
    """The protobuf message an OTLP/JSON mapping describes (ParseDict wants base64 ids)."""
    with_base64_ids = _walk_spans(copy.deepcopy(otlp_json), _hex_to_base64)
    return ParseDict(with_base64_ids, ExportTraceServiceRequest())


def otlp_json(message: Any) -> dict[str, Any]:
    """The OTLP/JSON mapping of a message: protobuf's JSON with integer enums and hex ids."""
    mapping = MessageToDict(message, preserving_proto_field_name=False,
                            use_integers_for_enums=True)
    return _walk_spans(mapping, _base64_to_hex)


def protobuf_reading(data: bytes) -> dict[str, Any]:
    return otlp_json(ExportTraceServiceRequest.FromString(data))


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def tag(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def length_delimited(number: int, payload: bytes) -> bytes:
    return tag(number, 2) + varint(len(payload)) + payload


def request_with_span(span: bytes) -> bytes:
    """An ExportTraceServiceRequest holding one resource, one scope and the encoded span."""
    return length_delimited(1, length_delimited(2, length_delimited(2, span)))


def span_attribute(key: bytes, any_value: bytes) -> bytes:
    """A Span's attributes field (9) holding one KeyValue."""
    return length_delimited(9, length_delimited(1, key) + length_delimited(2, any_value))


def frames(*messages: bytes) -> bytes:
    """A Collector file exporter's ``format: proto`` file: each message after its length."""
    return b"".join(struct.pack(">I", len(message)) + message for message in messages)


# --- realistic traces -----------------------------------------------------------------------

OPENINFERENCE = {
    "resourceSpans": [{
        "resource": {"attributes": [_string("service.name", "refund-assistant"),
                                    _string("openinference.project.name", "support")]},
        "scopeSpans": [{
            "scope": {"name": "openinference.instrumentation.langchain", "version": "0.1.42"},
            "spans": [
                {
                    "traceId": TRACE_ID, "spanId": "a1f0c3d2e4b5a697",
                    "name": "AgentExecutor", "kind": 1,
                    "startTimeUnixNano": "1773135718120000000",
                    "endTimeUnixNano": "1773135727010000000",
                    "attributes": [
                        _string("openinference.span.kind", "AGENT"),
                        _string("input.value", '{"message": "Refund order A-1005, please."}'),
                        _string("input.mime_type", "application/json"),
                        _string("output.value", "I've refunded $640.00 for order A-1005."),
                    ],
                    "status": {"code": 1},
                },
                {
                    "traceId": TRACE_ID, "spanId": "b2e1d4c3f5a6b708",
                    "parentSpanId": "a1f0c3d2e4b5a697",
                    "name": "ChatOpenAI", "kind": 1,
                    "startTimeUnixNano": "1773135718200000000",
                    "endTimeUnixNano": "1773135720100000000",
                    "attributes": [
                        _string("openinference.span.kind", "LLM"),
                        _string("llm.model_name", "gpt-4o-2024-08-06"),
                        _string("llm.input_messages.0.message.role", "system"),
                        _string("llm.input_messages.0.message.content",
                                "You are a refund assistant. Refunds over $500 need approval."),
                        _string("llm.input_messages.1.message.role", "user"),
                        _string("llm.input_messages.1.message.content",
                                "Refund order A-1005, please. ¿Está bien? 🙏"),
                        _string("llm.output_messages.0.message.role", "assistant"),
                        _string("llm.output_messages.0.message.tool_calls.0.tool_call."
                                "function.name", "issue_refund"),
                        _int("llm.token_count.prompt", 412),
                        _int("llm.token_count.completion", 38),
                    ],
                    "status": {"code": 1},
                },
                {
                    "traceId": TRACE_ID, "spanId": "c3f2e5d4a6b7c819",
                    "parentSpanId": "a1f0c3d2e4b5a697",
                    "name": "issue_refund", "kind": 1,
                    "startTimeUnixNano": "1773135720200000000",
                    "endTimeUnixNano": "1773135721000000000",
                    "attributes": [
                        _string("openinference.span.kind", "TOOL"),
                        _string("tool.name", "issue_refund"),
                        _string("tool.parameters", '{"order_id": "A-1005", "amount": 640.0}'),
                        _string("input.value", '{"order_id": "A-1005", "amount": 640.0}'),
                        _string("output.value", '{"refund_id": "RF-1005"}'),
                    ],
                    "status": {"code": 2, "message": "approval required"},
                },
            ],
        }],
    }],
}

GENAI = {
    "resourceSpans": [{
        "resource": {
            "attributes": [_string("service.name", "refund-assistant"),
                           _int("process.pid", 4242)],
            "droppedAttributesCount": 2,
        },
        "scopeSpans": [{
            "scope": {"name": "refund_assistant.agent", "version": "2026.03.1",
                      "attributes": [_string("library.language", "python")],
                      "droppedAttributesCount": 1},
            "spans": [
                {
                    "traceId": TRACE_ID, "spanId": "a1f0c3d2e4b5a697",
                    "traceState": "vendor=abc,other=1",
                    "name": "chat gpt-4o", "kind": 3, "flags": 257,
                    "startTimeUnixNano": "1773135718120000000",
                    "endTimeUnixNano": "18446744073709551615",
                    "attributes": [
                        _string("gen_ai.operation.name", "chat"),
                        _string("gen_ai.request.model", "gpt-4o"),
                        {"key": "gen_ai.request.temperature", "value": {"doubleValue": 0.2}},
                        {"key": "gen_ai.request.seed", "value": {"intValue": "-42"}},
                        {"key": "app.min_int64",
                         "value": {"intValue": "-9223372036854775808"}},
                        {"key": "gen_ai.request.stream", "value": {"boolValue": True}},
                        {"key": "app.cached", "value": {"boolValue": False}},
                        {"key": "app.zero", "value": {"intValue": "0"}},
                        {"key": "app.empty", "value": {"stringValue": ""}},
                        {"key": "gen_ai.response.finish_reasons",
                         "value": {"arrayValue": {"values": [{"stringValue": "tool_calls"},
                                                             {"intValue": "7"}, {}]}}},
                        {"key": "app.request.metadata", "value": {"kvlistValue": {"values": [
                            _string("tenant", "acme"),
                            {"key": "tiers", "value": {"arrayValue": {"values": [
                                {"doubleValue": -1.5}, {"kvlistValue": {}}]}}},
                        ]}}},
                        {"key": "app.request.digest",
                         "value": {"bytesValue": base64.b64encode(b"\x00\xff\x10sha").decode()}},
                        {"key": "app.unset"},
                    ],
                    "droppedAttributesCount": 3,
                    "events": [{
                        "timeUnixNano": "1773135719000000000",
                        "name": "gen_ai.client.inference.operation.details",
                        "attributes": [_string("gen_ai.output.messages",
                                               '[{"role": "assistant", "parts": []}]')],
                        "droppedAttributesCount": 4,
                    }, {"name": "empty event"}],
                    "droppedEventsCount": 5,
                    "links": [{
                        "traceId": "0af7651916cd43dd8448eb211c80319c",
                        "spanId": "00f067aa0ba902b7", "traceState": "k=v",
                        "attributes": [_string("link.reason", "retry")],
                        "droppedAttributesCount": 6, "flags": 256,
                    }],
                    "droppedLinksCount": 7,
                    "status": {"code": 2, "message": "tool failed"},
                },
                {
                    "traceId": TRACE_ID, "spanId": "b2e1d4c3f5a6b708",
                    "parentSpanId": "a1f0c3d2e4b5a697",
                    "name": "execute_tool issue_refund", "kind": 1,
                    "attributes": [
                        _string("gen_ai.operation.name", "execute_tool"),
                        _string("gen_ai.tool.name", "issue_refund"),
                        _string("gen_ai.tool.call.id", "call_9f1"),
                        _string("gen_ai.tool.call.arguments",
                                '{"order_id": "A-1005", "amount": 640.0}'),
                    ],
                    "status": {},
                },
            ],
            "schemaUrl": "https://opentelemetry.io/schemas/1.30.0",
        }],
        "schemaUrl": "https://opentelemetry.io/schemas/1.30.0",
    }],
}


@pytest.fixture(scope="module")
def genai_bytes() -> bytes:
    return build(GENAI).SerializeToString()


# --- decoding -------------------------------------------------------------------------------


@pytest.mark.parametrize("trace", [OPENINFERENCE, GENAI], ids=["openinference", "genai"])
def test_a_trace_decodes_to_its_otlp_json(trace):
    message = build(trace)
    decoded = decode_traces(message.SerializeToString())
    assert decoded == trace
    assert decoded == otlp_json(message)
    assert json.loads(json.dumps(decoded)) == decoded


def test_the_mapping_uses_the_otlp_json_value_forms(genai_bytes):
    span = decode_traces(genai_bytes)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert span["traceId"] == TRACE_ID
    assert span["spanId"] == "a1f0c3d2e4b5a697"
    assert span["links"][0]["traceId"] == "0af7651916cd43dd8448eb211c80319c"
    assert span["endTimeUnixNano"] == "18446744073709551615"
    assert span["kind"] == 3
    assert span["status"] == {"code": 2, "message": "tool failed"}
    values = {item["key"]: item.get("value") for item in span["attributes"]}
    assert values["gen_ai.request.seed"] == {"intValue": "-42"}
    assert values["app.min_int64"] == {"intValue": "-9223372036854775808"}
    assert values["gen_ai.request.temperature"] == {"doubleValue": 0.2}
    assert values["app.request.digest"] == {"bytesValue": "AP8Qc2hh"}
    assert values["app.cached"] == {"boolValue": False}
    assert values["app.unset"] is None


def test_traces_data_decodes_like_an_export_request(genai_bytes):
    traces_data = TracesData.FromString(genai_bytes)
    assert decode_traces(traces_data.SerializeToString()) == GENAI


def test_an_empty_message_has_no_spans():
    assert decode_traces(b"") == {}
    assert decode_traces(ExportTraceServiceRequest().SerializeToString()) == {}


def test_the_decoded_sample_imports_as_the_json_sample_does(tmp_path):
    sample = SAMPLES / "otel-refund.json"
    original = json.loads(sample.read_text(encoding="utf-8"))
    decoded = decode_traces(build(original).SerializeToString())
    assert decoded == protobuf_reading(build(original).SerializeToString())
    copy_path = tmp_path / "otel-refund.json"
    copy_path.write_text(json.dumps(decoded), encoding="utf-8")
    assert dataclasses.replace(import_trace(copy_path), path=sample) == import_trace(sample)


def test_a_file_exporter_file_reads_as_all_its_messages(genai_bytes):
    openinference = build(OPENINFERENCE).SerializeToString()
    data = frames(genai_bytes, b"", openinference)
    expected = GENAI["resourceSpans"] + OPENINFERENCE["resourceSpans"]
    assert decode_traces(data) == {"resourceSpans": expected}


@pytest.mark.parametrize("data, problem", [
    (frames(b"\n\x00")[:-1], "frame of 2 bytes runs past the end of the data (1 bytes left)"),
    (frames(b"\n\x00") + b"\x00\x00", "truncated 4-byte frame length: 2 bytes left"),
])
def test_a_broken_file_exporter_frame_is_named(data, problem):
    with pytest.raises(ProtobufError) as caught:
        decode_traces(data)
    assert caught.value.reading == "file exporter frame"
    assert caught.value.problem == problem


# --- protobuf's semantics -------------------------------------------------------------------

STATUS_ERROR = length_delimited(15, tag(3, 0) + varint(2))
STATUS_MESSAGE = length_delimited(15, length_delimited(2, b"late"))
SEMANTICS = {
    "explicit defaults are omitted": (
        tag(6, 0) + varint(0) + length_delimited(5, b"") + tag(7, 1) + bytes(8)
        + tag(10, 0) + varint(0) + tag(16, 5) + bytes(4) + length_delimited(1, b"")),
    "a later scalar wins": length_delimited(5, b"first") + length_delimited(5, b"second"),
    "a later default clears": length_delimited(5, b"first") + length_delimited(5, b""),
    "a singular message met twice merges": STATUS_ERROR + STATUS_MESSAGE,
    "empty sub-messages are kept": length_delimited(15, b""),
    "a negative enum": tag(6, 0) + varint(-1),
    "an unknown enum value": tag(6, 0) + varint(99),
    "a uint32 keeps its low 32 bits": tag(10, 0) + varint(-1),
    "a non-minimal varint": tag(6, 0) + b"\x83\x80\x80\x00",
    "a 10-byte varint's top bits are dropped": tag(6, 0) + b"\xff" * 9 + b"\x7f",
    "a bool is any non-zero varint": span_attribute(b"b", tag(2, 0) + varint(2)),
    "a later oneof member replaces": span_attribute(
        b"v", length_delimited(1, b"text") + tag(3, 0) + varint(5)),
    "a oneof message met twice merges": span_attribute(
        b"v", length_delimited(5, length_delimited(1, tag(3, 0) + varint(1)))
        + length_delimited(5, length_delimited(1, tag(2, 0) + varint(1)))),
    "a oneof message replaces a scalar": span_attribute(
        b"v", length_delimited(1, b"text") + length_delimited(5, b"")),
    "a scalar replaces a oneof message": span_attribute(
        b"v", length_delimited(6, length_delimited(1, length_delimited(1, b"k")))
        + tag(2, 0) + varint(0)),
    "empty oneof members are kept": span_attribute(
        b"v", length_delimited(5, b"") + length_delimited(7, b"")),
    "not a number": span_attribute(b"d", tag(4, 1) + struct.pack("<d", float("nan"))),
    "infinity": span_attribute(b"d", tag(4, 1) + struct.pack("<d", float("inf"))),
    "minus infinity": span_attribute(b"d", tag(4, 1) + struct.pack("<d", float("-inf"))),
    "minus zero": span_attribute(b"d", tag(4, 1) + struct.pack("<d", -0.0)),
    "an empty value": span_attribute(b"v", b""),
    "a key without a value": length_delimited(9, length_delimited(1, b"k")),
    "an id of unusual length": length_delimited(1, b"\x01\x02\x03"),
}


@pytest.mark.parametrize("span", SEMANTICS.values(), ids=SEMANTICS.keys())
def test_decoding_keeps_protobufs_semantics(span):
    data = request_with_span(length_delimited(5, b"s") + span)
    assert decode_traces(data) == protobuf_reading(data)


def test_the_semantics_cases_are_not_vacuous():
    merged = request_with_span(STATUS_ERROR + STATUS_MESSAGE)
    span = decode_traces(merged)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert span == {"status": {"code": 2, "message": "late"}}
    replaced = request_with_span(SEMANTICS["a later oneof member replaces"])
    span = decode_traces(replaced)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert span["attributes"] == [{"key": "v", "value": {"intValue": "5"}}]


UNKNOWN = {
    "varint": tag(99, 0) + varint(1 << 63),
    "64-bit": tag(99, 1) + bytes(range(8)),
    "length-delimited": length_delimited(99, b"\x0a\xff\xfe not even UTF-8"),
    "32-bit": tag(99, 5) + bytes(range(4)),
    "a known number with another wire type": tag(5, 0) + varint(7),
}


@pytest.mark.parametrize("unknown", UNKNOWN.values(), ids=UNKNOWN.keys())
def test_unknown_fields_are_skipped(unknown):
    span = build(OPENINFERENCE).resource_spans[0].scope_spans[0].spans[1].SerializeToString()
    plain = decode_traces(request_with_span(span))
    assert decode_traces(request_with_span(span + unknown)) == plain
    assert decode_traces(request_with_span(unknown + span + unknown)) == plain
    assert decode_traces(request_with_span(span) + unknown) == plain
    assert decode_traces(request_with_span(span + unknown)) == protobuf_reading(
        request_with_span(span + unknown))
    assert plain["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["name"] == "ChatOpenAI"


# --- malformed input ------------------------------------------------------------------------


def test_every_truncation_raises_a_protobuf_error(genai_bytes):
    for cut in range(1, len(genai_bytes)):
        with pytest.raises(ProtobufError) as caught:
            decode_traces(genai_bytes[:cut])
        assert 0 <= caught.value.offset <= cut
        assert str(caught.value).startswith(f"byte {caught.value.offset}: ")


def test_every_truncation_of_a_file_exporter_file_raises(genai_bytes):
    data = frames(genai_bytes, genai_bytes)
    whole_first_frame = 4 + len(genai_bytes)
    assert decode_traces(data[:whole_first_frame]) == GENAI
    for cut in range(1, len(data)):
        if cut != whole_first_frame:
            with pytest.raises(ProtobufError):
                decode_traces(data[:cut])


def test_corrupted_bytes_decode_as_protobuf_does_or_raise_a_protobuf_error(genai_bytes):
    randomly = random.Random(20260310)
    decoded = failed = 0
    for _ in range(3000):
        data = bytearray(genai_bytes)
        for _ in range(randomly.randint(1, 3)):
            data[randomly.randrange(len(data))] = randomly.randrange(256)
        try:
            mine = decode_traces(bytes(data))
        except ProtobufError:
            failed += 1
            continue
        decoded += 1
        try:
            theirs = protobuf_reading(bytes(data))
        except DecodeError:
            continue
        assert mine == theirs
    assert decoded and failed


def test_the_error_names_the_field_and_the_offset():
    name_longer_than_its_span = tag(5, 2) + varint(13) + b"AgentExe"
    data = request_with_span(name_longer_than_its_span)
    with pytest.raises(ProtobufError) as caught:
        decode_traces(data)
    offset = data.index(b"AgentExe") - 1
    assert caught.value.offset == offset
    assert caught.value.reading == "Span.name (field 5)"
    assert str(caught.value) == (f"byte {offset}: Span.name (field 5): needs 13 bytes, "
                                 "8 left in the enclosing message")
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("span, reading, problem", [
    (tag(99, 3) + tag(99, 4), "Span field 99", "groups (wire type 3) are not supported"),
    (tag(99, 4), "Span field 99", "groups (wire type 4) are not supported"),
    (tag(99, 6), "Span field 99", "invalid wire type 6"),
    (tag(99, 7) + bytes(8), "Span field 99", "invalid wire type 7"),
    (b"\x00\x01", "Span field tag", "invalid field number 0"),
    (varint(1 << 29 << 3), "Span field tag", "invalid field number 536870912"),
    (tag(6, 0) + b"\xff" * 10 + b"\x01", "Span.kind (field 6)", "varint longer than 10 bytes"),
    (tag(6, 0) + b"\xff", "Span.kind (field 6)", "truncated varint"),
    (tag(16, 5) + b"\x01", "Span.flags (field 16)", "needs 4 bytes, 1 left in the enclosing "
                                                   "message"),
    (span_attribute(b"d", tag(4, 1) + b"\x00"), "AnyValue.double_value (field 4)",
     "needs 8 bytes, 1 left in the enclosing message"),
])
def test_malformed_fields_are_named(span, reading, problem):
    with pytest.raises(ProtobufError) as caught:
        decode_traces(request_with_span(span))
    assert (caught.value.reading, caught.value.problem) == (reading, problem)


@pytest.mark.parametrize("span, bad", [
    (length_delimited(5, b"caf\xc3"), b"\xc3"),
    (length_delimited(5, b"ok \xff\xfe"), b"\xff"),
    (span_attribute(b"k\xed\xa0\x80", length_delimited(1, b"v")), b"\xed"),
    (span_attribute(b"k", length_delimited(1, b"\x80")), b"\x80"),
])
def test_invalid_utf8_raises_at_the_bad_byte(span, bad):
    data = request_with_span(span)
    with pytest.raises(ProtobufError) as caught:
        decode_traces(data)
    assert caught.value.problem.startswith("invalid UTF-8")
    assert caught.value.offset == data.index(bad)
    with pytest.raises(DecodeError):
        ExportTraceServiceRequest.FromString(data)


def nested_arrays(levels: int) -> bytes:
    """An AnyValue holding arrays ``levels`` AnyValues deep, a string at the bottom."""
    value = length_delimited(1, b"bottom")
    for _ in range(levels - 1):
        value = length_delimited(5, length_delimited(1, value))
    return value


def nested_lists(levels: int) -> bytes:
    """An AnyValue holding key-value lists ``levels`` AnyValues deep."""
    value = length_delimited(1, b"bottom")
    for _ in range(levels - 1):
        pair = length_delimited(1, b"k") + length_delimited(2, value)
        value = length_delimited(6, length_delimited(1, pair))
    return value


def test_nesting_up_to_the_limit_decodes():
    data = request_with_span(span_attribute(b"deep", nested_arrays(MAX_VALUE_DEPTH)))
    value = decode_traces(data)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    value = value["attributes"][0]["value"]
    for _ in range(MAX_VALUE_DEPTH - 1):
        value = value["arrayValue"]["values"][0]
    assert value == {"stringValue": "bottom"}
    shallow = request_with_span(span_attribute(b"k", nested_lists(20)))
    assert decode_traces(shallow) == protobuf_reading(shallow)


@pytest.mark.parametrize("value", [nested_arrays(MAX_VALUE_DEPTH + 1), nested_lists(1000)],
                         ids=["one level too deep", "a thousand levels"])
def test_deeper_nesting_raises_a_protobuf_error(value):
    with pytest.raises(ProtobufError) as caught:
        decode_traces(request_with_span(span_attribute(b"deep", value)))
    assert caught.value.problem == f"AnyValue nested more than {MAX_VALUE_DEPTH} levels deep"


# --- telling protobuf from JSON -------------------------------------------------------------

JSON_TEXTS = {
    "object": b'{"resourceSpans": []}',
    "array": b"[]",
    "JSON Lines": b'{"resourceSpans": []}\n{"resourceSpans": []}\n',
    "byte order mark": b'\xef\xbb\xbf{"resourceSpans": []}',
    "leading spaces": b'  \t{"resourceSpans": []}',
    "leading newline": b'\n{"resourceSpans": []}',
    "leading newlines": b'\n\n\r\n[{"name": "agent"}]',
    "a lone newline": b"\n",
    "empty": b"",
    "the JSON sample": (SAMPLES / "otel-refund.json").read_bytes(),
    "the JSON sample after a newline": b"\n" + (SAMPLES / "otel-refund.json").read_bytes(),
    "the OpenInference sample": (SAMPLES / "openinference-refund.json").read_bytes(),
}
NOT_PROTOBUF = {
    "gzip": b"\x1f\x8b\x08\x00\x00\x00\x00\x00",
    "a truncated message": b"\n\x05abc",
    "a broken first resource_spans": b"\n\x03\x0a\x05a",
    "a frame of JSON": frames(b'{"resourceSpans": []}'),
    "a truncated frame": b"\x00\x00\x00\x05\n\x00",
    "a NUL byte": b"\x00",
}


@pytest.mark.parametrize("data", [*JSON_TEXTS.values(), *NOT_PROTOBUF.values()],
                         ids=[*JSON_TEXTS.keys(), *NOT_PROTOBUF.keys()])
def test_json_text_and_other_bytes_do_not_look_like_protobuf(data):
    assert not looks_like_protobuf(data)


def test_an_export_request_looks_like_protobuf(genai_bytes):
    assert looks_like_protobuf(genai_bytes)
    assert looks_like_protobuf(build(OPENINFERENCE).SerializeToString())
    assert looks_like_protobuf(frames(genai_bytes, genai_bytes))
    assert looks_like_protobuf(request_with_span(b""))
    assert not looks_like_protobuf(genai_bytes[:-1])
    assert not looks_like_protobuf(frames(genai_bytes)[:-1])
