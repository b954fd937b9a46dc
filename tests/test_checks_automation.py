"""Automation-error checks: tool_called, tool_not_called, tool_args, tool_order, max_tool_calls
and record_target."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.checks import automation  # noqa: F401 - registers the kinds
from harness.checks.registry import build
from harness.errors import InputError
from harness.loader import load_case
from harness.model import Case, CheckOutcome, TargetResponse

CALLS = [
    {"name": "lookup_order", "args": {"order_id": "A-1001", "customer_id": "C-204"}},
    {"name": "issue_refund", "args": {"order_id": "A-1002", "amount": 39.99, "note": "cracked"}},
    {"name": "send_email", "args": {"template": "refund_confirmation", "order_id": "A-1002"}},
]
NAMES = ["lookup_order", "issue_refund", "send_email"]


def run(kind: str, params: Any, calls: list | None = CALLS, case_input: Any = None,
        ) -> CheckOutcome:
    response: dict[str, Any] = {"output": "Done."}
    if calls is not None:
        response["tool_calls"] = calls
    case = Case(id="C1", path=Path("c.yaml"), line=1, workflow="w", title=None,
                input=case_input if case_input is not None else {}, expect=())
    return build(kind, params)(TargetResponse.parse(response), case)


def refunds(*order_ids: str) -> list[dict[str, Any]]:
    return [{"name": "issue_refund", "args": {"order_id": order_id, "amount": 10}}
            for order_id in order_ids]


# --- tool_called ------------------------------------------------------------------------------


def test_tool_called_passes_when_called():
    outcome = run("tool_called", "lookup_order")
    assert outcome.passed
    assert outcome.reason == "lookup_order was called 1 time"
    assert outcome.obtained == 1


def test_tool_called_fails_when_never_called_and_lists_the_calls():
    outcome = run("tool_called", "cancel_order")
    assert not outcome.passed
    assert outcome.reason == (
        "cancel_order was never called (calls: lookup_order, issue_refund, send_email)"
    )
    assert outcome.evidence["calls"] == NAMES


def test_tool_called_with_args_fails_when_no_call_has_them():
    outcome = run("tool_called", {"name": "issue_refund", "args": {"order_id": "A-1001"}})
    assert not outcome.passed
    assert outcome.reason == ("issue_refund was called 1 time but never with the expected args "
                              "(args['order_id']: expected 'A-1001', obtained 'A-1002')")
    assert outcome.evidence["mismatches"][0]["index"] == 1


def test_tool_called_with_args_ignores_extra_arguments():
    outcome = run("tool_called", {"name": "issue_refund", "args": {"order_id": "A-1002"}})
    assert outcome.passed
    assert outcome.evidence["matched"] == [1]


def test_tool_called_min_and_max_bound_the_count():
    calls = [*CALLS, CALLS[0]]
    too_many = run("tool_called", {"name": "lookup_order", "max": 1}, calls)
    assert not too_many.passed
    assert too_many.reason == "lookup_order was called 2 times, expected at most 1"
    too_few = run("tool_called", {"name": "issue_refund", "min": 2})
    assert too_few.reason == "issue_refund was called 1 time, expected at least 2"
    assert run("tool_called", {"name": "cancel_order", "min": 0, "max": 0}).passed


def test_tool_called_fails_when_tool_calls_are_not_reported():
    outcome = run("tool_called", "issue_refund", calls=None)
    assert not outcome.passed
    assert outcome.reason == ("the target reported no tool calls; cannot confirm issue_refund "
                              "was called")


def test_tool_called_reported_empty_list_is_never_called():
    outcome = run("tool_called", "issue_refund", calls=[])
    assert outcome.reason == "issue_refund was never called (calls: none)"


# --- tool_not_called --------------------------------------------------------------------------


def test_tool_not_called_passes_when_absent():
    outcome = run("tool_not_called", "cancel_order")
    assert outcome.passed
    assert outcome.reason == "cancel_order was not called"


def test_tool_not_called_fails_with_the_offending_call():
    outcome = run("tool_not_called", ["cancel_order", "send_email"])
    assert not outcome.passed
    assert outcome.reason == "send_email was called at tool_calls[2]"
    assert outcome.evidence["call"]["index"] == 2
    assert outcome.evidence["call"]["args"]["order_id"] == "A-1002"


def test_tool_not_called_with_args_only_forbids_matching_calls():
    bad = run("tool_not_called", {"name": "issue_refund", "args": {"order_id": "A-1002"}})
    assert not bad.passed
    assert bad.reason == "issue_refund was called with order_id='A-1002' at tool_calls[1]"
    assert bad.evidence["call"]["name"] == "issue_refund"
    fine = run("tool_not_called", {"name": "issue_refund", "args": {"order_id": "A-1001"}})
    assert fine.passed
    assert fine.reason == ("issue_refund was not called with order_id='A-1001' "
                           "(1 call with other arguments)")


def test_tool_not_called_fails_when_tool_calls_are_not_reported():
    outcome = run("tool_not_called", "issue_refund", calls=None)
    assert not outcome.passed
    assert outcome.reason == ("the target reported no tool calls; cannot confirm issue_refund "
                              "was not called")


# --- tool_args --------------------------------------------------------------------------------


def test_tool_args_passes_on_expected_keys():
    outcome = run("tool_args", {"name": "issue_refund",
                                "args": {"order_id": "A-1002", "amount": 39.99}})
    assert outcome.passed
    assert outcome.reason == "issue_refund at tool_calls[1] has the expected args"


def test_tool_args_fails_with_a_readable_diff():
    outcome = run("tool_args", {"name": "issue_refund", "args": {"order_id": "A-1001"}})
    assert not outcome.passed
    line = "args['order_id']: expected 'A-1001', obtained 'A-1002'"
    assert outcome.reason == f"issue_refund at tool_calls[1] has unexpected args: {line}"
    assert outcome.evidence["diff"] == line
    assert outcome.obtained == {"order_id": "A-1002", "amount": 39.99, "note": "cracked"}
    assert outcome.evidence["call"]["index"] == 1


def test_tool_args_reports_a_missing_argument():
    outcome = run("tool_args", {"name": "issue_refund", "args": {"currency": "USD"}})
    assert outcome.evidence["diff"] == "args['currency']: expected 'USD', missing from the call"


def test_tool_args_not_partial_flags_extra_arguments_unless_ignored():
    args = {"order_id": "A-1002", "amount": 39.99}
    strict = run("tool_args", {"name": "issue_refund", "args": args, "partial": False})
    assert not strict.passed
    assert strict.evidence["diff"] == "args['note']: not expected, obtained 'cracked'"
    ignored = run("tool_args", {"name": "issue_refund", "args": args, "partial": False,
                                "ignore": "note"})
    assert ignored.passed


def test_tool_args_ignore_nested_path():
    calls = [{"name": "create_return", "args": {"items": [{"sku": "K-9", "qty": 1}]}}]
    params = {"name": "create_return", "args": {"items": [{"sku": "K-1", "qty": 1}]}}
    assert not run("tool_args", params, calls).passed
    assert run("tool_args", {**params, "ignore": ["items[0].sku"]}, calls).passed


def test_tool_args_tolerance_and_numeric_types():
    params = {"name": "issue_refund", "args": {"amount": 40}}
    outcome = run("tool_args", params)
    assert outcome.evidence["diff"] == "args['amount']: expected 40, obtained 39.99"
    assert run("tool_args", {**params, "tolerance": 0.02}).passed
    assert run("tool_args", {"name": "issue_refund", "args": {"amount": 10.0}},
               refunds("A-1")).passed


def test_tool_args_ignore_order():
    calls = [{"name": "tag", "args": {"labels": ["b", "a"]}}]
    params = {"name": "tag", "args": {"labels": ["a", "b"]}}
    assert not run("tool_args", params, calls).passed
    assert run("tool_args", {**params, "ignore_order": True}, calls).passed


@pytest.mark.parametrize(("which", "verdict", "index"), [
    ("all", "fail", 1), ("first", "pass", 0), ("last", "fail", 1), ("any", "pass", 0),
])
def test_tool_args_which_calls_must_match(which, verdict, index):
    outcome = run("tool_args", {"name": "issue_refund", "args": {"order_id": "A-1001"},
                                "which": which}, refunds("A-1001", "A-1002"))
    assert outcome.verdict == verdict
    assert outcome.evidence["call"]["index"] == index


def test_tool_args_any_fails_when_no_call_matches():
    outcome = run("tool_args", {"name": "issue_refund", "args": {"order_id": "A-1003"},
                                "which": "any"}, refunds("A-1001", "A-1002"))
    assert not outcome.passed
    assert outcome.reason.startswith("none of the 2 calls to issue_refund has the expected args")
    assert [m["index"] for m in outcome.evidence["mismatches"]] == [0, 1]


def test_tool_args_fails_when_the_tool_was_not_called():
    outcome = run("tool_args", {"name": "cancel_order", "args": {"order_id": "A-1001"}})
    assert not outcome.passed
    assert outcome.reason == ("cancel_order was never called (calls: lookup_order, "
                              "issue_refund, send_email); no arguments to compare")


def test_tool_args_fails_when_tool_calls_are_not_reported():
    outcome = run("tool_args", {"name": "issue_refund", "args": {"order_id": "A-1"}}, None)
    assert not outcome.passed
    assert outcome.reason.startswith("the target reported no tool calls")


# --- tool_order -------------------------------------------------------------------------------


def test_tool_order_passes_for_a_subsequence():
    outcome = run("tool_order", ["lookup_order", "send_email"])
    assert outcome.passed
    assert outcome.evidence["positions"] == [0, 2]


def test_tool_order_fails_on_the_first_name_out_of_order():
    outcome = run("tool_order", ["issue_refund", "lookup_order"])
    assert not outcome.passed
    assert outcome.reason == (
        "lookup_order was not called after issue_refund at tool_calls[1] "
        "(actual order: lookup_order, issue_refund, send_email)"
    )
    assert outcome.evidence["out_of_order"] == "lookup_order"
    assert outcome.obtained == NAMES


def test_tool_order_fails_on_a_missing_name():
    outcome = run("tool_order", ["lookup_order", "request_approval", "issue_refund"])
    assert outcome.reason == ("request_approval was never called "
                              "(actual order: lookup_order, issue_refund, send_email)")


def test_tool_order_fails_when_tool_calls_are_not_reported():
    outcome = run("tool_order", ["lookup_order", "issue_refund"], None)
    assert not outcome.passed
    assert outcome.reason.startswith("the target reported no tool calls")


# --- max_tool_calls ---------------------------------------------------------------------------


def test_max_tool_calls_passes_within_the_limit():
    outcome = run("max_tool_calls", 3)
    assert outcome.passed
    assert outcome.reason == "the workflow made 3 tool calls (at most 3 allowed)"


def test_max_tool_calls_fails_over_the_limit():
    outcome = run("max_tool_calls", 2)
    assert not outcome.passed
    assert outcome.reason == "the workflow made 3 tool calls, at most 2 allowed"
    assert outcome.evidence["calls"] == NAMES


def test_max_tool_calls_of_one_tool():
    outcome = run("max_tool_calls", {"max": 0, "name": "issue_refund"})
    assert not outcome.passed
    assert outcome.reason == "issue_refund was called 1 time, at most 0 allowed"
    assert run("max_tool_calls", {"max": 0, "name": "cancel_order"}).passed


def test_max_tool_calls_fails_when_tool_calls_are_not_reported():
    outcome = run("max_tool_calls", 5, None)
    assert not outcome.passed
    assert outcome.reason == "the target reported no tool calls; cannot confirm at most 5 calls"


# --- record_target ----------------------------------------------------------------------------


def test_record_target_passes_when_the_write_acts_on_the_input_record():
    outcome = run("record_target", None, case_input={"order_id": "A-1002"})
    assert outcome.passed
    assert outcome.reason == ("issue_refund acted on order_id A-1002, the record the input "
                              "refers to")


def test_record_target_fails_on_another_record():
    outcome = run("record_target", None, case_input={"order_id": "A-1001"})
    assert not outcome.passed
    assert outcome.reason == "issue_refund acted on order_id A-1002, but the input refers to A-1001"
    assert (outcome.expected, outcome.obtained) == ("A-1001", "A-1002")
    assert outcome.evidence["call"]["index"] == 1


def test_record_target_reads_nested_input_fields_and_compares_ids_as_text():
    calls = [{"name": "cancel_order", "args": {"order_id": 1001}}]
    outcome = run("record_target", {"input_field": "order.id"}, calls,
                  case_input={"order": {"id": "1001"}})
    assert outcome.passed


def test_record_target_fails_when_the_input_does_not_name_the_record():
    outcome = run("record_target", None, case_input={"message": "refund A-1001"})
    assert not outcome.passed
    assert outcome.reason == ("the input has no order_id; cannot tell which record a write "
                              "should act on")
    assert outcome.evidence["input"] == {"message": "refund A-1001"}


def test_record_target_without_writes_passes_unless_required():
    calls = CALLS[:1]
    outcome = run("record_target", None, calls, case_input={"order_id": "A-1001"})
    assert outcome.passed
    assert outcome.reason.startswith("no write call was made")
    required = run("record_target", {"require_write": True}, calls,
                   case_input={"order_id": "A-1001"})
    assert not required.passed
    assert required.reason.endswith("expected one acting on order_id A-1001")


def test_record_target_fails_when_a_write_lacks_the_argument():
    calls = [{"name": "update_record", "args": {"field": "address"}}]
    outcome = run("record_target", None, calls, case_input={"order_id": "A-1001"})
    assert not outcome.passed
    assert outcome.reason == ("update_record at tool_calls[0] has no order_id argument; "
                              "cannot tell which record it acted on")


def test_record_target_fails_when_tool_calls_are_not_reported():
    outcome = run("record_target", None, None, case_input={"order_id": "A-1001"})
    assert not outcome.passed
    assert outcome.reason == ("the target reported no tool calls; cannot confirm writes acted "
                              "on order_id A-1001")


def test_record_target_loaded_from_a_case_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("id: C1\ninput: {order_id: A-1001}\nexpect:\n"
                    "  - record_target: {tools: [issue_refund]}\n", encoding="utf-8")
    case = load_case(path)
    outcome = case.expect[0].evaluate(
        TargetResponse.parse({"output": "", "tool_calls": CALLS}), case)
    assert outcome.verdict == "fail"
    assert outcome.line == 4
    assert "but the input refers to A-1001" in outcome.reason


# --- parameters -------------------------------------------------------------------------------


@pytest.mark.parametrize(("entry", "field"), [
    ("tool_called: {name: x, min: -1}", "tool_called.min"),
    ("tool_called: {name: x, min: 1.5}", "tool_called.min"),
    ("tool_called: {name: x, min: 2, max: 1}", "tool_called.max"),
    ("tool_called: {name: x, args: [order_id]}", "tool_called.args"),
    ("tool_called: {name: 3}", "tool_called.name"),
    ("tool_not_called: {name: []}", "tool_not_called.name"),
    ("tool_not_called: {name: x, args: {}}", "tool_not_called.args"),
    ("tool_args: {name: x}", "tool_args.args"),
    ("tool_args: {name: x, args: {a: 1}, which: sometimes}", "tool_args.which"),
    ("tool_args: {name: x, args: {a: 1}, ignore: ['items[x']}", "tool_args.ignore"),
    ("tool_args: {name: x, args: {a: 1}, tolerance: -1}", "tool_args.tolerance"),
    ("tool_args: {name: x, args: {a: 1}, partial: sometimes}", "tool_args.partial"),
    ("tool_order: [lookup_order]", "tool_order.sequence"),
    ("max_tool_calls: -1", "max_tool_calls.max"),
    ("max_tool_calls: {name: x}", "max_tool_calls.max"),
    ("record_target: {input_field: 'a..b'}", "record_target.input_field"),
    ("record_target: {tools: 5}", "record_target.tools"),
    ("record_target: {require_write: maybe}", "record_target.require_write"),
])
def test_bad_parameters_are_reported_at_path_and_line(tmp_path, entry, field):
    path = tmp_path / "c.yaml"
    path.write_text(f"id: C1\ninput: {{order_id: A-1001}}\nexpect:\n  - {entry}\n",
                    encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_case(path)
    assert f"{path}:4: expect[0].{field}:" in str(err.value)


def test_ignore_order_with_tolerance_logs_nothing(caplog):
    params = {"name": "tag", "args": {"weights": [1.0, 2.0]}, "ignore_order": True,
              "tolerance": 0.1}
    with caplog.at_level("WARNING"):
        outcome = run("tool_args", params, [{"name": "tag", "args": {"weights": [2.0, 1.05]}}])
    assert outcome.passed
    assert caplog.records == []


def test_evidence_is_json_serialisable():
    outcome = run("tool_args", {"name": "issue_refund", "args": {"order_id": "A-1001"}})
    json.dumps([outcome.expected, outcome.obtained, dict(outcome.evidence)])
