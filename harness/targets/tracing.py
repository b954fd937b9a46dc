"""Evidence from the workflow's own traces: a target with ``trace: otlp``.

A deployed workflow seldom puts its tool calls, sources and approvals in its answer, but it
usually emits OpenTelemetry spans. With ``trace: otlp`` the harness listens for OTLP over HTTP
(``POST /v1/traces``, protobuf or JSON, gzip or not) on 127.0.0.1, starts a trace for each
call and hands the workflow its context:

- an ``http`` target sends the W3C ``traceparent`` header;
- a ``command`` target gets ``TRACEPARENT`` and ``OTEL_EXPORTER_OTLP_ENDPOINT`` /
  ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` in its environment;
- a ``python`` target runs inside the trace's context (the OpenTelemetry API's current
  context, when the workflow has it installed), and the endpoint is in ``os.environ`` before
  the workflow is imported.

After the call the harness waits, at most ``trace_wait_s`` seconds, for the span whose parent
is the call's (the workflow's entry span: exported once it ended, after its children), then
reads the trace with the same importers as ``harness case from-trace`` (OpenTelemetry GenAI
and OpenInference conventions) into tool calls, sources, approvals, model route and prompt
version, merged with what the response itself reports (a field the response reports wins).
The response's ``metadata.trace`` keeps the trace id, whether the spans came, the
conventions read and the span tree, which the report shows.

Spans that never came are never a pass: :func:`spans_missing` tells the runner, which turns
the verdict of every check that needs them into ``error``.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import secrets
import threading
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import InputError, TargetError
from harness.model import Case, TargetResponse
from harness.schema import Number, Text

if TYPE_CHECKING:
    from http.server import BaseHTTPRequestHandler

    from harness.intake.traces.common import Span

# The receiver and the trace importers are imported where a traced target first needs them:
# every run imports this module, few runs trace.

TRACE_OPTIONS = {
    "trace": Text(choices=("otlp",),
                  description="otlp: read the call's tool calls, sources and approvals from the "
                              "spans the workflow exports (OTLP/HTTP to the harness)."),
    "trace_wait_s": Number(minimum=0, maximum=600,
                           description="With trace: most seconds to wait after a call for its "
                                       "spans (default 5)."),
    "trace_port": Number(integer=True, minimum=0, maximum=65535,
                         description="With trace: the 127.0.0.1 port to receive OTLP/HTTP on, "
                                     "for a service started beforehand with its exporter "
                                     "pointed there (default 0: a free port, passed to "
                                     "python and command targets)."),
}
"""Options of the targets that can be traced (python, command, http)."""

DEFAULT_WAIT_S = 5.0
SETTLE_S = 0.05
"""After the entry span came, how long to wait for spans of the same trace still in flight."""
MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_TRACES = 10_000
"""Traces kept for calls still to collect them; the oldest go first (spans of traces no call
started, e.g. the workflow's own background work, are never collected)."""
NEEDS_SPANS = frozenset({"automation_error", "data_exposure", "human_review", "retrieval"})
"""Check categories that read tool calls, sources or approvals."""
READS_OUTPUT_ONLY = frozenset({"latency"})
SPAN_FIELDS = ("tool_calls", "sources", "approvals")


@dataclass(frozen=True, slots=True)
class TraceContext:
    """The trace a call runs in: W3C trace and parent span ids, and where to send spans."""

    trace_id: str
    span_id: str
    endpoint: str

    @classmethod
    def new(cls, endpoint: str) -> TraceContext:
        return cls(secrets.token_hex(16), secrets.token_hex(8), endpoint)

    @property
    def traceparent(self) -> str:
        """The W3C ``traceparent`` value: version 00, sampled."""
        return f"00-{self.trace_id}-{self.span_id}-01"

    def environment(self) -> dict[str, str]:
        """What a command target's process gets: the context and the OTLP endpoints."""
        return {"TRACEPARENT": self.traceparent, **endpoints(self.endpoint)}


def endpoints(endpoint: str) -> dict[str, str]:
    """The OpenTelemetry SDK's environment variables for an OTLP/HTTP collector at
    ``endpoint``."""
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{endpoint}/v1/traces",
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}


CURRENT: contextvars.ContextVar[TraceContext | None] = contextvars.ContextVar(
    "harness_trace", default=None)
"""The trace of the call under way in this thread, for the adapters to pass on."""


def current() -> TraceContext | None:
    return CURRENT.get()


# --- the receiver ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Collected:
    """What came for one call's trace: its spans, whether the entry span came, how long the
    wait took, and what the receiver could not read meanwhile."""

    spans: tuple[Span, ...]
    complete: bool
    waited_s: float
    problems: tuple[str, ...] = ()


class Receiver:
    """An OTLP/HTTP trace receiver on 127.0.0.1 that keeps spans by trace id until a call
    collects them."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._traces: dict[str, list[Span]] = {}
        self._problems: list[str] = []
        self._changed = threading.Condition()
        receiver = self
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: exporters reuse their connection

            def do_POST(self) -> None:
                receiver._post(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the run speaks for its cases; no access log

        self.host = host
        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="harness-otlp-receiver", daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self._server.server_port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # one request ---------------------------------------------------------------------------

    def _post(self, request: BaseHTTPRequestHandler) -> None:
        if request.path.split("?")[0] != "/v1/traces":
            _answer(request, 404, "only /v1/traces is received here")
            return
        try:
            length = int(request.headers.get("Content-Length") or "")
        except ValueError:
            _answer(request, 411, "Content-Length required")
            return
        if length > MAX_BODY_BYTES:
            _answer(request, 413, f"a request over {MAX_BODY_BYTES} bytes")
            request.close_connection = True
            return
        body = request.rfile.read(length)
        content_type = (request.headers.get("Content-Type") or "").split(";")[0].strip()
        try:
            found = self._spans(body, content_type, request.headers.get("Content-Encoding"))
        except ValueError as exc:
            with self._changed:
                self._problems.append(str(exc))
                self._changed.notify_all()
            _answer(request, 400, str(exc), protobuf=content_type != "application/json")
            return
        with self._changed:
            for span in found:
                self._traces.setdefault((span.trace_id or "").lower(), []).append(span)
            while len(self._traces) > MAX_TRACES:
                self._traces.pop(next(iter(self._traces)))
            self._changed.notify_all()
        _answer(request, 200, None, protobuf=content_type != "application/json")

    @staticmethod
    def _spans(body: bytes, content_type: str, encoding: str | None) -> list[Span]:
        """The spans of one export request; ValueError says why it cannot be read."""
        from harness.intake.traces.otlp import ProtobufError, decode_traces
        from harness.intake.traces.spans import otlp_spans

        if encoding and encoding.lower() == "gzip":
            try:
                body = _gunzip(body)
            except (OSError, EOFError, zlib.error) as exc:
                raise ValueError(f"a gzip body that does not decompress: {exc}") from None
        elif encoding and encoding.lower() != "identity":
            raise ValueError(f"Content-Encoding {encoding} is not supported (gzip is)")
        where = Path("OTLP /v1/traces")
        try:
            if content_type == "application/json":
                data: Any = json.loads(body)
            elif content_type in ("application/x-protobuf", "application/protobuf"):
                data = decode_traces(body)
            else:
                raise ValueError(f"Content-Type {content_type or '(none)'}: expected "
                                 "application/x-protobuf or application/json")
            return otlp_spans(data, where) if data else []
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"an OTLP JSON body that is not JSON: {exc}") from None
        except ProtobufError as exc:
            raise ValueError(f"an OTLP protobuf body that does not decode: {exc}") from None
        except InputError as exc:
            raise ValueError(f"an OTLP request that is not one: {exc}") from None

    # one call ------------------------------------------------------------------------------

    def mark(self) -> int:
        """Where the receiver's problems stand, for :meth:`collect` to report those since."""
        with self._changed:
            return len(self._problems)

    def collect(self, context: TraceContext, wait_s: float, *, since: int | None = None
                ) -> Collected:
        """The spans of ``context``'s trace: waits until its entry span (the one whose parent
        is the call's) came and a moment more, or ``wait_s`` passed; forgets the trace. The
        requests it could not read since ``since`` (a :meth:`mark`) come with them."""
        started = time.monotonic()
        deadline = started + wait_s
        key = context.trace_id.lower()
        problems_before = self.mark() if since is None else since
        settle_until: float | None = None
        with self._changed:
            while True:
                found = self._traces.get(key, [])
                now = time.monotonic()
                if settle_until is None and any(
                        (span.parent_id or "").lower() == context.span_id for span in found):
                    settle_until = min(deadline, now + SETTLE_S)
                until = settle_until if settle_until is not None else deadline
                if now >= until:
                    break
                self._changed.wait(until - now)
            spans = tuple(self._traces.pop(key, []))
            problems = tuple(self._problems[problems_before:])
        return Collected(spans, settle_until is not None, time.monotonic() - started, problems)

    def forget(self, context: TraceContext) -> None:
        with self._changed:
            self._traces.pop(context.trace_id.lower(), None)


def _gunzip(body: bytes) -> bytes:
    """Decompress, refusing what would grow past the body cap (a zip bomb)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    data = inflater.decompress(body, MAX_BODY_BYTES + 1)
    if len(data) > MAX_BODY_BYTES or inflater.unconsumed_tail:
        raise OSError(f"decompresses to over {MAX_BODY_BYTES} bytes")
    if not inflater.eof:
        raise EOFError("the gzip stream ends early")
    return data


def _answer(request: BaseHTTPRequestHandler, status: int, problem: str | None, *,
            protobuf: bool = False) -> None:
    """OTLP/HTTP's answer: an empty ExportTraceServiceResponse on success, else a message
    (JSON ``{"message": ...}`` or plain text)."""
    if problem is None:
        body = b"" if protobuf else b"{}"
        kind = "application/x-protobuf" if protobuf else "application/json"
    else:
        body = json.dumps({"message": problem}).encode()
        kind = "application/json"
    request.send_response(status)
    request.send_header("Content-Type", kind)
    request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    request.wfile.write(body)


_RECEIVERS: dict[int, Receiver] = {}
_RECEIVERS_LOCK = threading.Lock()


def receiver(port: int = 0) -> Receiver:
    """This process's receiver on ``port`` (0: on a free one), started on first use. The
    free-port receiver's endpoint is put in ``os.environ``, so a workflow imported afterwards
    (a ``python`` target) exports to it. A port taken by another program is bad input."""
    with _RECEIVERS_LOCK:
        if port not in _RECEIVERS:
            try:
                _RECEIVERS[port] = Receiver(port=port)
            except OSError as exc:
                problem = (f"cannot receive OTLP on 127.0.0.1:{port}: {exc.strerror or exc} "
                           "(trace_port)")
                raise InputError(problem, field="trace_port") from None
            if port == 0:
                os.environ.update(endpoints(_RECEIVERS[port].endpoint))
        return _RECEIVERS[port]


# --- a traced call --------------------------------------------------------------------------


@contextlib.contextmanager
def python_context(context: TraceContext | None) -> Iterator[None]:
    """Run in ``context`` as the OpenTelemetry API's current context (the workflow's spans
    become children of the call's), when the workflow has the API installed."""
    if context is None:
        yield
        return
    try:
        from opentelemetry import context as otel_context  # the workflow's, when installed
        from opentelemetry import trace as otel_trace
    except ImportError:
        yield
        return
    parent = otel_trace.NonRecordingSpan(otel_trace.SpanContext(
        trace_id=int(context.trace_id, 16), span_id=int(context.span_id, 16), is_remote=True,
        trace_flags=otel_trace.TraceFlags(otel_trace.TraceFlags.SAMPLED)))
    token = otel_context.attach(otel_trace.set_span_in_context(parent))
    try:
        yield
    finally:
        otel_context.detach(token)


class TracedTarget:
    """A target whose calls each run in a new trace, read back from the spans it exports."""

    def __init__(self, inner: Any, *, wait_s: float, receiver: Receiver) -> None:
        self.inner = inner
        self.wait_s = wait_s
        self.receiver = receiver

    def call(self, case_input: Any, *, case: Case, timeout_s: float | None) -> TargetResponse:
        context = TraceContext.new(self.receiver.endpoint)
        since = self.receiver.mark()
        token = CURRENT.set(context)
        try:
            response = self.inner.call(case_input, case=case, timeout_s=timeout_s)
        except TargetError:
            self.receiver.forget(context)
            raise
        finally:
            CURRENT.reset(token)
        return merged(response, self.receiver.collect(context, self.wait_s, since=since),
                      context, wait_s=self.wait_s)


def merged(response: TargetResponse, collected: Collected, context: TraceContext, *,
           wait_s: float) -> TargetResponse:
    """The response with what its spans show: each of tool calls, sources and approvals the
    response does not report, from the trace; the trace itself in ``metadata.trace``."""
    trace: dict[str, Any] = {"trace_id": context.trace_id, "waited_s": round(collected.waited_s,
                                                                              3),
                             "spans": span_tree(list(collected.spans))}
    if collected.problems:
        trace["receiver_problems"] = list(collected.problems[:5])
    if not collected.spans:
        trace["status"] = "missing"
        trace["problem"] = (f"no span of trace {context.trace_id} arrived within {wait_s:g} s: "
                            "does the workflow propagate the trace context and export to "
                            f"{context.endpoint}?")
        return replace(response, metadata={**response.metadata, "trace": trace})
    trace["status"] = "complete" if collected.complete else "partial"
    if not collected.complete:
        trace["problem"] = (f"the workflow's entry span (child of span {context.span_id}) did "
                            f"not arrive within {wait_s:g} s: the trace may be partial")
    from harness.intake.traces import import_spans

    try:
        imported = import_spans(list(collected.spans), Path(f"trace {context.trace_id}"))
    except InputError as exc:
        trace["status"] = "unreadable"
        trace["problem"] = str(exc)
        return replace(response, metadata={**response.metadata, "trace": trace})
    trace["format"], trace["convention"] = imported.format, imported.convention
    evidence = imported.evidence
    found = TargetResponse.parse({name: evidence[name] for name in SPAN_FIELDS
                                  if name in evidence})
    fields: dict[str, Any] = {}
    reported = set(response.reported)
    for name in SPAN_FIELDS:
        if name not in response.reported and name in evidence:
            fields[name] = getattr(found, name)
            reported.add(name)
    for name in ("model_route", "prompt_version"):
        if evidence.get(name) and name not in response.metadata:
            fields.setdefault("metadata", {})[name] = evidence[name]
    if not response.output and evidence.get("output"):
        fields["output"] = str(evidence["output"])
        reported.add("output")
    trace["read"] = sorted(name for name in SPAN_FIELDS if name in evidence)
    metadata = {**response.metadata, **fields.pop("metadata", {}), "trace": trace}
    return replace(response, **fields, metadata=metadata, reported=frozenset(reported))


def span_tree(spans: list[Span]) -> list[dict[str, Any]]:
    """The spans in tree order (each after its parent, children by start time) with their
    depth, for the report: name, ids, kind, start and duration."""
    ids = {span.span_id for span in spans if span.span_id}
    children: dict[str | None, list[Span]] = {}
    for span in spans:
        parent = span.parent_id if span.parent_id in ids else None
        children.setdefault(parent, []).append(span)
    rows: list[dict[str, Any]] = []

    def walk(parent: str | None, depth: int) -> None:
        for span in sorted(children.get(parent, []),
                           key=lambda s: (s.start is None, s.start or 0, s.name)):
            took = ((span.end - span.start).total_seconds() * 1000
                    if span.start and span.end else None)
            rows.append({"name": span.name, "span_id": span.span_id,
                         "parent_id": span.parent_id, "depth": depth,
                         "kind": span.kind or None,
                         "start": span.start.isoformat() if span.start else None,
                         "duration_ms": round(took, 3) if took is not None else None})
            if span.span_id and depth < 64:
                walk(span.span_id, depth + 1)

    walk(None, 0)
    return rows


def spans_missing(response: TargetResponse | None) -> str | None:
    """Why the call's spans cannot vouch for it (None when they can, or were not asked for)."""
    if response is None:
        return None
    trace = response.metadata.get("trace")
    if not isinstance(trace, Mapping) or trace.get("status") not in ("missing", "unreadable"):
        return None
    return str(trace.get("problem") or "the call's spans did not arrive")


def needs_spans(kind: str, category: str | None) -> bool:
    """Whether a check of ``kind`` reads what the spans carry (tool calls, sources,
    approvals): by its category; a project's own kinds (no category) are assumed to."""
    if kind in READS_OUTPUT_ONLY:
        return False
    return category is None or category in NEEDS_SPANS


def traced(inner: Any, options: Mapping[str, Any]) -> Any:
    """``inner`` traced as its options ask (``trace: otlp``), else ``inner`` itself."""
    if options.get("trace") != "otlp":
        return inner
    return TracedTarget(inner, wait_s=float(options.get("trace_wait_s", DEFAULT_WAIT_S)),
                        receiver=receiver(int(options.get("trace_port", 0))))
