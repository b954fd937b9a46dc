"""Comparing two runs: the transition table, pass-rate intervals and what changed."""

from __future__ import annotations

import json

import pytest
from conftest import make_result as result
from conftest import make_run as run

from harness.compare import (
    OutputState,
    Transition,
    compare,
    compare_case,
    transition,
    wilson_interval,
)
from harness.diff import MAX_DIFF_CHARS
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


# --- what changed, as ``harness compare`` and the report show it ---------------------------

TEN_CALLS = tuple({"name": f"step_{n}", "args": {"n": n}} for n in range(10))


def test_tool_calls_are_aligned_before_they_are_diffed():
    case = compare_case(result("C", "pass", tools=TEN_CALLS),
                        result("C", "fail", tools=TEN_CALLS[1:]))
    assert [c.op.value for c in case.tool_call_diff] == ["removed"] + ["unchanged"] * 9
    assert case.structured_diffs["tool_calls"] == [
        "1 removed, 9 unchanged", '- #1 step_0 {"n":0}']


def test_changed_arguments_of_one_call_are_one_changed_call():
    changed = list(TEN_CALLS)
    changed[3] = {"name": "step_3", "args": {"n": 30}}
    case = compare_case(result("C", "pass", tools=TEN_CALLS), result("C", "fail", tools=changed))
    assert [c.op.value for c in case.tool_call_diff].count("changed") == 1
    assert [c.op.value for c in case.tool_call_diff].count("unchanged") == 9
    assert case.structured_diffs["tool_calls"][1:] == ["~ #4 step_3", "    args['n']: 3 -> 30"]


def test_no_tool_call_diff_when_the_calls_are_the_same():
    case = compare_case(result("C", "pass", output="a", tools=TEN_CALLS),
                        result("C", "fail", output="b", tools=TEN_CALLS))
    assert case.tool_call_diff == () and "tool_calls" not in case.structured_diffs


@pytest.mark.parametrize(("before", "after", "state"), [
    (("pass",), ("pass",), OutputState.STILL_PASSING),
    (None, ("fail",), OutputState.ONE_RUN),
    (("fail",), None, OutputState.ONE_RUN),
    (("pass",), ("error",), OutputState.NO_RESPONSE),
    (("error",), ("fail",), OutputState.NO_RESPONSE),
    (("fail",), ("fail",), OutputState.IDENTICAL),
])
def test_why_an_output_was_not_diffed(before, after, state):
    baseline = result("C", *before) if before else None
    candidate = result("C", *after) if after else None
    case = compare_case(baseline, candidate)
    assert case.output_state is state
    assert case.output_diff == () and case.tool_call_diff == ()
    shown = case.to_dict()
    assert shown["output_diff_state"] == state.value
    assert shown["output_diff"] == [] and shown["tool_call_diff"] == []


def test_an_error_trial_shows_its_checks_as_absent_not_a_diff():
    case = compare_case(result("C", "pass"), result("C", "error"))
    assert [(c.kind, c.baseline, c.candidate) for c in case.check_changes] == [
        ("contains", "pass", None)]
    assert case.similarity is None and case.structured_diffs == {}


def test_an_empty_output_diffs_as_all_inserted():
    case = compare_case(result("C", "fail", output=""), result("C", "pass", output="Done."))
    assert case.output_state is OutputState.CHANGED
    assert case.output_diff == (("insert", "Done."),) and case.similarity == 0.0


def test_huge_outputs_are_capped_and_what_was_left_out_is_counted():
    before = "word " * 100_000
    after = "other " + "word " * 100_000
    case = compare_case(result("C", "pass", output=before), result("C", "fail", output=after))
    # each side is cut at 2,000 words: the baseline's last compared word has no counterpart
    assert case.output_diff == (("delete", "word"), ("insert", "other"),
                                ("equal", " " + "word " * 1_999))
    assert case.output_diff_omitted == (len(before) - len("word " * 2_000)
                                        + len(after) - len("other " + "word " * 1_999))
    assert sum(len(text) for _, text in case.output_diff) <= 2 * MAX_DIFF_CHARS
    assert 90 < case.similarity <= 100


def test_the_json_form_keeps_the_old_keys_and_adds_the_diffs():
    before = result("C", "pass", output="Refund issued for A-1001.", tools=TEN_CALLS)
    after = result("C", "fail", output="Refund issued for A-1004.", tools=TEN_CALLS[1:])
    comparison = compare(run(before), run(after))
    shown = json.loads(json.dumps(comparison.to_dict()))
    assert shown["counts"]["regressed"] == 1
    (case,) = shown["cases"]
    assert list(case) == [
        "case_id", "transition", "incident", "baseline", "candidate", "baseline_pass_rate",
        "candidate_pass_rate", "candidate_interval", "similarity", "check_changes",
        "structured_diffs", "output_diff_state", "output_diff", "output_diff_omitted",
        "tool_call_diff"]
    assert case["check_changes"] == [{"kind": "contains", "line": 7, "baseline": "pass",
                                      "candidate": "fail", "reason": "was fail"}]
    assert case["output_diff"] == [
        {"op": "equal", "text": "Refund issued for "}, {"op": "delete", "text": "A-1001."},
        {"op": "insert", "text": "A-1004."}]
    assert case["output_diff_state"] == "changed" and case["output_diff_omitted"] == 0
    assert [call["op"] for call in case["tool_call_diff"]] == ["removed"] + ["unchanged"] * 9
    assert case["tool_call_diff"][0] == {
        "op": "removed", "name": "step_0", "baseline_index": 0, "candidate_index": None,
        "args": {"n": 0}, "changes": []}
    assert case["structured_diffs"]["tool_calls"][0] == "1 removed, 9 unchanged"
