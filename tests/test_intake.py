"""Incident intake: the drafted case file, id numbering, prompts, and repeated failures."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from rapidfuzz import fuzz, utils

from harness.errors import InputError
from harness.example.refund_assistant import respond
from harness.intake import new as intake
from harness.intake.severity import RULES_FILE
from harness.intake.writer import next_id
from harness.loader import load_case
from harness.targets.replay import ReplayTarget

BUNDLED = Path(__file__).resolve().parent.parent / "cases" / "refund-assistant"
NOW = dt.datetime(2026, 3, 20, 9, 0, tzinfo=dt.UTC)
FLAGS = {"workflow": "refund-assistant", "category": "data_exposure", "title": "Reply showed "
         "another customer's email address", "owner": "sofia.brandt", "users": 3, "records": 3}


def scaffold(root: Path, **overrides: Any) -> intake.Scaffold:
    """Scaffold a data-exposure case with customer data exposed, as a person would by flags."""
    values: dict[str, Any] = {
        "workflow": "refund-assistant", "category": "data_exposure",
        "title": "Reply showed another customer's email address", "owner": "sofia.brandt",
        "impact": {"users": 3, "records": 3, "data_classes": ["email"], "workflow_users": 2000,
                   "customer_data": True, "restricted_data": False,
                   "external_destination": False},
        "now": NOW,
    }
    values.update(overrides)
    return intake.scaffold_case(root=root, **values)


def never_asked(prompt: str) -> str:
    raise AssertionError("nothing should be asked")


# --- the drafted file ----------------------------------------------------------------------


def test_scaffold_writes_a_draft_that_loads_with_derived_severity(tmp_path: Path) -> None:
    result = scaffold(tmp_path)
    assert result.path == tmp_path / "cases" / "refund-assistant" / "INC-2026-001.yaml"
    case = load_case(result.path)
    assert case.id == "INC-2026-001"
    assert case.workflow == "refund-assistant"
    assert case.draft is True
    assert case.input == intake.TODO_INPUT
    assert case.incident is not None
    assert (case.incident.category, case.incident.severity, case.incident.status) == (
        "data_exposure", "sev1", "open")
    assert case.incident.severity_basis == (
        "some of the workflow's users affected (share 0.15%): sev3",
        "customer data exposed: sev1",
    )
    assert result.derivation.basis == case.incident.severity_basis
    assert result.warning is None
    assert case.evidence["missing"] == ["input", "prompt_version", "model_route", "sources",
                                        "tool_calls", "approvals", "output"]
    assert [(e.kind, e.params) for e in case.expect] == [("not_contains", intake.TODO_CHECK)]
    assert result.path.read_text(encoding="utf-8").startswith(
        "# Drafted by `harness incident new`.")


def test_explicit_lower_severity_is_kept_with_a_warning(tmp_path: Path) -> None:
    result = scaffold(tmp_path, severity="sev3")
    assert result.warning is not None
    assert result.warning.startswith("severity sev3 is lower than sev1, which the impact gives "
                                     "(some of the workflow's users affected")
    case = load_case(result.path)
    assert case.incident is not None
    assert case.incident.severity == "sev3"
    assert case.incident.severity_basis[0] == "set by hand to sev3; the rules give sev1"
    assert case.incident.severity_basis[1:] == result.derivation.basis


def test_explicit_higher_or_equal_severity_gives_no_warning(tmp_path: Path) -> None:
    result = scaffold(tmp_path, impact={"users": 0, "records": 0, "data_classes": []},
                      severity="sev2")
    assert result.warning is None
    assert result.derivation.severity == "sev4"
    same = scaffold(tmp_path, severity="sev1")
    assert same.warning is None
    assert load_case(same.path).incident.severity_basis == same.derivation.basis


def test_custom_rules_are_used(tmp_path: Path) -> None:
    (tmp_path / RULES_FILE).write_text("base: sev2\n", encoding="utf-8")
    values = dict(FLAGS, data_class=[], workflow_users=2000)
    result = intake.new_incident(values, root=tmp_path, stdout=io.StringIO(),
                                 stderr=io.StringIO(), interactive=False, now=NOW)
    assert load_case(result.path).incident.severity == "sev2"
    assert result.derivation.basis == ("no band matched: sev2",)


def test_timeline_evidence_and_record_fields_are_written(tmp_path: Path) -> None:
    result = scaffold(
        tmp_path, timeline={"detected": "2026-03-19T10:00:00+00:00",
                            "impact_started": dt.datetime(2026, 3, 19, 8, 30)},
        evidence={"input": {"message": "where is my order"}, "output": "It went to a@b.example"},
        root_cause="The lookup ignored the customer id.", business_owner="priya.raman",
        near_miss=True,
    )
    case = load_case(result.path)
    assert case.incident is not None
    assert case.incident.timeline == {
        "impact_started": dt.datetime(2026, 3, 19, 8, 30, tzinfo=dt.UTC),
        "detected": dt.datetime(2026, 3, 19, 10, 0, tzinfo=dt.UTC),
    }
    assert list(result.fields["timeline"]) == ["impact_started", "detected"]
    assert result.fields["timeline"]["detected"] == "2026-03-19T10:00:00Z"
    assert case.input == {"message": "where is my order"}
    assert case.evidence["missing"] == ["prompt_version", "model_route", "sources",
                                        "tool_calls", "approvals"]
    assert (case.incident.root_cause, case.incident.business_owner, case.incident.near_miss) == (
        "The lookup ignored the customer id.", "priya.raman", True)
    assert case.incident.severity == "sev2"  # sev1 lowered by the near miss
    # the one drafter: no_pii with the detector that fired, no_leak with the value's digest,
    # and the leaked address kept in the evidence only as a marker holding that digest
    (pii, leak) = case.expect
    assert (pii.kind, pii.params) == ("no_pii", {"detectors": ["email"]})
    (digest,) = leak.params["digests"]
    assert case.evidence["output"] == f"It went to [redacted:email:{digest}]"
    assert "a@b.example" not in result.path.read_text(encoding="utf-8")


BUNDLED_INCIDENTS = sorted(BUNDLED.glob("INC-*.yaml"))


@pytest.mark.parametrize("source", BUNDLED_INCIDENTS, ids=[p.stem for p in BUNDLED_INCIDENTS])
def test_first_check_from_evidence_fails_on_that_evidence(tmp_path: Path, source: Path) -> None:
    bundled = load_case(source)
    assert bundled.incident is not None
    evidence = dict(bundled.evidence)
    if bundled.incident.category == "data_exposure":  # the bundled file stores it redacted
        leaked = respond(evidence["input"], release="pre-fix")
        evidence.update(output=leaked["output"], tool_calls=leaked["tool_calls"])
    if bundled.incident.category == "human_review":  # the bundled one recorded no approval
        evidence["approvals"] = [{"step": "refund_over_threshold", "status": "pending"}]
    result = scaffold(tmp_path, category=bundled.incident.category, title=str(bundled.title),
                      evidence=evidence)
    case = load_case(result.path)
    assert case.evidence["missing"] == []
    expected_kind = {"output_quality": "forbidden_claims", "data_exposure": "no_pii",
                     "automation_error": "tool_not_called", "policy": "forbidden_claims",
                     "retrieval": "not_cites", "human_review": "approval_required"}
    assert case.expect[0].kind == expected_kind[bundled.incident.category]
    response = ReplayTarget().call(case.input, case=case, timeout_s=None)
    # every drafted check fails on the evidence it came from (redacted, for data exposure)
    for expectation in case.expect:
        outcome = expectation.evaluate(response, case)
        assert outcome.verdict == "fail", (expectation.kind, outcome.reason)


@pytest.mark.parametrize(("category", "evidence", "field"), [
    ("retrieval", {"output": "text", "sources": []}, "evidence.sources"),
    ("human_review", {"tool_calls": [{"name": "lookup_order"}], "approvals": []},
     "evidence.tool_calls"),
    ("policy", {"output": "  \n"}, "evidence.output"),
    ("data_exposure", {"tool_calls": [{"name": "send_email"}]}, "evidence.output"),
    ("automation_error", {"tool_calls": [{"name": "lookup_order"}]}, "evidence.tool_calls"),
])
def test_without_the_evidence_it_needs_the_draft_gets_the_placeholder_and_says_why(
        tmp_path: Path, category: str, evidence: dict[str, Any], field: str) -> None:
    result = scaffold(tmp_path, category=category, evidence=evidence)
    case = load_case(result.path)
    assert [(e.kind, e.params) for e in case.expect] == [("not_contains", intake.TODO_CHECK)]
    text = result.path.read_text(encoding="utf-8")
    comment = text.splitlines()[text.splitlines().index("expect:") - 1]
    assert comment.startswith("# placeholder: ")


@pytest.mark.parametrize(("overrides", "field", "problem"), [
    ({"workflow": "../elsewhere"}, "workflow", "expected a name of letters, digits, '.', '_' "
                                               "and '-' (it becomes a file name), found "
                                               "'../elsewhere'"),
    ({"id": "INC 1"}, "id", "expected a name of letters, digits, '.', '_' and '-' (it becomes a "
                            "file name), found 'INC 1'"),
    ({"category": "safety"}, "category", "expected one of output_quality, data_exposure, "
                                         "automation_error, policy, retrieval, human_review, "
                                         "found 'safety'"),
    ({"severity": "high"}, "severity", "expected one of sev1, sev2, sev3, sev4, found 'high'"),
    ({"title": "  "}, "title", "expected a non-empty text, found '  '"),
    ({"timeline": {"detected": "2026-03-19T10:00:00Z", "contained": "2026-03-19T09:00:00Z"}},
     "timeline.contained", "contained (2026-03-19T09:00:00+00:00) is before detected "
                           "(2026-03-19T10:00:00+00:00)"),
    ({"timeline": {"noticed": "2026-03-19T10:00:00Z"}}, "timeline.noticed",
     "unknown step 'noticed'; expected one of impact_started, detected, contained, resolved, "
     "closed"),
    ({"timeline": {"detected": "yesterday"}}, "timeline.detected",
     "expected an ISO 8601 date-time (e.g. 2026-03-02T08:15:00Z), found 'yesterday'"),
    ({"impact": {"users": "three"}}, "impact.users", "expected a whole number, found a string "
                                                     "('three')"),
    ({"impact": {"users": 3, "customer_data": "yes"}}, "impact.customer_data",
     "expected true or false, found a string ('yes')"),
    ({"evidence": {"ouput": "x"}}, "evidence.ouput",
     "unknown field 'ouput' (did you mean 'output'?); expected one of input, prompt_version, "
     "model_route, sources, tool_calls, approvals, output, missing, reconstructed, trace, "
     "notes"),
])
def test_bad_values_are_refused_before_anything_is_written(
        tmp_path: Path, overrides: dict, field: str, problem: str) -> None:
    with pytest.raises(InputError) as info:
        scaffold(tmp_path, **overrides)
    assert str(info.value) == f"{field}: {problem}"
    assert list(tmp_path.rglob("*.yaml")) == []


# --- ids -----------------------------------------------------------------------------------


def test_next_id_counts_within_the_year_and_keeps_the_width(tmp_path: Path) -> None:
    cases = tmp_path / "cases"
    folder = cases / "w"
    folder.mkdir(parents=True)
    assert next_id(cases, 2026) == "INC-2026-001"
    for name in ("INC-2026-009.yaml", "INC-2026-017.yml", "INC-2025-120.yaml", "BASE-001.yaml",
                 "INC-2026-030.json", "notes-INC-2026-050.yaml"):
        (folder / name).write_text("x", encoding="utf-8")
    assert next_id(cases, 2026) == "INC-2026-018"
    assert next_id(cases, 2025) == "INC-2025-121"
    assert next_id(cases, 2027) == "INC-2027-001"
    (folder / "INC-2026-0999.yaml").write_text("x", encoding="utf-8")
    assert next_id(cases, 2026) == "INC-2026-1000"
    # ids are unique across the registry: another workflow's cases count too
    (cases / "other").mkdir()
    (cases / "other" / "INC-2026-1400.yaml").write_text("x", encoding="utf-8")
    assert next_id(cases, 2026) == "INC-2026-1401"


def test_ids_follow_the_bundled_cases(tmp_path: Path) -> None:
    shutil.copytree(BUNDLED, tmp_path / "cases" / "refund-assistant")
    first = scaffold(tmp_path)
    second = scaffold(tmp_path)
    assert (first.case.id, second.case.id) == ("INC-2026-018", "INC-2026-019")


def test_an_existing_case_is_never_overwritten(tmp_path: Path) -> None:
    first = scaffold(tmp_path, id="INC-2026-500")
    before = first.path.read_text(encoding="utf-8")
    with pytest.raises(InputError) as info:
        scaffold(tmp_path, id="INC-2026-500", title="Something else entirely")
    assert str(info.value) == (f"{first.path}: id: a case file with this id already exists; "
                               "nothing was written (choose another --id)")
    assert first.path.read_text(encoding="utf-8") == before


# --- asking --------------------------------------------------------------------------------


def test_flags_only_asks_nothing_even_on_a_terminal() -> None:
    assert intake.ask_missing(FLAGS, input_fn=never_asked, interactive=True) == FLAGS


def test_missing_essentials_without_a_terminal_name_the_flags() -> None:
    values = {"workflow": "refund-assistant", "title": "t", "users": 0}
    with pytest.raises(InputError) as info:
        intake.ask_missing(values, input_fn=never_asked, interactive=False)
    assert str(info.value) == ("missing category, owner, records: pass --category C --owner O "
                               "--records N (standard input is not a terminal, so nothing was "
                               "asked)")


def test_stdin_not_a_terminal_is_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(InputError, match="pass --workflow W"):
        intake.ask_missing({}, input_fn=never_asked)


def test_interactive_prompts_ask_again_until_answers_fit() -> None:
    answers = iter(["refund assistant", "refund-assistant", "9", "2", "", "Leaked an email",
                    "sofia.brandt", "three", "3", "0"])
    shown = io.StringIO()
    values = intake.ask_missing({"owner": None}, input_fn=lambda prompt: next(answers),
                                output=shown, interactive=True)
    assert values == {"workflow": "refund-assistant", "category": "data_exposure",
                      "title": "Leaked an email", "owner": "sofia.brandt", "users": 3,
                      "records": 0}
    assert next(answers, None) is None
    text = shown.getvalue()
    assert "1) output_quality  2) data_exposure  3) automation_error" in text
    assert "  answer 1-6 or one of output_quality, data_exposure" in text
    assert "  use letters, digits, '.', '_' and '-' (a folder name)" in text
    assert "  an answer is needed" in text
    assert "  a whole number >= 0 is needed" in text
    assert text.count("Users affected: ") == 2


def test_end_of_input_while_asking_names_the_flag() -> None:
    def closed(prompt: str) -> str:
        raise EOFError

    values = dict(FLAGS, owner=None)
    with pytest.raises(InputError) as info:
        intake.ask_missing(values, input_fn=closed, output=io.StringIO(), interactive=True)
    assert str(info.value) == "no answer for owner: pass --owner O"


def test_new_incident_asks_then_writes(tmp_path: Path) -> None:
    answers = iter(["1", "0", "0"])
    out, err = io.StringIO(), io.StringIO()
    values = {"workflow": "chat", "title": "Answer quoted the wrong price",
              "owner": "dana.okafor", "near_miss": True}
    result = intake.new_incident(values, root=tmp_path, input_fn=lambda p: next(answers),
                                 stdout=out, stderr=err, interactive=True, now=NOW)
    assert result.path == tmp_path / "cases" / "chat" / "INC-2026-001.yaml"
    assert out.getvalue().splitlines() == [
        "wrote cases/chat/INC-2026-001.yaml (draft)",
        "severity: sev4 (derived from the impact)",
        "  - no band matched: sev4",
        "  - near miss: stays sev4, the lowest",
        "rules: default rules",
        "evidence missing: input, prompt_version, model_route, sources, tool_calls, approvals, "
        "output",
        "next: collect the missing evidence (or harness case from-trace TRACE --into the file), "
        "make expect fail on it, then harness case close the file",
    ]
    assert "Category: " in err.getvalue()


def test_new_incident_flags_without_a_terminal(tmp_path: Path) -> None:
    evidence = tmp_path / "trace.yaml"
    evidence.write_text("input: {message: hi}\noutput: Mail me at jo@shop.example\n",
                        encoding="utf-8")
    values = dict(FLAGS, severity="sev4", data_class=["email"], workflow_users=100,
                  impact=["customer_data=false", "restricted_data=no",
                          "external_destination=false"],
                  timeline=["detected=2026-03-19T10:00:00Z"], evidence=evidence,
                  summary="3 customers saw another customer's email")
    out, err = io.StringIO(), io.StringIO()
    result = intake.new_incident(values, root=tmp_path, input_fn=never_asked, stdout=out,
                                 stderr=err, interactive=False, now=NOW)
    written = yaml.safe_load(result.path.read_text(encoding="utf-8"))
    assert written["impact"] == {"users": 3, "records": 3, "data_classes": ["email"],
                                 "workflow_users": 100, "customer_data": False,
                                 "restricted_data": False, "external_destination": False,
                                 "summary": "3 customers saw another customer's email"}
    assert written["severity"] == "sev4"
    assert "severity: sev4 (set by hand; the impact gives sev2)" in out.getvalue()
    assert err.getvalue().splitlines() == [
        "warning: severity sev4 is lower than sev2, which the impact gives (1% or more of the "
        "workflow's users affected (share 3%): sev2); keep it only with a reason the rules miss",
    ]


@pytest.mark.parametrize(("extra", "message"), [
    ({"impact": ["customer_data"]}, "--impact: expected KEY=VALUE, found 'customer_data'"),
    ({"impact": ["custmer_data=true"]}, "--impact: unknown impact fact 'custmer_data'; expected "
     "one of workflow_users, records_modified, customer_data, restricted_data, "
     "external_destination, commitment_breached, high_risk_action, approval_bypassed"),
    ({"impact": ["customer_data=maybe"]},
     "--impact: customer_data: expected true or false, found 'maybe'"),
    ({"impact": ["records_modified=many"]},
     "--impact: records_modified: expected a whole number >= 0, found 'many'"),
    ({"timeline": ["detected"]}, "--timeline: expected KEY=VALUE, found 'detected'"),
])
def test_bad_flags_are_named(tmp_path: Path, extra: dict, message: str) -> None:
    with pytest.raises(InputError) as info:
        intake.new_incident(dict(FLAGS, **extra), root=tmp_path, input_fn=never_asked,
                            interactive=False)
    assert str(info.value) == message


def test_bad_evidence_file_names_its_line(tmp_path: Path) -> None:
    evidence = tmp_path / "trace.yaml"
    evidence.write_text("input: {message: hi}\ntool_calls:\n  - args: {}\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        intake.new_incident(dict(FLAGS, evidence=evidence), root=tmp_path, interactive=False)
    assert str(info.value) == f"{evidence}:3: tool_calls[0].name: missing required field 'name'"


# --- repeated failures ---------------------------------------------------------------------


def plant(root: Path, source: str, *, workflow: str = "refund-assistant", **changes: str
          ) -> Path:
    """Copy a bundled case into ``root``'s cases, rewriting top-level fields (id, title...)."""
    text = (BUNDLED / source).read_text(encoding="utf-8")
    for key, value in {"workflow": workflow, **changes}.items():
        text, count = re.subn(rf"^{key}: .*$", f"{key}: {json.dumps(value)}", text, count=1,
                              flags=re.MULTILINE)
        assert count == 1, key
    path = root / "cases" / workflow / f"{changes['id']}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def original(source: str) -> dict[str, Any]:
    """The bundled case's fields as plain data."""
    return yaml.safe_load((BUNDLED / source).read_text(encoding="utf-8"))


def test_similar_incidents_find_a_reworded_repeat_and_ignore_others(tmp_path: Path) -> None:
    cases = [load_case(p) for p in (
        plant(tmp_path, "INC-2026-017.yaml", id="INC-2026-101",
              title="Manager approval skipped for a refund above $500"),
        plant(tmp_path, "INC-2026-017.yaml", id="INC-2026-102", workflow="billing-assistant"),
        plant(tmp_path, "INC-2026-017.yaml", id="INC-2026-103", category="policy"),
        plant(tmp_path, "INC-2026-012.yaml", id="INC-2026-104"),
        BUNDLED / "BASE-004.yaml",
    )]
    new = original("INC-2026-017.yaml")
    found = intake.similar_incidents(new, cases)
    assert [match.id for match in found] == ["INC-2026-101"]
    ((_, score, why),) = found
    title = fuzz.token_set_ratio(new["title"], "Manager approval skipped for a refund above $500",
                                 processor=utils.default_process)
    assert title < 100
    assert score == round(0.4 * title + 0.4 * 100 + 0.2 * 100, 1)
    assert why == f"title {title:.0f}, root cause 100, output 100"


def test_similarity_skips_missing_fields_and_renormalises(tmp_path: Path) -> None:
    planted = load_case(plant(tmp_path, "INC-2026-009.yaml", id="INC-2026-201",
                              title="Assistant quoted the old 15% restocking fee"))
    new = {"workflow": "refund-assistant", "category": "retrieval",
           "title": "Old restocking fee of 15% quoted from the superseded policy"}
    title = fuzz.token_set_ratio(new["title"], planted.title, processor=utils.default_process)
    assert intake.similar_incidents(new, [planted], threshold=0) == [
        intake.Similar("INC-2026-201", round(title, 1), f"title {title:.0f}")]
    with_cause = dict(new, root_cause=planted.incident.root_cause)
    ((_, score, why),) = intake.similar_incidents(with_cause, [planted], threshold=0)
    assert score == round((0.4 * title + 0.4 * 100) / 0.8, 1)
    assert why == f"title {title:.0f}, root cause 100"
    assert intake.similar_incidents(new, [planted], threshold=title + 1) == []
    assert intake.similar_incidents({**new, "title": "TODO: a title"}, [planted]) == []


def test_similarity_ranks_best_first(tmp_path: Path) -> None:
    close = load_case(plant(tmp_path, "INC-2026-017.yaml", id="INC-2026-301"))
    far = load_case(plant(tmp_path, "INC-2026-017.yaml", id="INC-2026-302",
                          title="Refund approval step missing"))
    found = intake.similar_incidents(original("INC-2026-017.yaml"), [far, close])
    assert [m.id for m in found] == ["INC-2026-301", "INC-2026-302"]
    assert found[0].score == 100
    assert found[0].score > found[1].score


def test_intake_warns_about_a_repeated_failure(tmp_path: Path) -> None:
    plant(tmp_path, "INC-2026-017.yaml", id="INC-2026-101",
          title="Manager approval skipped for a refund above $500")
    broken = tmp_path / "cases" / "refund-assistant" / "BROKEN.yaml"
    broken.write_text("expect: []\ninput: hi\n", encoding="utf-8")
    bundled = original("INC-2026-017.yaml")
    values = dict(FLAGS, category="human_review", title=bundled["title"],
                  root_cause=bundled["root_cause"], users=4, records=4)
    err = io.StringIO()
    result = intake.new_incident(values, root=tmp_path, stdout=io.StringIO(), stderr=err,
                                 interactive=False, now=NOW)
    assert result.case.id == "INC-2026-102"
    lines = err.getvalue().splitlines()
    assert lines[0] == ("warning: a repeated failure? earlier refund-assistant human_review "
                        "incidents read alike:")
    assert lines[1].startswith("  INC-2026-101 (score ")
    assert lines[1].endswith(", root cause 100)")
    assert lines[2] == (f"note: not compared, does not load: {broken}:1: expect: expected at "
                        "least 1 item(s), found 0")
