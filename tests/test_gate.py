"""The gate, tested against a table of transitions x policies."""

from __future__ import annotations

import pytest
from conftest import make_result as result
from conftest import make_run as run

from harness.compare import compare
from harness.gate import GatePolicy, decide

DEFAULT = GatePolicy()
SEV1_ONLY = GatePolicy(severities=frozenset({"sev1"}))
RETRIEVAL_ONLY = GatePolicy(categories=frozenset({"retrieval"}))
SETTLE_3 = GatePolicy(settle_trials=3)

# (name, baseline verdicts or None, candidate verdicts or None, incident, policy,
#  expected outcome, expected rule or None)
TABLE = [
    ("fixed incident", ("fail",), ("pass",), True, DEFAULT, "RESTORE", None),
    ("still passing", ("pass",), ("pass",), False, DEFAULT, "RESTORE", None),
    ("regressed baseline case", ("pass",), ("fail",), False, DEFAULT, "BLOCK", "regressed"),
    ("regressed incident", ("pass",), ("fail",), True, DEFAULT, "BLOCK", "regressed"),
    ("regressed is never filtered", ("pass",), ("fail",), True, SEV1_ONLY, "BLOCK",
     "regressed"),
    ("regressed despite category filter", ("pass",), ("fail",), True, RETRIEVAL_ONLY, "BLOCK",
     "regressed"),
    ("incident still failing", ("fail",), ("fail",), True, DEFAULT, "BLOCK", "still_failing"),
    ("incident still failing, out of severity scope", ("fail",), ("fail",), True, SEV1_ONLY,
     "RESTORE", "still_failing_out_of_scope"),
    ("incident still failing, out of category scope", ("fail",), ("fail",), True,
     RETRIEVAL_ONLY, "RESTORE", "still_failing_out_of_scope"),
    ("baseline case failing twice", ("fail",), ("fail",), False, SEV1_ONLY, "BLOCK",
     "still_failing"),
    ("error", ("pass",), ("error",), False, DEFAULT, "BLOCK", "error"),
    ("error is never filtered", ("fail",), ("error",), True, SEV1_ONLY, "BLOCK", "error"),
    ("new passing case", None, ("pass",), False, DEFAULT, "RESTORE", None),
    ("new failing case", None, ("fail",), False, DEFAULT, "BLOCK", "new_failing"),
    ("removed incident", ("pass",), None, True, DEFAULT, "BLOCK", "removed_incident"),
    ("removed incident despite filter", ("pass",), None, True, SEV1_ONLY, "BLOCK",
     "removed_incident"),
    ("removed baseline case", ("pass",), None, False, DEFAULT, "RESTORE", "removed"),
    ("flaky", ("pass",), ("pass", "fail", "pass"), False, DEFAULT, "BLOCK", "flaky"),
    ("flaky, too few trials to settle", ("pass",), ("pass", "fail"), False, SETTLE_3, "BLOCK",
     "flaky"),
    ("flaky, settled but short of the pass rate", ("pass",), ("pass", "fail", "fail"), False,
     SETTLE_3, "BLOCK", "flaky_failing"),
]


@pytest.mark.parametrize(("name", "before", "after", "incident", "policy", "outcome", "rule"),
                         TABLE, ids=[row[0] for row in TABLE])
def test_gate_table(name, before, after, incident, policy, outcome, rule):
    baseline = run(*([result("C", *before, incident=incident)] if before else []),
                   result("OTHER", "pass"))
    candidate = run(*([result("C", *after, incident=incident)] if after else []),
                    result("OTHER", "pass"))
    decision = decide(compare(baseline, candidate), policy)
    assert decision.outcome == outcome
    rules = [(r.case_id, r.rule) for r in decision.reasons]
    assert rules == ([("C", rule)] if rule else [])


def test_flaky_settled_by_enough_trials_at_the_pass_rate_is_a_note():
    baseline = run(result("C", "pass"))
    candidate = run(result("C", "pass", "pass", "fail", min_pass_rate=0.6))
    decision = decide(compare(baseline, candidate), SETTLE_3)
    assert decision.outcome == "RESTORE"
    assert [(r.rule, r.blocking) for r in decision.reasons] == [("flaky_settled", False)]


def test_one_regression_is_never_averaged_away_by_many_fixes():
    fixed = [f"INC-{i}" for i in range(50)]
    baseline = run(*(result(c, "fail", incident=True) for c in fixed), result("BASE", "pass"))
    candidate = run(*(result(c, "pass", incident=True) for c in fixed), result("BASE", "fail"))
    decision = decide(compare(baseline, candidate))
    assert decision.outcome == "BLOCK"
    assert [(r.case_id, r.rule) for r in decision.blocking] == [("BASE", "regressed")]


def test_reasons_name_the_owner_and_owners_are_listed():
    baseline = run(result("INC-1", "pass", incident=True))
    candidate = run(result("INC-1", "fail", incident=True))
    decision = decide(compare(baseline, candidate))
    assert decision.blocking[0].owner == "dana"
    assert decision.owners() == ["dana"]


def test_interrupted_candidate_run_blocks_and_interrupted_baseline_is_a_note():
    decision = decide(compare(run(result("C", "pass")),
                              run(result("C", "pass"), complete=False)))
    assert [(r.rule, r.blocking) for r in decision.reasons] == [("incomplete_run", True)]
    decision = decide(compare(run(result("C", "pass"), complete=False),
                              run(result("C", "pass"))))
    assert decision.outcome == "RESTORE"
    assert [(r.rule, r.blocking) for r in decision.reasons] == [("incomplete_baseline", False)]


def test_empty_candidate_run_blocks():
    decision = decide(compare(run(), run()))
    assert decision.outcome == "BLOCK"
    assert [r.rule for r in decision.reasons] == ["empty_run"]


def test_case_file_changed_between_runs_is_a_note():
    decision = decide(compare(run(result("C", "pass", digest="a")),
                              run(result("C", "pass", digest="b"))))
    assert decision.outcome == "RESTORE"
    assert [r.rule for r in decision.notes] == ["case_changed"]


def test_policy_from_a_suite_gate_section():
    policy = GatePolicy.from_section({"severities": ["sev1", "sev2"], "settle_trials": 5,
                                      "baseline": "pre-fix"})
    assert policy.severities == {"sev1", "sev2"} and policy.settle_trials == 5
    assert policy.categories == GatePolicy().categories


def test_an_unknown_severity_or_category_is_never_filtered_out():
    baseline = run(result("C", "fail", incident=True, severity="sev7", category="made_up"))
    candidate = run(result("C", "fail", incident=True, severity="sev7", category="made_up"))
    decision = decide(compare(baseline, candidate), SEV1_ONLY)
    assert decision.outcome == "BLOCK"
    assert [r.rule for r in decision.blocking] == ["still_failing"]
