"""Output checks (equals, contains, not_contains, regex, not_regex) and the check registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.checks import build, lookup, passed, register, registry
from harness.checks.output import DIFF_LINES
from harness.errors import CheckParamError
from harness.model import Case, CheckOutcome, Expectation, TargetResponse

CASE = Case(id="C1", path=Path("c.yaml"), line=1, workflow="w", title=None, input="x", expect=())

POLICY = "Refunds are accepted within 30 days of delivery."


def judge(kind: str, params: Any, output: str) -> CheckOutcome:
    return build(kind, params)(TargetResponse(output=output), CASE)


def param_error(kind: str, params: Any) -> CheckParamError:
    with pytest.raises(CheckParamError) as info:
        build(kind, params)
    return info.value


# --- equals ---------------------------------------------------------------------------------


def test_equals_passes_after_trimming_white_space() -> None:
    outcome = judge("equals", "Your order has shipped.", "  Your order has shipped.\n")
    assert outcome.verdict == "pass"
    assert outcome.reason == "output equals the expected text"
    assert (outcome.expected, outcome.obtained) == (
        "Your order has shipped.", "Your order has shipped.")


def test_equals_fails_with_a_unified_diff() -> None:
    outcome = judge("equals", {"value": "line one\nline two"}, "line one\nline 2")
    assert outcome.verdict == "fail"
    assert outcome.reason == "output differs from the expected text"
    assert (outcome.expected, outcome.obtained) == ("line one\nline two", "line one\nline 2")
    assert outcome.evidence["diff"].splitlines() == [
        "--- expected", "+++ obtained", "@@ -1,2 +1,2 @@", " line one", "-line two", "+line 2"]


def test_equals_diff_is_capped() -> None:
    outcome = judge("equals", "a\n" * 100, "b\n" * 100)
    lines = outcome.evidence["diff"].splitlines()
    # 3 header lines, 100 removed, 100 added: 203 diff lines, cut to the cap.
    assert len(lines) == DIFF_LINES + 1
    assert lines[-1] == f"... ({203 - DIFF_LINES} more diff lines)"


def test_equals_ignore_case_and_numbers() -> None:
    assert judge("equals", "SHIPPED", "shipped").verdict == "fail"
    assert judge("equals", {"value": "SHIPPED", "ignore_case": True}, "shipped").verdict == "pass"
    assert judge("equals", 42, "42").verdict == "pass"
    assert judge("equals", {"value": 1.5}, " 1.5 ").verdict == "pass"


@pytest.mark.parametrize(
    ("params", "param", "problem"),
    [
        ({}, "value", "missing required parameter"),
        ({"value": None}, "value", "missing required parameter"),
        (["a"], "value", "expected a string or a number"),
        (True, "value", "expected a string or a number"),
        ({"value": "a", "ignore_case": "no"}, "ignore_case", "expected true or false, found 'no'"),
    ],
)
def test_equals_bad_params(params: Any, param: str, problem: str) -> None:
    err = param_error("equals", params)
    assert (err.param, err.problem) == (param, problem)
    assert str(err) == f"{param}: {problem}"


# --- contains / not_contains ----------------------------------------------------------------


def test_contains_passes_with_the_match_marked() -> None:
    outcome = judge("contains", "30 days", POLICY)
    assert outcome.verdict == "pass"
    assert outcome.reason == "output contains '30 days'"
    assert outcome.expected == "'30 days'"
    assert outcome.obtained == POLICY
    assert outcome.evidence == {"match": "Refunds are accepted within [[30 days]] of delivery."}


def test_contains_excerpt_is_cut_to_context_either_side() -> None:
    output = "x" * 100 + "NEEDLE" + "y" * 100
    outcome = judge("contains", "NEEDLE", output)
    assert outcome.evidence["match"] == "..." + "x" * 40 + "[[NEEDLE]]" + "y" * 40 + "..."


def test_contains_fails_without_match_evidence() -> None:
    outcome = judge("contains", {"text": "14 days"}, POLICY)
    assert outcome.verdict == "fail"
    assert outcome.reason == "output does not contain '14 days'"
    assert (outcome.expected, outcome.obtained, outcome.evidence) == ("'14 days'", POLICY, {})


def test_contains_ignore_case_marks_the_original_text() -> None:
    assert judge("contains", "30 DAYS", POLICY).verdict == "fail"
    outcome = judge("contains", {"text": "30 DAYS", "ignore_case": True}, POLICY)
    assert outcome.verdict == "pass"
    assert outcome.evidence["match"] == "Refunds are accepted within [[30 days]] of delivery."


def test_contains_ignore_case_span_survives_length_changing_case_folds() -> None:
    # "ß" folds to "ss": the marked span must still be the matched text of the output.
    outcome = judge("contains", {"text": "30 days", "ignore_case": True}, "Straße: 30 DAYS max")
    assert outcome.evidence["match"] == "Straße: [[30 DAYS]] max"
    outcome = judge("contains", {"text": "STRASSE", "ignore_case": True}, "an der Straße 5")
    assert outcome.evidence["match"] == "an der [[Straße]] 5"


def test_not_contains_passes_and_fails() -> None:
    outcome = judge("not_contains", "full refund", POLICY)
    assert outcome.verdict == "pass"
    assert outcome.reason == "output does not contain 'full refund'"
    assert outcome.expected == "not 'full refund'"

    outcome = judge("not_contains", {"text": "within"}, POLICY)
    assert outcome.verdict == "fail"
    assert outcome.reason == "output contains 'within'"
    assert outcome.evidence["match"] == "Refunds are accepted [[within]] 30 days of delivery."


def test_not_contains_ignore_case() -> None:
    assert judge("not_contains", "REFUNDS", POLICY).verdict == "pass"
    outcome = judge("not_contains", {"text": "REFUNDS", "ignore_case": True}, POLICY)
    assert outcome.verdict == "fail"
    assert outcome.evidence["match"].startswith("[[Refunds]] are accepted")


@pytest.mark.parametrize("kind", ["contains", "not_contains"])
@pytest.mark.parametrize(
    ("params", "param", "problem"),
    [
        ("", "text", "expected a non-empty string"),
        ({}, "text", "missing required parameter"),
        (5, "text", "expected a string, found int"),
        ({"text": "a", "ignore_case": 1}, "ignore_case", "expected true or false, found 1"),
    ],
)
def test_contains_bad_params(kind: str, params: Any, param: str, problem: str) -> None:
    err = param_error(kind, params)
    assert (err.param, err.problem) == (param, problem)


# --- regex / not_regex ----------------------------------------------------------------------


def test_regex_passes_with_the_match_marked() -> None:
    outcome = judge("regex", r"within \d+ days", POLICY)
    assert outcome.verdict == "pass"
    assert outcome.reason == r"output matches /within \d+ days/ at 'within 30 days'"
    assert outcome.expected == r"a match of /within \d+ days/"
    assert outcome.evidence == {"match": "Refunds are accepted [[within 30 days]] of delivery."}


def test_regex_fails() -> None:
    outcome = judge("regex", {"pattern": r"\b14 days"}, POLICY)
    assert outcome.verdict == "fail"
    assert outcome.reason == r"output does not match /\b14 days/"
    assert (outcome.obtained, outcome.evidence) == (POLICY, {})


def test_regex_ignore_case() -> None:
    assert judge("regex", "DELIVERY", POLICY).verdict == "fail"
    outcome = judge("regex", {"pattern": "DELIVERY", "ignore_case": True}, POLICY)
    assert outcome.verdict == "pass"
    assert outcome.evidence["match"].endswith("[[delivery]].")


def test_not_regex_passes_and_fails() -> None:
    outcome = judge("not_regex", "full refund", POLICY)
    assert outcome.verdict == "pass"
    assert outcome.reason == "output does not match /full refund/"
    assert outcome.expected == "no match of /full refund/"

    outcome = judge("not_regex", {"pattern": r"\d+ days"}, POLICY)
    assert outcome.verdict == "fail"
    assert outcome.reason == r"output matches /\d+ days/ at '30 days'"
    assert outcome.evidence["match"] == "Refunds are accepted within [[30 days]] of delivery."


def test_not_regex_ignore_case() -> None:
    assert judge("not_regex", "REFUNDS", POLICY).verdict == "pass"
    assert judge("not_regex", {"pattern": "REFUNDS", "ignore_case": True}, POLICY).verdict == (
        "fail")


@pytest.mark.parametrize("kind", ["regex", "not_regex"])
@pytest.mark.parametrize(
    ("params", "param", "problem"),
    [
        ("((", "pattern", "invalid regular expression: missing ), unterminated subpattern "
                          "at position 1"),
        ({}, "pattern", "missing required parameter"),
        (["a"], "pattern", "expected a string, found list"),
        ({"pattern": "a", "ignore_case": "yes"}, "ignore_case",
         "expected true or false, found 'yes'"),
    ],
)
def test_regex_bad_params(kind: str, params: Any, param: str, problem: str) -> None:
    err = param_error(kind, params)
    assert (err.param, err.problem) == (param, problem)


# --- shorthand and unknown parameters -------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "short", "full"),
    [
        ("equals", "ok", {"value": "ok"}),
        ("contains", "ok", {"text": "ok"}),
        ("not_contains", "ok", {"text": "ok"}),
        ("regex", "o.", {"pattern": "o."}),
        ("not_regex", "o.", {"pattern": "o."}),
    ],
)
def test_shorthand_equals_the_mapping_form(kind: str, short: str, full: dict[str, str]) -> None:
    for output in ("ok", "nope"):
        assert judge(kind, short, output) == judge(kind, full, output)


def test_unknown_parameter_suggests_the_close_one() -> None:
    err = param_error("contains", {"txt": "a"})
    assert err.param == "txt"
    assert str(err) == (
        "txt: unknown parameter 'txt' (did you mean 'text'?); expected text, ignore_case")
    err = param_error("regex", {"pattern": "a", "flags": "i"})
    assert str(err) == "flags: unknown parameter 'flags'; expected pattern, ignore_case"


# --- the registry ---------------------------------------------------------------------------


def test_lookup_known_and_unknown_kinds() -> None:
    assert lookup("contains").shorthand == "text"
    assert lookup("regex").category == "output_quality"
    with pytest.raises(LookupError) as info:
        lookup("contians")
    message = str(info.value)
    assert message.startswith(
        "unknown check kind 'contians'; did you mean 'contains'? known kinds: ")
    known = message.split("known kinds: ")[1].split(", ")
    assert {"contains", "equals", "not_contains", "not_regex", "regex"} <= set(known)
    assert known == sorted(known)
    with pytest.raises(LookupError) as info:
        build("zzzzqqq", "a")
    assert "did you mean" not in str(info.value)


@pytest.fixture
def isolated_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_KINDS", dict(registry.kinds()))


@pytest.mark.usefixtures("isolated_registry")
def test_register_refuses_a_second_factory_under_a_name() -> None:
    def first(params: registry.Params) -> Any:
        return lambda response, case: passed("ok")

    def second(params: registry.Params) -> Any:
        return lambda response, case: passed("ok")

    register("always", summary="Always passes.")(first)
    register("always", summary="Always passes.")(first)  # the same factory again is fine
    with pytest.raises(ValueError, match="check kind 'always' is already registered"):
        register("always", summary="Again.")(second)
    with pytest.raises(ValueError, match="check kind 'contains' is already registered"):
        register("contains", summary="Shadow.")(second)
    assert lookup("always").factory is first
    assert judge("always", None, "x").verdict == "pass"


@pytest.mark.usefixtures("isolated_registry")
def test_kind_without_shorthand_needs_a_mapping() -> None:
    register("flagged", summary="x", params={"level": "a level"})(
        lambda params: lambda response, case: passed("ok"))
    err = param_error("flagged", "high")
    assert (err.param, str(err)) == (None, "expected a mapping of parameters (level)")


# --- Expectation.evaluate -------------------------------------------------------------------


def test_evaluate_stamps_kind_and_line() -> None:
    expectation = Expectation(kind="contains", params="30 days", check=build("contains", "30 days"),
                              line=7)
    outcome = expectation.evaluate(TargetResponse(output=POLICY), CASE)
    assert (outcome.kind, outcome.verdict, outcome.line) == ("contains", "pass", 7)
    assert outcome.evidence["match"] == "Refunds are accepted within [[30 days]] of delivery."


def test_evaluate_turns_a_raising_check_into_an_error_outcome() -> None:
    def broken(response: TargetResponse, case: Case) -> CheckOutcome:
        raise KeyError("score")

    outcome = Expectation(kind="judge", params={}, check=broken, line=12).evaluate(
        TargetResponse(output="x"), CASE)
    assert outcome == CheckOutcome(kind="judge", verdict="error",
                                   reason="check raised KeyError: 'score'", line=12)
