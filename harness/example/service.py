"""The refund assistant as a team deploys it: an HTTP service instrumented with OpenTelemetry.

``POST /respond`` takes the request JSON the Python target takes and answers only what a
customer sees: ``{"output": ..., "metadata": {...}}``. What the assistant did (the sources it
retrieved, the tools it called, the approvals it waited for, the model and prompt it ran) is
not in the answer: it leaves as OpenTelemetry spans, following the GenAI semantic conventions,
exported over OTLP/HTTP to ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (the SDK's own variable), in
the trace of the caller's W3C ``traceparent`` header. A suite's ``http`` target with ``trace:
otlp`` reads them back::

    python -m harness.example.service --release post-fix --port 8752

It needs the OpenTelemetry SDK and OTLP exporter: ``pip install 'incident-harness[otel]'``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from harness.example.refund_assistant import RELEASES, respond

SCHEMA_URL = "https://opentelemetry.io/schemas/1.37.0"
MAX_REQUEST_BYTES = 1024 * 1024


def tracer_provider(release: str) -> Any:
    """A tracer provider exporting over OTLP/HTTP to the endpoint the environment names, in
    batches sent off the request's path (an unreachable collector never slows an answer)
    every 50 ms, so a caller waiting for the spans waits little."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": "refund-assistant",
                                "service.version": release})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(), schedule_delay_millis=50))
    return provider


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def answer(request: Mapping[str, Any], *, release: str, tracer: Any,
           headers: Mapping[str, str]) -> dict[str, Any]:
    """Answer one request, recording what the assistant did as spans of the caller's trace."""
    from opentelemetry.propagate import extract

    result = respond(request, release=release)
    metadata = result["metadata"]
    messages = request.get("messages") or [{"role": "user", "content": request.get("message")}]
    with tracer.start_as_current_span(
            "invoke_agent refund-assistant", context=extract(dict(headers)),
            attributes={"gen_ai.operation.name": "invoke_agent",
                        "gen_ai.agent.name": "refund-assistant",
                        "gen_ai.provider.name": "example",
                        "gen_ai.request.model": metadata["model_route"],
                        "gen_ai.prompt.version": metadata["prompt_version"],
                        "gen_ai.input.messages": _json(_parts(messages)),
                        "gen_ai.output.messages": _json(_parts(
                            [{"role": "assistant", "content": result["output"]}]))}):
        if result["sources"]:
            with tracer.start_as_current_span(
                    "retrieval policy-index",
                    attributes={"gen_ai.operation.name": "retrieval",
                                "gen_ai.retrieval.documents": _json(result["sources"])}):
                pass
        approvals = list(result["approvals"])
        for call in result["tool_calls"]:
            with tracer.start_as_current_span(
                    f"execute_tool {call['name']}",
                    attributes={"gen_ai.operation.name": "execute_tool",
                                "gen_ai.tool.name": call["name"],
                                "gen_ai.tool.call.arguments": _json(call["args"]),
                                "gen_ai.tool.call.result": _json(call["result"])}):
                pass
            step = call["args"].get("step") if "approv" in call["name"] else None
            for approval in [a for a in approvals if a["step"] == step]:
                _approval_span(tracer, approval)
                approvals.remove(approval)
        for approval in approvals:  # decided outside a tool call
            _approval_span(tracer, approval)
    return {"output": result["output"], "metadata": {"latency_ms": metadata["latency_ms"]}}


def _approval_span(tracer: Any, approval: Mapping[str, Any]) -> None:
    attributes = {f"approval.{key}": value for key, value in approval.items()
                  if value is not None}
    with tracer.start_as_current_span(f"human-approval: {approval['step']}",
                                      attributes=attributes):
        pass


def _parts(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Messages in the GenAI conventions' parts format (1.36 and later)."""
    return [{"role": m.get("role", "user"),
             "parts": [{"type": "text", "content": str(m.get("content") or "")}]}
            for m in messages]


def serve(release: str, port: int, *, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """A server for ``release`` on ``host:port`` (port 0: any free one), not yet started."""
    provider = tracer_provider(release)
    tracer = provider.get_tracer("harness.example.service", schema_url=SCHEMA_URL)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            if self.path != "/respond":
                self._send(404, {"error": "POST /respond"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_REQUEST_BYTES:
                self._send(413, {"error": "request too large"})
                return
            try:
                request = json.loads(self.rfile.read(length) or b"{}")
                if not isinstance(request, dict):
                    raise ValueError("expected a JSON object")
                # header names are case-insensitive; the propagator looks up "traceparent"
                body = answer(request, release=release, tracer=tracer,
                              headers={k.lower(): v for k, v in self.headers.items()})
            except ValueError as exc:
                self._send(400, {"error": str(exc)})
                return
            self._send(200, body)

        def _send(self, status: int, body: Mapping[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return ThreadingHTTPServer((host, port), Handler)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.example.service",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--release", choices=sorted(RELEASES), default="post-fix")
    parser.add_argument("--port", type=int, default=8752, help="0: any free port")
    args = parser.parse_args(argv)
    server = serve(args.release, args.port)
    print(f"refund-assistant {args.release} listening on "
          f"http://127.0.0.1:{server.server_port}/respond", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
