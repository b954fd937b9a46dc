"""Tests of the bundled refund-assistant simulation and the cases written against it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import loader, runner, targets
from harness.example.refund_assistant import DOCS_BY_ID, respond
from harness.model import Case
from harness.redact import Redactor, canary_digests_of

ROOT = Path(__file__).resolve().parent.parent
RELEASES = ("pre-fix", "post-fix", "next-release")
CATEGORIES = (
    "output_quality", "data_exposure", "automation_error", "policy", "retrieval", "human_review",
)
RECORD_FIELDS = {
    "category", "severity", "status", "near_miss", "owner", "business_owner", "timeline",
    "impact", "root_cause", "fix", "prevention", "evidence",
}

INCIDENT_REQUESTS: dict[str, dict[str, str]] = {
    "output_quality": {"customer_id": "C-204",
                       "message": "How long do I have to return my headphones for a refund?"},
    "data_exposure": {"customer_id": "C-311", "order_id": "A-1007",
                      "message": "Where is my order? The tracking page hasn't updated since "
                                 "Monday."},
    "automation_error": {"customer_id": "C-204",
                         "message": "The kettle from order A-1001 arrived cracked. Please "
                                    "refund it."},
    "policy": {"customer_id": "C-118", "order_id": "A-1006",
               "message": "The swimsuit doesn't fit. Can I get a refund?"},
    "retrieval": {"customer_id": "C-204",
                  "message": "Is there a restocking fee if I return headphones I've opened?"},
    "human_review": {"customer_id": "C-150", "order_id": "A-1005",
                     "message": "My espresso machine arrived with a cracked water tank. I'd "
                                "like a refund, please."},
}


def _calls(response: Mapping[str, Any], name: str) -> list[dict[str, Any]]:
    return [call for call in response["tool_calls"] if call["name"] == name]


def _incident_signs(category: str, response: Mapping[str, Any]) -> tuple[bool, bool]:
    """Whether the incident shows in the reply text and in the structured fields."""
    output = response["output"]
    source_ids = [source["id"] for source in response["sources"]]
    refunds = _calls(response, "issue_refund")
    if category == "output_quality":
        cited_text = " ".join(DOCS_BY_ID[sid].text for sid in source_ids)
        unsupported = [c for c in re.findall(r"\d+ days", output) if c not in cited_text]
        return "60 days" in output, bool(unsupported)
    if category == "data_exposure":
        looked_up = _calls(response, "lookup_order")[0]["result"]
        return "Maria Gomez" in output, looked_up.get("customer_id") == "C-118"
    if category == "automation_error":
        return "A-1004" in output, [r["args"]["order_id"] for r in refunds] == ["A-1004"]
    if category == "policy":
        return "refunded $48.00" in output, [r["args"]["order_id"] for r in refunds] == ["A-1006"]
    if category == "retrieval":
        return "15% restocking fee" in output, "refund-policy-2024" in source_ids
    assert category == "human_review"
    unapproved = bool(refunds) and not response["approvals"]
    return "manager" not in output, unapproved and not _calls(response, "request_approval")


EXPECTED_INCIDENTS: dict[str, set[str]] = {
    "pre-fix": set(CATEGORIES),
    "post-fix": set(),
    "next-release": {"human_review"},
}


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize("category", CATEGORIES)
def test_incident_visible_only_where_expected(category: str, release: str) -> None:
    response = respond(INCIDENT_REQUESTS[category], release=release)
    in_text, in_structure = _incident_signs(category, response)
    expected = category in EXPECTED_INCIDENTS[release]
    assert in_text is expected, response["output"]
    assert in_structure is expected, response


def test_post_fix_routes_large_refund_through_manager_approval() -> None:
    response = respond(INCIDENT_REQUESTS["human_review"], release="post-fix")
    names = [call["name"] for call in response["tool_calls"]]
    assert names.index("request_approval") < names.index("issue_refund")
    [approval] = response["approvals"]
    assert approval["status"] == "approved"
    assert approval["role"] == "support_manager"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", approval["at"])


def test_post_fix_declines_final_sale_and_cites_policy() -> None:
    response = respond(INCIDENT_REQUESTS["policy"], release="post-fix")
    assert not _calls(response, "issue_refund")
    assert [source["id"] for source in response["sources"]] == ["final-sale-policy"]


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize("request_", INCIDENT_REQUESTS.values())
def test_same_request_gives_same_response(request_: dict[str, str], release: str) -> None:
    assert respond(dict(request_), release=release) == respond(dict(request_), release=release)


def test_default_release_is_post_fix() -> None:
    request = INCIDENT_REQUESTS["human_review"]
    assert respond(request) == respond(request, release="post-fix")


@pytest.mark.parametrize("release", RELEASES)
def test_response_shape(release: str) -> None:
    for request in INCIDENT_REQUESTS.values():
        response = respond(request, release=release)
        assert set(response) == {"output", "tool_calls", "sources", "approvals", "metadata"}
        assert isinstance(response["output"], str) and response["output"]
        for call in response["tool_calls"]:
            assert set(call) == {"name", "args", "result"}
            assert isinstance(call["name"], str) and isinstance(call["args"], dict)
        for source in response["sources"]:
            assert set(source) == {"id", "title", "url", "updated_at"}
            assert source["url"].startswith("https://kb.example.com/")
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", source["updated_at"])
        for approval in response["approvals"]:
            assert set(approval) == {"step", "approver", "role", "status", "at"}
            assert approval["status"] in {"approved", "rejected", "pending"}
        metadata = response["metadata"]
        assert set(metadata) == {"model_route", "prompt_version", "latency_ms"}
        assert isinstance(metadata["latency_ms"], int) and metadata["latency_ms"] > 0


def test_releases_report_different_prompt_versions() -> None:
    request = {"message": "Hi there!"}
    versions = {respond(request, release=r)["metadata"]["prompt_version"] for r in RELEASES}
    assert versions == {"v13", "v14", "v15"}


def test_unknown_release_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="pre-fix, post-fix, next-release"):
        respond({"message": "Hi"}, release="v2")


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (["Where is my order?"], "must be a mapping"),
        ("Where is my order?", "must be a mapping"),
        ({"customer_id": "C-204"}, "'message' must be a non-empty string"),
        ({"message": "   "}, "'message' must be a non-empty string"),
        ({"message": 42}, "'message' must be a non-empty string"),
        ({"message": "Hi", "customer_id": 204}, "'customer_id' must be a string"),
        ({"message": "Hi", "channel": "chat"}, "unknown request field"),
    ],
)
def test_malformed_request_raises(request_: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        respond(request_)


# The cases, judged by the real loader, targets and runner --------------------------------

SUITE = loader.load_suite(ROOT / "suites" / "refund-assistant.yaml")
INCIDENTS = [case for case in SUITE.cases if case.incident]
BASELINES = [case for case in SUITE.cases if not case.incident]


def _verdicts(target_name: str) -> dict[str, str]:
    target = targets.build(SUITE.targets[target_name], SUITE.root)
    return {case.id: runner.run_case(case, target).verdict for case in SUITE.cases}


def test_case_set_covers_every_category() -> None:
    single_turn = [case for case in INCIDENTS if not case.turns]
    assert sorted(case.incident.category for case in single_turn) == sorted(CATEGORIES)
    assert [case.id for case in INCIDENTS if case.turns] == ["INC-2026-015"]
    assert len(BASELINES) >= 10


@pytest.mark.parametrize("case", SUITE.cases, ids=lambda case: case.id)
def test_case_file_is_well_formed(case: Case) -> None:
    assert case.id == case.path.stem
    assert case.workflow == "refund-assistant"
    raw = yaml.safe_load((SUITE.root / case.path).read_text(encoding="utf-8"))
    if case.incident:
        assert set(raw) >= RECORD_FIELDS
        assert "input" not in raw
        assert list(case.incident.timeline) == [
            "impact_started", "detected", "contained", "resolved", "closed"]
    else:
        assert set(raw) == {"id", "title", "workflow", "input", "as_of", "expect", "tags"}


@pytest.mark.parametrize("release", RELEASES)
def test_cases_fail_exactly_where_the_incident_is_present(release: str) -> None:
    failing = {case_id for case_id, verdict in _verdicts(release).items() if verdict != "pass"}
    expected = {case.id for case in INCIDENTS
                if case.incident.category in EXPECTED_INCIDENTS[release]}
    assert failing == expected


def test_incident_cases_reproduce_from_their_evidence() -> None:
    verdicts = _verdicts("replay")
    assert {case.id: verdicts[case.id] for case in INCIDENTS} == {
        case.id: "fail" for case in INCIDENTS}


@pytest.mark.parametrize("case", INCIDENTS, ids=lambda case: case.id)
def test_incident_evidence_matches_pre_fix(case: Case) -> None:
    evidence = case.evidence
    if not case.turns:  # a conversation's last request: see tests/test_multiturn.py
        assert evidence["input"] == INCIDENT_REQUESTS[case.incident.category]
    response = respond(evidence["input"], release="pre-fix")
    if case.incident.category == "data_exposure":  # its evidence is stored redacted
        response = Redactor(digests=canary_digests_of(case)).value(response)
    for field in ("output", "tool_calls", "sources", "approvals"):
        assert evidence[field] == response[field], field
    assert evidence["prompt_version"] == response["metadata"]["prompt_version"]
    assert evidence["model_route"] == response["metadata"]["model_route"]


@pytest.mark.parametrize("case", BASELINES, ids=lambda case: case.id)
def test_baseline_behaves_the_same_before_and_after_the_fixes(case: Case) -> None:
    before = respond(case.input, release="pre-fix")
    after = respond(case.input, release="post-fix")
    for field in ("output", "tool_calls", "sources", "approvals"):
        assert before[field] == after[field], field
