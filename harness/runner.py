"""Run one case against one target: call the target, evaluate the checks, judge the trials.

A failed check is data, not an exception; so is a failing target. Calling the target is kept
apart from evaluating checks, so calls can be scheduled (concurrently, rate limited, retried)
without touching how verdicts are reached.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import threading
import time
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.budget import alarms
from harness.checks import registry as check_registry
from harness.digest import sha256_json
from harness.errors import TargetError
from harness.model import (
    CallPolicy,
    Case,
    CaseResult,
    CheckOutcome,
    Exchange,
    Expectation,
    Message,
    TargetResponse,
    TargetSpec,
    Trial,
    Verdict,
    passing,
    turn_request,
)
from harness.targets import Target
from harness.targets.tracing import needs_spans, spans_missing

MAX_RETRY_WAIT_S = 60.0
"""Longest single wait between retries, whatever a Retry-After header asks."""


@dataclass(frozen=True, slots=True)
class Call:
    """The outcome of one target call (one conversation, for a multi-turn case): a response,
    or the reason there is none. ``turns`` holds every turn of a conversation that ran, and
    ``response`` is then the final turn's."""

    response: TargetResponse | None
    error: str | None
    duration_s: float
    attempts: int = 1
    turns: tuple[Exchange, ...] = ()


class RateLimiter:
    """Spaces calls at least ``1 / rate`` seconds apart, across threads."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


def _attempt(case: Case, target: Target, request: Any) -> TargetResponse:
    try:
        return target.call(request, case=case, timeout_s=case.timeout_s)
    except TargetError:
        raise
    except Exception as exc:  # an adapter bug must not crash the run either
        raise TargetError(f"target failed unexpectedly: {type(exc).__name__}: {exc}") from exc


def backoff(policy: CallPolicy, retry: int, retry_after: float | None) -> float:
    """The wait before retry number ``retry`` (1-based): exponential with full jitter on top,
    never shorter than what the target asked for."""
    base = policy.retry_backoff_s * 2 ** (retry - 1)
    wait = base + random.uniform(0, policy.retry_backoff_s)
    return min(MAX_RETRY_WAIT_S, max(wait, retry_after or 0.0))


Steps = Generator[float, None, "Call"]
"""A call as steps: it yields each wait (in seconds) it must sit out before its next attempt,
a retry's backoff or a target's Retry-After, and returns the :class:`Call`. Whoever drives it
decides what to do meanwhile: :func:`finish` sleeps; a run's pool lends the thread to another
call."""


def finish(steps: Steps) -> Call:
    """Drive ``steps`` to their end in this thread, sleeping out each wait."""
    while True:
        try:
            wait = next(steps)
        except StopIteration as done:
            return done.value
        time.sleep(wait)


def call(case: Case, target: Target, *, policy: CallPolicy | None = None,
         limiter: RateLimiter | None = None) -> Call:
    """Call the target with the case's input, or once per turn with the conversation so far,
    retrying transient failures as ``policy`` allows; never raises for a failing target.

    A conversation stops at the first turn without a response: its error is the call's."""
    return finish(call_steps(case, target, policy=policy, limiter=limiter))


def call_steps(case: Case, target: Target, *, policy: CallPolicy | None = None,
               limiter: RateLimiter | None = None,
               slots: threading.BoundedSemaphore | None = None) -> Steps:
    """:func:`call` as :data:`Steps`. ``slots`` caps the target's calls in flight: each
    attempt holds one, a wait between attempts none."""
    policy = policy or CallPolicy()
    if not case.turns:
        return (yield from _attempts(case, target, case.input, policy, limiter, slots))
    history: list[Message] = []
    exchanges: list[Exchange] = []
    attempts = 0
    for turn in case.turns:
        request = turn_request(case.input, turn.user, history)
        outcome = yield from _attempts(case, target, request, policy, limiter, slots)
        attempts += outcome.attempts
        exchanges.append(Exchange(user=turn.user, response=outcome.response,
                                  error=outcome.error, duration_s=outcome.duration_s))
        if outcome.response is None:
            break
        history += [{"role": "user", "content": turn.user},
                    {"role": "assistant", "content": outcome.response.output}]
    took = sum(exchange.duration_s for exchange in exchanges)
    last = exchanges[-1]
    error = None if last.response is not None else f"turn {len(exchanges)}: {last.error}"
    return Call(last.response, error, took, attempts, tuple(exchanges))


def _attempts(case: Case, target: Target, request: Any, policy: CallPolicy,
              limiter: RateLimiter | None, slots: threading.BoundedSemaphore | None) -> Steps:
    """One request, retried as ``policy`` allows. Its duration is the attempts' time plus the
    waits between them as asked, however long the driver took to resume it."""
    took = 0.0
    attempts = 0
    while True:
        attempts += 1
        with slots or contextlib.nullcontext():
            began = time.perf_counter()
            if limiter is not None:
                limiter.wait()
            try:
                response: TargetResponse | TargetError = _attempt(case, target, request)
            except TargetError as exc:
                response = exc
            took += time.perf_counter() - began
        if isinstance(response, TargetError):
            if response.transient and attempts <= policy.retries:
                wait = backoff(policy, attempts, response.retry_after)
                took += wait
                yield wait
                continue
            error = str(response)
            if attempts > 1:
                error += f" (after {attempts} attempts)"
            return Call(None, error, took, attempts)
        # The call as the harness measured it (retries included), for the latency check.
        metadata = {**response.metadata, "call_ms": round(took * 1000, 1)}
        return Call(dataclasses.replace(response, metadata=metadata), None, took, attempts)


@dataclass(frozen=True)
class Binding:
    """A built target with what governs its calls: retries, rate limit, concurrency cap."""

    spec: TargetSpec
    target: Target
    limiter: RateLimiter | None
    slots: threading.BoundedSemaphore | None

    @classmethod
    def of(cls, spec: TargetSpec, target: Target) -> Binding:
        calls = spec.calls
        limiter = RateLimiter(calls.rate_limit) if calls.rate_limit else None
        slots = (threading.BoundedSemaphore(calls.max_concurrency)
                 if calls.max_concurrency else None)
        return cls(spec, target, limiter, slots)

    def steps(self, case: Case) -> Steps:
        """One call with the case's input, within the target's limits, as steps."""
        return call_steps(case, self.target, policy=self.spec.calls, limiter=self.limiter,
                          slots=self.slots)

    def call(self, case: Case) -> Call:
        """One call with the case's input, within the target's limits; never raises."""
        return finish(self.steps(case))


def transcript(turns: Sequence[Exchange]) -> TargetResponse:
    """The whole conversation as one response, for ``expect_on: transcript``: every answer's
    output joined by a blank line; every turn's tool calls, sources and approvals in order;
    the final turn's metadata, with ``call_ms`` and the numbers of ``usage`` summed over the
    turns (so ``latency``, ``tokens`` and ``cost`` count the whole conversation)."""
    responses = [turn.response for turn in turns if turn.response is not None]
    metadata = dict(responses[-1].metadata) if responses else {}
    timed = [r.metadata["call_ms"] for r in responses if "call_ms" in r.metadata]
    if timed:
        metadata["call_ms"] = round(sum(timed), 1)
    usages = [usage for r in responses if isinstance(usage := r.metadata.get("usage"), Mapping)]
    if usages and len(usages) == len(responses):
        summed: dict[str, Any] = {}
        for usage in usages:
            for key, value in usage.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    summed[key] = summed.get(key, 0) + value
        metadata["usage"] = summed
    return TargetResponse(
        output="\n\n".join(r.output for r in responses),
        tool_calls=tuple(c for r in responses for c in r.tool_calls),
        sources=tuple(s for r in responses for s in r.sources),
        approvals=tuple(a for r in responses for a in r.approvals),
        metadata=metadata,
        reported=frozenset().union(*(r.reported for r in responses)),
    )


def evaluate(case: Case, outcome: Call, index: int) -> Trial:
    """Judge one call: every check of the case on its response (each turn's checks on that
    turn's response first), or an ``error`` trial."""
    if outcome.response is None:
        return Trial(index=index, verdict="error", error=outcome.error,
                     duration_s=outcome.duration_s, attempts=outcome.attempts,
                     turns=outcome.turns)
    verdicts: list[CheckOutcome] = []
    judged = outcome.response
    if case.turns and case.expect_on == "transcript":
        judged = transcript(outcome.turns)
    timed = any(exp.timed for exp in case.expect) or any(
        exp.timed for turn in case.turns for exp in turn.expect)
    with alarms() if timed else contextlib.nullcontext():
        for number, (turn, exchange) in enumerate(zip(case.turns, outcome.turns, strict=True),
                                                  start=1):
            assert exchange.response is not None  # a conversation with a response completed
            verdicts += [dataclasses.replace(_check(exp, exchange.response, case), turn=number)
                         for exp in turn.expect]
        verdicts += [_check(exp, judged, case) for exp in case.expect]
    verdict: Verdict
    if any(v.verdict == "error" for v in verdicts):
        verdict = "error"
    elif all(v.verdict == "pass" for v in verdicts):
        verdict = "pass"
    else:
        verdict = "fail"
    return Trial(index=index, verdict=verdict, checks=tuple(verdicts), response=judged,
                 duration_s=outcome.duration_s, attempts=outcome.attempts,
                 turns=outcome.turns)


def _check(expectation: Expectation, response: TargetResponse, case: Case) -> CheckOutcome:
    """One check's verdict; an ``error`` when it needs the spans a traced call never got
    (tool calls, sources and approvals unknown are never a pass, nor a failure of the
    workflow)."""
    outcome = expectation.evaluate(response, case)
    missing = spans_missing(response)
    if missing is None or outcome.verdict == "error":
        return outcome
    kind = check_registry.kinds().get(expectation.kind)
    if not needs_spans(expectation.kind, kind.category if kind else None):
        return outcome
    return dataclasses.replace(outcome, verdict="error",
                               reason=f"{missing} (the check would have said: "
                                      f"{outcome.verdict}: {outcome.reason})")


def strictness(case: Case, *, settle_trials: int | None = None) -> dict[str, Any]:
    """What the gate compares to tell a case made stricter from one made weaker: each check's
    kind, parameters digest and line, ``trials``, ``min_pass_rate``, the input's digest and
    the suite's ``settle_trials``.

    A multi-turn case's turns count as its input (a changed or removed turn changes the
    input's digest), and its per-turn checks as checks, each digest covering its turn (moving
    one to another turn changes its parameters); the case's own checks cover ``expect_on``
    when it is ``transcript``. A single-turn case's digests are what they always were."""
    on = case.expect_on if case.turns and case.expect_on != "final" else None
    checks = [{"kind": e.kind, "line": e.line,
               "params": sha256_json({"on": on, "params": e.params}) if on
               else sha256_json(e.params)} for e in case.expect]
    for number, turn in enumerate(case.turns, start=1):
        checks += [{"kind": e.kind, "line": e.line, "turn": number,
                    "params": sha256_json({"turn": number, "params": e.params})}
                   for e in turn.expect]
    checks.sort(key=lambda c: (c["kind"], c["params"]))
    stated = ({"context": case.input, "turns": [turn.user for turn in case.turns]}
              if case.turns else case.input)
    return {"checks": checks, "trials": case.trials, "min_pass_rate": case.min_pass_rate,
            "input": sha256_json(stated), "settle_trials": settle_trials}


def judge(case: Case, trials: tuple[Trial, ...], *,
          settle_trials: int | None = None) -> CaseResult:
    """The case's verdict: ``error`` if any trial errored (an error never counts as a pass),
    else ``pass`` when the share of passing trials reaches ``min_pass_rate``, else ``fail``.
    ``settle_trials`` is the suite's, recorded with the case's strictness."""
    passes = passing(trials)
    pass_rate = passes / len(trials) if trials else 0.0
    verdict: Verdict
    if not trials or any(trial.verdict == "error" for trial in trials):
        verdict = "error"
    elif pass_rate >= case.min_pass_rate:
        verdict = "pass"
    else:
        verdict = "fail"
    incident = case.incident
    return CaseResult(
        case_id=case.id,
        verdict=verdict,
        trials=trials,
        pass_rate=pass_rate,
        min_pass_rate=case.min_pass_rate,
        path=str(case.path),
        line=case.line,
        workflow=case.workflow,
        title=case.title,
        input=case.input,
        incident=incident is not None,
        category=incident.category if incident else None,
        severity=incident.severity if incident else None,
        owner=incident.owner if incident else None,
        business_owner=incident.business_owner if incident else None,
        case_digest=case.digest,
        duration_s=sum(trial.duration_s for trial in trials),
        strictness=strictness(case, settle_trials=settle_trials),
    )


def run_case(case: Case, target: Target, *, policy: CallPolicy | None = None,
             limiter: RateLimiter | None = None) -> CaseResult:
    """Run every trial of ``case`` against ``target``, one after another, and judge them."""
    trials = tuple(
        evaluate(case, call(case, target, policy=policy, limiter=limiter), i + 1)
        for i in range(case.trials)
    )
    return judge(case, trials)
