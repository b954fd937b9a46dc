"""The ``command`` target: run a program once per case, JSON in on stdin, JSON out on stdout.

``command: [python, agent.py]`` runs the argv (no shell) in the suite's root folder, or in
``cwd`` (relative to the root), with the environment plus ``env``. The case input is written
to stdin as JSON; stdout is read as the response (a JSON string is shorthand for the output).
The program runs in its own process group: on a timeout, or when its output exceeds
``max_output_bytes``, the whole group is killed, so helpers it started die with it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import selectors
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from harness.errors import InputError, TargetError
from harness.model import Case, TargetResponse, TargetSpec, with_messages
from harness.schema import ListOf, Number, Record, Text
from harness.targets import Adapter, register
from harness.targets.tracing import TRACE_OPTIONS, current

DEFAULT_MAX_OUTPUT_BYTES = 10 * 1024 * 1024
_CHUNK = 64 * 1024
_STDERR_KEEP = 64 * 1024
_STDERR_LINES = 20
_DETAIL_CHARS = 2000
_EXCERPT_CHARS = 200


def to_json(value: Any) -> bytes:
    """The case input as UTF-8 JSON; dates (as YAML loads them) become ISO 8601 strings."""

    def fallback(item: Any) -> str:
        if isinstance(item, dt.date | dt.datetime | dt.time):
            return item.isoformat()
        raise TypeError(f"{type(item).__name__} is not JSON serialisable")

    try:
        return json.dumps(value, default=fallback, ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise TargetError(f"case input cannot be sent as JSON: {exc}") from None


def excerpt(data: bytes | str, limit: int = _EXCERPT_CHARS) -> str:
    """The start of ``data`` on one line, shortened to ``limit`` characters."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Timeout(Exception):
    """The deadline passed while the program was still running."""


class _Overflow(Exception):
    """The program wrote more than the output cap."""


class CommandTarget:
    """Runs a program per call, feeding the input on stdin and parsing stdout."""

    def __init__(
        self, argv: list[str], cwd: Path, env: dict[str, str], max_output_bytes: int
    ) -> None:
        """``env`` holds the extra variables, added to this process's environment per call."""
        self.argv = argv
        self.cwd = cwd
        self.env = env
        self.max_output_bytes = max_output_bytes

    def call(self, case_input: Any, *, case: Case, timeout_s: float | None) -> TargetResponse:
        payload = to_json(with_messages(case_input))
        process = self._start()
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        try:
            stdout, stderr = self._exchange(process, payload, deadline)
            process.wait(timeout=_remaining(deadline))
        except (subprocess.TimeoutExpired, _Timeout):
            _kill_group(process)
            raise TargetError(f"timed out after {timeout_s:g} s", transient=True) from None
        except _Overflow:
            _kill_group(process)
            raise TargetError(f"output exceeded {self.max_output_bytes} bytes") from None
        except BaseException:
            _kill_group(process)
            raise
        finally:
            for pipe in (process.stdin, process.stdout, process.stderr):
                if pipe is not None:
                    pipe.close()
        return _response(process.returncode, stdout, stderr)

    def _start(self) -> subprocess.Popen[bytes]:
        program = self.argv[0]
        try:
            return subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=self.cwd,
                env={**os.environ, **self.env, **_traced_environment()},
                bufsize=0,
                start_new_session=True,
            )
        except FileNotFoundError:
            raise TargetError(f"executable not found: {program}") from None
        except PermissionError:
            raise TargetError(f"cannot execute {program}: permission denied") from None
        except OSError as exc:
            raise TargetError(f"cannot start {program}: {exc.strerror or exc}") from None

    def _exchange(
        self, process: subprocess.Popen[bytes], payload: bytes, deadline: float | None
    ) -> tuple[bytes, bytes]:
        """Write stdin and read stdout and stderr until both close; bounded in memory."""
        assert process.stdin and process.stdout and process.stderr
        stdout, stderr = bytearray(), bytearray()
        sent = 0
        with selectors.DefaultSelector() as selector:
            os.set_blocking(process.stdin.fileno(), False)
            selector.register(process.stdin, selectors.EVENT_WRITE)
            selector.register(process.stdout, selectors.EVENT_READ, stdout)
            selector.register(process.stderr, selectors.EVENT_READ, stderr)
            while selector.get_map():
                remaining = _remaining(deadline)
                if remaining is not None and remaining <= 0:
                    raise _Timeout
                for key, _ in selector.select(remaining):
                    if key.fileobj is process.stdin:
                        try:
                            sent += os.write(key.fd, payload[sent : sent + _CHUNK])
                        except BlockingIOError:
                            continue
                        except BrokenPipeError:
                            sent = len(payload)  # the program stopped reading; not an error
                        if sent >= len(payload):
                            selector.unregister(key.fileobj)
                            process.stdin.close()
                        continue
                    chunk = os.read(key.fd, _CHUNK)
                    if not chunk:
                        selector.unregister(key.fileobj)
                        continue
                    buffer: bytearray = key.data
                    buffer += chunk
                    if buffer is stdout and len(stdout) > self.max_output_bytes:
                        raise _Overflow
                    if buffer is stderr and len(stderr) > 2 * _STDERR_KEEP:
                        del stderr[:-_STDERR_KEEP]
        return bytes(stdout), bytes(stderr)


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """Kill the program's whole process group and reap the program."""
    with contextlib.suppress(OSError):  # the group is already gone
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _stderr_tail(stderr: bytes) -> str | None:
    lines = stderr.decode("utf-8", "replace").rstrip().splitlines()[-_STDERR_LINES:]
    text = "\n".join(lines)
    if len(text) > _DETAIL_CHARS:
        text = "..." + text[-(_DETAIL_CHARS - 3) :]
    return f"stderr (last lines):\n{text}" if text else None


def _response(returncode: int, stdout: bytes, stderr: bytes) -> TargetResponse:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        raise TargetError(f"killed by {name}", detail=_stderr_tail(stderr))
    if returncode > 0:
        raise TargetError(f"exited with code {returncode}", detail=_stderr_tail(stderr))
    if not stdout.strip():
        raise TargetError("stdout is empty; expected a JSON response", detail=_stderr_tail(stderr))
    try:
        value = json.loads(stdout.decode("utf-8"))
    except UnicodeDecodeError:
        raise TargetError("stdout is not UTF-8", detail=f"stdout: {excerpt(stdout)}") from None
    except json.JSONDecodeError as exc:
        reason = f"stdout is not JSON ({exc.msg})"
        raise TargetError(reason, detail=f"stdout: {excerpt(stdout)}") from None
    return TargetResponse.parse(value)


def _traced_environment() -> dict[str, str]:
    """The call's trace context and the OTLP endpoint, when the target is traced."""
    context = current()
    return context.environment() if context is not None else {}


def _build(spec: TargetSpec, root: Path) -> CommandTarget:
    cwd = root / spec.options.get("cwd", ".")
    if not cwd.is_dir():
        raise InputError(f"working directory does not exist: {cwd}",
                         field=f"targets.{spec.name}.cwd", path=spec.path, line=spec.line)
    env = {str(name): str(value) for name, value in spec.options.get("env", {}).items()}
    cap = spec.options.get("max_output_bytes", DEFAULT_MAX_OUTPUT_BYTES)
    return CommandTarget(list(spec.main), cwd, env, cap)


ADAPTER = register(
    Adapter(
        name="command",
        summary="Run a program per case: the input as JSON on stdin, the response on stdout.",
        main=ListOf(Text(allow_numbers=True), min_items=1,
                    description="The program and its arguments, e.g. [python, agent.py]."),
        options={
            "cwd": Text(description="Working directory, relative to the folder holding suites/."),
            "env": Record({}, extra=Text(allow_numbers=True),
                          description="Extra environment variables for the program."),
            "max_output_bytes": Number(integer=True, minimum=1,
                                       description="Cap on stdout (default 10 MiB)."),
            **TRACE_OPTIONS,
        },
        build=_build,
    )
)
