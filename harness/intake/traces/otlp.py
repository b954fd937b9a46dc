"""OTLP protobuf trace exports read as the OTLP/JSON mapping, without the protobuf runtime.

Teams export traces as binary protobuf: the body of an OTLP/HTTP ``ExportTraceServiceRequest``
(a captured POST to ``/v1/traces``), a serialized ``TracesData``, or the file an OpenTelemetry
Collector's file exporter writes with ``format: proto``. The trace importer reads OTLP JSON, so
:func:`decode_traces` turns the binary message into exactly the mapping the OTLP/JSON encoding
gives for the same data (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding):

- keys are lowerCamelCase (``resourceSpans``, ``startTimeUnixNano``, ...);
- ``traceId``, ``spanId`` and ``parentSpanId`` (of spans and of links) are lowercase hex;
- 64-bit integers (``intValue``, the ``*UnixNano`` times) are decimal strings;
- enums (``kind``, ``status.code``) are integers;
- ``bytesValue`` is base64, a double is a number or ``"NaN"``, ``"Infinity"``, ``"-Infinity"``;
- a field absent in the binary is absent in the mapping, and so is a scalar holding its proto3
  default; a sub-message, and a member of ``AnyValue``'s oneof, is kept even when empty.

That is what ``google.protobuf.json_format.MessageToDict`` gives (with integer enums), hex ids
apart; the protobuf semantics follow too: unknown fields and fields of an unexpected wire type
are skipped, a repeated occurrence of a singular message merges into the first, the last member
of a oneof wins.

The protobuf runtime is deliberately not a dependency: the AI stacks our users run pin its
version, and the wire format is small and stable. The input is untrusted, so every problem is a
:class:`ProtobufError` naming the byte offset and what was being read, ``AnyValue`` nesting is
bounded by :data:`MAX_VALUE_DEPTH`, and strings must be valid UTF-8. Size limits are the
caller's.
"""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["MAX_VALUE_DEPTH", "ProtobufError", "decode_traces", "looks_like_protobuf"]

MAX_VALUE_DEPTH: Final = 64
"""How many ``AnyValue`` messages may nest (arrays in arrays, lists in lists) before the
decoder gives up: the only recursive type, and the one an attacker would nest."""

_VARINT, _I64, _LEN, _SGROUP, _EGROUP, _I32 = range(6)
_MAX_FIELD_NUMBER: Final = (1 << 29) - 1
_MAX_VARINT_BYTES: Final = 10
_MASK32: Final = (1 << 32) - 1
_MASK64: Final = (1 << 64) - 1
_FRAME_HEADER: Final = 4
_REQUEST: Final = "ExportTraceServiceRequest"


class ProtobufError(ValueError):
    """Malformed protobuf: says what was being read and at which byte offset."""

    def __init__(self, problem: str, *, offset: int, reading: str) -> None:
        self.problem = problem
        self.offset = offset
        self.reading = reading
        super().__init__(f"byte {offset}: {reading}: {problem}")


def decode_traces(data: bytes) -> dict[str, Any]:
    """An OTLP protobuf ExportTraceServiceRequest (or TracesData, the same field 1) as the
    OTLP/JSON mapping: ``{"resourceSpans": [...]}``, or ``{}`` for a message without spans.

    A Collector file exporter's ``format: proto`` file, messages each after a 4-byte big-endian
    length, reads as one mapping with all their ``resourceSpans``. Its first byte tells it
    apart: below 8 for frames under 128 MiB, where a protobuf message cannot start (the field
    number would be 0).
    Raises :class:`ProtobufError` for anything malformed.
    """
    decoded: dict[str, Any] = {}
    for start, stop in _frames(data):
        _decode(data, start, stop, _REQUEST, decoded, 0)
    return decoded


def looks_like_protobuf(data: bytes) -> bool:
    """Whether a file's bytes are plausibly an OTLP protobuf message rather than JSON text: it
    starts with tag ``0x0a`` (resource_spans) or a file exporter's frame length, where JSON
    starts with whitespace, ``{``, ``[`` or a byte order mark; and its fields, and those of its
    first resource_spans, are well formed and end exactly where their message ends.

    ``0x0a`` is also a newline, hence the structural check. It skips from field to field and
    reads no values, so it costs a few steps per resource_spans and scope_spans.
    """
    if not data:
        return False
    if data[0] == 0x0A:
        return _plausible(data, 0, len(data))
    if data[0] >= 0x08:
        return False
    try:
        frames = _frames(data)
    except ProtobufError:
        return False
    start, stop = frames[0]
    return start == stop or (data[start] == 0x0A and _plausible(data, start, stop))


def _frames(data: bytes) -> list[tuple[int, int]]:
    """Where the messages lie: all of ``data``, or each frame of a file exporter's file."""
    if not data or data[0] >= 0x08:
        return [(0, len(data))]
    frames = []
    pos = 0
    while pos < len(data):
        left = len(data) - pos - _FRAME_HEADER
        if left < 0:
            problem = f"truncated 4-byte frame length: {len(data) - pos} bytes left"
            raise ProtobufError(problem, offset=pos, reading="file exporter frame")
        size = int.from_bytes(data[pos:pos + _FRAME_HEADER], "big")
        if size > left:
            problem = f"frame of {size} bytes runs past the end of the data ({left} bytes left)"
            raise ProtobufError(problem, offset=pos, reading="file exporter frame")
        pos += _FRAME_HEADER
        frames.append((pos, pos + size))
        pos += size
    return frames


def _plausible(data: bytes, start: int, stop: int) -> bool:
    """Whether a message's fields, and those of its first field's value, are well formed."""
    try:
        first = _walk(data, start, stop)
        if first is not None:
            _walk(data, *first)
    except _Malformed:
        return False
    return True


def _walk(data: bytes, start: int, end: int) -> tuple[int, int] | None:
    """Skip over every field of a message, raising :class:`_Malformed` unless they end exactly
    at ``end``; return where the first field's value lies if it is length-delimited."""
    first = None
    pos = start
    while pos < end:
        tag_at = pos
        tag, pos = _varint(data, pos, end)
        number, wire = tag >> 3, tag & 7
        if not 0 < number <= _MAX_FIELD_NUMBER:
            raise _Malformed(f"invalid field number {number}", tag_at)
        if tag_at == start and wire == _LEN:
            length, value_at = _varint(data, pos, end)
            first = value_at, _advance(value_at, length, end, pos)
            pos = first[1]
        else:
            pos = _skip(data, pos, end, wire, tag_at)
    return first


class _Malformed(Exception):
    """A wire-level problem; the message being decoded adds what it was reading."""

    def __init__(self, problem: str, offset: int) -> None:
        super().__init__(problem)
        self.problem = problem
        self.offset = offset


def _decode(data: bytes, pos: int, end: int, name: str, out: dict[str, Any],
            depth: int) -> None:
    """Decode the fields of message ``name`` between ``pos`` and ``end`` into ``out``.

    ``out`` may already hold fields: a singular message met twice merges, as in protobuf.
    ``depth`` counts the ``AnyValue`` messages around this one.
    """
    fields = _MESSAGES[name]
    field: _Field | None = None
    number = 0
    try:
        while pos < end:
            field, number = None, 0
            tag_at = pos
            tag, pos = _varint(data, pos, end)
            if not 0 < tag >> 3 <= _MAX_FIELD_NUMBER:
                raise _Malformed(f"invalid field number {tag >> 3}", tag_at)
            number, wire = tag >> 3, tag & 7
            found = fields.get(number)
            if found is None or found.wire_type != wire:
                pos = _skip(data, pos, end, wire, tag_at)
                continue
            field = found
            if field.message:
                length_at = pos
                length, pos = _varint(data, pos, end)
                stop = _advance(pos, length, end, length_at)
                nested = depth + (field.message == "AnyValue")
                if nested > MAX_VALUE_DEPTH:
                    problem = f"AnyValue nested more than {MAX_VALUE_DEPTH} levels deep"
                    raise _Malformed(problem, pos)
                _decode(data, pos, stop, field.message, _target(out, field), nested)
                pos = stop
            else:
                _wire, read, default = _SCALARS[field.kind]
                value, pos = read(data, pos, end)
                _store(out, field, value, default)
    except _Malformed as err:
        if field is not None:
            reading = f"{name}.{field.name} (field {field.number})"
        elif number:
            reading = f"{name} field {number}"
        else:
            reading = f"{name} field tag"
        raise ProtobufError(err.problem, offset=err.offset, reading=reading) from None


def _target(out: dict[str, Any], field: _Field) -> dict[str, Any]:
    """The mapping a message field's next occurrence decodes into."""
    if field.repeated:
        fresh: dict[str, Any] = {}
        out.setdefault(field.key, []).append(fresh)
        return fresh
    if field.oneof and field.key not in out:
        out.clear()
    target: dict[str, Any] = out.setdefault(field.key, {})
    return target


def _store(out: dict[str, Any], field: _Field, value: Any, default: Any) -> None:
    """Keep a scalar as protobuf would: appended, replacing the oneof, or dropped if default."""
    if field.repeated:
        out.setdefault(field.key, []).append(value)
    elif field.oneof:
        if field.key not in out:
            out.clear()
        out[field.key] = value
    elif value == default:
        out.pop(field.key, None)
    else:
        out[field.key] = value


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """A base-128 varint at ``pos``, kept to 64 bits as protobuf does, and where it ends."""
    if pos < end and data[pos] < 0x80:
        return data[pos], pos + 1
    start = pos
    value = shift = 0
    while pos < end:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value & _MASK64, pos
        shift += 7
        if pos - start == _MAX_VARINT_BYTES:
            raise _Malformed(f"varint longer than {_MAX_VARINT_BYTES} bytes", start)
    raise _Malformed("truncated varint", start)


def _advance(pos: int, size: int, end: int, at: int) -> int:
    """Where ``size`` bytes from ``pos`` end; ``at`` is where the item's encoding began."""
    if size > end - pos:
        raise _Malformed(f"needs {size} bytes, {end - pos} left in the enclosing message", at)
    return pos + size


def _skip(data: bytes, pos: int, end: int, wire: int, tag_at: int) -> int:
    """Where an unwanted field's value, starting at ``pos``, ends."""
    if wire == _VARINT:
        return _varint(data, pos, end)[1]
    if wire == _I64:
        return _advance(pos, 8, end, pos)
    if wire == _I32:
        return _advance(pos, 4, end, pos)
    if wire == _LEN:
        length, after = _varint(data, pos, end)
        return _advance(after, length, end, pos)
    if wire in (_SGROUP, _EGROUP):
        raise _Malformed(f"groups (wire type {wire}) are not supported", tag_at)
    raise _Malformed(f"invalid wire type {wire}", tag_at)


def _length_delimited(data: bytes, pos: int, end: int) -> tuple[bytes, int]:
    length, start = _varint(data, pos, end)
    stop = _advance(start, length, end, pos)
    return data[start:stop], stop


def _read_string(data: bytes, pos: int, end: int) -> tuple[str, int]:
    raw, stop = _length_delimited(data, pos, end)
    try:
        return raw.decode("utf-8"), stop
    except UnicodeDecodeError as err:
        raise _Malformed(f"invalid UTF-8 ({err.reason})", stop - len(raw) + err.start) from None


def _read_id(data: bytes, pos: int, end: int) -> tuple[str, int]:
    raw, stop = _length_delimited(data, pos, end)
    return raw.hex(), stop


def _read_bytes(data: bytes, pos: int, end: int) -> tuple[str, int]:
    raw, stop = _length_delimited(data, pos, end)
    return base64.b64encode(raw).decode("ascii"), stop


def _read_uint32(data: bytes, pos: int, end: int) -> tuple[int, int]:
    value, stop = _varint(data, pos, end)
    return value & _MASK32, stop


def _read_int32(data: bytes, pos: int, end: int) -> tuple[int, int]:
    value, stop = _varint(data, pos, end)
    value &= _MASK32
    return value - (1 << 32) if value >> 31 else value, stop


def _read_int64(data: bytes, pos: int, end: int) -> tuple[str, int]:
    value, stop = _varint(data, pos, end)
    return str(value - (1 << 64) if value >> 63 else value), stop


def _read_bool(data: bytes, pos: int, end: int) -> tuple[bool, int]:
    value, stop = _varint(data, pos, end)
    return value != 0, stop


def _read_fixed64(data: bytes, pos: int, end: int) -> tuple[str, int]:
    stop = _advance(pos, 8, end, pos)
    return str(int.from_bytes(data[pos:stop], "little")), stop


def _read_fixed32(data: bytes, pos: int, end: int) -> tuple[int, int]:
    stop = _advance(pos, 4, end, pos)
    return int.from_bytes(data[pos:stop], "little"), stop


def _read_double(data: bytes, pos: int, end: int) -> tuple[float | str, int]:
    stop = _advance(pos, 8, end, pos)
    (value,) = struct.unpack_from("<d", data, pos)
    if math.isnan(value):
        return "NaN", stop
    if math.isinf(value):
        return ("Infinity" if value > 0 else "-Infinity"), stop
    return value, stop


_SCALARS: Final[dict[str, tuple[int, Callable[[bytes, int, int], tuple[Any, int]], Any]]] = {
    # kind: (wire type, reader returning the JSON value and where it ends, the proto3 default)
    "string": (_LEN, _read_string, ""),
    "id": (_LEN, _read_id, ""),
    "bytes": (_LEN, _read_bytes, ""),
    "uint32": (_VARINT, _read_uint32, 0),
    "int32": (_VARINT, _read_int32, 0),
    "enum": (_VARINT, _read_int32, 0),
    "int64": (_VARINT, _read_int64, "0"),
    "bool": (_VARINT, _read_bool, False),
    "fixed64": (_I64, _read_fixed64, "0"),
    "double": (_I64, _read_double, 0.0),
    "fixed32": (_I32, _read_fixed32, 0),
}


@dataclass(frozen=True, slots=True)
class _Field:
    """One field of a message: number, proto name, JSON key, and how its value is encoded.

    ``message`` names the type of a message field; any other field has a scalar ``kind`` of
    :data:`_SCALARS`. ``oneof`` marks a member of the message's only oneof, as in ``AnyValue``
    whose fields all belong to ``value``: setting one member drops every other field.
    """

    number: int
    name: str
    key: str
    kind: str
    wire_type: int
    message: str = ""
    repeated: bool = False
    oneof: bool = False


def _field(number: int, name: str, kind: str, *, repeated: bool = False,
           oneof: bool = False) -> _Field:
    """A field of scalar ``kind``, or of the message type ``kind`` if it starts upper-case."""
    first, *rest = name.split("_")
    key = first + "".join(part.title() for part in rest)
    if kind[0].isupper():
        return _Field(number, name, key, "message", _LEN, kind, repeated, oneof)
    return _Field(number, name, key, kind, _SCALARS[kind][0], "", repeated, oneof)


def _message(*fields: _Field) -> dict[int, _Field]:
    return {field.number: field for field in fields}


def _attributes(number: int) -> _Field:
    return _field(number, "attributes", "KeyValue", repeated=True)


def _dropped(number: int, what: str = "attributes") -> _Field:
    return _field(number, f"dropped_{what}_count", "uint32")


_MESSAGES: Final[dict[str, dict[int, _Field]]] = {
    _REQUEST: _message(_field(1, "resource_spans", "ResourceSpans", repeated=True)),
    "ResourceSpans": _message(
        _field(1, "resource", "Resource"),
        _field(2, "scope_spans", "ScopeSpans", repeated=True),
        _field(3, "schema_url", "string"),
    ),
    "Resource": _message(
        _attributes(1),
        _dropped(2),
        _field(3, "entity_refs", "EntityRef", repeated=True),
    ),
    "EntityRef": _message(
        _field(1, "schema_url", "string"),
        _field(2, "type", "string"),
        _field(3, "id_keys", "string", repeated=True),
        _field(4, "description_keys", "string", repeated=True),
    ),
    "ScopeSpans": _message(
        _field(1, "scope", "InstrumentationScope"),
        _field(2, "spans", "Span", repeated=True),
        _field(3, "schema_url", "string"),
    ),
    "InstrumentationScope": _message(
        _field(1, "name", "string"),
        _field(2, "version", "string"),
        _attributes(3),
        _dropped(4),
    ),
    "Span": _message(
        _field(1, "trace_id", "id"),
        _field(2, "span_id", "id"),
        _field(3, "trace_state", "string"),
        _field(4, "parent_span_id", "id"),
        _field(5, "name", "string"),
        _field(6, "kind", "enum"),
        _field(7, "start_time_unix_nano", "fixed64"),
        _field(8, "end_time_unix_nano", "fixed64"),
        _attributes(9),
        _dropped(10),
        _field(11, "events", "Span.Event", repeated=True),
        _dropped(12, "events"),
        _field(13, "links", "Span.Link", repeated=True),
        _dropped(14, "links"),
        _field(15, "status", "Status"),
        _field(16, "flags", "fixed32"),
    ),
    "Span.Event": _message(
        _field(1, "time_unix_nano", "fixed64"),
        _field(2, "name", "string"),
        _attributes(3),
        _dropped(4),
    ),
    "Span.Link": _message(
        _field(1, "trace_id", "id"),
        _field(2, "span_id", "id"),
        _field(3, "trace_state", "string"),
        _attributes(4),
        _dropped(5),
        _field(6, "flags", "fixed32"),
    ),
    "Status": _message(_field(2, "message", "string"), _field(3, "code", "enum")),
    "KeyValue": _message(
        _field(1, "key", "string"),
        _field(2, "value", "AnyValue"),
        _field(3, "key_strindex", "int32"),
    ),
    "AnyValue": _message(
        _field(1, "string_value", "string", oneof=True),
        _field(2, "bool_value", "bool", oneof=True),
        _field(3, "int_value", "int64", oneof=True),
        _field(4, "double_value", "double", oneof=True),
        _field(5, "array_value", "ArrayValue", oneof=True),
        _field(6, "kvlist_value", "KeyValueList", oneof=True),
        _field(7, "bytes_value", "bytes", oneof=True),
        _field(8, "string_value_strindex", "int32", oneof=True),
    ),
    "ArrayValue": _message(_field(1, "values", "AnyValue", repeated=True)),
    "KeyValueList": _message(_field(1, "values", "KeyValue", repeated=True)),
}
