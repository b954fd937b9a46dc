"""A small OpenAI-compatible server on 127.0.0.1 for the tests: scripted answers, every request
kept. Never the network."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = Callable[[dict[str, Any]], tuple[int, dict[str, str], Any]]
"""request body -> (status, headers, JSON body)."""


def chat(content: str | None, *, tool_calls: list[dict[str, Any]] | None = None,
         model: str = "judge-1", usage: dict[str, int] | None = None) -> dict[str, Any]:
    """A chat-completions answer."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls is not None:
        message["tool_calls"] = [
            {"id": f"call_{i}", "type": "function",
             "function": {"name": call["name"], "arguments": json.dumps(call["args"])}}
            for i, call in enumerate(tool_calls)]
    return {"id": "chatcmpl-1", "object": "chat.completion", "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": usage or {"prompt_tokens": 100, "completion_tokens": 20,
                               "total_tokens": 120}}


def verdict(value: str, reason: str = "because") -> dict[str, Any]:
    return chat(json.dumps({"verdict": value, "reason": reason}))


@dataclass
class Server:
    """The running server: ``url`` is its base URL (``.../v1``); ``requests`` every request
    body it received, by path."""

    url: str
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    script: list[Reply] = field(default_factory=list)
    default: Reply | None = None
    headers: list[dict[str, str]] = field(default_factory=list)

    def answer(self, *replies: Reply | dict[str, Any]) -> None:
        """Answer the next requests with these, in order (a dict is a 200 JSON answer)."""
        for reply in replies:
            self.script.append(reply if callable(reply) else _ok(reply))

    def always(self, reply: Reply | dict[str, Any]) -> None:
        self.default = reply if callable(reply) else _ok(reply)

    @property
    def calls(self) -> int:
        return len(self.requests)


def _ok(body: Any) -> Reply:
    return lambda request: (200, {}, body)


def status(code: int, **headers: str) -> Reply:
    return lambda request: (code, headers, {"error": {"message": f"status {code}"}})


@contextmanager
def openai_server() -> Iterator[Server]:
    lock = threading.Lock()
    state: dict[str, Server] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            server = state["server"]
            with lock:
                server.requests.append((self.path, body))
                server.headers.append(dict(self.headers))
                reply = server.script.pop(0) if server.script else server.default
            if reply is None:
                code, headers, answer = 500, {}, {"error": {"message": "nothing scripted"}}
            else:
                code, headers, answer = reply(body)
            data = json.dumps(answer).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["server"] = Server(url=f"http://127.0.0.1:{httpd.server_address[1]}/v1")
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["server"]
    finally:
        httpd.shutdown()
        httpd.server_close()


def fenced(request: dict[str, Any], label: str = "OUTPUT") -> str | None:
    """The text a judge prompt fenced under ``label`` (None when it has no such fence)."""
    content = request["messages"][-1]["content"]
    start, end = f"<<<UNTRUSTED {label}>>>\n", f"\n<<<END {label}>>>"
    if start not in content:
        return None
    return content.split(start, 1)[1].split(end, 1)[0]


def rule_judge(*bad: str, model: str = "judge-1") -> Reply:
    """A judge that fails an output holding any of ``bad`` (case-insensitive) and passes
    the rest: a stand-in for a model, with an answer that depends on what it is shown."""
    def reply(request: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        output = (fenced(request) or "").lower()
        found = [marker for marker in bad if marker.lower() in output]
        if found:
            return 200, {}, chat(json.dumps({"verdict": "fail",
                                             "reason": f"it promises {found[0]!r}"}),
                                 model=model)
        return 200, {}, chat(json.dumps({"verdict": "pass", "reason": "within the policy"}),
                             model=model)
    return reply
