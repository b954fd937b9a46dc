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
        ("", "text", "expected a non-empty string or list of strings"),
        ([], "text", "expected a non-empty string or list of strings"),
        (["a", ""], "text", "expected a non-empty string or list of strings"),
        ({}, "text", "missing required parameter"),
        (5, "text", "expected a non-empty string or list of strings"),
        ({"text": "a", "ignore_case": 1}, "ignore_case", "expected true or false, found 1"),
    ],
)
def test_contains_bad_params(kind: str, params: Any, param: str, problem: str) -> None:
    err = param_error(kind, params)
    assert (err.param, err.problem) == (param, problem)


def test_contains_all_of_a_list_fails_naming_what_is_missing() -> None:
    outcome = judge("contains", ["Refunds", "store credit", "gift card"], POLICY)
    assert outcome.verdict == "fail"
    assert outcome.reason == "output does not contain 'store credit' and 'gift card'"
    assert outcome.evidence["match"].startswith("[[Refunds]]")


def test_contains_any_of_a_list_passes_on_one() -> None:
    outcome = judge("contains", {"text": ["store credit", "Refunds"], "require": "any"}, POLICY)
    assert outcome.verdict == "pass"
    assert outcome.reason == "output contains 'Refunds'"
    none = judge("contains", {"text": ["store credit", "gift card"], "require": "any"}, POLICY)
    assert none.reason == "output does not contain 'store credit' or 'gift card'"


def test_not_contains_a_list_fails_on_any_and_shows_every_match() -> None:
    outcome = judge("not_contains", ["gift card", "Refunds", "days"], POLICY)
    assert outcome.verdict == "fail"
    assert outcome.reason == "output contains 'Refunds' and 'days'"
    assert len(outcome.evidence["matches"]) == 2


def test_not_contains_require_is_not_a_parameter() -> None:
    assert param_error("not_contains", {"text": "a", "require": "any"}).param == "require"


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
        ("((", "pattern", "invalid regular expression: missing ) at position 2"),
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
        "txt: unknown parameter 'txt' (did you mean 'text'?); "
        "expected text, require, ignore_case")
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
    monkeypatch.setattr(registry, "_KINDS", registry._KINDS.copy())


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


# --- similar / not_similar ------------------------------------------------------------------


def test_similar_passes_over_the_threshold_and_reports_the_score() -> None:
    outcome = judge("similar", {"reference": "refunds are accepted within 30 days",
                                "threshold": 90}, POLICY)
    assert outcome.verdict == "pass"
    assert outcome.score >= 90
    assert outcome.reason.startswith("output is similar to the reference (token_set_ratio ")


def test_similar_fails_under_the_threshold() -> None:
    outcome = judge("similar", {"reference": "You have 60 days for a full refund.",
                                "scorer": "ratio"}, POLICY)
    assert outcome.verdict == "fail"
    assert outcome.score < 80
    assert "< 80" in outcome.reason


def test_not_similar_fails_when_the_output_resembles_the_bad_answer() -> None:
    bad = "Refunds are accepted within 60 days of delivery."
    assert judge("not_similar", {"reference": bad, "threshold": 85}, POLICY).verdict == "fail"
    assert judge("not_similar", "Your parcel is on its way.", POLICY).verdict == "pass"


def test_similar_exact_case_compares_case() -> None:
    upper = POLICY.upper()
    assert judge("similar", {"reference": POLICY, "scorer": "ratio"}, upper).score == 100
    assert judge("similar", {"reference": POLICY, "scorer": "ratio", "exact_case": True},
                 upper).verdict == "fail"


# --- json -------------------------------------------------------------------------------------


def test_json_parses_and_matches_with_exclusions_and_tolerance() -> None:
    output = '{"status": "refunded", "amount": 39.991, "meta": {"request_id": "r-1"}}'
    outcome = judge("json", {"expected": {"status": "refunded", "amount": 39.99,
                                          "meta": {"request_id": "other"}},
                             "exclude": ["meta.request_id"], "tolerance": 0.01}, output)
    assert outcome.verdict == "pass"


def test_json_differences_are_listed() -> None:
    outcome = judge("json", {"expected": {"status": "refunded", "amount": 39.99}},
                    '{"status": "denied", "amount": 39.99, "extra": 1}')
    assert outcome.verdict == "fail"
    assert "output['status']: expected 'refunded', obtained 'denied'" in outcome.evidence["diff"]
    assert "output['extra']: not expected, obtained 1" in outcome.evidence["diff"]
    partial = judge("json", {"expected": {"amount": 39.99}, "partial": True},
                    '{"status": "denied", "amount": 39.99}')
    assert partial.verdict == "pass"


def test_json_that_does_not_parse_fails_with_the_position() -> None:
    outcome = judge("json", {}, '{"status": ')
    assert outcome.verdict == "fail"
    assert outcome.reason.startswith("output is not JSON: Expecting value at line 1 column")


def test_json_extract_reads_a_fenced_block_or_an_embedded_value() -> None:
    fenced = 'Here you go:\n```json\n{"ok": true}\n```'
    assert judge("json", {"expected": {"ok": True}, "extract": True}, fenced).verdict == "pass"
    inline = 'Result: {"ok": true} as requested'
    assert judge("json", {"expected": {"ok": True}, "extract": True}, inline).verdict == "pass"
    assert judge("json", {"expected": {"ok": True}}, inline).verdict == "fail"


def test_json_ignore_order() -> None:
    assert judge("json", {"expected": [1, 2, 3], "ignore_order": True}, "[3, 1, 2]"
                 ).verdict == "pass"
    assert judge("json", {"expected": [1, 2, 3]}, "[3, 1, 2]").verdict == "fail"


# --- number / length --------------------------------------------------------------------------


def test_number_reads_the_figure_by_pattern_within_tolerance() -> None:
    text = "I've refunded $1,039.99 for order A-1001."
    ok = judge("number", {"value": 1039.99, "pattern": r"refunded \$([\d.,]+)"}, text)
    assert ok.verdict == "pass"
    assert ok.evidence["match"] == "I've refunded $[[1,039.99]] for order A-1001."
    off = judge("number", {"value": 1000, "tolerance": 5, "pattern": r"\$([\d.,]+)"}, text)
    assert off.verdict == "fail" and off.obtained == 1039.99


def test_number_without_a_figure_fails_saying_so() -> None:
    outcome = judge("number", 30, "No numbers here.")
    assert outcome.verdict == "fail" and outcome.reason == "output has no figure matching a number"
    assert judge("number", 30, POLICY).verdict == "pass"


def test_length_in_chars_and_words() -> None:
    assert judge("length", {"max": 100}, POLICY).verdict == "pass"
    words = judge("length", {"min": 10, "unit": "words"}, POLICY)
    assert words.verdict == "fail" and words.reason == "output is 8 words (outside 10..∞)"


@pytest.mark.parametrize(
    ("kind", "params", "param"),
    [
        ("similar", {"reference": "  "}, "reference"),
        ("similar", {"reference": "a", "scorer": "wratio"}, "scorer"),
        ("not_similar", {"reference": "a", "threshold": 101}, "threshold"),
        ("json", {"exclude": "meta"}, "exclude"),
        ("json", {"exclude": ["a..b"]}, "exclude"),
        ("json", {"tolerance": -1}, "tolerance"),
        ("number", {"value": "ten"}, "value"),
        ("number", {"value": 1, "pattern": "(("}, "pattern"),
        ("length", {}, "min"),
        ("length", {"min": 5, "max": 1}, "min"),
        ("length", {"max": 5, "unit": "lines"}, "unit"),
    ],
)
def test_structured_and_similarity_bad_params(kind: str, params: Any, param: str) -> None:
    assert param_error(kind, params).param == param
