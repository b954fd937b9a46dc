"""The target adapters: python, replay, command and http, on success and on every failure."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pytest

from harness import targets
from harness.errors import InputError, TargetError
from harness.model import Case, TargetResponse, TargetSpec
from harness.schema import Invalid
from harness.targets.python import PythonTarget, resolve


def make_case(case_input: Any = None, evidence: dict[str, Any] | None = None) -> Case:
    return Case(id="C1", path=Path("c.yaml"), line=1, workflow="w", title=None,
                input=case_input, expect=(), evidence=evidence or {})


def build(kind: str, main: Any, root: Path = Path("."), **options: Any) -> targets.Target:
    spec = TargetSpec(name="t", kind=kind, main=main, options=options,
                      path=Path("suites/s.yaml"), line=4)
    return targets.build(spec, root)


def call(target: targets.Target, case_input: Any = None, timeout_s: float | None = 5.0,
         **case: Any) -> TargetResponse:
    return target.call(case_input, case=make_case(case_input, **case), timeout_s=timeout_s)


def fails(target: targets.Target, case_input: Any = None, timeout_s: float | None = 5.0,
          **case: Any) -> TargetError:
    with pytest.raises(TargetError) as info:
        call(target, case_input, timeout_s, **case)
    return info.value


# --- python ---------------------------------------------------------------------------------

MODULE = """
import sys

def respond(data, *, tone="plain"):
    return {"output": f"{tone}: {data['q']}", "metadata": {"tone": tone}}

class Holder:
    @staticmethod
    def go(data):
        return "inner"

VALUE = 3
"""


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"workflow_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(MODULE)
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield name
    sys.modules.pop(name, None)


def test_python_calls_the_function_with_params(module: str, tmp_path: Path) -> None:
    response = call(build("python", f"{module}:respond", tmp_path, params={"tone": "formal"}),
                    {"q": "refund"})
    assert response.output == "formal: refund"
    assert response.metadata == {"tone": "formal"}


def test_python_resolves_dotted_attributes(module: str, tmp_path: Path) -> None:
    assert call(build("python", f"{module}:Holder.go", tmp_path), {}).output == "inner"


@pytest.mark.parametrize(
    ("reference", "problem"),
    [
        ("no_colon", "expected 'package.module:callable'"),
        ("{m}_absent:respond", "cannot import module"),
        ("{m}:nope", "has no attribute 'nope'"),
        ("{m}:VALUE", "is not callable"),
    ],
)
def test_python_resolve_errors(module: str, tmp_path: Path, reference: str, problem: str) -> None:
    spec = TargetSpec(name="t", kind="python", main=reference.format(m=module),
                      path=Path("suites/s.yaml"), line=4)
    with pytest.raises(InputError) as info:
        resolve(spec.main, tmp_path, spec=spec)
    assert problem in info.value.problem
    assert info.value.field == "targets.t.python"
    assert str(info.value).startswith("suites/s.yaml:4: ")


@pytest.mark.parametrize("timeout_s", [None, 1.0])
def test_python_return_kinds(timeout_s: float | None) -> None:
    ready = TargetResponse(output="ready", reported=frozenset({"output", "sources"}))
    assert call(PythonTarget(lambda data: "text", {}), timeout_s=timeout_s).output == "text"
    assert call(PythonTarget(lambda data: ready, {}), timeout_s=timeout_s) is ready
    response = call(PythonTarget(lambda data: {"tool_calls": [{"name": "refund"}]}, {}),
                    timeout_s=timeout_s)
    assert [c.name for c in response.tool_calls] == ["refund"]
    assert response.reported == frozenset({"tool_calls"})


@pytest.mark.parametrize("timeout_s", [None, 1.0])
def test_python_exception_names_its_type(timeout_s: float | None) -> None:
    def broken(data: Any) -> str:
        raise ValueError("no such order")

    assert fails(PythonTarget(broken, {}), timeout_s=timeout_s).reason == (
        "raised ValueError: no such order"
    )


@pytest.mark.parametrize("timeout_s", [None, 1.0])
def test_python_sys_exit_is_a_target_error(timeout_s: float | None) -> None:
    assert fails(PythonTarget(lambda data: sys.exit(3), {}), timeout_s=timeout_s).reason == (
        "raised SystemExit: 3"
    )


@pytest.mark.parametrize(
    ("value", "problem"),
    [(42, "found int"), ({"tool_calls": "refund"}, "tool_calls must be a list"),
     ({"answer": "x"}, "unknown field(s) answer")],
)
def test_python_malformed_response(value: Any, problem: str) -> None:
    reason = fails(PythonTarget(lambda data: value, {})).reason
    assert reason.startswith("malformed response") and problem in reason


def test_python_timeout() -> None:
    release = threading.Event()
    target = PythonTarget(lambda data: release.wait(5) and "late", {})
    try:
        assert fails(target, timeout_s=0.1).reason == "timed out after 0.1 s"
    finally:
        release.set()


def workers_alive() -> int:
    return sum(t.name == "harness-python-target" and t.is_alive()
               for t in threading.enumerate())


def test_python_calls_reuse_their_worker_thread() -> None:
    before = workers_alive()
    target = PythonTarget(lambda data: f"answer {data}", {})
    assert [call(target, n).output for n in range(50)] == [f"answer {n}" for n in range(50)]
    assert workers_alive() - before == 1  # one worker for fifty calls, not fifty threads


def test_a_call_never_waits_behind_one_that_overran() -> None:
    """The hung call keeps its worker; the next call gets another at once, and the hung
    call's worker serves again once it returns."""
    release = threading.Event()
    target = PythonTarget(lambda data: release.wait(5) and "late" if data == "hang" else "ok",
                          {})
    try:
        assert fails(target, "hang", timeout_s=0.1).reason == "timed out after 0.1 s"
        started = time.monotonic()
        assert call(target, "quick", timeout_s=1.0).output == "ok"
        assert time.monotonic() - started < 0.5
    finally:
        release.set()
    time.sleep(0.1)  # the hung call returns and frees its worker
    before = workers_alive()
    assert [call(target, "quick").output for _ in range(5)] == ["ok"] * 5
    assert workers_alive() == before


def test_whatever_ends_a_call_is_its_error_and_the_worker_lives_on() -> None:
    def interrupted(data: Any) -> str:
        if data == "stop":
            raise KeyboardInterrupt("stop")
        return "ok"

    target = PythonTarget(interrupted, {})
    before = workers_alive()
    assert fails(target, "stop").reason == "raised KeyboardInterrupt: stop"
    assert call(target, "go").output == "ok"  # on the same worker, still alive
    assert workers_alive() - before <= 1


# --- replay ---------------------------------------------------------------------------------


def test_replay_answers_with_the_evidence() -> None:
    evidence = {
        "input": {"q": "refund"},
        "output": "Refund approved.",
        "tool_calls": [{"name": "issue_refund", "args": {"amount": 40}}],
        "sources": [{"id": "policy-7", "title": "Refunds"}],
        "approvals": [{"step": "refund", "status": "approved", "approver": "kim"}],
        "prompt_version": "v7",
        "model_route": "primary/large",
        "notes": "not part of the response",
    }
    response = call(build("replay", True), evidence=evidence)
    assert response.output == "Refund approved."
    assert response.tool_calls[0].name == "issue_refund"
    assert response.tool_calls[0].args == {"amount": 40}
    assert [s.id for s in response.sources] == ["policy-7"]
    assert response.approvals[0].approver == "kim"
    assert response.metadata == {"prompt_version": "v7", "model_route": "primary/large"}
    assert response.reported == frozenset(
        {"output", "tool_calls", "sources", "approvals", "metadata"}
    )


def test_replay_reports_only_recorded_fields() -> None:
    response = call(build("replay", True), evidence={"tool_calls": []})
    assert response.reported == frozenset({"tool_calls"})
    assert response.output == ""


@pytest.mark.parametrize("evidence", [{}, {"input": "x", "notes": "lost"}])
def test_replay_without_evidence(evidence: dict[str, Any]) -> None:
    assert fails(build("replay", True), evidence=evidence).reason == (
        "case C1 has no evidence to replay"
    )


# --- command --------------------------------------------------------------------------------


def script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / f"target_{uuid.uuid4().hex[:8]}.py"
    path.write_text(textwrap.dedent(body))
    return [sys.executable, str(path)]


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its reaper counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


def test_command_echoes_a_response_built_from_stdin(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    argv = script(tmp_path, """
        import json, os, sys
        data = json.load(sys.stdin)
        print(json.dumps({
            "output": "hello " + data["name"],
            "tool_calls": [{"name": "lookup", "args": {"size": len(data["blob"])}}],
            "metadata": {"cwd": os.getcwd(), "flag": os.environ["HARNESS_FLAG"]},
        }))
    """)
    target = build("command", argv, tmp_path, cwd="work", env={"HARNESS_FLAG": "on"})
    response = call(target, {"name": "Ada", "blob": "x" * 500_000})
    assert response.output == "hello Ada"
    assert response.tool_calls[0].args == {"size": 500_000}
    assert Path(response.metadata["cwd"]).resolve() == (tmp_path / "work").resolve()
    assert response.metadata["flag"] == "on"


def test_command_json_string_is_the_output(tmp_path: Path) -> None:
    argv = script(tmp_path, 'import json; print(json.dumps("just text"))')
    response = call(build("command", argv, tmp_path), {"q": 1})
    assert response.output == "just text"
    assert response.reported == frozenset({"output"})


def test_command_may_ignore_a_large_input(tmp_path: Path) -> None:
    argv = script(tmp_path, 'print(\'"ignored"\')')
    assert call(build("command", argv, tmp_path), "y" * 2_000_000).output == "ignored"


def test_command_non_zero_exit_shows_the_stderr_tail(tmp_path: Path) -> None:
    argv = script(tmp_path, """
        import sys
        for i in range(30):
            print(f"line {i:02d}", file=sys.stderr)
        sys.exit(3)
    """)
    error = fails(build("command", argv, tmp_path))
    assert error.reason == "exited with code 3"
    assert error.detail is not None
    assert "line 29" in error.detail and "line 10" in error.detail
    assert "line 09" not in error.detail


def test_command_killed_by_a_signal(tmp_path: Path) -> None:
    argv = script(tmp_path, "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    assert fails(build("command", argv, tmp_path)).reason == "killed by SIGSEGV"


def test_command_timeout_kills_the_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    argv = script(tmp_path, f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        open({str(pid_file)!r}, "w").write(str(child.pid))
        time.sleep(30)
    """)
    started = time.monotonic()
    assert fails(build("command", argv, tmp_path), timeout_s=0.5).reason == (
        "timed out after 0.5 s"
    )
    assert time.monotonic() - started < 3
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 2
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not alive(child)


def test_command_stdout_not_json(tmp_path: Path) -> None:
    argv = script(tmp_path, 'print("hello world, not json")')
    error = fails(build("command", argv, tmp_path))
    assert error.reason.startswith("stdout is not JSON")
    assert error.detail == "stdout: hello world, not json"


def test_command_stdout_not_utf8(tmp_path: Path) -> None:
    argv = script(tmp_path, 'import sys; sys.stdout.buffer.write(b"\\xff\\xfe")')
    assert fails(build("command", argv, tmp_path)).reason == "stdout is not UTF-8"


def test_command_sends_dates_as_iso_strings(tmp_path: Path) -> None:
    argv = script(tmp_path, "import json, sys; print(json.dumps(json.load(sys.stdin)['as_of']))")
    response = call(build("command", argv, tmp_path), {"as_of": dt.date(2026, 3, 2)})
    assert response.output == "2026-03-02"
    assert fails(build("command", argv, tmp_path), {"x": object()}).reason.startswith(
        "case input cannot be sent as JSON"
    )


def test_command_empty_stdout(tmp_path: Path) -> None:
    argv = script(tmp_path, "pass")
    assert fails(build("command", argv, tmp_path)).reason == (
        "stdout is empty; expected a JSON response"
    )


def test_command_malformed_response(tmp_path: Path) -> None:
    argv = script(tmp_path, 'print(\'{"sources": 5}\')')
    assert "sources must be a list" in fails(build("command", argv, tmp_path)).reason


def test_command_output_over_the_cap_is_cut_off(tmp_path: Path) -> None:
    argv = script(tmp_path, """
        import sys
        while True:
            sys.stdout.write("x" * 65536)
    """)
    target = build("command", argv, tmp_path, max_output_bytes=1000)
    assert fails(target, timeout_s=10).reason == "output exceeded 1000 bytes"


def test_command_missing_executable(tmp_path: Path) -> None:
    target = build("command", ["no-such-program-4711"], tmp_path)
    assert fails(target).reason == "executable not found: no-such-program-4711"


def test_command_missing_working_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        build("command", ["true"], tmp_path, cwd="absent")
    assert info.value.field == "targets.t.cwd"
    assert "working directory does not exist" in info.value.problem


# --- http -----------------------------------------------------------------------------------

JSON_ANSWER = {
    "answer": {"text": "Refund approved.", "parts": ["a", "b"]},
    "trace": {"tools": [{"name": "issue_refund", "args": {"amount": 40}}]},
}
FULL_ANSWER = {"output": "hi", "sources": [{"id": 7}]}


class Handler(BaseHTTPRequestHandler):
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.seen.append({"method": self.command, "path": self.path,
                                 "headers": dict(self.headers), "body": body})
        routes = {
            "/json": (200, "application/json", json.dumps(JSON_ANSWER)),
            "/full": (200, "application/json", json.dumps(FULL_ANSWER)),
            "/plain": (200, "text/plain; charset=utf-8", "plain answer"),
            "/odd-charset": (200, "text/plain; charset=no-such-charset", "café"),
            "/html": (200, "text/html", "<html>not json</html>"),
            "/big": (200, "text/plain", "x" * 5000),
            "/missing": (404, "text/plain", "no such page"),
            "/busy": (429, "text/plain", "slow down"),
            "/boom": (500, "text/plain", "Traceback: database down"),
        }
        if self.path == "/slow":  # never answers: the client has given up by then
            self.server.release.wait(2)
            return
        if self.path == "/trickle":  # a byte at a time, never quite silent, never done
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(40):
                if self.server.release.wait(0.05):
                    return
                try:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                except OSError:
                    return
            return
        if self.path == "/wait":
            self.send_response(503)
            self.send_header("Retry-After", "7")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://elsewhere.invalid/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        status, content_type, text = routes.get(self.path, (200, "application/json", '"ok"'))
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_PATCH = do_POST


Served = TypeVar("Served", bound=ThreadingHTTPServer)


@contextlib.contextmanager
def serving(httpd: Served) -> Iterator[Served]:
    """``httpd`` answering on a thread of its own while the block runs."""
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


class LocalServer(ThreadingHTTPServer):
    """A test server on 127.0.0.1 that names its own URLs."""

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class Server(LocalServer):
    daemon_threads = True
    seen: list[dict[str, Any]]
    release: threading.Event


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")
    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.seen, httpd.release = [], threading.Event()
    with serving(httpd):
        yield httpd
        httpd.release.set()


def test_http_maps_response_fields(server: Server) -> None:
    target = build("http", server.url("/json"),
                   response={"output": "answer.text", "tool_calls": "trace.tools"})
    response = call(target, {"q": "refund"})
    assert response.output == "Refund approved."
    assert response.tool_calls[0].args == {"amount": 40}
    assert response.reported == frozenset({"output", "tool_calls"})
    assert server.seen[0]["method"] == "POST"
    assert json.loads(server.seen[0]["body"]) == {  # a mapping input gains its messages
        "q": "refund", "messages": [{"role": "user", "content": '{"q": "refund"}'}]}


def test_http_path_segments_index_lists(server: Server) -> None:
    target = build("http", server.url("/json"), response={"output": "answer.parts.1"})
    assert call(target).output == "b"


def test_http_json_answer_is_the_response(server: Server) -> None:
    response = call(build("http", server.url("/full"), method="PUT"))
    assert response.output == "hi"
    assert [s.id for s in response.sources] == ["7"]
    assert server.seen[0]["method"] == "PUT"


def test_http_plain_text_is_the_output(server: Server) -> None:
    assert call(build("http", server.url("/plain"))).output == "plain answer"


@pytest.mark.parametrize(
    ("path", "reason", "body"),
    [
        ("/missing", "HTTP 404 Not Found", "no such page"),
        ("/busy", "HTTP 429 Too Many Requests (transient)", "slow down"),
        ("/boom", "HTTP 500 Internal Server Error (transient)", "database down"),
    ],
)
def test_http_error_status(server: Server, path: str, reason: str, body: str) -> None:
    error = fails(build("http", server.url(path)))
    assert error.reason == reason
    assert error.detail is not None and body in error.detail


def test_http_redirect_is_not_followed(server: Server) -> None:
    reason = fails(build("http", server.url("/redirect"))).reason
    assert reason == "HTTP 302 Found (redirect to http://elsewhere.invalid/ not followed)"


def test_http_timeout(server: Server) -> None:
    started = time.monotonic()
    assert fails(build("http", server.url("/slow")), timeout_s=0.3).reason == (
        "timed out after 0.3 s"
    )
    assert time.monotonic() - started < 1.5


def test_http_non_json_body_with_a_mapping(server: Server) -> None:
    error = fails(build("http", server.url("/html"), response={"output": "answer.text"}))
    assert error.reason.startswith("response is not JSON")
    assert error.detail == "body: <html>not json</html>"


@pytest.mark.parametrize("path", ["answer.missing", "answer.parts.7", "answer.text.x"])
def test_http_missing_mapped_field(server: Server, path: str) -> None:
    target = build("http", server.url("/json"), response={"output": path})
    assert fails(target).reason == f"response has no field {path}"


def test_http_body_over_the_cap(server: Server) -> None:
    target = build("http", server.url("/plain"), max_response_bytes=5)
    assert fails(target).reason == "response exceeded 5 bytes"
    assert call(build("http", server.url("/big"), max_response_bytes=5000)).output == "x" * 5000


def test_http_expands_header_variables(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_TEST_TOKEN", "s3cret")
    target = build("http", server.url("/ok"),
                   headers={"Authorization": "Bearer ${HARNESS_TEST_TOKEN}", "X-Suite": "s"})
    assert call(target).output == "ok"
    assert server.seen[0]["headers"]["Authorization"] == "Bearer s3cret"
    assert server.seen[0]["headers"]["X-Suite"] == "s"


def test_http_missing_header_variable(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HARNESS_TEST_TOKEN", raising=False)
    target = build("http", server.url("/ok"), headers={"Authorization": "${HARNESS_TEST_TOKEN}"})
    assert fails(target).reason == (
        "environment variable HARNESS_TEST_TOKEN is not set (header Authorization)"
    )
    assert server.seen == []


def test_http_body_template(server: Server) -> None:
    body = {"query": "{{ input }}", "session": "{{ case.id }}", "turns": ["{{input}}", 1],
            "mode": "strict"}
    assert call(build("http", server.url("/ok"), body=body), {"q": "refund"}).output == "ok"
    sent = {"q": "refund", "messages": [{"role": "user", "content": '{"q": "refund"}'}]}
    assert json.loads(server.seen[0]["body"]) == {
        "query": sent, "session": "C1", "turns": [sent, 1], "mode": "strict"
    }


def test_http_connection_refused(server: Server) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    reason = fails(build("http", url)).reason
    assert reason.startswith(f"cannot connect to {url}: ")
    assert "refused" in reason.lower()


def test_http_url_must_be_http() -> None:
    main = targets.ADAPTERS["http"].main
    assert main.check("https://agent.example/v1", "targets.t.http", 3) == (
        "https://agent.example/v1"
    )
    with pytest.raises(Invalid, match="expected an http:// or https:// URL"):
        main.check("ftp://agent.example/", "targets.t.http", 3)


def test_http_unknown_charset_reads_as_utf8(server: Server) -> None:
    assert call(build("http", server.url("/odd-charset"))).output == "café"



@pytest.mark.parametrize(("path", "transient"), [
    ("/busy", True), ("/boom", True), ("/missing", False), ("/slow", True),
])
def test_http_marks_transient_failures(server: Server, path: str, transient: bool) -> None:
    with pytest.raises(TargetError) as caught:
        build("http", server.url(path)).call({}, case=make_case(), timeout_s=0.3)
    assert caught.value.transient is transient


def test_http_retry_after_header_is_read(server: Server) -> None:
    with pytest.raises(TargetError) as caught:
        build("http", server.url("/wait")).call({}, case=make_case(), timeout_s=2)
    assert caught.value.retry_after == 7.0 and caught.value.transient


def test_connection_refused_is_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TargetError) as caught:
        build("http", f"http://127.0.0.1:{port}/").call({}, case=make_case(), timeout_s=2)
    assert caught.value.transient


def test_http_slow_trickle_is_cut_off_at_the_timeout(server: Server) -> None:
    # the server would finish its 40 bytes after 2 s; without the deadline the call succeeds
    with pytest.raises(TargetError) as caught:
        build("http", server.url("/trickle")).call({}, case=make_case(), timeout_s=0.5)
    assert caught.value.reason == "timed out after 0.5 s" and caught.value.transient


# --- kept-alive connections -------------------------------------------------------------------


class KeepAliveHandler(BaseHTTPRequestHandler):
    """HTTP/1.1, answering every POST with its count; ``/hang-up`` closes the connection after
    answering, without saying so (as a server whose idle timeout passed does)."""

    protocol_version = "HTTP/1.1"
    server: KeepAliveServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.requests += 1
            number = self.server.requests
        data = json.dumps({"output": f"answer {number}"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        if self.path == "/hang-up":
            self.close_connection = True


class KeepAliveServer(LocalServer):
    daemon_threads = True
    requests = 0
    connections = 0

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), KeepAliveHandler)
        self.lock = threading.Lock()

    def get_request(self) -> Any:
        accepted = super().get_request()
        with self.lock:
            self.connections += 1
        return accepted


@pytest.fixture
def keep_alive(monkeypatch: pytest.MonkeyPatch) -> Iterator[KeepAliveServer]:
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")
    with serving(KeepAliveServer()) as httpd:
        yield httpd


def test_http_reuses_its_connection_across_calls(keep_alive: KeepAliveServer) -> None:
    target = build("http", keep_alive.url("/answer"))
    outputs = [call(target).output for _ in range(10)]
    assert outputs == [f"answer {n}" for n in range(1, 11)]
    assert keep_alive.connections == 1  # one handshake, not ten


def test_http_each_thread_keeps_its_own_connection(keep_alive: KeepAliveServer) -> None:
    target = build("http", keep_alive.url("/answer"))
    with ThreadPoolExecutor(max_workers=4) as pool:
        outputs = list(pool.map(lambda _: call(target).output, range(40)))
    assert sorted(outputs, key=lambda text: int(text.split()[1])) == \
        [f"answer {n}" for n in range(1, 41)]
    assert keep_alive.requests == 40 and keep_alive.connections <= 4


def test_http_a_connection_the_server_closed_is_not_reused(keep_alive: KeepAliveServer) -> None:
    """The server hangs up after each answer without a Connection: close header. The next call
    must notice the closed socket before sending: no failure, and no request sent twice."""
    target = build("http", keep_alive.url("/hang-up"))
    outputs = []
    for _ in range(5):
        outputs.append(call(target).output)
        time.sleep(0.05)  # the hang-up has reached the client's socket
    assert outputs == [f"answer {n}" for n in range(1, 6)]
    assert keep_alive.requests == 5 and keep_alive.connections == 5


class ProxyHandler(BaseHTTPRequestHandler):
    """A forward proxy that answers itself, recording the absolute URL it was asked for."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.asked.append(self.path)  # type: ignore[attr-defined]  # set by the test
        data = b'{"output": "via the proxy"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_http_goes_through_the_proxy_the_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), ProxyHandler)
    proxy.asked = []  # type: ignore[attr-defined]  # read by the handler
    with serving(proxy):
        for name in ("no_proxy", "NO_PROXY"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.server_address[1]}")
        target = build("http", "http://service.invalid/respond")
        assert call(target).output == "via the proxy"
        assert proxy.asked == ["http://service.invalid/respond"]  # type: ignore[attr-defined]
        # NO_PROXY names a host with its port, as urllib reads it: no proxy, a direct call
        monkeypatch.setenv("no_proxy", "service.invalid:8080")
        refused = fails(build("http", "http://service.invalid:8080/respond"))
        assert refused.reason.startswith("cannot connect to http://service.invalid:8080/")
        assert len(proxy.asked) == 1  # type: ignore[attr-defined]


def test_http_reads_the_proxy_environment_once_per_host(
        keep_alive: KeepAliveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # the environment is read whole for each question: once per host, not once per call
    import urllib.request

    asked: list[str] = []
    real = urllib.request.getproxies
    monkeypatch.setattr(urllib.request, "getproxies", lambda: asked.append("env") or real())
    target = build("http", keep_alive.url("/respond"))
    asked.clear()  # urllib's own opener reads it as it is built
    for _ in range(5):
        assert call(target).output
    assert asked == ["env"]


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that no authority signed, and its key."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_https_refuses_a_certificate_no_authority_signed(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Kept-alive HTTPS connections verify the server as urllib does: a man in the middle
    with a self-signed certificate gets no request, and the call is an error."""
    import ssl

    monkeypatch.setenv("no_proxy", "*")
    cert, key = self_signed(tmp_path)
    httpd = KeepAliveServer()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    with serving(httpd):
        url = f"https://127.0.0.1:{httpd.server_address[1]}/answer"
        error = fails(build("http", url))
        assert "CERTIFICATE_VERIFY_FAILED" in error.reason
        assert httpd.requests == 0
        # trusting that certificate (as SSL_CERT_FILE does for urllib) makes the same call work
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        assert call(build("http", url)).output == "answer 1"
