"""Comparing two runs: the transition table, pass-rate intervals and what changed."""

from __future__ import annotations

import pytest
from conftest import make_result as result
from conftest import make_run as run

from harness.compare import (
    Transition,
    compare,
    compare_case,
    transition,
    wilson_interval,
    word_diff,
)
from harness.errors import InputError


@pytest.mark.parametrize(("before", "after", "expected"), [
    (("pass",), ("pass",), Transition.STILL_PASSING),
    (("fail",), ("pass",), Transition.FIXED),
    (("error",), ("pass",), Transition.FIXED),
    (("pass",), ("fail",), Transition.REGRESSED),
    (("fail",), ("fail",), Transition.STILL_FAILING),
    (("error",), ("fail",), Transition.STILL_FAILING),
    (("pass",), ("error",), Transition.ERROR),
    (("fail",), ("error",), Transition.ERROR),
    (None, ("pass",), Transition.NEW),
    (None, ("fail",), Transition.NEW),
    (None, ("error",), Transition.ERROR),
    (("pass",), None, Transition.REMOVED),
    (("fail",), None, Transition.REMOVED),
    (("pass",), ("pass", "fail", "pass"), Transition.FLAKY),
    (("fail",), ("fail", "pass"), Transition.FLAKY),
    (None, ("pass", "fail"), Transition.FLAKY),
    (("pass",), ("fail", "fail", "fail"), Transition.REGRESSED),
    (("pass",), ("pass", "error"), Transition.ERROR),
])
def test_transition_table(before, after, expected):
    baseline = result("C", *before) if before else None
    candidate = result("C", *after) if after else None
    assert transition(baseline, candidate) is expected


def test_wilson_interval_matches_known_values():
    low, high = wilson_interval(8, 10)
    assert (round(low, 3), round(high, 3)) == (0.49, 0.943)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    low, high = wilson_interval(10, 10)
    assert high == 1.0 and round(low, 3) == 0.722


def test_interval_only_where_trials_exceed_one():
    single = compare_case(result("C", "pass"), result("C", "pass"))
    assert single.candidate_interval is None
    several = compare_case(result("C", "pass"), result("C", "pass", "pass", "fail"))
    low, high = several.candidate_interval
    assert low < 2 / 3 < high


def test_changed_case_shows_checks_output_diff_similarity_and_tool_differences():
    before = result("C", "pass", output="Refund issued for order A-1001.",
                    tools=({"name": "issue_refund", "args": {"order_id": "A-1001"}},))
    after = result("C", "fail", output="Refund issued for order A-1004.",
                   tools=({"name": "issue_refund", "args": {"order_id": "A-1004"}},))
    case = compare_case(before, after)
    assert case.transition is Transition.REGRESSED
    assert [(c.kind, c.line, c.baseline, c.candidate) for c in case.check_changes] == [
        ("contains", 7, "pass", "fail")]
    assert ("delete", "A-1001.") in case.output_diff and ("insert", "A-1004.") in case.output_diff
    assert 80 < case.similarity < 100
    assert any("A-1001" in line and "A-1004" in line
               for line in case.structured_diffs["tool_calls"])


def test_unchanged_passing_case_carries_no_diffs():
    case = compare_case(result("C", "pass"), result("C", "pass"))
    assert case.output_diff == () and case.structured_diffs == {} and case.check_changes == ()


def test_case_changed_between_runs_is_flagged():
    assert compare_case(result("C", "pass", digest="a"), result("C", "pass", digest="b")
                        ).case_changed


def test_word_diff_keeps_whitespace_and_marks_changes():
    assert word_diff("you have 60 days", "you have 30 days") == (
        ("equal", "you have "), ("delete", "60"), ("insert", "30"), ("equal", " days"))


def test_compare_orders_incident_cases_first_and_counts_transitions():
    baseline = run(result("BASE-1", "pass"), result("INC-2", "fail", incident=True),
                   result("INC-9", "pass", incident=True))
    candidate = run(result("BASE-1", "pass"), result("INC-2", "pass", incident=True),
                    result("NEW-1", "fail"))
    comparison = compare(baseline, candidate)
    assert [c.case_id for c in comparison.cases] == ["INC-2", "INC-9", "BASE-1", "NEW-1"]
    counts = comparison.counts()
    assert counts[Transition.FIXED] == 1 and counts[Transition.REMOVED] == 1
    assert counts[Transition.STILL_PASSING] == 1 and counts[Transition.NEW] == 1
    assert sum(counts.values()) == 4


def test_runs_of_different_suites_are_refused():
    with pytest.raises(InputError, match="runs are of different suites: 's'"):
        compare(run(result("C", "pass")), run(result("C", "pass"), suite="other"))
