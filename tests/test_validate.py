"""The main job end to end on the bundled example: validate, sign, verify, restore."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import pin_reviewers
from junitparser import JUnitXml

REPO = Path(__file__).resolve().parent.parent


def harness(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=300, check=False)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(REPO / "cases", root / "cases")
    shutil.copytree(REPO / "suites", root / "suites")
    return root


def reports(root: Path, suffix: str) -> list[Path]:
    return sorted((root / "reports").glob(f"validation-*{suffix}"))


def test_validate_with_no_options_awaits_the_signoffs_its_policy_requires(project):
    """The tests pass (post-fix against pre-fix), and the bundled suite requires the workflow
    owner's and a security reviewer's approval: the first result is AWAITING SIGN-OFF, exit 3,
    and the CLI, banner, summary, JUnit and manifest all say so."""
    done = harness("validate", "suites/refund-assistant.yaml", cwd=project)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "pre-fix -> post-fix: 6 fixed, 13 still_passing" in done.stdout
    assert "decision: AWAITING SIGN-OFF" in done.stdout
    assert "no reviewers file at" in done.stdout
    assert "no approval in role security (required for data_exposure: INC-2026-011)" in \
        done.stdout
    (html,) = reports(project, ".html")
    assert f"report: {html}" in done.stdout
    manifest = json.loads(html.with_suffix(".json").read_text())
    assert (manifest["decision"], manifest["tests_decision"]) == ("AWAITING SIGN-OFF", "RESTORE")
    assert manifest["signoff_policy"] == {"required_roles": {
        "default": ["workflow_owner"], "data_exposure": ["security"]}}
    assert [i["id"] for i in manifest["incidents"]] == [
        "INC-2026-009", "INC-2026-011", "INC-2026-012", "INC-2026-014", "INC-2026-016",
        "INC-2026-017"]
    page = html.read_text()
    assert '<h2 id="decision-title">AWAITING SIGN-OFF</h2>' in page
    assert "data_exposure incidents: INC-2026-011" in page  # the policy is in the report
    assert "## ⏳ AWAITING SIGN-OFF: refund-assistant" in html.with_suffix(".md").read_text()
    junit = JUnitXml.fromfile(str(html.with_suffix(".xml")))
    assert junit.tests == 20 and junit.failures == 1


def test_validate_blocks_the_next_release_naming_the_incident_and_its_owner(project):
    done = harness("validate", "suites/refund-assistant.yaml", "--baseline", "post-fix",
                   "--candidate", "next-release", cwd=project)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "decision: BLOCK" in done.stdout
    assert "BLOCK INC-2026-017: [regressed]" in done.stdout
    assert "(owner li.wei)" in done.stdout and "owners to notify: li.wei" in done.stdout
    (markdown,) = reports(project, ".md")
    assert "- **INC-2026-017** `regressed` (human\\_review, sev2, owner li.wei)" in \
        markdown.read_text()


def test_validate_against_a_baseline_run_file(project):
    first = harness("run", "suites/refund-assistant.yaml", "-t", "post-fix", "--out",
                    "base.jsonl", cwd=project)
    assert first.returncode == 0
    done = harness("validate", "suites/refund-assistant.yaml", "--baseline", "base.jsonl",
                   "--candidate", "next-release", cwd=project)
    assert done.returncode == 1
    assert "post-fix -> next-release: 1 regressed, 18 still_passing" in done.stdout


def test_validate_without_runs_to_compare_is_bad_input(project):
    suite = project / "suites" / "refund-assistant.yaml"
    text = suite.read_text()
    suite.write_text(text.replace("  baseline: pre-fix\n", ""))
    done = harness("validate", "suites/refund-assistant.yaml", cwd=project)
    assert done.returncode == 2
    assert "name the runs to compare" in done.stderr
    assert not (project / "reports").exists()


def keys(tmp_path: Path, project: Path) -> dict[str, Path]:
    return pin_reviewers(tmp_path / "keys", project)


def test_full_restoration_two_reviewers_sign_verify_and_restore(project, tmp_path):
    key = keys(tmp_path, project)
    assert harness("validate", "suites/refund-assistant.yaml", cwd=project).returncode == 3
    (report,) = reports(project, ".html")
    runs = sorted((project / "reports" / "runs").glob("*.jsonl"))
    pre = next(r for r in runs if "pre-fix" in r.name)
    post = next(r for r in runs if "post-fix" in r.name)
    gate = ("gate", str(pre), str(post), "--suite", "suites/refund-assistant.yaml")

    waiting = harness(*gate, cwd=project)
    assert waiting.returncode == 3, waiting.stdout + waiting.stderr
    assert "decision: AWAITING SIGN-OFF" in waiting.stdout
    assert "policy: the validation manifest" in waiting.stdout
    assert harness(*gate, "--require-signoff", cwd=project).returncode == 3

    first = harness("signoff", str(report), "--reviewer", "priya.raman", "--decision",
                    "approve", "--key", str(key["priya.raman"]), cwd=project)
    assert first.returncode == 0, first.stderr
    assert "restoration still needs: no approval in role security" in first.stdout
    still = harness(*gate, cwd=project)
    assert still.returncode == 3 and "no approval in role security" in still.stdout
    assert '<h2 id="decision-title">AWAITING SIGN-OFF</h2>' in report.read_text()

    # a fix author cannot approve the validation of their own fix
    own = harness("signoff", str(report), "--reviewer", "li.wei", "--decision", "approve",
                  "--key", str(key["li.wei"]), cwd=project)
    assert own.returncode == 2 and "li.wei" in own.stderr

    second = harness("signoff", str(report), "--reviewer", "noor.haddad", "--decision",
                     "approve", "--key", str(key["noor.haddad"]), "--comment",
                     "canaries clean", cwd=project)
    assert second.returncode == 0, second.stderr
    assert "restoration: approved by every required role" in second.stdout

    verified = harness("verify", cwd=project)  # every report under reports/
    assert verified.returncode == 0, verified.stdout
    assert "valid, 2 record(s)" in verified.stdout and "valid: 1 report(s)" in verified.stdout
    html = report.read_text()
    assert 'name="harness-chain-head" content="2:' in html
    assert '<h2 id="decision-title">RESTORE</h2>' in html
    assert "Noor" in html and "priya.raman" in html
    summary = report.with_suffix(".md").read_text()
    assert "## ✅ RESTORE" in summary and "Sign-off ledger: last record 2 of this report" in summary
    assert JUnitXml.fromfile(str(report.with_suffix(".xml"))).failures == 0

    allowed = harness(*gate, cwd=project)
    assert allowed.returncode == 0, allowed.stdout
    again = harness("validate", "suites/refund-assistant.yaml", "--baseline", str(pre),
                    "--candidate", str(post), cwd=project)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "decision: RESTORE" in again.stdout
    assert report.read_text() == html  # the signed report was kept, not rewritten

    # a report edited after signing no longer verifies, and restoration is refused
    report.write_text(html.replace("6 fixed", "7 fixed"))
    tampered = harness("verify", str(report), cwd=project)
    assert tampered.returncode == 1 and "changed after signing" in tampered.stdout
    assert harness(*gate, cwd=project).returncode == 1
