"""The OpenAI-compatible target, against a scripted server on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest
from openai_server import chat, openai_server, status

from harness import runner, targets
from harness.errors import TargetError
from harness.model import CallPolicy, Case, TargetSpec

CASE = Case(id="C1", path=Path("c.yaml"), line=1, workflow="w", title=None, input="hi",
            expect=())


def build(url: str, **options: object) -> targets.Target:
    spec = TargetSpec(name="t", kind="openai", main=url, options={"model": "m-1", **options})
    return targets.build(spec, Path("."))


def test_a_string_is_one_user_message_and_the_answer_is_the_output():
    with openai_server() as server:
        server.answer(chat("Refunds take 30 days.", usage={"prompt_tokens": 9,
                                                           "completion_tokens": 5,
                                                           "total_tokens": 14}))
        response = build(server.url, body={"temperature": 0}).call("When?", case=CASE,
                                                                   timeout_s=10)
    path, body = server.requests[0]
    assert path == "/v1/chat/completions"
    assert body == {"temperature": 0, "model": "m-1",
                    "messages": [{"role": "user", "content": "When?"}]}
    assert response.output == "Refunds take 30 days."
    assert response.metadata["usage"] == {"prompt_tokens": 9, "completion_tokens": 5,
                                          "total_tokens": 14}
    assert response.metadata["model"] == "judge-1"
    assert "tool_calls" in response.reported and response.tool_calls == ()


def test_messages_are_sent_as_they_are_and_tool_calls_are_parsed():
    messages = [{"role": "system", "content": "You are a refund agent."},
                {"role": "user", "content": "Refund A-1001"}]
    with openai_server() as server:
        server.answer(chat(None, tool_calls=[{"name": "issue_refund",
                                              "args": {"order_id": "A-1001", "amount": 39.99}}]))
        response = build(server.url).call({"messages": messages, "tools": [{"type": "function"}]},
                                          case=CASE, timeout_s=10)
    body = server.requests[0][1]
    assert body["messages"] == messages and body["tools"] == [{"type": "function"}]
    assert response.output == ""
    (call,) = response.tool_calls
    assert (call.name, dict(call.args)) == ("issue_refund", {"order_id": "A-1001",
                                                             "amount": 39.99})


def test_the_api_key_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("TEST_OPENAI_KEY", "sk-test-123")
    with openai_server() as server:
        server.answer(chat("ok"))
        build(server.url, api_key_env="TEST_OPENAI_KEY").call("x", case=CASE, timeout_s=10)
    assert server.headers[0]["Authorization"] == "Bearer sk-test-123"
    monkeypatch.delenv("TEST_OPENAI_KEY")
    with pytest.raises(TargetError, match="TEST_OPENAI_KEY"):
        build("http://127.0.0.1:9/v1", api_key_env="TEST_OPENAI_KEY").call(
            "x", case=CASE, timeout_s=1)


@pytest.mark.parametrize(("answer", "problem"), [
    ({"choices": []}, "no choices"),
    ({"choices": [{"message": None}]}, "has no message"),
    (chat(None, tool_calls=[{"name": "x", "args": {}}]) | {"choices": [{"message": {
        "content": None, "tool_calls": [{"function": {"name": "x", "arguments": "{oops"}}]}}]},
     "arguments are not JSON"),
])
def test_malformed_answers_are_target_errors(answer, problem):
    with openai_server() as server:
        server.answer(answer)
        with pytest.raises(TargetError, match=problem):
            build(server.url).call("x", case=CASE, timeout_s=10)


def test_429_with_retry_after_is_retried_as_the_http_target_is():
    with openai_server() as server:
        server.answer(status(429, **{"Retry-After": "0"}), chat("second time lucky"))
        call = runner.call(CASE, build(server.url), policy=CallPolicy(retries=2,
                                                                      retry_backoff_s=0.01))
    assert call.error is None and call.response is not None
    assert call.response.output == "second time lucky" and call.attempts == 2
    assert server.calls == 2


def test_embeddings():
    with openai_server() as server:
        server.answer({"data": [{"embedding": [0.1, 0.2, 0.3]}], "model": "e-1"})
        target = build(server.url, api="embeddings")
        response = target.call("some text", case=CASE, timeout_s=5)
        assert response.metadata["embedding"] == [0.1, 0.2, 0.3]
        assert response.metadata["model"] == "e-1" and response.output == ""
    assert server.requests[0] == ("/v1/embeddings", {"model": "m-1", "input": "some text"})
