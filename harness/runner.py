"""Run one case against one target: call the target, evaluate the checks, judge the trials.

A failed check is data, not an exception; so is a failing target. Calling the target is kept
apart from evaluating checks, so calls can be scheduled (concurrently, with retries) without
touching how verdicts are reached.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from harness.errors import TargetError
from harness.model import Case, CaseResult, TargetResponse, Trial
from harness.targets import Target


@dataclass(frozen=True, slots=True)
class Call:
    """The outcome of one target call: a response, or the reason there is none."""

    response: TargetResponse | None
    error: str | None
    duration_s: float


def call(case: Case, target: Target) -> Call:
    """Call the target once with the case's input; never raises for a failing target."""
    started = time.perf_counter()
    try:
        response = target.call(case.input, case=case, timeout_s=case.timeout_s)
    except TargetError as exc:
        return Call(None, str(exc), time.perf_counter() - started)
    except Exception as exc:  # an adapter bug must not crash the run either
        error = f"target failed unexpectedly: {type(exc).__name__}: {exc}"
        return Call(None, error, time.perf_counter() - started)
    return Call(response, None, time.perf_counter() - started)


def evaluate(case: Case, outcome: Call, index: int) -> Trial:
    """Judge one call: every check of the case on its response, or an ``error`` trial."""
    if outcome.response is None:
        return Trial(index=index, verdict="error", error=outcome.error,
                     duration_s=outcome.duration_s)
    verdicts = tuple(exp.evaluate(outcome.response, case) for exp in case.expect)
    if any(v.verdict == "error" for v in verdicts):
        verdict = "error"
    elif all(v.verdict == "pass" for v in verdicts):
        verdict = "pass"
    else:
        verdict = "fail"
    return Trial(index=index, verdict=verdict, checks=verdicts, response=outcome.response,
                 duration_s=outcome.duration_s)


def judge(case: Case, trials: tuple[Trial, ...]) -> CaseResult:
    """The case's verdict: ``error`` if any trial errored (an error never counts as a pass),
    else ``pass`` when the share of passing trials reaches ``min_pass_rate``, else ``fail``."""
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
    )


def run_case(case: Case, target: Target) -> CaseResult:
    """Run every trial of ``case`` against ``target``, one after another, and judge them."""
    trials = tuple(evaluate(case, call(case, target), i + 1) for i in range(case.trials))
    return judge(case, trials)
