"""The pool a run calls its targets on (harness.run.pool): a call that must wait gives its
thread back, goes first once its wait is over, and a closed pool leaves nothing running."""

from __future__ import annotations

import threading
import time
from concurrent.futures import CancelledError

import pytest
from conftest import run_python

from harness.run.pool import CallPool


def pool_threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(name)]


def ended(name: str) -> bool:
    for thread in pool_threads(name):
        thread.join(timeout=5)
    return not pool_threads(name)


def test_no_more_steps_run_at_once_than_the_pool_has_threads():
    running, most, lock = [0], [0], threading.Lock()

    def steps(number: int):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        yield 0.01  # a wait holds no thread: the next step counts afresh
        return number * 2

    pool: CallPool[int] = CallPool(3, name="t-size")
    futures = [pool.submit(steps(n)) for n in range(12)]
    assert [f.result(timeout=10) for f in futures] == [n * 2 for n in range(12)]
    assert most[0] == 3
    assert ended("t-size")  # threads end when the work does


def test_a_call_whose_wait_is_over_goes_before_calls_not_begun():
    log: list[str] = []

    def waits():
        log.append("A1")
        yield 0.01
        log.append("A2")
        return "A"

    def plain(name: str, took: float = 0.0):
        time.sleep(took)
        log.append(name)
        return name
        yield  # pragma: no cover

    pool: CallPool[str] = CallPool(1, name="t-order")
    futures = [pool.submit(waits()), pool.submit(plain("B", 0.1)), pool.submit(plain("C")),
               pool.submit(plain("D"))]
    assert [f.result(timeout=10) for f in futures] == ["A", "B", "C", "D"]
    assert log == ["A1", "B", "A2", "C", "D"]  # behind the queue, A2 would come last
    assert ended("t-order")


def test_what_steps_raise_reaches_the_caller():
    def broken():
        raise ValueError("adapter bug")
        yield  # pragma: no cover

    pool: CallPool[None] = CallPool(2, name="t-raise")
    future = pool.submit(broken())
    assert isinstance(future.exception(timeout=10), ValueError)
    assert ended("t-raise")


def test_closing_cancels_calls_not_begun_and_ends_the_waits():
    started = threading.Event()
    release = threading.Event()
    closed_steps: list[str] = []

    def long_wait():
        try:
            yield 30.0
        finally:
            closed_steps.append("waiting")
        return "never"

    def blocking():
        started.set()
        release.wait(10)
        return "finished"
        yield  # pragma: no cover

    pool: CallPool[str] = CallPool(1, name="t-close")
    waiting = pool.submit(long_wait())
    running = pool.submit(blocking())
    queued = pool.submit(blocking())
    assert started.wait(10)
    pool.close()
    release.set()
    assert running.result(timeout=10) == "finished"  # a step under way keeps its result
    assert queued.cancelled()
    with pytest.raises(CancelledError):
        waiting.result(timeout=10)
    assert closed_steps == ["waiting"]  # its generator was closed: its finally ran
    assert ended("t-close")
    with pytest.raises(RuntimeError, match="closed"):
        pool.submit(blocking())


def test_a_pool_of_no_thread_is_refused():
    with pytest.raises(ValueError):
        CallPool(0)


ABANDONED = '''
import sys, time
from pathlib import Path
from harness.run.pool import CallPool

log = Path(sys.argv[1])


def call(number):
    with log.open("a") as out:
        out.write(f"{number}\\n")
    time.sleep(0.3)
    return number
    yield


def waits():
    yield 30.0
    return "late"


pool = CallPool(1)
pool.submit(waits())
for number in range(5):
    pool.submit(call(number))
time.sleep(0.1)  # the first call is under way; the program ends without closing the pool
'''


def test_a_program_that_ends_without_closing_its_pool_begins_no_more_calls(tmp_path):
    """Calls queued when the program ends are not made (a crashed run must not go on calling
    a live target), and a wait far ahead does not keep the process alive."""
    log = tmp_path / "calls.log"
    started = time.monotonic()
    done = run_python(ABANDONED, str(log))
    assert done.returncode == 0, done.stderr
    assert log.read_text().split() == ["0"]  # the one under way finished; none began after
    assert time.monotonic() - started < 20  # not held for the 30 s wait
