"""The exceptions incident-harness raises.

Every error a user can cause or fix derives from :class:`HarnessError`; each subclass also
derives from the builtin it refines, so callers may catch either::

    HarnessError
    ├── InputError (ValueError)            bad case, suite, record or command-line input: exit 2
    ├── CheckParamError (ValueError)       a check's parameters, raised by a check factory;
    │                                      the loader re-raises it as an InputError at path:line
    └── TargetError (RuntimeError)         the workflow under test failed: an ``error`` outcome

    HarnessNote (UserWarning)              something that works but is better written
                                           another way; the command line prints it as a note

Messages are built first, then raised with structured attributes, so a caller can either print
the message or read ``path``, ``line`` and ``field``.
"""

from __future__ import annotations

from pathlib import Path


class HarnessError(Exception):
    """Base of every error incident-harness raises on purpose."""


class InputError(HarnessError, ValueError):
    """A file or argument the user wrote is invalid.

    ``str(err)`` reads ``path:line: field: problem`` so that editors and terminals link to it.
    """

    def __init__(
        self,
        problem: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
        excerpt: str | None = None,
    ) -> None:
        self.problem = problem
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        self.excerpt = excerpt
        super().__init__(self._render())

    def _render(self) -> str:
        where = ""
        if self.path is not None:
            where = self.path if self.line is None else f"{self.path}:{self.line}"
            where += ": "
        what = f"{self.field}: " if self.field else ""
        message = f"{where}{what}{self.problem}"
        if self.excerpt:
            message += "\n" + self.excerpt
        return message


class CheckParamError(HarnessError, ValueError):
    """A check factory rejected its parameters; ``param`` names the offending one."""

    def __init__(self, problem: str, *, param: str | None = None) -> None:
        self.problem = problem
        self.param = param
        super().__init__(f"{param}: {problem}" if param else problem)


class TargetError(HarnessError, RuntimeError):
    """The workflow under test raised, timed out, exited non-zero or answered malformed data.

    ``transient`` marks failures worth retrying (HTTP 429 and 5xx, connection errors,
    timeouts); ``retry_after`` is the wait in seconds the target asked for, if any.
    """

    def __init__(self, reason: str, *, detail: str | None = None, transient: bool = False,
                 retry_after: float | None = None) -> None:
        self.reason = reason
        self.detail = detail
        self.transient = transient
        self.retry_after = retry_after
        super().__init__(reason if not detail else f"{reason}\n{detail}")


class HarnessNote(UserWarning):
    """Something in a case or suite file that works but is better written another way; issued
    with :func:`warnings.warn` as ``path:line: field: note``, printed by the command line."""
