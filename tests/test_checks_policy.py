"""Policy checks: forbidden claims and required phrases, matched fuzzily."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import case_with_check, run_python

from harness import checks
from harness.errors import InputError
from harness.loader import load_case
from harness.model import Case, TargetResponse

CASE = Case(id="C1", path=Path("c.yaml"), line=1, workflow="w", title=None, input="x", expect=())
PROMISE = "Good news: you'll get a full refund on the swimsuit, even though it was on clearance."


def judge(kind: str, params: object, output: str):
    return checks.build(kind, params)(TargetResponse(output=output), CASE)


def test_forbidden_claim_made_verbatim_fails_with_the_span():
    outcome = judge("forbidden_claims", ["full refund"], PROMISE)
    assert outcome.verdict == "fail"
    assert outcome.reason == ("output makes the forbidden claim 'full refund' "
                              "(similarity 100 >= 90)")
    assert "[[full refund]]" in outcome.evidence["claims"][0]["match"]


def test_forbidden_claim_close_variant_is_caught():
    outcome = judge("forbidden_claims", ["full refunds"], PROMISE)
    assert outcome.verdict == "fail"
    assert outcome.score >= 90


def test_forbidden_claim_absent_passes_and_reports_the_closest():
    outcome = judge("forbidden_claims", ["store credit only"], "We can offer an exchange.")
    assert outcome.verdict == "pass"
    assert outcome.reason.startswith("no forbidden claim made (closest: 'store credit only' at")


def test_per_phrase_threshold_overrides_the_default():
    # "a full refund" against "full refunds": close, but not identical
    strict = judge("forbidden_claims", [{"text": "full refunds", "threshold": 100}], PROMISE)
    loose = judge("forbidden_claims", {"claims": ["full refunds"], "threshold": 80}, PROMISE)
    assert strict.verdict == "pass"
    assert loose.verdict == "fail"


def test_token_set_scorer_ignores_word_order():
    made = judge("forbidden_claims",
                 {"claims": ["refund in full"], "scorer": "partial_token_set_ratio"},
                 "We will refund the full amount in full today.")
    assert made.verdict == "fail"


def test_required_phrase_present_passes_case_and_space_insensitively():
    outcome = judge("required_phrases", ["Refunds go to the  original payment method"],
                    "refunds go to the original payment method within 5 days.")
    assert outcome.verdict == "pass"


def test_required_phrase_missing_fails_naming_it():
    outcome = judge("required_phrases", ["original payment method", "Hello"],
                    "Hello, your refund is on its way.")
    assert outcome.verdict == "fail"
    assert outcome.reason.startswith("required phrase 'original payment method' is missing")
    assert outcome.expected == ["original payment method"]


def test_required_phrases_any():
    outcome = judge("required_phrases", {"phrases": ["disclaimer", "Hello"], "require": "any"},
                    "Hello there")
    assert outcome.verdict == "pass"
    none = judge("required_phrases", {"phrases": ["disclaimer"], "require": "any"}, "Hi")
    assert none.verdict == "fail" and none.reason == "none of the required phrases is present"


@pytest.mark.parametrize(("check", "field"), [
    ("forbidden_claims: []", "forbidden_claims.claims: expected at least one phrase"),
    ("forbidden_claims: {claims: [x], threshold: 0}", "forbidden_claims.threshold"),
    ("forbidden_claims: {claims: [{text: x, threshold: 101}]}",
     "forbidden_claims.claims[0].threshold"),
    ("forbidden_claims: {claims: [{txt: x}]}", "forbidden_claims.claims[0]"),
    ("required_phrases: {phrases: [x], scorer: wratio}", "required_phrases.scorer"),
    ("required_phrases: {phrases: [x], require: most}", "required_phrases.require"),
])
def test_bad_parameters_fail_at_load_naming_path_line_and_param(tmp_path, check, field):
    with pytest.raises(InputError) as caught:
        load_case(case_with_check(tmp_path, check))
    assert f"C1.yaml:4: expect[0].{field}" in str(caught.value)


def test_rapidfuzz_is_loaded_by_a_fuzzy_check_not_by_every_run():
    """A run whose cases make no fuzzy check does not pay for importing rapidfuzz."""
    probe = (
        "import sys\n"
        "from harness import plugin\n"
        "from harness.checks import registry\n"
        "registry.kinds()\n"
        "print('BEFORE', 'rapidfuzz' in sys.modules)\n"
        "check = registry.build('forbidden_claims', ['full refund'])\n"
        "from harness.model import TargetResponse\n"
        "check(TargetResponse(output='a full refund'), None)\n"
        "print('AFTER', 'rapidfuzz' in sys.modules)\n"
    )
    done = run_python(probe)
    assert "BEFORE False" in done.stdout and "AFTER True" in done.stdout, done.stderr
