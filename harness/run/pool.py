"""Calls on a few threads, where a call that must wait gives its thread back.

A run calls its targets ``concurrency`` at once. A call told to come back later (a retry's
backoff, a 429's ``Retry-After``) is not in flight while it waits: :class:`CallPool` parks it
and lends its thread to the next call, and once its wait is over it goes ahead of calls not
yet begun (the run reports in case order, so the oldest call is the one holding it up).

Threads are started as work arrives and end when there is none, so a pool left open never
keeps the process alive: once the program's main thread has ended, the pool begins no more
calls and drops the waits. :meth:`CallPool.close` drops what has not begun and ends the
waits.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Generator
from concurrent.futures import CancelledError, Future
from typing import Generic, TypeVar

T = TypeVar("T")

Task = tuple[Future[T], Generator[float, None, T]]


class CallPool(Generic[T]):
    """Runs steps (generators that yield the seconds to wait before their next step and
    return their result) on up to ``size`` threads."""

    def __init__(self, size: int, *, name: str = "harness-call") -> None:
        if size < 1:
            raise ValueError(f"a pool of {size} threads")
        self.size = size
        self._name = name
        self._lock = threading.Condition()
        self._fresh: deque[Task[T]] = deque()
        self._due: deque[Task[T]] = deque()
        self._later: list[tuple[float, int, Task[T]]] = []
        self._order = itertools.count()
        self._threads = 0
        self._numbers = itertools.count(1)
        self._clock_running = False
        self._closed = False

    def submit(self, steps: Generator[float, None, T]) -> Future[T]:
        """Run ``steps``; the future holds what they return, or what they raised."""
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the call pool is closed")
            self._fresh.append((future, steps))
            self._add_thread()
        return future

    def close(self) -> None:
        """Begin nothing more: calls not begun are cancelled, calls waiting end with
        :class:`CancelledError`; steps running now finish, their results kept."""
        with self._lock:
            self._closed = True
            dropped = [*self._fresh, *self._due, *(task for _, _, task in self._later)]
            self._fresh.clear()
            self._due.clear()
            self._later.clear()
            self._lock.notify_all()
        for future, steps in dropped:
            steps.close()
            if not future.cancel():  # begun: it waited between two steps
                future.set_exception(CancelledError("the run was closed while the call waited"))

    # --- inside the pool ---------------------------------------------------------------------

    def _add_thread(self) -> None:
        """A thread for the work just queued, while there are fewer than ``size`` (held)."""
        if self._threads < self.size:
            self._threads += 1
            threading.Thread(target=self._work, name=f"{self._name}-{next(self._numbers)}",
                             daemon=False).start()

    def _work(self) -> None:
        while True:
            with self._lock:
                # Once the program's main thread has ended, begin nothing more: a run that
                # ended without closing its pool does not go on calling live targets.
                ended = not threading.main_thread().is_alive()
                if self._closed or ended or not (self._due or self._fresh):
                    self._threads -= 1
                    return
                future, steps = self._due.popleft() if self._due else self._fresh.popleft()
            if not future.running() and not future.set_running_or_notify_cancel():
                continue
            try:
                wait = next(steps)
            except StopIteration as done:
                future.set_result(done.value)
                continue
            except BaseException as exc:  # the caller sees it as ThreadPoolExecutor shows it
                future.set_exception(exc)
                continue
            self._park(future, steps, wait)

    def _park(self, future: Future[T], steps: Generator[float, None, T], wait: float) -> None:
        """Hold a call until its wait is over; the clock thread hands it back."""
        with self._lock:
            if self._closed:
                steps.close()
                future.set_exception(CancelledError("the run was closed while the call waited"))
                return
            heapq.heappush(self._later, (time.monotonic() + wait, next(self._order),
                                         (future, steps)))
            if self._clock_running:
                self._lock.notify_all()  # the clock may now have an earlier wake-up
            else:
                self._clock_running = True
                # a daemon: a program that ends is not kept waiting for a retry far ahead
                threading.Thread(target=self._clock, name=f"{self._name}-clock",
                                 daemon=True).start()

    def _clock(self) -> None:
        """Moves each parked call to the front of the queue when its wait is over; ends when
        none is parked."""
        with self._lock:
            while self._later and not self._closed and threading.main_thread().is_alive():
                now = time.monotonic()
                if self._later[0][0] > now:
                    self._lock.wait(self._later[0][0] - now)
                    continue
                _, _, task = heapq.heappop(self._later)
                self._due.append(task)
                self._add_thread()
            self._clock_running = False
