"""Run one case against one target: call the target, evaluate the checks, judge the trials.

A failed check is data, not an exception; so is a failing target. Calling the target is kept
apart from evaluating checks, so calls can be scheduled (concurrently, rate limited, retried)
without touching how verdicts are reached.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

from harness.digest import sha256_json
from harness.errors import TargetError
from harness.model import CallPolicy, Case, CaseResult, TargetResponse, TargetSpec, Trial
from harness.targets import Target

MAX_RETRY_WAIT_S = 60.0
"""Longest single wait between retries, whatever a Retry-After header asks."""


@dataclass(frozen=True, slots=True)
class Call:
    """The outcome of one target call: a response, or the reason there is none."""

    response: TargetResponse | None
    error: str | None
    duration_s: float
    attempts: int = 1


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


def _attempt(case: Case, target: Target) -> TargetResponse:
    try:
        return target.call(case.input, case=case, timeout_s=case.timeout_s)
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


def call(case: Case, target: Target, *, policy: CallPolicy | None = None,
         limiter: RateLimiter | None = None) -> Call:
    """Call the target with the case's input, retrying transient failures as ``policy``
    allows; never raises for a failing target."""
    policy = policy or CallPolicy()
    started = time.perf_counter()
    attempts = 0
    while True:
        attempts += 1
        if limiter is not None:
            limiter.wait()
        try:
            response = _attempt(case, target)
        except TargetError as exc:
            if exc.transient and attempts <= policy.retries:
                time.sleep(backoff(policy, attempts, exc.retry_after))
                continue
            error = str(exc)
            if attempts > 1:
                error += f" (after {attempts} attempts)"
            return Call(None, error, time.perf_counter() - started, attempts)
        took = time.perf_counter() - started
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

    def call(self, case: Case) -> Call:
        """One call with the case's input, within the target's limits; never raises."""
        if self.slots is None:
            return call(case, self.target, policy=self.spec.calls, limiter=self.limiter)
        with self.slots:
            return call(case, self.target, policy=self.spec.calls, limiter=self.limiter)


def evaluate(case: Case, outcome: Call, index: int) -> Trial:
    """Judge one call: every check of the case on its response, or an ``error`` trial."""
    if outcome.response is None:
        return Trial(index=index, verdict="error", error=outcome.error,
                     duration_s=outcome.duration_s, attempts=outcome.attempts)
    verdicts = tuple(exp.evaluate(outcome.response, case) for exp in case.expect)
    if any(v.verdict == "error" for v in verdicts):
        verdict = "error"
    elif all(v.verdict == "pass" for v in verdicts):
        verdict = "pass"
    else:
        verdict = "fail"
    return Trial(index=index, verdict=verdict, checks=verdicts, response=outcome.response,
                 duration_s=outcome.duration_s, attempts=outcome.attempts)


def strictness(case: Case, *, settle_trials: int | None = None) -> dict[str, Any]:
    """What the gate compares to tell a case made stricter from one made weaker: each check's
    kind, parameters digest and line, ``trials``, ``min_pass_rate``, the input's digest and
    the suite's ``settle_trials``."""
    checks = sorted(({"kind": e.kind, "params": sha256_json(e.params), "line": e.line}
                     for e in case.expect), key=lambda c: (c["kind"], c["params"]))
    return {"checks": checks, "trials": case.trials, "min_pass_rate": case.min_pass_rate,
            "input": sha256_json(case.input), "settle_trials": settle_trials}


def judge(case: Case, trials: tuple[Trial, ...], *,
          settle_trials: int | None = None) -> CaseResult:
    """The case's verdict: ``error`` if any trial errored (an error never counts as a pass),
    else ``pass`` when the share of passing trials reaches ``min_pass_rate``, else ``fail``.
    ``settle_trials`` is the suite's, recorded with the case's strictness."""
    passes = sum(trial.verdict == "pass" for trial in trials)
    pass_rate = passes / len(trials) if trials else 0.0
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
