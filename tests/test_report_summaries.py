"""The Markdown summary and the JUnit XML of a validation."""

from __future__ import annotations

import dataclasses

from conftest import make_result as result
from conftest import make_run as run
from junitparser import Failure, JUnitXml

from harness.compare import compare
from harness.gate import Signoffs, decide, with_signoffs
from harness.report.junit import render_junit
from harness.report.markdown import escape, render_markdown


def blocked():
    baseline = run(result("INC-1", "pass", incident=True), result("BASE-1", "pass"),
                   result("BASE-2", "pass"))
    candidate = run(result("INC-1", "fail", incident=True), result("BASE-1", "pass"),
                    result("BASE-2", "error"))
    comparison = compare(baseline, candidate)
    return comparison, decide(comparison)


def test_markdown_names_the_decision_reasons_owners_and_incidents():
    comparison, decision = blocked()
    text = render_markdown(comparison, decision, report_path="validation-s-r.html",
                           report_sha256="ab" * 32, chain_head=(2, "ff" * 32))
    assert text.startswith("## ⛔ BLOCK: s\n")
    assert "- **INC-1** `regressed` (policy, sev2, owner dana): incident case passed" in text
    assert "- **BASE-2** `error`:" in text
    assert "Owners to notify: dana" in text
    assert "| INC-1 |  | policy | sev2 | dana | pass (100%) | fail (0%) | regressed ⚠ |" in text
    assert "| regressed | 1 |" in text and "| still_passing | 1 |" in text
    assert f"SHA-256 `{'ab' * 32}`" in text
    assert f"Sign-off ledger: last record 2 of this report, hash `{'ff' * 32}`" in text


def test_markdown_escapes_titles_so_they_cannot_inject_markup():
    assert escape("<img src=x onerror=1> | **bold**\nnext") == (
        "\\<img src=x onerror=1\\> \\| \\*\\*bold\\*\\* next")


def test_junit_is_read_by_a_junit_parser_with_failures_where_the_gate_blocks(tmp_path):
    comparison, decision = blocked()
    path = tmp_path / "junit.xml"
    path.write_text(render_junit(comparison, decision), encoding="utf-8")
    xml = JUnitXml.fromfile(str(path))
    cases = {case.name: case for suite in xml for case in suite}
    assert set(cases) == {"INC-1", "BASE-1", "BASE-2"}
    assert not cases["BASE-1"].result
    failure = cases["INC-1"].result[0]
    assert isinstance(failure, Failure)
    assert failure.type == "regressed" and "regressed:" in failure.message
    assert cases["BASE-2"].result[0].type == "error"
    assert xml.tests == 3 and xml.failures == 2


def test_junit_has_a_run_case_when_the_run_itself_blocks_and_strips_control_characters(
        tmp_path):
    baseline = run(result("C", "pass"))
    candidate = run(result("C", "pass"), complete=False)
    comparison = compare(baseline, candidate)
    text = render_junit(comparison, decide(comparison))
    path = tmp_path / "junit.xml"
    path.write_text(text, encoding="utf-8")
    cases = {case.name: case for suite in JUnitXml.fromfile(str(path)) for case in suite}
    assert "incomplete_run" in cases["(run)"].result[0].message
    hostile = run(dataclasses.replace(result("C", "fail"), case_id="C\x1b[31m\x00"))
    text = render_junit(compare(baseline, hostile), decide(compare(baseline, hostile)))
    assert "\x1b" not in text and "\x00" not in text
    path.write_text(text, encoding="utf-8")
    assert {case.name for suite in JUnitXml.fromfile(str(path)) for case in suite} == {
        "C", "C\ufffd[31m\ufffd"}


def awaiting_signoff():
    baseline = run(result("INC-1", "fail", incident=True), result("BASE-1", "pass"))
    candidate = run(result("INC-1", "pass", incident=True), result("BASE-1", "pass"))
    comparison = compare(baseline, candidate)
    signoffs = Signoffs(required={"workflow_owner": "every validation",
                                  "security": "data_exposure: INC-1"},
                        approved={"workflow_owner": ("priya.raman",)})
    return comparison, with_signoffs(decide(comparison), signoffs)


def test_summaries_say_awaiting_signoff_as_the_cli_and_banner_do(tmp_path):
    comparison, decision = awaiting_signoff()
    assert decision.outcome == "AWAITING SIGN-OFF"
    text = render_markdown(comparison, decision)
    assert text.startswith("## ⏳ AWAITING SIGN-OFF: s\n")
    assert "### Awaiting sign-off" in text and "no approval in role security" in text
    assert "### Blocking" not in text
    path = tmp_path / "junit.xml"
    path.write_text(render_junit(comparison, decision), encoding="utf-8")
    xml = JUnitXml.fromfile(str(path))
    (suite,) = list(xml)
    assert suite.properties is not None
    assert {p.name: p.value for p in suite.properties()}["decision"] == "AWAITING SIGN-OFF"
    cases = {case.name: case for case in suite}
    failure = cases["(sign-off)"].result[0]
    assert failure.type == "AWAITING SIGN-OFF" and "no approval in role security" in failure.message
    assert xml.failures == 1  # a CI server shows the deploy as not ready, never green


def test_junit_signoff_case_passes_once_every_role_approved(tmp_path):
    comparison, _ = awaiting_signoff()
    approved = with_signoffs(decide(comparison), Signoffs(
        required={"workflow_owner": "every validation"},
        approved={"workflow_owner": ("priya.raman",)}))
    assert approved.outcome == "RESTORE"
    path = tmp_path / "junit.xml"
    path.write_text(render_junit(comparison, approved), encoding="utf-8")
    cases = {case.name: case for suite in JUnitXml.fromfile(str(path)) for case in suite}
    assert not cases["(sign-off)"].result
    assert render_markdown(comparison, approved).startswith("## ✅ RESTORE: s\n")
