"""The runner: trials against a target, their verdicts, and the case verdict."""

from __future__ import annotations

import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from harness import loader, runner
from harness.errors import TargetError
from harness.model import CallPolicy, Case, CheckOutcome, Expectation, TargetResponse

GOOD = "Refunds are accepted within 30 days."
BAD = "You will get a full refund."


class Scripted:
    """A target answering from a script, in turn; an exception in the script is raised."""

    def __init__(self, *script: str | BaseException) -> None:
        self.script = script
        self.calls: list[tuple[Any, str, float | None]] = []

    def call(self, case_input: Any, *, case: Case, timeout_s: float | None) -> TargetResponse:
        self.calls.append((case_input, case.id, timeout_s))
        answer = self.script[(len(self.calls) - 1) % len(self.script)]
        if isinstance(answer, BaseException):
            raise answer
        return TargetResponse(output=answer)


def load(tmp_path: Path, text: str, name: str = "refund.yaml") -> Case:
    path = tmp_path / "cases" / "refunds" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return loader.load_case(path)


def baseline(tmp_path: Path, extra: str = "") -> Case:
    return load(tmp_path, textwrap.dedent("""\
        id: BASE-1
        title: Return window
        input: {question: "Can I return this?"}
        expect:
          - contains: "30 days"
          - not_contains: "full refund"
    """) + extra)


def test_all_checks_pass(tmp_path: Path) -> None:
    case = baseline(tmp_path, "timeout_s: 3\n")
    target = Scripted(GOOD)
    result = runner.run_case(case, target)

    assert result.verdict == "pass"
    assert (result.pass_rate, result.min_pass_rate) == (1.0, 1.0)
    assert target.calls == [({"question": "Can I return this?"}, "BASE-1", 3)]
    (trial,) = result.trials
    assert (trial.index, trial.verdict, trial.error) == (1, "pass", None)
    assert trial.response is not None
    # the harness times the call and says so beside what the target reported (latency check)
    assert trial.response.metadata.pop("call_ms") == pytest.approx(trial.duration_s * 1000,
                                                                   abs=0.1)
    assert trial.response == TargetResponse(output=GOOD)
    assert [(c.kind, c.verdict, c.line) for c in trial.checks] == [
        ("contains", "pass", 5), ("not_contains", "pass", 6)]


def test_a_failing_check_fails_the_case_with_its_outcome(tmp_path: Path) -> None:
    result = runner.run_case(baseline(tmp_path), Scripted(BAD))
    assert (result.verdict, result.pass_rate) == ("fail", 0.0)
    (trial,) = result.trials
    assert trial.verdict == "fail"
    contains, not_contains = trial.checks
    assert contains == CheckOutcome(kind="contains", verdict="fail",
                                    reason="output does not contain '30 days'",
                                    expected="'30 days'", obtained=BAD, line=5)
    assert (not_contains.verdict, not_contains.reason) == (
        "fail", "output contains 'full refund'")
    assert not_contains.evidence == {"match": "You will get a [[full refund]]."}


def test_target_error_is_an_error_outcome_with_its_reason(tmp_path: Path) -> None:
    target = Scripted(TargetError("timed out after 3s", detail="stderr: slow"))
    result = runner.run_case(baseline(tmp_path), target)
    assert (result.verdict, result.pass_rate) == ("error", 0.0)
    (trial,) = result.trials
    assert (trial.verdict, trial.error) == ("error", "timed out after 3s\nstderr: slow")
    assert (trial.response, trial.checks) == (None, ())


def test_unexpected_target_exception_is_an_error_not_a_crash(tmp_path: Path) -> None:
    result = runner.run_case(baseline(tmp_path), Scripted(ZeroDivisionError("division by zero")))
    assert result.verdict == "error"
    assert result.trials[0].error == (
        "target failed unexpectedly: ZeroDivisionError: division by zero")


def test_a_raising_check_makes_the_trial_error(tmp_path: Path) -> None:
    def broken(response: TargetResponse, case: Case) -> CheckOutcome:
        raise RuntimeError("judge unavailable")

    case = baseline(tmp_path)
    case = Case(id=case.id, path=case.path, line=case.line, workflow=case.workflow,
                title=case.title, input=case.input,
                expect=(*case.expect, Expectation(kind="judge", params={}, check=broken, line=9)))
    result = runner.run_case(case, Scripted(GOOD))
    assert result.verdict == "error"
    assert [c.verdict for c in result.trials[0].checks] == ["pass", "pass", "error"]
    assert result.trials[0].checks[2].reason == "check raised RuntimeError: judge unavailable"


@pytest.mark.parametrize(
    ("script", "min_pass_rate", "verdict", "pass_rate"),
    [
        ((BAD, GOOD), 0.6, "fail", 0.4),  # 2 of 5 pass: below 0.6
        ((BAD, GOOD), 0.4, "pass", 0.4),  # ... exactly 0.4 reaches 0.4
        ((BAD, GOOD), 0.5, "fail", 0.4),
        ((GOOD, BAD), 0.6, "pass", 0.6),  # 3 of 5 pass
        ((GOOD, BAD), 0.8, "fail", 0.6),
        ((BAD, GOOD), 0, "pass", 0.4),
    ],
)
def test_pass_rate_against_min_pass_rate(
    tmp_path: Path, script: tuple[str, str], min_pass_rate: float, verdict: str, pass_rate: float
) -> None:
    case = baseline(tmp_path, f"trials: 5\nmin_pass_rate: {min_pass_rate}\n")
    target = Scripted(*script)
    result = runner.run_case(case, target)
    assert len(target.calls) == 5
    assert [t.index for t in result.trials] == [1, 2, 3, 4, 5]
    assert (result.verdict, result.pass_rate, result.min_pass_rate) == (
        verdict, pass_rate, min_pass_rate)


def test_any_errored_trial_makes_the_case_error(tmp_path: Path) -> None:
    case = baseline(tmp_path, "trials: 4\nmin_pass_rate: 0.5\n")
    result = runner.run_case(case, Scripted(GOOD, GOOD, TargetError("HTTP 503"), GOOD))
    assert [t.verdict for t in result.trials] == ["pass", "pass", "error", "pass"]
    assert result.pass_rate == 0.75  # errors never count as passes...
    assert result.verdict == "error"  # ...and one is enough to make the case an error
    assert result.trials[2].error == "HTTP 503"


def test_no_trials_is_an_error() -> None:
    case = Case(id="C0", path=Path("c.yaml"), line=1, workflow="w", title=None, input="x",
                expect=(), trials=0)
    result = runner.run_case(case, Scripted(GOOD))
    assert (result.verdict, result.pass_rate, result.trials) == ("error", 0.0, ())


def test_result_carries_incident_metadata_and_input(tmp_path: Path) -> None:
    case = load(tmp_path, """\
        id: INC-7
        title: Refund promised outside policy
        category: policy
        severity: sev1
        status: closed
        owner: alice
        evidence:
          input: {question: "Refund after 45 days?"}
          output: You will get a full refund.
        expect:
          - contains: "30 days"
    """)
    result = runner.run_case(case, Scripted(GOOD))
    assert result.verdict == "pass"
    assert (result.case_id, result.title, result.workflow) == (
        "INC-7", "Refund promised outside policy", "refunds")
    assert (result.incident, result.category, result.severity, result.owner) == (
        True, "policy", "sev1", "alice")
    assert result.input == {"question": "Refund after 45 days?"}
    assert (result.path, result.line) == (str(case.path), 1)
    assert result.case_digest == case.digest != ""


def test_baseline_result_has_no_incident_metadata(tmp_path: Path) -> None:
    result = runner.run_case(baseline(tmp_path), Scripted(GOOD))
    assert (result.incident, result.category, result.severity, result.owner) == (
        False, None, None, None)
    assert result.input == {"question": "Can I return this?"}


def test_durations_are_non_negative_and_add_up(tmp_path: Path) -> None:
    case = baseline(tmp_path, "trials: 3\n")
    result = runner.run_case(case, Scripted(GOOD, TargetError("down"), BAD))
    assert all(t.duration_s >= 0 for t in result.trials)
    assert result.duration_s == pytest.approx(sum(t.duration_s for t in result.trials))
    assert result.duration_s >= 0


def test_call_and_evaluate_separately(tmp_path: Path) -> None:
    case = baseline(tmp_path)
    done = runner.call(case, Scripted(TargetError("refused")))
    assert (done.response, done.error) == (None, "refused")
    assert done.duration_s >= 0
    trial = runner.evaluate(case, runner.call(case, Scripted(GOOD)), 3)
    assert (trial.index, trial.verdict) == (3, "pass")


# --- retries of transient failures -----------------------------------------------------------


class Flaky:
    """Fails with the given errors first, then answers."""

    def __init__(self, *errors: TargetError) -> None:
        self.errors = list(errors)
        self.calls = 0

    def call(self, case_input, *, case, timeout_s):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return TargetResponse(output="ok")


def _plain_case() -> Case:
    return Case(id="C1", path=Path("c.yaml"), line=1, workflow="w", title=None, input="x",
                expect=())


def test_transient_failures_are_retried_and_attempts_recorded(monkeypatch) -> None:
    monkeypatch.setattr(runner.time, "sleep", lambda seconds: None)
    target = Flaky(TargetError("HTTP 503", transient=True), TargetError("timed out",
                                                                        transient=True))
    outcome = runner.call(_plain_case(), target, policy=CallPolicy(retries=2))
    assert outcome.response is not None and outcome.attempts == 3 and target.calls == 3


def test_retries_run_out_and_the_error_says_how_many_attempts(monkeypatch) -> None:
    monkeypatch.setattr(runner.time, "sleep", lambda seconds: None)
    target = Flaky(*(TargetError("HTTP 429", transient=True) for _ in range(3)))
    outcome = runner.call(_plain_case(), target, policy=CallPolicy(retries=1))
    assert outcome.response is None and outcome.attempts == 2
    assert outcome.error == "HTTP 429 (after 2 attempts)"


def test_permanent_failures_are_not_retried(monkeypatch) -> None:
    monkeypatch.setattr(runner.time, "sleep", lambda seconds: None)
    target = Flaky(TargetError("HTTP 404"))
    outcome = runner.call(_plain_case(), target, policy=CallPolicy(retries=5))
    assert target.calls == 1 and outcome.error == "HTTP 404"


def test_backoff_doubles_adds_jitter_and_honours_retry_after() -> None:
    policy = CallPolicy(retries=3, retry_backoff_s=1.0)
    assert 1.0 <= runner.backoff(policy, 1, None) <= 2.0
    assert 4.0 <= runner.backoff(policy, 3, None) <= 5.0
    assert runner.backoff(policy, 1, 30.0) == 30.0
    assert runner.backoff(policy, 1, 10_000.0) == runner.MAX_RETRY_WAIT_S


def test_rate_limiter_spaces_calls(monkeypatch) -> None:
    clock = [100.0]
    waits: list[float] = []
    monkeypatch.setattr(runner.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(runner.time, "sleep", waits.append)
    limiter = runner.RateLimiter(4.0)
    for _ in range(3):
        limiter.wait()
    assert waits == [0.25, 0.5]


def test_a_call_as_steps_yields_each_wait_and_counts_it_in_its_duration() -> None:
    target = Flaky(TargetError("HTTP 429", transient=True, retry_after=7.0),
                   TargetError("HTTP 503", transient=True, retry_after=2.5))
    steps = runner.call_steps(_plain_case(), target, policy=CallPolicy(retries=2))
    waits = []
    with pytest.raises(StopIteration) as done:
        while True:
            waits.append(next(steps))  # nobody sleeps: the driver decides
    outcome = done.value.value
    assert waits == [7.0, 2.5] and target.calls == 3
    assert outcome.attempts == 3 and outcome.duration_s >= 9.5
    assert outcome.response.metadata["call_ms"] >= 9500


def test_a_target_slot_is_held_by_each_attempt_and_not_between_them() -> None:
    slots = threading.BoundedSemaphore(1)
    held: list[bool] = []

    class Watching(Flaky):
        def call(self, case_input, *, case, timeout_s):
            held.append(not slots.acquire(blocking=False))
            return super().call(case_input, case=case, timeout_s=timeout_s)

    steps = runner.call_steps(_plain_case(), Watching(TargetError("busy", transient=True)),
                              policy=CallPolicy(retries=1), slots=slots)
    assert next(steps) >= 0
    assert slots.acquire(blocking=False)  # free while the call waits
    slots.release()
    with pytest.raises(StopIteration):
        next(steps)
    assert held == [True, True]  # each attempt ran holding the slot
