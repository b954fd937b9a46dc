"""The gate, tested against a table of transitions x policies."""

from __future__ import annotations

import pytest
from conftest import make_result as result
from conftest import make_run as run

from harness.compare import compare
from harness.gate import GatePolicy, Signoffs, decide, with_signoffs

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


# --- strictness: an incident case only gets stricter silently --------------------------------


def strict(*checks: tuple[str, str], trials: int = 1, min_pass_rate: float = 1.0,
           input_digest: str = "in", settle: int | None = None) -> dict[str, object]:
    return {"checks": [{"kind": kind, "params": params, "line": 10 + index}
                       for index, (kind, params) in enumerate(checks)],
            "trials": trials, "min_pass_rate": min_pass_rate, "input": input_digest,
            "settle_trials": settle}


BEFORE = strict(("not_contains", "p1"), ("cites", "p2"))
STRICTER = [
    ("the same", BEFORE, DEFAULT, None, None),
    ("a check added", strict(("not_contains", "p1"), ("cites", "p2"), ("length", "p3")),
     DEFAULT, None, "check length was added"),
    ("trials raised", strict(("not_contains", "p1"), ("cites", "p2"), trials=5), DEFAULT, None,
     None),
    ("a check removed", strict(("cites", "p2")), DEFAULT,
     "check not_contains (line 10) was removed", None),
    ("a check's parameters changed", strict(("not_contains", "p9"), ("cites", "p2")), DEFAULT,
     "the parameters of not_contains (line 10) changed", None),
    ("a check replaced", strict(("length", "p9"), ("cites", "p2")), DEFAULT,
     "check not_contains (line 10) was removed", "check length was added"),
    ("min_pass_rate lowered", strict(("not_contains", "p1"), ("cites", "p2"),
                                     min_pass_rate=0.0), DEFAULT,
     "min_pass_rate lowered from 1 to 0", None),
    ("input changed", strict(("not_contains", "p1"), ("cites", "p2"), input_digest="other"),
     DEFAULT, "its input changed", None),
    ("settling gained", BEFORE, SETTLE_3, "settle_trials gained (now 3)", None),
]


@pytest.mark.parametrize(("name", "after", "policy", "weakened", "strengthened"), STRICTER,
                         ids=[row[0] for row in STRICTER])
def test_incident_case_strictness_against_the_baseline(name, after, policy, weakened,
                                                        strengthened):
    import dataclasses

    before = dataclasses.replace(result("INC-1", "fail", incident=True, digest="a"),
                                 strictness=BEFORE)
    later = dataclasses.replace(result("INC-1", "pass", incident=True, digest="b"),
                                strictness=after)
    decision = decide(compare(run(before), run(later)), policy)
    found = {r.rule: r for r in decision.reasons}
    assert ("weakened" in found) is bool(weakened)
    if weakened:
        assert decision.outcome == "BLOCK" and found["weakened"].blocking
        assert weakened in found["weakened"].message
    if strengthened:
        assert not found["strengthened"].blocking
        assert strengthened in found["strengthened"].message
    if not weakened:
        assert decision.outcome == "RESTORE"
    assert "case_changed" not in found or not (weakened or strengthened)


def test_trials_lowered_blocks():
    import dataclasses

    before = dataclasses.replace(result("INC-1", "pass", incident=True, digest="a"),
                                 strictness=strict(("cites", "p"), trials=5))
    after = dataclasses.replace(result("INC-1", "pass", incident=True, digest="b"),
                                strictness=strict(("cites", "p"), trials=1))
    decision = decide(compare(run(before), run(after)))
    assert [(r.rule, r.message) for r in decision.blocking] == [
        ("weakened", "weakened: trials lowered from 5 to 1")]


def test_a_baseline_without_recorded_strictness_blocks_only_a_changed_incident_case():
    import dataclasses

    old = result("INC-1", "pass", incident=True, digest="a")  # a version 1 record
    same = dataclasses.replace(result("INC-1", "pass", incident=True, digest="a"),
                               strictness=BEFORE)
    assert decide(compare(run(old), run(same))).outcome == "RESTORE"
    edited = dataclasses.replace(same, case_digest="b")
    decision = decide(compare(run(old), run(edited)))
    assert [r.rule for r in decision.blocking] == ["strictness_unknown"]
    baseline_case = result("BASE", "pass", digest="a")
    assert decide(compare(run(baseline_case), run(result("BASE", "pass", digest="b")))
                  ).outcome == "RESTORE"


def test_settling_never_passes_an_incident_case_below_every_trial_on_its_own():
    baseline = run(result("INC-1", "fail", incident=True))
    candidate = run(result("INC-1", "pass", "pass", "fail", incident=True, min_pass_rate=0.6))
    decision = decide(compare(baseline, candidate), SETTLE_3)
    assert [r.rule for r in decision.blocking] == ["settled_below_full"]
    lifted = with_signoffs(decision, Signoffs(required={}, accepted={"INC-1": ("noor",)}))
    assert lifted.outcome == "RESTORE"


def test_a_risk_acceptance_lifts_only_the_liftable_reasons_of_the_case_it_names():
    import dataclasses

    before = dataclasses.replace(result("INC-1", "pass", incident=True, digest="a"),
                                 strictness=BEFORE)
    after = dataclasses.replace(result("INC-1", "fail", incident=True, digest="b"),
                                strictness=strict(("cites", "p2")))
    other = (result("INC-2", "pass", incident=True, digest="a"),
             dataclasses.replace(result("INC-2", "pass", incident=True, digest="b"),
                                 strictness=strict(("cites", "p2"))))
    decision = decide(compare(run(before, dataclasses.replace(other[0], strictness=BEFORE)),
                              run(after, other[1])))
    assert sorted((r.case_id, r.rule) for r in decision.blocking) == [
        ("INC-1", "regressed"), ("INC-1", "weakened"), ("INC-2", "weakened")]
    accepted = with_signoffs(decision, Signoffs(required={}, accepted={"INC-1": ("noor",),
                                                                         "INC-2": ("noor",)}))
    assert accepted.outcome == "BLOCK"
    assert [(r.case_id, r.rule) for r in accepted.blocking] == [("INC-1", "regressed")]


# --- reasons name the failing checks and the people to tell ---------------------------------


def _failing(case_id: str, *outcomes: tuple[str, str, int | None], incident: bool = True,
             business_owner: str | None = "Head of Support"):
    from dataclasses import replace

    from harness.model import CheckOutcome
    base = result(case_id, "fail", incident=incident)
    checks = tuple(CheckOutcome(kind=kind, verdict="fail", reason=why, line=line)
                   for kind, why, line in outcomes)
    trial = replace(base.trials[0], checks=checks)
    return replace(base, trials=(trial,), business_owner=business_owner if incident else None)


def test_a_regression_names_its_failing_checks_their_lines_and_why():
    candidate = run(_failing("INC-1", ("not_contains", "found '$1' in the output", 14),
                             ("approval_required", "refund.issue ran before any approval", 19),
                             ("no_pii", "found an email address", None)))
    decision = decide(compare(run(result("INC-1", "pass", incident=True)), candidate))
    (reason,) = decision.blocking
    assert reason.message == (
        "incident case passed in the baseline and fails in the candidate (0 of 1 trial(s) "
        "passed): not_contains (line 14): found '$1' in the output; approval_required "
        "(line 19): refund.issue ran before any approval; and 1 more")
    assert [(c.kind, c.line, c.reason) for c in reason.checks] == [
        ("not_contains", 14, "found '$1' in the output"),
        ("approval_required", 19, "refund.issue ran before any approval"),
        ("no_pii", None, "found an email address")]
    assert reason.to_dict()["checks"][2] == {"kind": "no_pii", "line": None,
                                             "verdict": "fail",
                                             "reason": "found an email address"}


def test_a_long_check_reason_is_cut_to_one_line():
    candidate = run(_failing("INC-1", ("contains", "expected\n" + "x" * 500, 3)))
    (reason,) = decide(compare(run(result("INC-1", "fail", incident=True)), candidate)).blocking
    assert reason.rule == "still_failing"
    assert "\n" not in reason.message and reason.message.endswith("...")
    assert len(reason.checks[0].reason) == 160


def test_a_target_error_is_named_before_any_check():
    decision = decide(compare(run(result("C", "pass")), run(result("C", "error"))))
    assert decision.blocking[0].message == "case errored in the candidate run: timed out after 10 s"


def test_every_blocking_case_reaches_its_owner_and_its_business_owner():
    baseline = run(result("INC-1", "pass", incident=True), result("INC-2", "fail", incident=True),
                   result("INC-3", "fail", incident=True))
    candidate = run(_failing("INC-1", ("contains", "missing", 3)),
                    _failing("INC-2", ("contains", "missing", 3), business_owner="VP Sales"),
                    result("INC-3", "pass", incident=True))
    decision = decide(compare(baseline, candidate))
    assert [(r.case_id, r.owner, r.business_owner) for r in decision.blocking] == [
        ("INC-1", "dana", "Head of Support"), ("INC-2", "dana", "VP Sales")]
    assert [(p.person, p.role, p.case_ids) for p in decision.recipients()] == [
        ("Head of Support", "business_owner", ("INC-1",)),
        ("VP Sales", "business_owner", ("INC-2",)),
        ("dana", "owner", ("INC-1", "INC-2"))]


def test_notes_and_passing_runs_tell_nobody():
    baseline = run(result("INC-1", "fail", incident=True))
    candidate = run(result("INC-1", "pass", incident=True))
    assert decide(compare(baseline, candidate)).recipients() == []
