"""Checks have a time limit: a hostile pattern or a runaway custom check ends as an ``error``
naming the check and its budget, and the run goes on."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import write

from harness import checks, runner
from harness.budget import BudgetExceeded, alarms, check_budget, remaining
from harness.loader import import_project_code, load_case
from harness.model import Case, Expectation, TargetResponse

TWENTY_WORDS = " ".join(["word"] * 20) + "!"


def case(tmp_path: Path, check: str, *, budget: str = "") -> Case:
    return load_case(write(tmp_path / "cases" / "w" / "C1.yaml",
                           f"id: C1\ninput: hi\n{budget}expect:\n  - {check}\n"))


def test_the_pattern_that_hung_the_run_now_gives_a_verdict(tmp_path):
    """``^(\\w+\\s?)*$`` on twenty words ending in '!' backtracks for hours with ``re``."""
    loaded = case(tmp_path, r"""regex: '^(\w+\s?)*$'""")
    outcome = loaded.expect[0].evaluate(TargetResponse(output=TWENTY_WORDS), loaded)
    assert outcome.verdict == "fail"


def test_a_pattern_past_its_budget_is_an_error_naming_the_check_and_the_budget(tmp_path):
    loaded = case(tmp_path, r"regex: '(a|aa)+$'", budget="check_budget_s: 0.2\n")
    outcome = loaded.expect[0].evaluate(TargetResponse(output="a" * 5000 + "b"), loaded)
    assert outcome.verdict == "error"
    assert outcome.reason == ("regex ran past its budget of 0.2 s (check_budget_s) and was "
                              "stopped: its verdict is unknown")
    assert outcome.line == 5


RUNAWAY = '''
def forever(response, case):
    while True:
        pass

def swallowing(response, case):
    try:
        while True:
            pass
    except Exception:
        return True
'''


@pytest.mark.parametrize("function", ["forever", "swallowing"])
def test_a_runaway_custom_check_is_stopped(tmp_path, monkeypatch, function):
    monkeypatch.setattr(sys, "path", list(sys.path))
    write(tmp_path / "runaway_checks.py", RUNAWAY)
    loaded = case(tmp_path, f"python: runaway_checks:{function}", budget="check_budget_s: 0.2\n")
    import_project_code([loaded], tmp_path)
    try:
        outcome = loaded.expect[0].evaluate(TargetResponse(output="x"), loaded)
    finally:
        sys.modules.pop("runaway_checks", None)
    assert outcome.verdict == "error"
    assert "ran past its budget of 0.2 s" in outcome.reason


def test_budgets_come_from_the_case_then_the_suite_then_the_default(tmp_path):
    assert case(tmp_path, "contains: x").check_budget_s == 5.0
    plain = tmp_path / "cases" / "w" / "C1.yaml"
    assert load_case(plain, defaults={"check_budget_s": 3}).check_budget_s == 3
    assert case(tmp_path, "contains: x", budget="check_budget_s: 1.5\n").check_budget_s == 1.5
    assert load_case(plain, defaults={"check_budget_s": 3}).check_budget_s == 1.5


def test_the_deadline_is_known_inside_and_gone_after():
    assert remaining() is None
    with check_budget(10):
        left = remaining()
        assert left is not None and 0 < left <= 10
    assert remaining() is None


def test_outside_the_main_thread_patterns_still_stop_at_the_budget():
    pattern_check = checks.build("regex", r"(a|aa)+$")
    expectation = Expectation("regex", r"(a|aa)+$", pattern_check, line=3)
    found: list[str] = []
    one = Case(id="C", path=Path("c.yaml"), line=1, workflow="w", title=None, input="x",
               expect=(expectation,), check_budget_s=0.2)

    def work() -> None:
        found.append(expectation.evaluate(TargetResponse(output="a" * 5000 + "b"), one).verdict)

    worker = threading.Thread(target=work)
    worker.start()
    worker.join(60)
    assert found == ["error"]


def test_budget_exceeded_is_not_an_exception_a_check_can_swallow():
    assert not issubclass(BudgetExceeded, Exception)


def test_a_run_with_a_hostile_pattern_finishes_and_blocks(tmp_path):
    write(tmp_path / "cases" / "w" / "C1.yaml",
          "id: C1\ninput: hi\ncheck_budget_s: 0.2\nexpect:\n  - regex: '(a|aa)+$'\n")
    write(tmp_path / "cases" / "w" / "C2.yaml", "id: C2\ninput: hi\nexpect:\n  - contains: a\n")
    write(tmp_path / "echo_target.py", f"def respond(request):\n    return {'a' * 5000 + 'b'!r}\n")
    write(tmp_path / "suites" / "s.yaml",
          "name: s\ncases: [cases/w/*.yaml]\ntargets: {t: {python: 'echo_target:respond'}}\n")
    done = subprocess.run([sys.executable, "-m", "harness", "run", "suites/s.yaml", "-t", "t",
                           "--out", "r.jsonl"], cwd=tmp_path, text=True, capture_output=True,
                          timeout=120, check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 passed, 0 failed, 1 errors" in done.stdout
    assert "ran past its budget of 0.2 s" in (tmp_path / "r.jsonl").read_text()


def _installs(monkeypatch, loaded: Case) -> tuple[list[str], list[object]]:
    """The verdicts of ``loaded``'s checks on "ab", and the handlers installed meanwhile."""
    installed: list[object] = []
    real = signal.signal

    def counting(signum, handler):
        installed.append(handler)
        return real(signum, handler)

    monkeypatch.setattr(signal, "signal", counting)
    trial = runner.evaluate(loaded, runner.Call(TargetResponse(output="ab"), None, 0.0), 1)
    monkeypatch.setattr(signal, "signal", real)
    assert signal.getsignal(signal.SIGALRM) is signal.SIG_DFL
    return [check.verdict for check in trial.checks], installed


def test_a_case_installs_the_timer_handler_once_for_all_its_checks(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    write(tmp_path / "plain_checks.py", "def short(response, case):\n    return True\n")
    loaded = load_case(write(tmp_path / "cases" / "w" / "C1.yaml",
                             "id: C1\ninput: hi\nexpect:\n  - python: plain_checks:short\n"
                             "  - python: plain_checks:short\n  - contains: a\n"))
    import_project_code([loaded], tmp_path)
    try:
        verdicts, installed = _installs(monkeypatch, loaded)
    finally:
        sys.modules.pop("plain_checks", None)
    assert verdicts == ["pass", "pass", "pass"]
    assert len(installed) == 2  # installed before the first check, removed after the last


def test_checks_that_cannot_run_away_need_no_timer(tmp_path, monkeypatch):
    loaded = load_case(write(tmp_path / "cases" / "w" / "C1.yaml",
                             "id: C1\ninput: hi\nexpect:\n  - contains: a\n  - not_contains: z\n"
                             "  - regex: '^a'\n  - not_regex: 'z'\n  - length: {max: 10}\n"
                             "  - equals: ab\n"))
    verdicts, installed = _installs(monkeypatch, loaded)
    assert verdicts == ["pass"] * 6
    assert installed == []


def test_only_linear_built_in_checks_go_without_a_timer():
    # a kind is bounded when its work is linear in the response and its patterns stop at the
    # deadline themselves; anything else, custom checks first, keeps the timer
    bounded = sorted(name for name, kind in checks.kinds().items() if kind.bounded)
    assert bounded == ["contains", "equals", "length", "not_contains", "not_regex", "regex"]


def test_a_runaway_check_among_others_is_stopped_with_the_handler_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    write(tmp_path / "runaway_checks.py", RUNAWAY)
    loaded = load_case(write(tmp_path / "cases" / "w" / "C1.yaml",
                             "id: C1\ninput: hi\ncheck_budget_s: 0.2\nexpect:\n  - contains: x\n"
                             "  - python: runaway_checks:forever\n  - contains: x\n"))
    import_project_code([loaded], tmp_path)
    try:
        trial = runner.evaluate(loaded, runner.Call(TargetResponse(output="x"), None, 0.0), 1)
    finally:
        sys.modules.pop("runaway_checks", None)
    assert [check.verdict for check in trial.checks] == ["pass", "error", "pass"]
    assert "ran past its budget of 0.2 s" in trial.checks[1].reason
    assert signal.getsignal(signal.SIGALRM) is signal.SIG_DFL


def test_a_stray_timer_signal_between_checks_stops_nothing():
    with alarms():
        signal.raise_signal(signal.SIGALRM)  # outside any check's budget: ignored
        with pytest.raises(BudgetExceeded), check_budget(10):
            signal.raise_signal(signal.SIGALRM)
    assert signal.getsignal(signal.SIGALRM) is signal.SIG_DFL


def test_another_timer_handler_is_left_alone(monkeypatch):
    seen: list[int] = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: seen.append(signum))
    try:
        with alarms(), check_budget(10):
            assert signal.getsignal(signal.SIGALRM) is not signal.SIG_DFL
            signal.raise_signal(signal.SIGALRM)
        assert seen == [signal.SIGALRM]  # the owner's handler ran; no budget stole it
    finally:
        signal.signal(signal.SIGALRM, previous)


def test_a_check_stopped_at_its_budget_leaves_no_deadline_behind(tmp_path):
    # the regex engine and the timer signal stop the check at the same moment: the signal's
    # handler may then run only once the check has returned, even as the budget is being put
    # away; a deadline left behind would stop every later pattern at once
    hostile = case(tmp_path, r"regex: '(a|aa)+$'", budget="check_budget_s: 0.2\n")
    for _ in range(3):
        outcome = hostile.expect[0].evaluate(TargetResponse(output="a" * 5000 + "b"), hostile)
        assert outcome.verdict == "error"
        assert remaining() is None
        assert signal.getsignal(signal.SIGALRM) is signal.SIG_DFL
    plain = load_case(write(tmp_path / "cases" / "w" / "C2.yaml",
                            "id: C2\ninput: hi\nexpect:\n  - regex: '^a+b$'\n"))
    outcome = plain.expect[0].evaluate(TargetResponse(output="a" * 5000 + "b"), plain)
    assert outcome.verdict == "pass"
