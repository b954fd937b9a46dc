"""The ``http`` target: send each case to an HTTP endpoint and read its JSON answer.

``http: https://agent.internal/v1/respond`` sends the case input as a JSON body (``method``,
default POST). ``body`` is a template instead: the string ``"{{ input }}"`` anywhere in it is
replaced by the input, ``"{{ case.id }}"`` by the case id. Header values may name environment
variables as ``${NAME}``, expanded per call, so secrets stay out of suite files.

The answer is the response JSON (or, without a JSON content type, the body as the output);
``response`` maps response fields to dotted paths into the JSON instead, e.g.
``{output: answer.text, tool_calls: trace.tools}``. Redirects are not followed, so headers
are only ever sent to the configured URL.
"""

from __future__ import annotations

import email.utils
import http.client
import io
import json
import os
import re
import select
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness.errors import TargetError
from harness.model import RESPONSE_FIELDS, Case, TargetResponse, TargetSpec, with_messages
from harness.schema import AnyValue, Custom, Invalid, Number, Record, Text
from harness.targets import Adapter, register
from harness.targets.command import excerpt, to_json
from harness.targets.tracing import TRACE_OPTIONS, current

DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024
METHODS = ("GET", "POST", "PUT", "PATCH")
_CHUNK = 64 * 1024
_ERROR_BODY_BYTES = 4096
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_INPUT = re.compile(r"\{\{\s*input\s*\}\}")
_CASE_ID = re.compile(r"\{\{\s*case\.id\s*\}\}")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuses redirects: the 3xx answer surfaces as an HTTPError."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class HttpTarget:
    """Sends one request per call and parses the answer."""

    def __init__(
        self,
        url: str,
        *,
        method: str = "POST",
        headers: Mapping[str, str] | None = None,
        body: Any = "{{ input }}",
        response: Mapping[str, str] | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self.url = url
        self.method = method
        self.headers = dict(headers or {})
        self.body = body
        self.response = dict(response or {})
        self.max_response_bytes = max_response_bytes
        self._opener = opener()

    def call(self, case_input: Any, *, case: Case, timeout_s: float | None) -> TargetResponse:
        headers = {name: expand(name, value) for name, value in self.headers.items()}
        context = current()
        if context is not None:  # W3C Trace Context: the workflow's spans join the call's trace
            headers = {k: v for k, v in headers.items() if k.lower() != "traceparent"}
            headers["traceparent"] = context.traceparent
        data = to_json(_fill(self.body, with_messages(case_input), case.id))
        content_type, text = exchange(self._opener, self.url, method=self.method,
                                      headers=headers, data=data, timeout_s=timeout_s,
                                      max_bytes=self.max_response_bytes)
        if not self.response:
            if content_type == "application/json" or content_type.endswith("+json"):
                return TargetResponse.parse(parse_json(text))
            return TargetResponse(output=text)
        document = parse_json(text)
        return TargetResponse.parse(
            {field: _lookup(document, path) for field, path in self.response.items()}
        )


class Opener:
    """Opens requests on kept-alive connections, one set per thread, and follows no redirect
    (so headers only ever reach the configured URL).

    A run calls the same endpoint thousands of times, from up to ``--concurrency`` threads:
    a connection per call would pay a TCP (and TLS) handshake each time, and leave the server
    a socket per call in TIME_WAIT. A connection the server has closed while idle is noticed
    before it is reused (as urllib3 does), so a request is never sent twice. A request that a
    proxy from the environment (``HTTP_PROXY``, ``HTTPS_PROXY``, ``NO_PROXY``, read when the
    target first calls a host) applies to goes through urllib, which honours it, on a
    connection of its own.
    """

    def __init__(self) -> None:
        self._local = threading.local()
        self._proxied = urllib.request.build_opener(_NoRedirect)
        self._tls: ssl.SSLContext | None = None  # made once: loading the CAs takes a while
        self._routes: dict[tuple[str, str], bool] = {}
        """(scheme, host:port) -> whether a proxy from the environment applies."""

    def open(self, request: urllib.request.Request, timeout: float | None = None) -> Any:
        parts = urlsplit(request.full_url)
        key = (parts.scheme, parts.netloc)
        proxied = self._routes.get(key)
        if proxied is None:  # read once per host: the environment is read whole each time
            # by host or host:port, as urllib reads NO_PROXY
            proxied = self._routes[key] = (parts.scheme in urllib.request.getproxies()
                                           and not urllib.request.proxy_bypass(parts.netloc))
        if proxied:
            return (self._proxied.open(request) if timeout is None
                    else self._proxied.open(request, timeout=timeout))
        pool: dict[tuple[str, str], http.client.HTTPConnection] = getattr(
            self._local, "connections", None) or {}
        self._local.connections = pool
        connection = pool.pop(key, None)
        if connection is not None and _dropped(connection):
            connection.close()
            connection = None
        if connection is None:
            if parts.scheme == "https" and self._tls is None:
                self._tls = ssl.create_default_context()
            connection = _connect(parts.scheme, parts.netloc, timeout, self._tls)
        elif connection.sock is not None:
            connection.sock.settimeout(timeout if timeout is not None
                                       else socket.getdefaulttimeout())
        target = parts.path or "/"
        if parts.query:
            target += f"?{parts.query}"
        try:
            connection.request(request.get_method(), target, body=request.data,
                               headers={name.title(): value  # as urllib sends them
                                        for name, value in request.header_items()})
            answer = connection.getresponse()
        except OSError as exc:
            connection.close()
            raise urllib.error.URLError(exc) from None
        except BaseException:
            connection.close()
            raise
        if not 200 <= answer.status < 300:
            try:  # what the error says, before its connection goes
                said = answer.read(_ERROR_BODY_BYTES)
            except (OSError, http.client.HTTPException):
                said = b""
            finally:
                connection.close()
            raise urllib.error.HTTPError(request.full_url, answer.status, answer.reason,
                                         answer.headers, io.BytesIO(said))
        return _Kept(answer, connection, lambda: pool.setdefault(key, connection))


class _Kept:
    """A response whose connection goes back to its thread's pool once the body was read to
    its end without an error (and the server did not ask to close it)."""

    def __init__(self, answer: http.client.HTTPResponse, connection: http.client.HTTPConnection,
                 keep: Any) -> None:
        self.answer, self.connection, self.keep = answer, connection, keep
        self.headers = answer.headers

    def read1(self, size: int = -1) -> bytes:
        return self.answer.read1(size)

    def __enter__(self) -> _Kept:
        return self

    def __exit__(self, kind: Any, value: Any, traceback: Any) -> None:
        # read to its end: its length counted down to 0 (or a chunked body's last chunk read)
        done = self.answer.isclosed() or self.answer.length == 0
        if kind is None and done and not self.answer.will_close:
            self.answer.close()
            self.keep()
        else:
            self.connection.close()


def _connect(scheme: str, netloc: str, timeout: float | None,
             tls: ssl.SSLContext | None) -> http.client.HTTPConnection:
    """A new connection (HTTPS verified as urllib verifies it, with ``tls``)."""
    wait = timeout if timeout is not None else socket.getdefaulttimeout()
    if scheme == "https":
        return http.client.HTTPSConnection(netloc, timeout=wait,
                                           context=tls or ssl.create_default_context())
    return http.client.HTTPConnection(netloc, timeout=wait)


def _dropped(connection: http.client.HTTPConnection) -> bool:
    """Whether the server closed the idle connection (its socket reads as ready: an end of
    file, or bytes no request asked for)."""
    sock = connection.sock
    if sock is None:
        return True
    try:
        ready, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(ready)


def opener() -> Opener:
    """The opener of an HTTP target: kept-alive connections, no redirect followed."""
    return Opener()


def exchange(opener: Opener, url: str, *, method: str,
             headers: Mapping[str, str], data: bytes, timeout_s: float | None,
             max_bytes: int) -> tuple[str, str]:
    """Send one JSON request; the answer's content type and text. Every failure is a
    :class:`TargetError` (HTTP 429 and 5xx, timeouts and refused connections transient)."""
    sent = {"Content-Type": "application/json", "Accept": "application/json",
            "User-Agent": "incident-harness", **headers}
    request = urllib.request.Request(url, data=data, headers=sent, method=method)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    try:
        # without a timeout argument, the socket module's default timeout applies
        opened = (opener.open(request) if timeout_s is None
                  else opener.open(request, timeout=timeout_s))
        with opened as answer:
            content_type = answer.headers.get_content_type()
            charset = answer.headers.get_content_charset() or "utf-8"
            raw = _read(answer, deadline, timeout_s, max_bytes)
    except urllib.error.HTTPError as exc:
        raise _status_error(exc) from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise TargetError(f"timed out after {timeout_s:g} s", transient=True) from None
        reason = getattr(exc.reason, "strerror", None) or exc.reason
        raise TargetError(f"cannot connect to {url}: {reason}", transient=True) from None
    except TimeoutError:
        raise TargetError(f"timed out after {timeout_s:g} s", transient=True) from None
    except (OSError, ValueError, http.client.HTTPException) as exc:
        reason = f"request to {url} failed: {type(exc).__name__}: {exc}"
        raise TargetError(reason) from None
    try:
        return content_type, raw.decode(charset, "replace")
    except LookupError:  # an unknown charset: read it as UTF-8
        return content_type, raw.decode("utf-8", "replace")


def _read(answer: http.client.HTTPResponse, deadline: float | None, timeout_s: float | None,
          max_bytes: int) -> bytes:
    """Read the body in chunks, up to the cap and (roughly) the deadline."""
    body = bytearray()
    while chunk := answer.read1(_CHUNK):
        body += chunk
        if len(body) > max_bytes:
            raise TargetError(f"response exceeded {max_bytes} bytes")
        if deadline is not None and time.monotonic() > deadline:
            raise TargetError(f"timed out after {timeout_s:g} s", transient=True)
    return bytes(body)


def expand(header: str, value: str) -> str:
    """Replace ``${NAME}`` by the environment variable; a missing one is an error."""

    def variable(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise TargetError(f"environment variable {name} is not set (header {header})")
        return os.environ[name]

    return _VARIABLE.sub(variable, value)


def _fill(template: Any, case_input: Any, case_id: str) -> Any:
    """The body template with ``{{ input }}`` and ``{{ case.id }}`` values replaced."""
    if isinstance(template, str):
        if _INPUT.fullmatch(template):
            return case_input
        if _CASE_ID.fullmatch(template):
            return case_id
        return template
    if isinstance(template, Mapping):
        return {key: _fill(value, case_input, case_id) for key, value in template.items()}
    if isinstance(template, list | tuple):
        return [_fill(value, case_input, case_id) for value in template]
    return template


def _status_error(exc: urllib.error.HTTPError) -> TargetError:
    try:
        body = exc.read(_ERROR_BODY_BYTES)
    except (OSError, http.client.HTTPException):
        body = b""
    finally:
        exc.close()
    reason = f"HTTP {exc.code} {exc.reason}"
    transient = exc.code == 429 or exc.code >= 500
    if 300 <= exc.code < 400:
        reason += f" (redirect to {exc.headers.get('Location', '?')} not followed)"
    elif transient:
        reason += " (transient)"
    return TargetError(reason, detail=f"body: {excerpt(body)}" if body.strip() else None,
                       transient=transient, retry_after=_retry_after(exc.headers))


def _retry_after(headers: Any) -> float | None:
    """Seconds from a Retry-After header (a number, or an HTTP date), if there is one."""
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        reason = f"response is not JSON ({exc.msg})"
        raise TargetError(reason, detail=f"body: {excerpt(text)}") from None


def _lookup(document: Any, path: str) -> Any:
    """Follow a dotted path; integer segments index lists."""
    value = document
    for segment in path.split("."):
        if isinstance(value, Mapping) and segment in value:
            value = value[segment]
        elif isinstance(value, list) and re.fullmatch(r"-?\d+", segment) and (
            -len(value) <= int(segment) < len(value)
        ):
            value = value[int(segment)]
        else:
            raise TargetError(f"response has no field {path}")
    return value


def check_url(value: Any, where: str, line: int | None) -> str:
    url = Text().check(value, where, line)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise Invalid(f"expected an http:// or https:// URL, found {url!r}", field=where,
                      line=line)
    return url


def _build(spec: TargetSpec, root: Path) -> HttpTarget:
    options = spec.options
    return HttpTarget(
        spec.main,
        method=options.get("method", "POST"),
        headers={str(k): str(v) for k, v in options.get("headers", {}).items()},
        body=options.get("body", "{{ input }}"),
        response=options.get("response"),
        max_response_bytes=options.get("max_response_bytes", DEFAULT_MAX_RESPONSE_BYTES),
    )


ADAPTER = register(
    Adapter(
        name="http",
        summary="Send each case to an HTTP endpoint as JSON and read its JSON answer.",
        main=Custom(check_url, schema={"type": "string", "format": "uri"},
                    description="The endpoint's http:// or https:// URL."),
        options={
            "method": Text(choices=METHODS, description="HTTP method (default POST)."),
            "headers": Record({}, extra=Text(allow_numbers=True),
                              description="Request headers; ${NAME} reads an environment "
                                          "variable."),
            "body": AnyValue(description='JSON body template: "{{ input }}" is the case input, '
                                         '"{{ case.id }}" the case id (default: the input).'),
            "response": Record({name: Text() for name in RESPONSE_FIELDS},
                               description="Response field -> dotted path into the JSON answer."),
            "max_response_bytes": Number(integer=True, minimum=1,
                                         description="Cap on the response body (default 10 MiB)."),
            **TRACE_OPTIONS,
        },
        build=_build,
    )
)
