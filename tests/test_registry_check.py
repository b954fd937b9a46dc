"""``harness check``: the registry rules, on the bundled project and on copies with planted
problems."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import write

from harness.errors import InputError
from harness.intake.registry_check import (
    DRAFT,
    DUPLICATE_ID,
    NO_EVIDENCE,
    NOT_IN_SUITE,
    NOT_REPRODUCED,
    PASSES_ON_EVIDENCE,
    PASSES_ON_TARGET,
    Finding,
    check_registry,
    completeness,
    load_cases,
    proof_targets,
    render_report,
)
from harness.model import EVIDENCE_FIELDS

ROOT = Path(__file__).parents[1]
CASE_014 = Path("cases/refund-assistant/INC-2026-014.yaml")
SUITE = Path("suites/refund-assistant.yaml")
INCIDENTS = ["INC-2026-009", "INC-2026-011", "INC-2026-012", "INC-2026-014", "INC-2026-015",
             "INC-2026-016", "INC-2026-017"]

BROKEN_WORKFLOW = '''
def respond(request, **params):
    raise RuntimeError("model route unavailable")
'''

ORPHAN = """
id: INC-X
title: Assistant promised a callback nobody scheduled
workflow: other-workflow
category: output_quality
severity: sev4
status: {status}
near_miss: {near_miss}
owner: dana.okafor
evidence:
  input: {{message: "Can someone call me back?"}}
  output: "Sure, an agent will call you within the hour."
expect:
  - not_contains: "call you within"
"""


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    """A copy of the bundled project's cases and suites (its targets import harness.example)."""
    shutil.copytree(ROOT / "cases", tmp_path / "cases")
    shutil.copytree(ROOT / "suites", tmp_path / "suites")
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def set_expect(path: Path, *checks: str) -> None:
    """Replace the case's expect list (which the tags line follows) with ``checks``."""
    text = path.read_text(encoding="utf-8")
    start = text.index("\nexpect:\n") + 1
    end = text.index("\ntags:", start) + 1
    entries = "".join(f"  - {check}\n" for check in checks)
    path.write_text(text[:start] + "expect:\n" + entries + text[end:], encoding="utf-8")


def rules(findings: list[Finding]) -> list[tuple[str, str | None, str]]:
    return [(f.path, f.case_id, f.rule) for f in findings]


# --- the bundled registry -------------------------------------------------------------------


def test_the_bundled_registry_has_no_findings():
    assert check_registry(ROOT) == []


def test_an_unchanged_copy_has_no_findings(registry):
    assert check_registry(registry) == []


def test_the_bundled_suite_proves_its_cases_on_pre_fix():
    from harness.loader import load_suite

    assert proof_targets(load_suite(ROOT / SUITE)) == ["pre-fix"]


# --- reproduction proof ---------------------------------------------------------------------


def test_a_case_that_passes_on_evidence_and_pre_fix_is_reported_twice(registry):
    set_expect(registry / CASE_014, 'contains: "refund"')
    findings = check_registry(registry)
    assert rules(findings) == [
        (str(CASE_014), "INC-2026-014", PASSES_ON_EVIDENCE),
        (str(CASE_014), "INC-2026-014", PASSES_ON_TARGET),
    ]
    evidence, target = findings
    assert evidence.line == 1
    assert "passes on its own evidence" in evidence.message
    assert f"passes on target 'pre-fix' of {registry / SUITE}:7" in target.message
    assert "guards nothing" in target.message
    assert "pre-fix" in target.fix


def test_a_case_that_fails_on_evidence_but_passes_on_pre_fix_names_the_target(registry):
    # the recorded answer said "sixty days"; the pre-fix release says "60 days"
    edit(registry / CASE_014, 'output: "Good news: you have 60 days',
         'output: "Good news: you have sixty days')
    set_expect(registry / CASE_014, 'not_contains: "sixty days"')
    findings = check_registry(registry)
    assert rules(findings) == [(str(CASE_014), "INC-2026-014", PASSES_ON_TARGET)]
    assert "target 'pre-fix'" in findings[0].message


def test_run_targets_false_skips_the_target_run(registry):
    edit(registry / CASE_014, 'output: "Good news: you have 60 days',
         'output: "Good news: you have sixty days')
    set_expect(registry / CASE_014, 'not_contains: "sixty days"')
    assert check_registry(registry, run_targets=False) == []


def test_run_targets_false_still_replays_the_evidence(registry):
    set_expect(registry / CASE_014, 'contains: "refund"')
    assert rules(check_registry(registry, run_targets=False)) == [
        (str(CASE_014), "INC-2026-014", PASSES_ON_EVIDENCE)]


def test_the_gate_baseline_target_is_a_proof_target_too(registry):
    suite = registry / SUITE
    edit(suite, "  pre-fix:\n", "  before-fix:\n")
    edit(suite, "baseline: pre-fix", "baseline: before-fix")
    set_expect(registry / CASE_014, 'contains: "refund"')
    findings = [f for f in check_registry(registry) if f.rule == PASSES_ON_TARGET]
    assert len(findings) == 1
    assert "target 'before-fix'" in findings[0].message


def test_without_pre_fix_or_a_baseline_target_only_the_evidence_is_checked(registry):
    suite = registry / SUITE
    edit(suite, "  pre-fix:\n", "  before-fix:\n")
    edit(suite, "  baseline: pre-fix\n", "")
    set_expect(registry / CASE_014, 'contains: "refund"')
    assert [f.rule for f in check_registry(registry)] == [PASSES_ON_EVIDENCE]


def test_a_target_that_errors_could_not_reproduce_the_incident(registry):
    write(registry / "registry_broken_workflow.py", BROKEN_WORKFLOW)
    write(registry / "suites" / "broken.yaml", """
        name: broken
        cases: [cases/refund-assistant/INC-2026-014.yaml]
        targets:
          pre-fix:
            python: registry_broken_workflow:respond
    """)
    findings = check_registry(registry)
    assert rules(findings) == [(str(CASE_014), "INC-2026-014", NOT_REPRODUCED)]
    message = findings[0].message
    assert message.startswith(f"could not reproduce on target 'pre-fix' of "
                              f"{registry / 'suites' / 'broken.yaml'}:5: ")
    assert "RuntimeError: model route unavailable" in message


def test_an_incident_case_without_evidence_cannot_replay(registry):
    write(registry / "cases" / "refund-assistant" / "INC-NEW.yaml", """
        id: INC-NEW
        category: policy
        severity: sev3
        status: closed
        owner: amara.nwosu
        input: {message: "Can I return a swimsuit?"}
        expect:
          - contains: "final sale"
    """)
    findings = check_registry(registry, run_targets=False)
    assert rules(findings) == [("cases/refund-assistant/INC-NEW.yaml", "INC-NEW", NO_EVIDENCE)]
    assert findings[0].message.startswith("no evidence to replay")
    assert findings[0].line == 1


# --- suites, ids and drafts -----------------------------------------------------------------


@pytest.mark.parametrize(("near_miss", "kind"), [("false", "closed incident"),
                                                  ("true", "closed near miss")])
def test_a_closed_incident_no_suite_includes_is_an_orphan(registry, near_miss, kind):
    write(registry / "cases" / "other-workflow" / "INC-X.yaml",
          ORPHAN.format(status="closed", near_miss=near_miss))
    findings = check_registry(registry)
    assert rules(findings) == [("cases/other-workflow/INC-X.yaml", "INC-X", NOT_IN_SUITE)]
    assert findings[0].message == f"{kind} is not included by any suite, so no run guards it"
    assert findings[0].fix.startswith("add it to a suite's cases globs")


def test_an_open_incident_outside_every_suite_is_not_an_orphan(registry):
    write(registry / "cases" / "other-workflow" / "INC-X.yaml",
          ORPHAN.format(status="open", near_miss="false"))
    assert check_registry(registry) == []


def test_without_suites_every_closed_incident_is_an_orphan(registry):
    shutil.rmtree(registry / "suites")
    findings = check_registry(registry)
    assert {f.case_id for f in findings} == set(INCIDENTS)
    assert {f.rule for f in findings} == {NOT_IN_SUITE}


def test_duplicate_ids_across_folders_name_both_files(registry):
    copy = registry / "cases" / "other-workflow" / "INC-2026-014.yaml"
    copy.parent.mkdir()
    shutil.copy(registry / CASE_014, copy)
    findings = check_registry(registry)
    duplicates = [f for f in findings if f.rule == DUPLICATE_ID]
    assert len(duplicates) == 1
    # files are read in path order: the other-workflow copy comes first
    assert duplicates[0].path == str(CASE_014)
    assert duplicates[0].message == ("duplicate case id 'INC-2026-014'; also used in "
                                     "cases/other-workflow/INC-2026-014.yaml:1")
    # the copy is also outside every suite
    assert ("cases/other-workflow/INC-2026-014.yaml", "INC-2026-014", NOT_IN_SUITE) in rules(
        findings)


def test_a_draft_case_is_reported_at_its_draft_line(registry):
    path = registry / CASE_014
    line = path.read_text(encoding="utf-8").count("\n") + 1
    with path.open("a", encoding="utf-8") as file:
        file.write("draft: true\n")
    findings = check_registry(registry)
    assert rules(findings) == [(str(CASE_014), "INC-2026-014", DRAFT)]
    assert findings[0].line == line
    assert findings[0].fix.startswith("fill what is left, review it, then: harness case close ")


# --- bad input ------------------------------------------------------------------------------


def test_a_case_file_that_does_not_load_is_bad_input(registry):
    write(registry / "cases" / "refund-assistant" / "BROKEN.yaml", """
        id: BROKEN
        input: hi
        expect:
          - contans: refund
    """)
    with pytest.raises(InputError) as info:
        check_registry(registry)
    assert str(info.value).startswith("cases/refund-assistant/BROKEN.yaml:4: expect[0].contans: ")


def test_a_suite_that_does_not_load_is_bad_input(registry):
    write(registry / "suites" / "empty-glob.yaml", """
        name: empty-glob
        cases: [cases/nowhere/*.yaml]
        targets: {replay: {replay: true}}
    """)
    with pytest.raises(InputError) as info:
        check_registry(registry)
    assert info.value.path == str(registry / "suites" / "empty-glob.yaml")
    assert info.value.line == 2
    assert "matches no case file" in info.value.problem


def test_a_root_without_cases_is_bad_input(tmp_path):
    with pytest.raises(InputError) as info:
        check_registry(tmp_path)
    assert info.value.path == str(tmp_path / "cases")


# --- evidence completeness and the report ---------------------------------------------------


def test_completeness_of_the_bundled_incidents_is_full():
    rows = completeness(load_cases(ROOT / "cases"))
    assert [row.case_id for row in rows] == INCIDENTS
    assert all(row.present == list(EVIDENCE_FIELDS) and row.missing == [] for row in rows)


def test_completeness_counts_absent_and_listed_fields_as_missing(registry):
    path = registry / CASE_014
    edit(path, "  model_route: support-large/2026-01\n", "")
    edit(path, "  prompt_version: v13\n", "  prompt_version: v13\n  missing: [prompt_version]\n")
    row = next(r for r in completeness(load_cases(registry / "cases"))
               if r.case_id == "INC-2026-014")
    assert row.missing == ["prompt_version", "model_route"]
    assert row.present == ["input", "sources", "tool_calls", "approvals", "output"]
    # missing evidence is information, not a finding
    assert check_registry(registry, run_targets=False) == []


def test_the_report_names_file_line_and_what_to_do(registry):
    set_expect(registry / CASE_014, 'contains: "refund"')
    cases = load_cases(registry / "cases")
    text = render_report(check_registry(registry, run_targets=False), completeness(cases))
    assert f"{CASE_014}:1: INC-2026-014: passes on its own evidence" in text
    assert "\n  fix: make expect fail on what the workflow did" in text
    assert "  INC-2026-009  7/7 fields logged\n" in text
    assert text.endswith("1 finding")


def test_reconstructed_evidence_is_not_counted_as_logged(registry):
    edit(registry / CASE_014, "  prompt_version: v13\n",
         "  prompt_version: v13\n  reconstructed: [tool_calls, approvals]\n")
    row = next(r for r in completeness(load_cases(registry / "cases"))
               if r.case_id == "INC-2026-014")
    assert row.reconstructed == ["tool_calls", "approvals"]
    text = render_report([], [row])
    assert "  INC-2026-014  5/7 fields logged; reconstructed: tool_calls, approvals" in text
    edit(registry / CASE_014, "  reconstructed: [tool_calls, approvals]\n",
         "  reconstructed: true\n")
    (row,) = [r for r in completeness(load_cases(registry / "cases"))
              if r.case_id == "INC-2026-014"]
    assert row.reconstructed == row.present


def test_the_clean_report_says_so():
    text = render_report([], completeness(load_cases(ROOT / "cases")))
    assert text.endswith("no findings: every incident case is unique, included and reproduces")
