"""Time budgets for checks: a check that runs past its budget is an ``error``, never a hang.

:func:`check_budget` sets a deadline for the code inside it. Regular expressions from case files
run on an engine that stops at the deadline (:func:`remaining` tells it how long is left); any
other Python code is interrupted by a timer signal, where the process allows one (the main
thread, with no other SIGALRM handler installed, on a platform that has it). Either way the
check ends in :class:`BudgetExceeded`.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from types import FrameType

DEFAULT_CHECK_BUDGET_S = 5.0
"""How long one check may take on one response, unless the case or suite says otherwise."""

_DEADLINE: ContextVar[float | None] = ContextVar("harness_check_deadline", default=None)


class BudgetExceeded(BaseException):
    """A check ran past its budget. A BaseException, so that a check's own ``except
    Exception`` cannot swallow it and pass."""


def remaining() -> float | None:
    """Seconds left before the current check's deadline (at least a millisecond), or None
    outside a budget."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return None
    return max(deadline - time.monotonic(), 0.001)


_MAIN = threading.main_thread()


def _handler() -> str | None:
    """How a budget may use the timer signal here: ``"kept"`` when :func:`alarms` keeps the
    handler installed, ``"free"`` when nobody has one (a budget installs its own), None when
    it may not (not the main thread, no timer, or another handler in place)."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not _MAIN:
        return None
    if _kept:
        return "kept"
    current = signal.getsignal(signal.SIGALRM)
    if current is _interrupt:
        return "kept"
    return "free" if current in (signal.SIG_DFL, None) else None


_kept = False
"""Whether :func:`alarms` has the handler installed (read and written on the main thread
only), which spares each check asking for the signal's handler."""


def _interrupt(signum: int, frame: FrameType | None) -> None:
    if _DEADLINE.get() is None:  # a stray signal between two checks stops nothing
        return
    # The handler runs where Python next looks for signals, which may be after the check has
    # returned, even at the first step of the code that would clear the deadline and remove
    # the handler: so it clears them itself before it raises (the timer fires once).
    global _kept
    _DEADLINE.set(None)
    _kept = False
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    raise BudgetExceeded


@contextlib.contextmanager
def alarms() -> Iterator[None]:
    """Keep the budget's timer-signal handler installed while several checks run in turn,
    rather than installing and removing it around each (two system calls a check). Where a
    budget may not use the signal, this does nothing."""
    global _kept
    if _handler() != "free":
        yield
        return
    signal.signal(signal.SIGALRM, _interrupt)
    _kept = True
    try:
        yield
    finally:
        _kept = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)


class deadline:
    """Set the deadline for the body without a timer signal: for a check that cannot run away,
    whose patterns stop at the deadline themselves (:func:`remaining`)."""

    __slots__ = ("_seconds", "_token")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds

    def __enter__(self) -> None:
        self._token = _DEADLINE.set(time.monotonic() + self._seconds)

    def __exit__(self, *exc: object) -> None:
        _DEADLINE.reset(self._token)


class check_budget(deadline):
    """Run the body within ``seconds``; raises :class:`BudgetExceeded` past them, by the
    deadline and, where the process allows one, a timer signal. (A class rather than a
    generator: it is entered once per check, thousands of times a run.)"""

    __slots__ = ("_handler",)

    def __enter__(self) -> None:
        super().__enter__()
        self._handler = handler = _handler()
        if handler == "free":
            signal.signal(signal.SIGALRM, _interrupt)
        if handler is not None:
            signal.setitimer(signal.ITIMER_REAL, self._seconds)

    def __exit__(self, *exc: object) -> None:
        if self._handler is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
        super().__exit__(*exc)
        if self._handler == "free":
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
