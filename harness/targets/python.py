"""The ``python`` target: call a function of the workflow in this process.

``python: "package.module:callable"`` is called as ``callable(input, **params)``. The suite's
root folder is appended to ``sys.path`` so that a project's own modules import. With a timeout the
call runs on a worker thread; a call that overruns is abandoned (Python cannot stop a thread),
recorded as an error, and the run goes on. Worker threads are reused, since starting one costs
more than many a workflow's call: a call never waits behind an abandoned one, which keeps its
worker until it returns.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import InputError, TargetError
from harness.model import Case, TargetResponse, TargetSpec, with_messages
from harness.project import ReferenceProblem, import_reference
from harness.schema import AnyValue, Record, Text
from harness.targets import Adapter, register
from harness.targets.tracing import TRACE_OPTIONS, TraceContext, current, python_context


def resolve(reference: str, root: Path, *, spec: TargetSpec | None = None) -> Callable[..., Any]:
    """Import ``module:attribute`` from the project; an error names the target."""
    try:
        return import_reference(reference, root=root)
    except ReferenceProblem as exc:
        if spec is None:
            raise InputError(str(exc), field="python") from None
        raise InputError(str(exc), field=f"targets.{spec.name}.python", path=spec.path,
                         line=spec.line) from None


class PythonTarget:
    """Calls a Python callable with the case input and the target's ``params``."""

    def __init__(self, function: Callable[..., Any], params: dict[str, Any]) -> None:
        self.function = function
        self.params = params
        self._workers = Workers()

    def call(self, case_input: Any, *, case: Case, timeout_s: float | None) -> TargetResponse:
        case_input = with_messages(case_input)
        context = current()  # read here: the worker thread below does not inherit it
        if timeout_s is None:
            return TargetResponse.parse(self._invoke(case_input, context))
        outcome: dict[str, Any] = {}

        def work() -> None:
            try:
                outcome["value"] = self._invoke(case_input, context)
            except TargetError as exc:
                outcome["error"] = exc
            except BaseException as exc:  # whatever ends the call, the worker lives on
                outcome["error"] = TargetError(f"raised {type(exc).__name__}: {exc}")

        if not self._workers.run(work, timeout_s):
            raise TargetError(f"timed out after {timeout_s:g} s", transient=True)
        if "error" in outcome:
            raise outcome["error"]
        return TargetResponse.parse(outcome["value"])

    def _invoke(self, case_input: Any, context: TraceContext | None) -> Any:
        try:
            with python_context(context):
                return self.function(case_input, **self.params)
        except (Exception, SystemExit) as exc:  # the workflow's failure is the case's outcome
            raise TargetError(f"raised {type(exc).__name__}: {exc}") from exc


class _Worker:
    """A daemon thread that runs the jobs put to it, one after another."""

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        threading.Thread(target=self._loop, name="harness-python-target", daemon=True).start()

    def _loop(self) -> None:
        while True:
            self.jobs.get()()


class Workers:
    """Idle worker threads, reused from call to call. A call takes an idle worker or starts
    one, so it never queues behind a call that overran; the overrunning call's worker goes
    back to the idle ones once that call returns."""

    def __init__(self) -> None:
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()

    def run(self, work: Callable[[], None], timeout_s: float) -> bool:
        """Run ``work`` on a worker; False when it did not finish within ``timeout_s`` (it
        goes on, abandoned)."""
        with self._lock:
            worker = self._idle.pop() if self._idle else None
        worker = worker or _Worker()
        done = threading.Event()
        state = {"finished": False, "abandoned": False}

        def job() -> None:
            try:
                work()
            finally:
                with self._lock:
                    state["finished"] = True
                    if state["abandoned"]:  # the caller gave up: free for the next call
                        self._idle.append(worker)
                done.set()

        worker.jobs.put(job)
        if done.wait(timeout_s):
            with self._lock:
                self._idle.append(worker)
            return True
        with self._lock:
            if not state["finished"]:
                state["abandoned"] = True
                return False
        done.wait()  # finished between the wait and the lock: the call counts
        with self._lock:
            self._idle.append(worker)
        return True


def _build(spec: TargetSpec, root: Path) -> PythonTarget:
    return PythonTarget(resolve(spec.main, root, spec=spec), dict(spec.options.get("params", {})))


ADAPTER = register(
    Adapter(
        name="python",
        summary="Call a Python function in this process: callable(input, **params).",
        main=Text(description="'package.module:callable'"),
        options={"params": Record({}, extra=AnyValue(),
                                  description="Keyword arguments for the callable."),
                 **TRACE_OPTIONS},
        build=_build,
    )
)
