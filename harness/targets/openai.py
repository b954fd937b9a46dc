"""The ``openai`` target: any server that speaks the OpenAI chat-completions API.

Works with OpenAI itself, vLLM, Ollama, LM Studio, LiteLLM, and Azure OpenAI through its base
URL (``https://NAME.openai.azure.com/openai/v1``, with ``headers: {api-key: ${KEY}}``)::

    targets:
      assistant:
        openai: http://127.0.0.1:8000/v1
        model: qwen2.5-7b-instruct
        api_key_env: OPENAI_API_KEY      # sent as a Bearer token; optional for local servers
        body: {temperature: 0}           # more fields of the request body

The request is built from the case input: a string is one user message; a mapping with a
``messages`` list is sent as it is (with its ``tools``, if any); any other input is sent as a
user message holding its JSON. The answer's text is the ``output``, its ``tool_calls``
(function name and JSON arguments, parsed) the ``tool_calls``, and its model, usage and finish
reason the ``metadata``. With ``api: embeddings`` the target is an embedder
(``/embeddings``), for the semantic checks. Retries, rate limits and concurrency are the
suite's call options, as for every target.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.errors import TargetError
from harness.model import Case, TargetResponse, TargetSpec
from harness.schema import AnyValue, Custom, Number, Record, Text
from harness.targets import Adapter, register
from harness.targets.command import to_json
from harness.targets.http import (
    DEFAULT_MAX_RESPONSE_BYTES,
    check_url,
    exchange,
    expand,
    opener,
    parse_json,
)

APIS = ("chat", "embeddings")


def messages_of(case_input: Any) -> tuple[list[Any], dict[str, Any]]:
    """The chat messages a case input stands for, and the other request fields it carries
    (``tools``, ``tool_choice``)."""
    if isinstance(case_input, str):
        return [{"role": "user", "content": case_input}], {}
    if isinstance(case_input, Mapping) and isinstance(case_input.get("messages"), list):
        extra = {key: case_input[key] for key in ("tools", "tool_choice") if key in case_input}
        return list(case_input["messages"]), extra
    content = json.loads(to_json(case_input))
    return [{"role": "user", "content": json.dumps(content, ensure_ascii=False)}], {}


def _tool_calls(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    calls = []
    for index, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise TargetError(f"malformed answer: tool_calls[{index}] has no function name")
        arguments = function.get("arguments") or "{}"
        try:
            args = json.loads(arguments) if isinstance(arguments, str) else arguments
        except json.JSONDecodeError as exc:
            raise TargetError(f"malformed answer: tool_calls[{index}] ({function['name']}) "
                              f"arguments are not JSON: {exc.msg}") from None
        if not isinstance(args, Mapping):
            raise TargetError(f"malformed answer: tool_calls[{index}] ({function['name']}) "
                              f"arguments are not a JSON object")
        calls.append({"name": function["name"], "args": dict(args)})
    return calls


class OpenAITarget:
    """Calls ``/chat/completions`` (or ``/embeddings``) of an OpenAI-compatible server."""

    def __init__(self, base_url: str, *, model: str, api: str = "chat",
                 api_key_env: str | None = None, headers: Mapping[str, str] | None = None,
                 body: Mapping[str, Any] | None = None,
                 max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api = api
        self.api_key_env = api_key_env
        self.headers = dict(headers or {})
        self.body = dict(body or {})
        self.max_response_bytes = max_response_bytes
        self._opener = opener()

    def _post(self, path: str, payload: Mapping[str, Any], timeout_s: float | None) -> Any:
        headers = {name: expand(name, value) for name, value in self.headers.items()}
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            if not key:
                raise TargetError(f"environment variable {self.api_key_env} (api_key_env) is "
                                  f"not set")
            headers.setdefault("Authorization", f"Bearer {key}")
        _, text = exchange(self._opener, f"{self.base_url}/{path}", method="POST",
                           headers=headers, data=to_json(payload), timeout_s=timeout_s,
                           max_bytes=self.max_response_bytes)
        answer = parse_json(text)
        if not isinstance(answer, Mapping):
            raise TargetError("malformed answer: expected a JSON object")
        return answer

    def call(self, case_input: Any, *, case: Case, timeout_s: float | None) -> TargetResponse:
        if self.api == "embeddings":
            text = case_input if isinstance(case_input, str) else json.dumps(case_input)
            return self.embedding(text, timeout_s=timeout_s)
        messages, extra = messages_of(case_input)
        answer = self._post("chat/completions",
                            {**self.body, **extra, "model": self.model, "messages": messages},
                            timeout_s)
        choices = answer.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
            raise TargetError("malformed answer: no choices")
        message = choices[0].get("message")
        if not isinstance(message, Mapping):
            raise TargetError("malformed answer: choices[0] has no message")
        content = message.get("content")
        if isinstance(content, list):  # content parts: keep the text ones
            content = "".join(part.get("text", "") for part in content
                              if isinstance(part, Mapping))
        metadata = {"model": answer.get("model", self.model),
                    "finish_reason": choices[0].get("finish_reason")}
        if isinstance(answer.get("usage"), Mapping):
            metadata["usage"] = dict(answer["usage"])
        return TargetResponse.parse({"output": content if isinstance(content, str) else "",
                                     "tool_calls": _tool_calls(message),
                                     "metadata": metadata})

    def embedding(self, text: str, *, timeout_s: float | None = None) -> TargetResponse:
        """The embedding of ``text``, as a response whose ``metadata.embedding`` holds it
        (with the model and usage the server reported)."""
        answer = self._post("embeddings", {**self.body, "model": self.model, "input": text},
                            timeout_s)
        data = answer.get("data")
        vector = (data[0].get("embedding") if isinstance(data, list) and data
                  and isinstance(data[0], Mapping) else None)
        if not isinstance(vector, list) or not vector or not all(
                isinstance(x, int | float) and not isinstance(x, bool) for x in vector):
            raise TargetError("malformed answer: no data[0].embedding list of numbers")
        metadata: dict[str, Any] = {"model": answer.get("model", self.model),
                                    "embedding": [float(x) for x in vector]}
        if isinstance(answer.get("usage"), Mapping):
            metadata["usage"] = dict(answer["usage"])
        return TargetResponse.parse({"output": "", "metadata": metadata})


def _build(spec: TargetSpec, root: Path) -> OpenAITarget:
    options = spec.options
    return OpenAITarget(
        spec.main, model=options["model"], api=options.get("api", "chat"),
        api_key_env=options.get("api_key_env"),
        headers={str(k): str(v) for k, v in options.get("headers", {}).items()},
        body=options.get("body"),
        max_response_bytes=options.get("max_response_bytes", DEFAULT_MAX_RESPONSE_BYTES),
    )


ADAPTER = register(
    Adapter(
        name="openai",
        summary="Call any OpenAI-compatible chat-completions (or embeddings) server.",
        main=Custom(check_url, schema={"type": "string", "format": "uri"},
                    description="The server's base URL, e.g. http://127.0.0.1:8000/v1."),
        options={
            "model": Text(description="The model to ask (required)."),
            "api": Text(choices=APIS, description="chat (default) or embeddings."),
            "api_key_env": Text(description="Environment variable holding the API key, sent "
                                            "as a Bearer token."),
            "headers": Record({}, extra=Text(allow_numbers=True),
                              description="More request headers; ${NAME} reads an environment "
                                          "variable (e.g. Azure's api-key)."),
            "body": Record({}, extra=AnyValue(),
                           description="More request body fields (temperature, seed, ...)."),
            "max_response_bytes": Number(integer=True, minimum=1,
                                         description="Cap on the response body (default 10 MiB)."),
        },
        required=("model",),
        build=_build,
    )
)
