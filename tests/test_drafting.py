"""Drafted checks and draft case files: each category's checks, and drafts from trace samples
that load as cases and fail on the evidence they came from."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from harness.checks.effects import is_write
from harness.checks.exposure import canary_digest
from harness.detectors import find_sensitive
from harness.errors import InputError
from harness.intake.drafter import (
    draft_checks,
    named_record,
    redact,
    sensitive_values,
    specific_claims,
)
from harness.intake.from_trace import DraftCase, draft_from_trace, write_draft_case
from harness.intake.traces import import_trace
from harness.loader import load_case
from harness.model import CATEGORIES, CaseResult, plain
from harness.runner import run_case
from harness.targets.replay import ReplayTarget

SAMPLES = Path(__file__).parent / "samples" / "traces"
TRACES = sorted(SAMPLES.glob("*-refund.json"))
SALT = "5eed0c0ffee"

# the automation incident of the bundled example: the customer named A-1001, the refund hit A-1004
WRONG_RECORD: dict[str, Any] = {
    "input": {"customer_id": "C-204",
              "message": "The kettle from order A-1001 arrived cracked. Please refund it."},
    "tool_calls": [
        {"name": "lookup_order", "args": {"order_id": "A-1004", "customer_id": "C-204"},
         "result": {"order_id": "A-1004", "total": 129.0}},
        {"name": "issue_refund", "args": {"order_id": "A-1004", "amount": 129.0},
         "result": {"refund_id": "RF-1004", "status": "succeeded"}},
        {"name": "send_email", "args": {"to": "alex.morgan@example.com",
                                        "template": "refund_confirmation"},
         "result": {"status": "queued"}},
    ],
    "output": "I've refunded $129.00 for order A-1004. A confirmation is on its way to "
              "alex.morgan@example.com.",
}


# --- drafted checks, category by category ------------------------------------------------------


def test_automation_error_forbids_the_last_write_and_requires_the_record_named_in_the_message(
) -> None:
    assert draft_checks("automation_error", WRONG_RECORD) == [
        {"tool_not_called": {"name": "issue_refund",
                             "args": {"order_id": "A-1004", "amount": 129.0}}},
        {"tool_args": {"name": "issue_refund", "args": {"order_id": "A-1001"}}},
    ]


def test_automation_error_adds_record_target_when_the_input_has_the_field() -> None:
    evidence = {**WRONG_RECORD, "input": {**WRONG_RECORD["input"], "order_id": "A-1001"}}
    checks = draft_checks("automation_error", evidence)
    assert checks[1:] == [
        {"tool_args": {"name": "issue_refund", "args": {"order_id": "A-1001"}}},
        {"record_target": {"tools": ["issue_refund"], "arg": "order_id"}},
    ]


def test_automation_error_without_a_named_record_only_forbids_the_call() -> None:
    evidence = {"input": "please update my address",
                "tool_calls": [{"name": "updateRecord", "args": {}},
                               {"name": "lookup_order", "args": {"order_id": "A-1"}}]}
    assert draft_checks("automation_error", evidence) == [
        {"tool_not_called": {"name": "updateRecord"}}]


@pytest.mark.parametrize(("case_input", "args", "expected"), [
    ({"order_id": "A-1001", "customer_id": "C-1"}, {"customer_id": "C-1", "order_id": "A-9"},
     ("order_id", "A-1001", True)),  # the field whose value differs wins
    ({"customer_id": "C-1"}, {"customer_id": "C-1", "field": "address"},
     ("customer_id", "C-1", True)),
    ({"message": "Refund INV-20931, not A-1001"}, {"order_id": "A-1004"},
     ("order_id", "A-1001", False)),  # the id shaped like the argument's value
    ("Refund A-1001 please", {"order_id": "A-1004"}, ("order_id", "A-1001", False)),
    ({"message": "Refund INV-20931"}, {"order_id": "A-1004"}, None),
    ({"message": "Refund A-1001"}, {"amount": 12.0}, None),
])
def test_named_record(case_input: Any, args: dict[str, Any], expected: Any) -> None:
    assert named_record(case_input, args) == expected


@pytest.mark.parametrize(("call", "write"), [
    ({"name": "issue_refund"}, True), ({"name": "update_record"}, True),
    ({"name": "cancel_order"}, True), ({"name": "delete_record"}, True),
    ({"name": "issueRefund"}, True), ({"name": "create-ticket"}, True),
    ({"name": "send_email"}, True), ({"name": "lookup_order"}, False),
    ({"name": "request_approval"}, False), ({"name": "search_kb"}, False),
    ({"name": "execute_sql", "args": {"query": "DELETE FROM executives;"}}, True),
    ({"name": "execute_sql", "args": {"query": "SELECT count(*) FROM executives;"}}, False),
])
def test_drafting_tells_writes_by_the_one_rule(call: dict[str, Any], write: bool) -> None:
    assert is_write(call) is write


def test_human_review_gates_the_first_write_on_the_recorded_step() -> None:
    evidence = {**WRONG_RECORD, "approvals": [{"step": "refund_over_threshold",
                                               "status": "pending"}]}
    assert draft_checks("human_review", evidence) == [
        {"approval_required": {"step": "refund_over_threshold", "before": "issue_refund"}}]


def test_human_review_takes_the_step_of_an_approval_call_else_the_default() -> None:
    requested = copy.deepcopy(WRONG_RECORD)
    requested["tool_calls"].insert(1, {"name": "request_approval",
                                       "args": {"step": "manager_sign_off"}})
    assert draft_checks("human_review", requested)[0]["approval_required"]["step"] == (
        "manager_sign_off")
    assert draft_checks("human_review", WRONG_RECORD) == [
        {"approval_required": {"step": "approval", "before": "issue_refund"}}]


@pytest.mark.parametrize("category", ["automation_error", "human_review"])
def test_without_a_write_call_there_is_nothing_to_forbid_or_gate(category: str) -> None:
    evidence = {"tool_calls": [{"name": "lookup_order", "args": {"order_id": "A-1"}}]}
    with pytest.raises(InputError) as info:
        draft_checks(category, evidence)
    assert info.value.field == "evidence.tool_calls"
    assert info.value.problem.startswith("no write call in the evidence (calls: lookup_order)")


def test_retrieval_forbids_every_source_used_and_requires_fresh_ones() -> None:
    evidence = {"sources": [{"id": "refund-policy-2024"}, {"id": 2024}]}
    assert draft_checks("retrieval", evidence) == [
        {"not_cites": ["refund-policy-2024", "2024"]},
        {"source_fresh": {"max_age_days": 365}},
    ]
    with pytest.raises(InputError) as info:
        draft_checks("retrieval", {"output": "hi"})
    assert info.value.field == "evidence.sources"


def test_data_exposure_lists_the_detectors_that_fired_and_salted_digests_of_the_values() -> None:
    evidence = {"output": "Call +1-555-0142 or write to maria.gomez@example.net.",
                "tool_calls": [{"name": "send_sms", "args": {"phone": "5550142999",
                                                             "body": "hello"}},
                               {"name": "send_email",
                                "args": {"to": ["maria.gomez@example.net"]}}]}
    assert sensitive_values(evidence) == [("phone", "+1-555-0142"),
                                          ("email", "maria.gomez@example.net"),
                                          ("phone", "5550142999")]
    assert draft_checks("data_exposure", evidence, salt=SALT) == [
        {"no_pii": {"detectors": ["email", "phone"]}},
        {"no_leak": {"digests": [canary_digest("+1-555-0142", SALT),
                                 canary_digest("maria.gomez@example.net", SALT),
                                 canary_digest("5550142999", SALT)]}},
    ]


def test_data_exposure_draws_a_fresh_salt_unless_given_one() -> None:
    first = draft_checks("data_exposure", WRONG_RECORD)[1]["no_leak"]["digests"]
    second = draft_checks("data_exposure", WRONG_RECORD)[1]["no_leak"]["digests"]
    assert first != second
    with pytest.raises(InputError) as info:
        draft_checks("data_exposure", WRONG_RECORD, salt="has space")
    assert info.value.field == "salt"


def test_data_exposure_without_detectable_data_says_what_to_do() -> None:
    evidence = {"output": "It goes to Maria Gomez, 14 Alder Lane.", "tool_calls": []}
    with pytest.raises(InputError) as info:
        draft_checks("data_exposure", evidence)
    assert "names and postal addresses are not detected" in info.value.problem


def test_policy_forbids_the_most_specific_claims_and_the_answer_itself() -> None:
    evidence = {"output": "Thanks for reaching out! Good news: final-sale items get a full "
                          "refund. We waive the $15 return fee for you. Anything else?\n\n"
                          "Source: Final Sale Items, https://kb.example.com/final-sale"}
    assert draft_checks("policy", evidence) == [
        {"forbidden_claims": ["Good news: final-sale items get a full refund.",
                              "We waive the $15 return fee for you."]},
        {"not_similar": evidence["output"]},
    ]


def test_output_quality_with_a_reference_requires_similarity_to_it() -> None:
    evidence = {"output": "You have 60 days from delivery to return it for a full refund."}
    assert draft_checks("output_quality", evidence, reference=" Returns: 30 days. ") == [
        {"forbidden_claims": [evidence["output"]]},
        {"similar": {"reference": "Returns: 30 days."}},
    ]
    with pytest.raises(InputError) as info:
        draft_checks("output_quality", evidence, reference="  ")
    assert info.value.field == "reference"
    with pytest.raises(InputError) as info:
        draft_checks("policy", {"output": " "})
    assert info.value.field == "evidence.output"


@pytest.mark.parametrize(("text", "claims"), [
    ("One. Two has 2. Three refunds 3. Four guarantees it. Five is free, 5.",
     ["Three refunds 3.", "Four guarantees it.", "Five is free, 5."]),
    ("Hello there. We looked into it carefully.", ["We looked into it carefully."]),
    ("Write to jane@example.com for a refund. See https://x.example/refunds.",
     ["Write to jane@example.com for a refund."]),
])
def test_specific_claims(text: str, claims: list[str]) -> None:
    assert specific_claims(text) == claims


def test_an_unknown_category_is_refused() -> None:
    with pytest.raises(InputError) as info:
        draft_checks("privacy", WRONG_RECORD)
    assert info.value.field == "category"
    assert "expected one of output_quality, data_exposure" in info.value.problem


def test_redaction_covers_text_numbers_keys_and_known_values() -> None:
    known = [("phone", "5550142999")]
    value = {"note": "call +1-555-0142, mail a@example.com", "phone": 5550142999,
             "a@example.com": True, "raw": "5550142999", "total": 12.5, "ok": None}
    assert redact(value, known) == {
        "note": "call [redacted:phone], mail [redacted:email]", "phone": "[redacted:phone]",
        "[redacted:email]": True, "raw": "[redacted:phone]", "total": 12.5, "ok": None,
    }


# --- draft case files from the trace samples ----------------------------------------------------


def draft(trace: Path, category: str, root: Path, **options: Any) -> DraftCase:
    (drafted,) = draft_from_trace(trace, category=category, id=f"INC-{category}", root=root,
                                  salt=SALT, **options)
    return drafted


def replay(case: Any, evidence: dict[str, Any] | None = None) -> CaseResult:
    if evidence is not None:
        case = dataclasses.replace(case, evidence=evidence)
    return run_case(case, ReplayTarget())


@pytest.mark.parametrize("category", CATEGORIES)
@pytest.mark.parametrize("trace", TRACES, ids=[path.stem for path in TRACES])
def test_each_draft_loads_and_fails_on_the_evidence_it_came_from(
    tmp_path: Path, trace: Path, category: str,
) -> None:
    drafted = draft(trace, category, tmp_path)
    assert drafted.path == tmp_path / "cases" / "refund-assistant" / f"INC-{category}.yaml"
    case = load_case(drafted.path)
    assert case.draft is True
    assert case.id == f"INC-{category}"
    assert case.workflow == "refund-assistant"
    assert case.incident is not None
    assert (case.incident.category, case.incident.severity, case.incident.status,
            case.incident.owner) == (category, "sev3", "open", "unassigned")
    assert case.as_of == dt.date(2026, 3, 10)
    assert case.incident.timeline["impact_started"] == dt.datetime(
        2026, 3, 10, 9, 41, 58, 120000, tzinfo=dt.UTC)
    assert [{e.kind: plain(e.params)} for e in case.expect] == list(drafted.expect)
    original = import_trace(trace).evidence
    result = replay(case, original)
    assert result.verdict == "fail"
    stored = dict(case.evidence)
    origin = stored.pop("trace")  # where the evidence came from
    assert (origin["file"], origin["format"]) == (str(trace), import_trace(trace).format)
    if category != "data_exposure":
        assert stored == original
        assert replay(case).verdict == "fail"


@pytest.mark.parametrize("trace", TRACES, ids=[path.stem for path in TRACES])
def test_a_data_exposure_draft_never_holds_the_leaked_values(tmp_path: Path, trace: Path) -> None:
    drafted = draft(trace, "data_exposure", tmp_path)
    text = drafted.path.read_text(encoding="utf-8")
    for leaked in ("grace.kim@example.com", "+1-555-0129", "555-0129"):
        assert leaked not in text
    email, phone = canary_digest("grace.kim@example.com", SALT), canary_digest("+1-555-0129",
                                                                                SALT)
    # each value is a marker that keeps its detector and the digest the no_leak check holds
    assert (f"to [redacted:email:{email}], and we'll text [redacted:phone:{phone}] when"
            in text)
    case = load_case(drafted.path)
    assert [c.kind for c in replay(case, import_trace(trace).evidence).trials[0].checks
            if c.verdict == "fail"] == ["no_pii", "no_leak"]
    # the file holds no plaintext, and still reproduces the incident on its own evidence
    assert not find_sensitive(case.evidence["output"])
    own = replay(case).trials[0].checks
    assert [c.kind for c in own if c.verdict == "fail"] == ["no_pii", "no_leak"]
    assert {f["detector"] for f in own[0].evidence["findings"]} == {"email", "phone"}
    # and passes on a corrected answer that keeps the data to itself
    fixed = {**import_trace(trace).evidence, "output": "Your refund is on its way.",
             "tool_calls": []}
    assert replay(case, fixed).verdict == "pass"


def test_the_written_file_tells_a_person_what_to_do(tmp_path: Path) -> None:
    text = draft(SAMPLES / "langsmith-refund.json", "human_review", tmp_path).path.read_text(
        encoding="utf-8")
    lines = text.splitlines()
    assert lines[0] == "# Draft incident case: review it before it counts."
    assert ("#   3. Close it: `harness case close <this file>` (it refuses while anything is "
            "left).") in lines
    assert (f"# Evidence: LangSmith runs from {SAMPLES / 'langsmith-refund.json'}."
            in lines)
    assert "draft: true" in lines
    assert lines[lines.index("severity: sev3") - 1].startswith("# not given: sev3 until")
    assert lines[lines.index("owner: unassigned") - 1] == (
        "# not given: name the person who owns the fix")
    assert "title: 'TODO: one line saying what went wrong'" in lines
    assert lines[lines.index("  missing:") + 1] == "    - prompt_version"


def test_given_record_fields_are_written_without_default_comments(tmp_path: Path) -> None:
    drafted = draft(SAMPLES / "otel-refund.json", "policy", tmp_path, title="Promised 3 days",
                    owner="dana.okafor", severity="sev2", workflow="support")
    text = drafted.path.read_text(encoding="utf-8")
    assert drafted.path == tmp_path / "cases" / "support" / "INC-policy.yaml"
    assert "not given" not in text
    case = load_case(drafted.path)
    assert (case.title, case.workflow) == ("Promised 3 days", "support")
    assert case.incident is not None
    assert (case.incident.owner, case.incident.severity) == ("dana.okafor", "sev2")


def test_a_reference_answer_becomes_a_similarity_check(tmp_path: Path) -> None:
    reference = ("Refunds over $500 need a manager's approval, so I've sent yours for "
                 "sign-off; you'll hear from us within one business day.")
    drafted = draft(SAMPLES / "openinference-refund.json", "output_quality", tmp_path,
                    reference=reference)
    case = load_case(drafted.path)
    assert [e.kind for e in case.expect] == ["forbidden_claims", "similar"]
    checks = replay(case).trials[0].checks
    assert [c.verdict for c in checks] == ["fail", "fail"]


def test_an_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    first = draft(SAMPLES / "otel-refund.json", "retrieval", tmp_path)
    before = first.path.read_text(encoding="utf-8")
    with pytest.raises(InputError) as info:
        draft(SAMPLES / "langfuse-refund.json", "retrieval", tmp_path)
    assert info.value.path == str(first.path)
    assert "already exists; nothing was written (fill a draft with --into" in info.value.problem
    assert first.path.read_text(encoding="utf-8") == before
    assert [p.name for p in first.path.parent.iterdir()] == ["INC-retrieval.yaml"]


def test_the_summary_names_the_file_checks_and_missing_evidence(tmp_path: Path) -> None:
    drafted = draft(SAMPLES / "langsmith-refund.json", "retrieval", tmp_path)
    assert drafted.summary() == [
        f"drafted {drafted.path} from LangSmith runs in {SAMPLES / 'langsmith-refund.json'} "
        "(trace 1ef5c0a2-7d3b-6c41-9e8f-0000000000a1): 2 check(s): not_cites, source_fresh",
        "read with: LangSmith run schema (runs)",
        "the trace lacks: prompt_version",
        "left to fill: owner, title, impact.summary, root_cause, fix.summary, prevention",
        f"review it, then close it: harness case close {drafted.path}",
    ]


def test_a_category_the_trace_cannot_show_names_the_trace(tmp_path: Path) -> None:
    trace = tmp_path / "chat.json"
    trace.write_text('{"id": "t", "name": "faq-bot", "observations": [], "input": "hi", '
                     '"output": "Hello!"}', encoding="utf-8")
    with pytest.raises(InputError) as info:
        draft(trace, "retrieval", tmp_path)
    assert str(info.value).startswith(f"{trace}: evidence.sources: no sources in the evidence")
    assert not (tmp_path / "cases").exists()


def test_the_workflow_comes_from_the_option_the_trace_or_the_output_folder(
    tmp_path: Path,
) -> None:
    trace = tmp_path / "chat.json"
    trace.write_text('{"observations": [], "input": "hi", "output": "Free shipping, always."}',
                     encoding="utf-8")
    with pytest.raises(InputError) as info:
        draft(trace, "policy", tmp_path)
    assert (info.value.field, info.value.path) == ("workflow", str(trace))
    out = tmp_path / "cases" / "faq-bot" / "C-1.yaml"
    drafted = draft(trace, "policy", tmp_path, out=out)
    case = load_case(drafted.path)
    assert (drafted.path, case.workflow) == (out, "faq-bot")
    assert case.input == {"message": "hi"}


def test_an_id_that_cannot_name_a_file_needs_an_explicit_path(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        draft_from_trace(SAMPLES / "otel-refund.json", category="policy", id="../INC-1",
                         root=tmp_path)
    assert info.value.field == "id"
    assert "cannot name a file" in info.value.problem


@pytest.mark.parametrize(("option", "field"), [
    ({"severity": "critical"}, "severity"), ({"status": "done"}, "status"),
    ({"category": "privacy"}, "category"), ({"owner": " "}, "owner"), ({"expect": []}, "expect"),
])
def test_write_draft_case_refuses_values_the_case_schema_would_refuse(
    tmp_path: Path, option: dict[str, Any], field: str,
) -> None:
    path = tmp_path / "INC-1.yaml"
    arguments: dict[str, Any] = {"id": "INC-1", "workflow": "w", "category": "policy",
                                 "evidence": {"input": "hi", "output": "no"},
                                 "expect": [{"contains": "yes"}], **option}
    with pytest.raises(InputError) as info:
        write_draft_case(path, **arguments)
    assert (info.value.field, info.value.path) == (field, str(path))
    assert not path.exists()


def test_a_draft_without_evidence_input_gets_a_placeholder_input_and_loads(
    tmp_path: Path,
) -> None:
    path = write_draft_case(tmp_path / "INC-2.yaml", id="INC-2", workflow="w",
                            category="policy", evidence={"output": "Line one.\nLine two."},
                            expect=[{"not_contains": "Line one"}])
    case = load_case(path)
    assert case.input == "TODO: the input that led to the incident"
    assert case.evidence["output"] == "Line one.\nLine two."
    assert case.as_of is None
    assert "output: |-\n    Line one.\n    Line two.\n" in path.read_text(encoding="utf-8")
