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


def _alarm_available() -> bool:
    return (hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, None))


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise BudgetExceeded


@contextlib.contextmanager
def check_budget(seconds: float) -> Iterator[None]:
    """Run the body within ``seconds``; raises :class:`BudgetExceeded` past them."""
    token = _DEADLINE.set(time.monotonic() + seconds)
    alarm = _alarm_available()
    if alarm:
        signal.signal(signal.SIGALRM, _interrupt)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        if alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
        _DEADLINE.reset(token)
