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
    assert "pre-fix -> post-fix: 7 fixed, 13 still_passing" in done.stdout
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
        "INC-2026-009", "INC-2026-011", "INC-2026-012", "INC-2026-014", "INC-2026-015",
        "INC-2026-016", "INC-2026-017"]
    page = html.read_text()
    assert '<h2 id="decision-title">AWAITING SIGN-OFF</h2>' in page
    assert "data_exposure incidents: INC-2026-011" in page  # the policy is in the report
    assert "## ⏳ AWAITING SIGN-OFF: refund-assistant" in html.with_suffix(".md").read_text()
    junit = JUnitXml.fromfile(str(html.with_suffix(".xml")))
    assert junit.tests == 21 and junit.failures == 1


def test_validate_blocks_the_next_release_naming_the_incident_and_its_owner(project):
    done = harness("validate", "suites/refund-assistant.yaml", "--baseline", "post-fix",
                   "--candidate", "next-release", cwd=project)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "decision: BLOCK" in done.stdout
    assert "BLOCK INC-2026-017: [regressed]" in done.stdout
    assert "(owner li.wei, business owner tomas.herrera)" in done.stdout
    assert "owners to notify: li.wei" in done.stdout
    assert "business owners to notify: tomas.herrera" in done.stdout
    # the reason names the check that fails, its line and why
    assert "approval_required (line 73): issue_refund at tool_calls[1] ran without an " \
        "approved refund_over_threshold" in done.stdout
    (markdown,) = reports(project, ".md")
    text = markdown.read_text()
    assert "- **INC-2026-017** `regressed` (human\\_review, sev2, owner li.wei, business " \
        "owner tomas.herrera)" in text
    assert r"approval\_required \(line 73\)" in text
    assert "Business owners to notify: tomas.herrera" in text


def test_validate_against_a_baseline_run_file(project):
    first = harness("run", "suites/refund-assistant.yaml", "-t", "post-fix", "--out",
                    "base.jsonl", cwd=project)
    assert first.returncode == 0
    done = harness("validate", "suites/refund-assistant.yaml", "--baseline", "base.jsonl",
                   "--candidate", "next-release", cwd=project)
    assert done.returncode == 1
    assert "post-fix -> next-release: 1 regressed, 19 still_passing" in done.stdout


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
    report.write_text(html.replace("7 fixed", "8 fixed"))
    tampered = harness("verify", str(report), cwd=project)
    assert tampered.returncode == 1 and "changed after signing" in tampered.stdout
    assert harness(*gate, cwd=project).returncode == 1


# --- machine-readable decisions, notifications, report names --------------------------------


def test_validate_json_is_one_document_naming_reason_case_check_and_owners(project):
    notify = project / "out" / "notify.json"
    done = harness("validate", "suites/refund-assistant.yaml", "--baseline", "post-fix",
                   "--candidate", "next-release", "--format", "json", "--notify", str(notify),
                   cwd=project)
    assert done.returncode == 1, done.stderr
    body = json.loads(done.stdout)  # nothing else on stdout: the runs speak on stderr
    assert "next-release: 19 passed, 1 failed" in done.stderr
    assert (body["version"], body["command"], body["decision"], body["exit_code"]) == \
        (1, "validate", "BLOCK", 1)
    assert (body["baseline"]["target"], body["candidate"]["target"]) == \
        ("post-fix", "next-release")
    assert body["counts"]["regressed"] == 1
    (reason,) = [r for r in body["reasons"] if r["rule"] == "regressed"]
    assert (reason["case_id"], reason["owner"], reason["business_owner"], reason["blocking"]) \
        == ("INC-2026-017", "li.wei", "tomas.herrera", True)
    assert [(c["kind"], c["line"], c["verdict"]) for c in reason["checks"]] == [
        ("approval_required", 73, "fail"), ("approval_not_bypassed", 78, "fail"),
        ("tool_order", 79, "fail")]
    assert body["notify"] == [
        {"person": "li.wei", "role": "owner", "case_ids": ["INC-2026-017"]},
        {"person": "tomas.herrera", "role": "business_owner", "case_ids": ["INC-2026-017"]}]
    assert Path(body["files"]["report"]).is_file() and Path(body["files"]["manifest"]).is_file()
    sent = json.loads(notify.read_text())
    assert sent["decision"] == "BLOCK" and sent["report"] == body["files"]["report"]
    assert [(n["to"], n["role"]) for n in sent["notifications"]] == [
        ("li.wei", "owner"), ("tomas.herrera", "business_owner")]
    (case,) = sent["notifications"][1]["cases"]
    assert case["case_id"] == "INC-2026-017" and case["reasons"][0]["rule"] == "regressed"
    assert case["reasons"][0]["checks"][0]["kind"] == "approval_required"
    junit = JUnitXml.fromfile(str(body["files"]["junit"]))
    failures = [result.message for suite in junit for case in suite for result in case.result
                if case.name.endswith("INC-2026-017")]
    assert any("approval_required (line 73)" in (message or "") for message in failures)


def test_notifications_of_a_restored_candidate_tell_nobody_and_the_file_is_still_written(
        project):
    notify = project / "notify.json"
    done = harness("gate", *_two_runs(project, "pre-fix", "post-fix"), "--notify",
                   str(notify), "--format", "json", cwd=project)
    body = json.loads(done.stdout)
    assert body["command"] == "gate" and body["exit_code"] == done.returncode
    assert json.loads(notify.read_text())["notifications"] == []
    assert body["notify"] == [] and body["notifications_file"] == str(notify)


def _two_runs(project: Path, baseline: str, candidate: str) -> list[str]:
    paths = []
    for target in (baseline, candidate):
        out = project / "reports" / "runs" / f"{target}.jsonl"
        done = harness("run", "suites/refund-assistant.yaml", "-t", target, "--out", str(out),
                       cwd=project)
        assert done.returncode in (0, 1), done.stderr
        paths.append(str(out))
    return paths


def test_a_new_baseline_gets_a_new_report_and_the_earlier_one_is_kept(project):
    pre, post = _two_runs(project, "pre-fix", "post-fix")
    nxt = str(project / "reports" / "runs" / "next.jsonl")
    assert harness("run", "suites/refund-assistant.yaml", "-t", "next-release", "--out", nxt,
                   cwd=project).returncode == 1
    first = harness("validate", "suites/refund-assistant.yaml", "--baseline", pre,
                    "--candidate", nxt, cwd=project)
    second = harness("validate", "suites/refund-assistant.yaml", "--baseline", post,
                     "--candidate", nxt, cwd=project)
    assert first.returncode in (1, 3) and second.returncode == 1, second.stderr
    html = reports(project, ".html")
    assert len(html) == 2
    said = [line.split("report: ")[1] for done in (first, second)
            for line in done.stdout.splitlines() if line.startswith("report: ")]
    assert said[0] != said[1] and sorted(said) == [str(p) for p in html]
    for path, (base, cand) in zip(said, ((pre, nxt), (post, nxt)), strict=True):
        manifest = json.loads(Path(path).with_suffix(".json").read_text())
        assert manifest["baseline_run"]["path"].endswith(Path(base).name)
        assert manifest["candidate_run"]["path"].endswith(Path(cand).name)
        ids = [manifest[side]["run_id"] for side in ("candidate_run", "baseline_run")]
        assert Path(path).name == f"validation-refund-assistant-{ids[0]}-vs-{ids[1]}.html"


def test_a_report_under_the_earlier_name_is_found_again_not_written_twice(project):
    pre, post = _two_runs(project, "pre-fix", "post-fix")
    assert harness("validate", "suites/refund-assistant.yaml", "--baseline", pre,
                   "--candidate", post, cwd=project).returncode == 3
    (manifest,) = reports(project, ".json")
    candidate_id = json.loads(manifest.read_text())["candidate_run"]["run_id"]
    earlier = manifest.with_name(f"validation-refund-assistant-{candidate_id}.json")
    data = json.loads(manifest.read_text())
    data["report"] = earlier.with_suffix(".html").name
    for suffix in (".html", ".md", ".xml"):
        manifest.with_suffix(suffix).rename(earlier.with_suffix(suffix))
    manifest.unlink()
    earlier.write_text(json.dumps(data, indent=2) + "\n")
    again = harness("validate", "suites/refund-assistant.yaml", "--baseline", pre,
                    "--candidate", post, cwd=project)
    assert again.returncode == 3, again.stderr
    assert f"report: {earlier.with_suffix('.html')}" in again.stdout
    assert reports(project, ".json") == [earlier]


def test_check_json_names_each_finding_its_case_and_owners(project):
    clean = harness("check", "--no-targets", "--no-judges", "--since", "none", "--format",
                    "json", cwd=project)
    body = json.loads(clean.stdout)
    assert (clean.returncode, body["command"], body["clean"], body["findings"]) == \
        (0, "check", True, [])
    assert {row["case_id"] for row in body["completeness"]} >= {"INC-2026-017"}
    case = project / "cases" / "refund-assistant" / "INC-2026-017.yaml"
    case.write_text(case.read_text().replace("status: closed", "status: closed\ndraft: true"))
    dirty = harness("check", "--no-targets", "--no-judges", "--since", "none", "--format",
                    "json", cwd=project)
    body = json.loads(dirty.stdout)
    assert dirty.returncode == 1 and body["exit_code"] == 1 and not body["clean"]
    (finding,) = [f for f in body["findings"] if f["case_id"] == "INC-2026-017"]
    assert (finding["rule"], finding["owner"], finding["business_owner"]) == \
        ("draft", "li.wei", "tomas.herrera")
    assert finding["path"].endswith("INC-2026-017.yaml") and finding["fix"]


def test_verify_json_says_valid_and_invalid(project, tmp_path):
    key = keys(tmp_path, project)
    assert harness("validate", "suites/refund-assistant.yaml", cwd=project).returncode == 3
    (report,) = reports(project, ".html")
    assert harness("signoff", str(report), "--reviewer", "priya.raman", "--decision",
                   "approve", "--key", str(key["priya.raman"]), cwd=project).returncode == 0
    done = harness("verify", "--since", "none", "--format", "json", cwd=project)
    body = json.loads(done.stdout)
    assert (done.returncode, body["valid"], body["problems"], len(body["reports"])) == \
        (0, True, [], 1)
    assert [(ledger["valid"], ledger["records"]) for ledger in body["ledgers"]] == [(True, 1)]
    report.write_text(report.read_text().replace("refund", "refunc", 1))
    done = harness("verify", "--since", "none", "--format", "json", cwd=project)
    body = json.loads(done.stdout)
    assert done.returncode == 1 and body["valid"] is False and body["problems"]
    assert body["exit_code"] == 1


def test_bad_input_in_json_mode_is_exit_2_with_nothing_on_stdout(project):
    done = harness("gate", "missing.jsonl", "missing.jsonl", "--format", "json", cwd=project)
    assert (done.returncode, done.stdout) == (2, "")
    assert "run record not found" in done.stderr


def _stderr_on_a_terminal(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run ``harness ARGS`` with stderr on a pseudo-terminal; its exit code and what the
    terminal showed."""
    import os
    import pty

    leader, follower = pty.openpty()
    with subprocess.Popen([sys.executable, "-m", "harness", *args], cwd=cwd,
                          stdout=subprocess.DEVNULL, stderr=follower) as child:
        os.close(follower)
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        code = child.wait(timeout=300)
    os.close(leader)
    return code, shown.decode("utf-8", "replace")


def test_validate_shows_progress_on_a_terminal_and_nothing_in_a_log(project):
    code, shown = _stderr_on_a_terminal(["validate", "suites/refund-assistant.yaml"], project)
    assert code == 3
    import re
    assert re.search(r"pre-fix: (\d+)/\1 cases, \d+ not passing", shown)
    assert re.search(r"post-fix: (\d+)/\1 cases\r", shown) and "\r\x1b[K" in shown
    logged = harness("validate", "suites/refund-assistant.yaml", "--candidate", "next-release",
                     cwd=project)
    assert "/20 cases" not in logged.stderr + logged.stdout
