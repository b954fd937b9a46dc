"""Targets traced over OTLP: the workflow's own spans carry its tool calls, sources and
approvals; spans that never came are an error, never a pass."""

from __future__ import annotations

import gzip
import json
import re
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, copy_example
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

from harness.targets.tracing import Receiver, TraceContext, span_tree

# --- the receiver, fed by OpenTelemetry's own SDK exporter ----------------------------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


def sdk_tracer(endpoint: str, *, compression: Compression = Compression.NoCompression) -> Any:
    provider = TracerProvider(resource=Resource.create({"service.name": "refund-assistant"}))
    exporter = OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces", compression=compression)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("test", schema_url="https://opentelemetry.io/schemas/1.37.0")


def in_call(context: TraceContext) -> Any:
    """The OpenTelemetry context of a workflow called in ``context``'s trace."""
    return set_span_in_context(NonRecordingSpan(SpanContext(
        int(context.trace_id, 16), int(context.span_id, 16), is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED))))


def agent_run(tracer: Any, context: TraceContext, *, refund: float = 640.0) -> None:
    """What an instrumented agent exports for one request: its entry span, a tool call and an
    approval, per the GenAI conventions."""
    with tracer.start_as_current_span("invoke_agent refund-assistant", context=in_call(context),
                                      attributes={"gen_ai.operation.name": "invoke_agent",
                                                  "gen_ai.request.model": "support-large"}):
        with tracer.start_as_current_span("execute_tool request_approval", attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "request_approval",
                "gen_ai.tool.call.arguments": json.dumps({"step": "refund_over_threshold"}),
                "gen_ai.tool.call.result": json.dumps({"status": "approved"})}):
            pass
        with tracer.start_as_current_span("execute_tool issue_refund", attributes={
                "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "issue_refund",
                "gen_ai.tool.call.arguments": json.dumps({"order_id": "A-1005",
                                                          "amount": refund})}):
            pass


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_the_sdk_exporters_protobuf_is_received_and_collected_by_trace(receiver, compression):
    tracer = sdk_tracer(receiver.endpoint, compression=compression)
    mine, other = TraceContext.new(receiver.endpoint), TraceContext.new(receiver.endpoint)
    agent_run(tracer, mine)
    agent_run(tracer, other, refund=1.0)
    collected = receiver.collect(mine, wait_s=5)
    assert collected.complete and collected.problems == ()
    assert sorted(span.name for span in collected.spans) == [
        "execute_tool issue_refund", "execute_tool request_approval",
        "invoke_agent refund-assistant"]
    assert {span.trace_id for span in collected.spans} == {mine.trace_id}
    tree = span_tree(list(collected.spans))
    assert [(row["name"], row["depth"]) for row in tree] == [
        ("invoke_agent refund-assistant", 0), ("execute_tool request_approval", 1),
        ("execute_tool issue_refund", 1)]
    assert len(receiver.collect(other, wait_s=1).spans) == 3  # kept apart, until collected
    assert receiver.collect(mine, wait_s=0).spans == ()  # a trace is collected once


def post(endpoint: str, body: bytes, content_type: str, **headers: str) -> tuple[int, bytes]:
    request = urllib.request.Request(f"{endpoint}/v1/traces", data=body, method="POST",
                                     headers={"Content-Type": content_type, **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def otlp_json(context: TraceContext, *spans: tuple[str, str, str | None]) -> bytes:
    """An OTLP/JSON request (the spec's encoding: hex ids, nanosecond strings)."""
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name",
                                     "value": {"stringValue": "refund-assistant"}}]},
        "scopeSpans": [{"scope": {"name": "manual"}, "spans": [
            {"traceId": context.trace_id.upper(), "spanId": span_id,
             "parentSpanId": parent or "", "name": name, "kind": 1,
             "startTimeUnixNano": "1765000000000000000", "endTimeUnixNano": "1765000000500000000",
             "attributes": [{"key": "gen_ai.operation.name",
                             "value": {"stringValue": "execute_tool"}},
                            {"key": "gen_ai.tool.name", "value": {"stringValue": name}}]}
            for name, span_id, parent in spans]}]}]}).encode()


def test_otlp_json_is_received_too_and_trace_ids_match_in_any_case(receiver):
    context = TraceContext.new(receiver.endpoint)
    status, body = post(receiver.endpoint, otlp_json(
        context, ("lookup_order", "00f067aa0ba902b7", context.span_id)), "application/json")
    assert (status, json.loads(body)) == (200, {})
    collected = receiver.collect(context, wait_s=2)
    assert collected.complete and [s.name for s in collected.spans] == ["lookup_order"]


@pytest.mark.parametrize(("body", "content_type", "headers", "status", "said"), [
    (b"<xml/>", "text/xml", {}, 400, "Content-Type text/xml"),
    (b"{not json", "application/json", {}, 400, "not JSON"),
    (b"\x0a\x05\x0a\x03\xff\xff\xff", "application/x-protobuf", {}, 400, "does not decode"),
    (gzip.compress(b"\0" * (17 * 1024 * 1024)), "application/x-protobuf",
     {"Content-Encoding": "gzip"}, 400, "decompresses to over"),
    (b"{}", "application/json", {"Content-Encoding": "br"}, 400, "br is not supported"),
])
def test_what_cannot_be_read_is_refused_and_remembered_for_the_call(
        receiver, body, content_type, headers, status, said):
    context = TraceContext.new(receiver.endpoint)
    since = receiver.mark()
    got, answer = post(receiver.endpoint, body, content_type, **headers)
    assert got == status and said in json.loads(answer)["message"]
    collected = receiver.collect(context, wait_s=0.1, since=since)
    assert not collected.spans and any(said in p for p in collected.problems)


def test_only_the_traces_path_is_served(receiver):
    request = urllib.request.Request(f"{receiver.endpoint}/v1/logs", data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 404


def test_collect_waits_for_the_entry_span_and_no_longer(receiver):
    context = TraceContext.new(receiver.endpoint)

    def late() -> None:
        time.sleep(0.3)
        post(receiver.endpoint, otlp_json(context, ("child", "1111111111111111",
                                                    "2222222222222222")), "application/json")
        time.sleep(0.2)
        post(receiver.endpoint, otlp_json(context, ("entry", "2222222222222222",
                                                    context.span_id)), "application/json")

    sender = threading.Thread(target=late)
    sender.start()
    collected = receiver.collect(context, wait_s=10)
    sender.join()
    assert collected.complete and 0.45 < collected.waited_s < 5
    assert sorted(s.name for s in collected.spans) == ["child", "entry"]
    orphan = TraceContext.new(receiver.endpoint)  # the entry span never comes: partial
    post(receiver.endpoint, otlp_json(orphan, ("child", "3333333333333333", "4444444444444444")),
         "application/json")
    partial = receiver.collect(orphan, wait_s=0.3)
    assert not partial.complete and len(partial.spans) == 1 and partial.waited_s >= 0.3


# --- traced targets, end to end -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def harness(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=300, check=False)


class Services:
    """The example refund assistant served over HTTP, one process per release, exporting its
    spans to ``otlp_port``."""

    def __init__(self, otlp_port: int) -> None:
        self.otlp_port = otlp_port
        self.processes: list[subprocess.Popen[str]] = []
        self.ports: dict[str, int] = {}

    def start(self, release: str) -> int:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{self.otlp_port}",
               "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
        process = subprocess.Popen(
            [sys.executable, "-m", "harness.example.service", "--release", release,
             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env=env)
        self.processes.append(process)
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)/respond", line)
        assert found, line
        self.ports[release] = int(found.group(1))
        return self.ports[release]

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
            process.wait(timeout=10)


@pytest.fixture
def services() -> Iterator[Services]:
    running = Services(free_port())
    yield running
    running.stop()


def service_suite() -> str:
    """The service suite the README gives, as written there."""
    readme = (REPO / "README.md").read_text()
    block = re.search(r"```yaml\n# suites/refund-assistant-service\.yaml\n(.*?)```", readme,
                      re.DOTALL)
    assert block, "the README shows suites/refund-assistant-service.yaml"
    return block.group(1)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_example(tmp_path / "project")


def write_service_suite(project: Path, services: Services, **extra: str) -> Path:
    text = service_suite()
    for release in ("pre-fix", "post-fix", "next-release"):
        port = services.start(release)
        text = text.replace(f"http://127.0.0.1:{_readme_port(release)}/respond",
                            f"http://127.0.0.1:{port}/respond")
    text = text.replace("trace_port: 4318", f"trace_port: {services.otlp_port}")
    for key, value in extra.items():
        text = text.replace("    trace: otlp\n", f"    trace: otlp\n    {key}: {value}\n")
    path = project / "suites" / "refund-assistant-service.yaml"
    path.write_text(text)
    return path


def _readme_port(release: str) -> int:
    return {"pre-fix": 8751, "post-fix": 8752, "next-release": 8753}[release]


def verdicts(run: Path) -> dict[str, tuple[str, list[tuple[str, str]]]]:
    found = {}
    for line in run.read_text().splitlines():
        data = json.loads(line)
        if data["type"] == "case":
            found[data["case_id"]] = (data["verdict"], [
                (check["kind"], check["verdict"]) for trial in data["trials"]
                for check in trial["checks"]])
    return found


def decision_of(done: subprocess.CompletedProcess[str]) -> tuple[int, str, list[tuple]]:
    body = json.loads(done.stdout)
    return (done.returncode, body["decision"],
            [(r["case_id"], r["rule"], [c["kind"] for c in r["checks"]])
             for r in body["reasons"] if r["rule"] != "signoff_missing"])


def test_validating_the_instrumented_service_decides_as_the_python_target(project, services):
    suite = write_service_suite(project, services)
    for baseline, candidate in (("pre-fix", "post-fix"), ("post-fix", "next-release")):
        python = harness("validate", "suites/refund-assistant.yaml", "--baseline", baseline,
                         "--candidate", candidate, "--format", "json", cwd=project)
        served = harness("validate", str(suite.relative_to(project)), "--baseline", baseline,
                         "--candidate", candidate, "--format", "json", cwd=project)
        assert served.returncode in (0, 1, 3), served.stderr
        assert decision_of(served) == decision_of(python)
        for side in ("baseline", "candidate"):
            served_run = Path(json.loads(served.stdout)[side]["path"])
            python_run = Path(json.loads(python.stdout)[side]["path"])
            assert verdicts(served_run) == verdicts(python_run)
    # the spans, not the answer, carried the tool calls and approvals
    record = Path(json.loads(served.stdout)["candidate"]["path"])
    (case,) = [json.loads(line) for line in record.read_text().splitlines()
               if '"case_id": "INC-2026-017"' in line]
    response = case["trials"][0]["response"]
    assert [call["name"] for call in response["tool_calls"]] == [
        "lookup_order", "issue_refund", "send_email"]
    assert response["metadata"]["trace"]["status"] == "complete"
    assert response["metadata"]["trace"]["read"] == ["approvals", "sources", "tool_calls"]
    python_record = Path(json.loads(python.stdout)["candidate"]["path"])
    (direct,) = [json.loads(line) for line in python_record.read_text().splitlines()
                 if '"case_id": "INC-2026-017"' in line]
    route = direct["trials"][0]["response"]["metadata"]["model_route"]
    assert response["metadata"]["model_route"] == route  # read from gen_ai.request.model
    report = Path(json.loads(served.stdout)["files"]["report"]).read_text()
    assert "execute_tool issue_refund" in report and "invoke_agent refund-assistant" in report


def test_spans_that_never_come_are_an_error_never_a_pass(project, services, tmp_path):
    suite = write_service_suite(project, services, trace_wait_s="0.3")
    wrong = free_port()  # the harness listens elsewhere than the services export to
    suite.write_text(suite.read_text().replace(f"trace_port: {services.otlp_port}",
                                               f"trace_port: {wrong}"))
    out = tmp_path / "post.jsonl"
    done = harness("run", str(suite.relative_to(project)), "-t", "post-fix", "--out", str(out),
                   cwd=project)
    assert done.returncode == 1, done.stderr
    found = verdicts(out)
    # the approval checks cannot be judged without the spans: error, not pass, not fail
    assert found["INC-2026-017"][0] == "error"
    assert {verdict for _, verdict in found["INC-2026-017"][1]} == {"error"}
    record = [json.loads(line) for line in out.read_text().splitlines()]
    (case,) = [r for r in record if r.get("case_id") == "INC-2026-017"]
    check = case["trials"][0]["checks"][0]
    assert "no span of trace" in check["reason"] and "would have said: fail" in check["reason"]
    # a check that reads only the answer is still judged
    output_only = [r for r in record if r.get("type") == "case" and all(
        kind in {"contains", "not_contains", "regex", "not_regex", "forbidden_claims",
                 "required_phrases", "latency"} for kind, _ in found[r["case_id"]][1])]
    assert output_only and all(r["verdict"] == "pass" for r in output_only)


def test_a_taken_trace_port_is_bad_input(project, services):
    suite = write_service_suite(project, services)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        suite.write_text(suite.read_text().replace(f"trace_port: {services.otlp_port}",
                                                   f"trace_port: {port}"))
        done = harness("run", str(suite.relative_to(project)), "-t", "post-fix", cwd=project)
    assert done.returncode == 2 and "trace_port" in done.stderr
    assert f"cannot receive OTLP on 127.0.0.1:{port}" in done.stderr


# --- command and python targets get the context and the endpoint ----------------------------


WORKFLOW = textwrap.dedent('''
    """A tiny agent instrumented with OpenTelemetry: its tool call leaves only as a span."""
    import json, os, sys

    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.propagate import extract
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))  # endpoint: env
    tracer = provider.get_tracer("tiny-agent")


    def respond(request, context=None):
        with tracer.start_as_current_span("invoke_agent tiny", context=context, attributes={
                "gen_ai.operation.name": "invoke_agent"}):
            with tracer.start_as_current_span("execute_tool delete_record", attributes={
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": "delete_record",
                    "gen_ai.tool.call.arguments": json.dumps({"id": request["record"]})}):
                pass
        return {"output": "done"}


    if __name__ == "__main__":
        carrier = {"traceparent": os.environ["TRACEPARENT"]}
        print(json.dumps(respond(json.load(sys.stdin), extract(carrier))))
''')

TINY_CASE = textwrap.dedent('''
    id: TINY-1
    workflow: tiny
    input: {record: R-2}
    expect:
      - tool_not_called: delete_record
      - contains: done
''')


@pytest.mark.parametrize("target", [
    "command: [python, tiny_agent.py]",
    "python: tiny_agent:respond",
])
def test_command_and_python_targets_are_traced(tmp_path, target):
    (tmp_path / "cases").mkdir()
    (tmp_path / "suites").mkdir()
    (tmp_path / "tiny_agent.py").write_text(WORKFLOW)
    (tmp_path / "cases" / "TINY-1.yaml").write_text(TINY_CASE)
    main = target.replace("python, ", f"{sys.executable}, ")
    (tmp_path / "suites" / "tiny.yaml").write_text(
        f"name: tiny\ncases: [cases/*.yaml]\ntargets:\n  agent:\n    {main}\n"
        f"    trace: otlp\n    trace_wait_s: 10\n")
    out = tmp_path / "run.jsonl"
    done = harness("run", "suites/tiny.yaml", "-t", "agent", "--out", str(out), cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    (case,) = [json.loads(line) for line in out.read_text().splitlines()
               if '"type": "case"' in line]
    checks = {check["kind"]: check for check in case["trials"][0]["checks"]}
    # the agent reported only "done"; the forbidden call came from its span
    assert checks["tool_not_called"]["verdict"] == "fail"
    assert checks["contains"]["verdict"] == "pass"
    calls = case["trials"][0]["response"]["tool_calls"]
    assert [(c["name"], c["args"]) for c in calls] == [("delete_record", {"id": "R-2"})]
