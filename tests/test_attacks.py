"""The gate and the sign-off against someone with a reason to cheat, through the real command
line on the bundled example. Each test is one attack; each must end refused or blocked."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import copy_example, pin_reviewers, run_harness

SUITE = "suites/refund-assistant.yaml"
NEXT = ("--baseline", "post-fix", "--candidate", "next-release")

PATCH_THE_GATE = """\
import harness.gate as gate

def _always_restore(comparison, policy=None):
    return gate.Decision("RESTORE", ())

gate.decide = _always_restore
gate._judge_case = lambda case, policy: None
"""


harness = run_harness


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_example(tmp_path / "project")


def blocked_on_the_reintroduced_incident(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 1, done.stdout + done.stderr
    assert "decision: BLOCK" in done.stdout
    assert "BLOCK INC-2026-017: [regressed]" in done.stdout


# --- code the suite runs cannot change the decision ---------------------------------------


def test_a_python_check_that_patches_the_gate_in_memory_changes_nothing(project):
    (project / "tamper_checks.py").write_text(
        PATCH_THE_GATE + "\ndef harmless(response, case):\n    return True\n")
    (project / "cases" / "refund-assistant" / "BASE-099.yaml").write_text(
        "id: BASE-099\ninput: {customer_id: C-100, message: Where is my order A-1001?}\n"
        "expect:\n  - python: tamper_checks:harmless\n")
    blocked_on_the_reintroduced_incident(
        harness("validate", "suites/refund-assistant.yaml", *NEXT, cwd=project))


def test_a_python_target_that_patches_the_gate_in_memory_changes_nothing(project):
    (project / "tamper_target.py").write_text(
        PATCH_THE_GATE + "\nfrom harness.example.refund_assistant import respond as _respond\n\n"
        "def respond(request):\n    return _respond(request, release='next-release')\n")
    suite = project / "suites" / "refund-assistant.yaml"
    suite.write_text(suite.read_text().replace(
        "  replay:\n", "  tampered:\n    python: tamper_target:respond\n  replay:\n"))
    blocked_on_the_reintroduced_incident(
        harness("validate", "suites/refund-assistant.yaml", "--baseline", "post-fix",
                "--candidate", "tampered", cwd=project))


def test_a_library_planted_in_the_project_folder_is_never_imported(project):
    """``deepdiff.py`` or ``cryptography/`` beside the suite would be imported by the checks,
    the comparison and the signature check if the project folder came first on sys.path."""
    marker = project / "planted-library-imported"
    plant = f"from pathlib import Path\nPath({str(marker)!r}).write_text('imported')\n"
    (project / "deepdiff.py").write_text(plant + "class DeepDiff(dict):\n"
                                         "    def __init__(self, *a, **k):\n        pass\n")
    (project / "cryptography").mkdir()
    (project / "cryptography" / "__init__.py").write_text(plant)
    done = harness("validate", "suites/refund-assistant.yaml", *NEXT, cwd=project)
    blocked_on_the_reintroduced_incident(done)
    keys = project.parent / "keys"
    assert harness("keygen", str(keys / "k"), cwd=project).returncode == 0  # cryptography
    harness("verify", cwd=project)
    assert not marker.exists()


# --- the sign-off: three outcomes, the policy that travels, the ledger that cannot shrink ----


@dataclass
class Validation:
    """The bundled restoration, validated (AWAITING SIGN-OFF), with reviewers' keys."""

    project: Path
    keys: dict[str, Path]
    report: Path
    pre: Path
    post: Path

    def sign(self, reviewer: str, *args: str) -> subprocess.CompletedProcess[str]:
        return harness("signoff", str(self.report), "--reviewer", reviewer,
                       "--key", str(self.keys[reviewer]), *args, cwd=self.project)

    def approve(self, reviewer: str, *args: str) -> None:
        done = self.sign(reviewer, "--decision", "approve", *args)
        assert done.returncode == 0, done.stdout + done.stderr

    def gate(self, *args: str) -> subprocess.CompletedProcess[str]:
        return harness("gate", str(self.pre), str(self.post), *args, cwd=self.project)

    def validate(self) -> subprocess.CompletedProcess[str]:
        return self.validate_with()

    def validate_with(self, *args: str) -> subprocess.CompletedProcess[str]:
        return harness("validate", SUITE, "--baseline", str(self.pre), "--candidate",
                       str(self.post), *args, cwd=self.project)

    @property
    def ledger(self) -> Path:
        return self.report.with_name(self.report.stem + ".signoffs.jsonl")


@pytest.fixture
def validation(project: Path, tmp_path: Path) -> Validation:
    keys = pin_reviewers(tmp_path / "keys", project)
    done = harness("validate", SUITE, cwd=project)
    assert done.returncode == 3, done.stdout + done.stderr
    (report,) = (project / "reports").glob("validation-*.html")
    runs = sorted((project / "reports" / "runs").glob("*.jsonl"))
    pre = next(r for r in runs if "pre-fix" in r.name)
    post = next(r for r in runs if "post-fix" in r.name)
    return Validation(project, keys, report, pre, post)


def banner(report: Path) -> str:
    found = re.search(r'<h2 id="decision-title">([^<]*)</h2>', report.read_text())
    assert found
    return found.group(1)


def restored(validation: Validation) -> Validation:
    validation.approve("priya.raman")
    validation.approve("noor.haddad", "--comment", "no customer data in any output")
    assert validation.gate().returncode == 0
    assert banner(validation.report) == "RESTORE"
    return validation


def test_a_suite_with_a_signoff_policy_never_restores_without_the_signoffs(validation):
    assert banner(validation.report) == "AWAITING SIGN-OFF"
    for done in (validation.gate(), validation.validate()):
        assert done.returncode == 3 and "decision: AWAITING SIGN-OFF" in done.stdout
    validation.approve("priya.raman")
    assert validation.gate().returncode == 3  # the security role has not approved
    assert banner(validation.report) == "AWAITING SIGN-OFF"


def test_a_reject_turns_the_banner_and_the_gate_to_block(validation):
    restored(validation)
    done = validation.sign("noor.haddad", "--decision", "reject", "--comment", "EU data route")
    assert done.returncode == 0, done.stderr
    assert banner(validation.report) == "BLOCK"
    assert "rejected by noor.haddad (security" in validation.report.read_text()
    for done in (validation.gate(), validation.validate()):
        assert done.returncode == 1 and "[signoff_rejected] rejected by noor.haddad" in \
            done.stdout
    assert "## ⛔ BLOCK" in validation.report.with_suffix(".md").read_text()


@pytest.mark.parametrize("options", [(), ("--require-signoff",)])
def test_the_gate_without_a_suite_keeps_the_roles_the_validation_recorded(validation, options):
    validation.approve("priya.raman")
    done = validation.gate(*options)
    assert done.returncode == 3, done.stdout
    assert "no approval in role security" in done.stdout


def test_the_gate_refuses_an_edited_copy_of_the_suite(validation):
    validation.approve("priya.raman")
    suite = validation.project / SUITE
    edited = suite.with_name("lenient.yaml")
    edited.write_text(suite.read_text().replace("      data_exposure: [security]\n", ""))
    for done in (validation.gate("--suite", str(edited)),
                 harness("verify", "--suite", str(edited), cwd=validation.project)):
        assert done.returncode == 2, done.stdout
        digests = re.findall(r"[0-9a-f]{64}", done.stderr)
        assert len(set(digests)) == 2 and "Traceback" not in done.stderr
    assert harness("verify", "--suite", SUITE, cwd=validation.project).returncode == 0


def test_a_row_added_by_hand_to_the_signoff_section_is_found(validation):
    validation.approve("priya.raman")
    html = validation.report.read_text()
    row = ("<tr><td><code>noor.haddad</code></td><td>Noor</td><td>security</td><td>approved</td>"
           '<td><span class="d-approve">approve</span></td><td>2026-12-07T10:00:00Z</td>'
           '<td><span class="verified">verified</span></td></tr>\n')
    validation.report.write_text(html.replace("</tbody>", row + "</tbody>", 1))
    done = harness("verify", str(validation.report), cwd=validation.project)
    assert done.returncode == 1 and "the sign-off section differs" in done.stdout
    assert validation.gate().returncode == 1


def test_a_banner_turned_green_by_hand_is_found(validation):
    validation.approve("priya.raman")
    html = validation.report.read_text()
    html = html.replace('<div class="banner-head await">', '<div class="banner-head restore">')
    validation.report.write_text(html.replace(">AWAITING SIGN-OFF</h2>", ">RESTORE</h2>"))
    done = harness("verify", cwd=validation.project)
    assert done.returncode == 1 and "the decision banner differs" in done.stdout
    assert validation.gate().returncode == 1


def test_deleting_a_reject_from_the_ledger_is_refused(validation):
    restored(validation)
    assert validation.sign("noor.haddad", "--decision", "reject").returncode == 0
    lines = validation.ledger.read_text().splitlines(keepends=True)
    validation.ledger.write_text("".join(lines[:-1]))
    for done in (validation.gate(), validation.gate("--require-signoff"), validation.validate(),
                 harness("verify", cwd=validation.project)):
        assert done.returncode == 1, done.stdout
        assert "pins 3 sign-off(s) but the ledger has 2: the ledger was truncated" in done.stdout
    refused = validation.sign("priya.raman", "--decision", "approve")
    assert refused.returncode == 2 and "the ledger was truncated" in refused.stderr


def test_deleting_the_reject_and_editing_the_pinned_head_is_refused(validation):
    restored(validation)
    lines = validation.ledger.read_text().splitlines(keepends=True)
    head = json.loads(lines[-1])
    assert validation.sign("noor.haddad", "--decision", "reject").returncode == 0
    validation.ledger.write_text("".join(lines))
    html = validation.report.read_text()
    html = re.sub(r'content="3:[0-9a-f]{64}"', f'content="2:{head["hash"]}"', html)
    validation.report.write_text(html)
    for done in (validation.gate(), validation.validate(),
                 harness("verify", cwd=validation.project)):
        assert done.returncode == 1, done.stdout


def test_a_fix_author_cannot_approve(validation):
    done = validation.sign("li.wei", "--decision", "approve")
    assert done.returncode == 2 and "li.wei authored the fix of INC-2026-017" in done.stderr
    assert not validation.ledger.exists()


@pytest.mark.parametrize("meaning", [(), ("--meaning", "risk_accepted", "--comment", "ship it")])
def test_approving_a_blocked_validation_is_refused(project, tmp_path, meaning):
    keys = pin_reviewers(tmp_path / "keys", project)
    assert harness("validate", SUITE, *NEXT, cwd=project).returncode == 1
    (report,) = (project / "reports").glob("validation-*.html")
    done = harness("signoff", str(report), "--reviewer", "priya.raman", "--decision", "approve",
                   "--key", str(keys["priya.raman"]), *meaning, cwd=project)
    assert done.returncode == 2, done.stdout
    assert "the gate blocks on INC-2026-017 (regressed" in done.stderr
    assert banner(report) == "BLOCK"


def test_the_manifest_of_another_validation_is_refused(validation):
    restored(validation)
    other = validation.project / "other.jsonl"
    assert harness("run", SUITE, "-t", "post-fix", "--out", "other.jsonl",
                   cwd=validation.project).returncode == 0
    done = harness("gate", str(validation.pre), str(other), "--manifest",
                   str(validation.report.with_suffix(".json")), cwd=validation.project)
    assert done.returncode == 2, done.stdout
    assert "validated another candidate run" in done.stderr


def test_an_approval_replayed_onto_another_candidate_counts_for_nothing(validation):
    restored(validation)
    again = harness("run", SUITE, "-t", "post-fix", cwd=validation.project)
    assert again.returncode == 0
    other = max((validation.project / "reports" / "runs").glob("*post-fix*.jsonl"),
                key=lambda p: p.stat().st_mtime)
    assert harness("validate", SUITE, "--baseline", str(validation.pre), "--candidate",
                   str(other), cwd=validation.project).returncode == 3
    (report,) = [r for r in (validation.project / "reports").glob("validation-*.html")
                 if r != validation.report]
    replayed = report.with_name(report.stem + ".signoffs.jsonl")
    replayed.write_bytes(validation.ledger.read_bytes())
    gate = harness("gate", str(validation.pre), str(other), cwd=validation.project)
    assert gate.returncode == 3, gate.stdout  # the approvals are bound to the other report
    assert banner(report) == "AWAITING SIGN-OFF"


# --- the ledger against its git history ----------------------------------------------------


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", "-c", "user.name=Test", "-c", "user.email=test@example.com",
                           "-c", "commit.gpgsign=false", *args], cwd=cwd, text=True,
                          capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def commit_all(project: Path, message: str) -> str:
    git("add", "-A", cwd=project)
    git("commit", "-q", "-m", message, cwd=project)
    return git("rev-parse", "HEAD", cwd=project)


@pytest.fixture
def tracked(validation: Validation) -> Validation:
    """The validation in a git repository whose main branch holds reports and ledgers."""
    git("init", "-q", "-b", "main", cwd=validation.project)
    commit_all(validation.project, "validated")
    return validation


def test_a_consistent_rollback_of_a_committed_reject_is_caught_by_the_ledger_history(tracked):
    """Delete the reject and put back the report as it was before it: every digest and pin
    agrees, so only the history git kept can tell."""
    restored(tracked)
    before = {path: path.read_bytes() for path in (tracked.report, tracked.ledger)}
    assert tracked.sign("noor.haddad", "--decision", "reject").returncode == 0
    commit_all(tracked.project, "security rejects")
    for path, data in before.items():
        path.write_bytes(data)
    weak = harness("verify", "--since", "none", cwd=tracked.project)
    assert weak.returncode == 0 and "ledger history not checked (--since none)" in weak.stdout
    for done in (harness("verify", cwd=tracked.project), tracked.gate(), tracked.validate()):
        assert done.returncode == 1, done.stdout + done.stderr
        assert "does not extend the ledger as it was at" in done.stdout
    commit_all(tracked.project, "roll the reject back")  # committing it does not help: the
    branch = harness("verify", "--since", "HEAD~1", cwd=tracked.project)  # reviewed base holds it
    assert branch.returncode == 1 and "records were removed or edited" in branch.stdout


def test_a_deleted_ledger_file_is_caught_by_the_ledger_history(tracked):
    restored(tracked)
    commit_all(tracked.project, "approved")
    tracked.ledger.unlink()
    done = harness("verify", cwd=tracked.project)
    assert done.returncode == 1 and "existed at" in done.stdout and "is gone" in done.stdout
    assert tracked.gate().returncode == 1


def test_without_a_revision_to_check_against_the_gate_fails_closed(validation):
    git("init", "-q", "-b", "main", cwd=validation.project)  # no commit yet
    for done in (validation.gate(), harness("verify", cwd=validation.project)):
        assert done.returncode == 2, done.stdout + done.stderr
        assert "has no commits" in done.stderr and "--since REF" in done.stderr
    assert validation.gate("--since", "none").returncode == 3
    assert validation.gate("--since", "no-such-ref").returncode == 2


def test_a_shallow_clone_without_the_merge_base_fails_closed(tracked, tmp_path):
    origin = tracked.project
    git("checkout", "-q", "-b", "feature", cwd=origin)
    (origin / "feature.txt").write_text("a change under review\n")
    commit_all(origin, "feature")
    git("checkout", "-q", "main", cwd=origin)
    (origin / "main.txt").write_text("main moved on\n")
    commit_all(origin, "main moves")
    clone = tmp_path / "clone"
    git("clone", "-q", "--depth", "1", "--no-single-branch", "--branch", "feature",
        f"file://{origin}", str(clone), cwd=tmp_path)
    done = harness("verify", cwd=clone)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "no merge base of HEAD and origin/" in done.stderr


def test_branches_that_sign_different_reports_merge_without_conflict(tracked):
    project = tracked.project
    assert harness("run", SUITE, "-t", "post-fix", cwd=project).returncode == 0
    other = max((project / "reports" / "runs").glob("*post-fix*.jsonl"),
                key=lambda p: p.stat().st_mtime)
    assert harness("validate", SUITE, "--baseline", str(tracked.pre), "--candidate",
                   str(other), cwd=project).returncode == 3
    commit_all(project, "second validation")
    (second,) = [r for r in (project / "reports").glob("validation-*.html")
                 if r != tracked.report]
    git("checkout", "-q", "-b", "first", cwd=project)
    tracked.approve("priya.raman")
    commit_all(project, "sign the first report")
    git("checkout", "-q", "main", cwd=project)
    done = harness("signoff", str(second), "--reviewer", "priya.raman", "--decision",
                   "approve", "--key", str(tracked.keys["priya.raman"]), cwd=project)
    assert done.returncode == 0, done.stderr
    commit_all(project, "sign the second report")
    git("merge", "-q", "--no-edit", "first", cwd=project)  # no conflict
    verified = harness("verify", cwd=project)
    assert verified.returncode == 0, verified.stdout
    assert "valid: 2 report(s), 2 ledger(s) checked" in verified.stdout


def test_a_revoked_key_cannot_add_a_backdated_signoff(tracked):
    """Priya's key is stolen and revoked; the thief appends an approval dated before the
    revocation. Its claimed time is the thief's word; the history git kept is not."""
    import base64
    import datetime as dt
    import time

    from harness.signoff.keys import fingerprint, load_private_key
    from harness.signoff.ledger import record_hash, signed_payload

    tracked.approve("noor.haddad", "--comment", "no customer data")
    commit_all(tracked.project, "security approves")
    time.sleep(1.1)
    revoked = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    reviewers = tracked.project / "reviewers.yaml"
    text = reviewers.read_text()
    key_line = re.search(r'  - id: priya\.raman\n.*?    key: ("[^"]+")\n', text, re.S)
    assert key_line
    reviewers.write_text(text.replace(
        f"    key: {key_line.group(1)}\n",
        f"    keys:\n      - key: {key_line.group(1)}\n        revoked: {revoked}\n", 1))
    commit_all(tracked.project, "revoke priya's stolen key")
    time.sleep(1.1)
    (first,) = [json.loads(line) for line in tracked.ledger.read_text().splitlines()]
    forged = {**first, "seq": 2, "reviewer": "priya.raman", "name": "Priya.Raman",
              "role": "workflow_owner", "comment": "", "prev_hash": first["hash"]}
    stolen = load_private_key(tracked.keys["priya.raman"])
    forged["key_fingerprint"] = fingerprint(stolen.public_key())
    forged.pop("signature"), forged.pop("hash")
    forged["signature"] = base64.b64encode(stolen.sign(signed_payload(forged))).decode()
    forged["hash"] = record_hash(forged)
    with tracked.ledger.open("a") as ledger:
        ledger.write(json.dumps(forged) + "\n")
    done = tracked.gate()
    assert done.returncode == 1, done.stdout
    assert "revoked" in done.stdout and "not in the ledger's accepted history" in done.stdout


# --- an incident case can only get stricter silently ----------------------------------------


INC_017 = "cases/refund-assistant/INC-2026-017.yaml"
INC_014 = "cases/refund-assistant/INC-2026-014.yaml"


@pytest.fixture
def stored_baseline(project: Path) -> Path:
    """The last accepted release's run, stored before the change under review."""
    done = harness("run", SUITE, "-t", "post-fix", "--out", "accepted.jsonl", cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    return project / "accepted.jsonl"


def edit(project: Path, name: str, old: str, new: str) -> None:
    path = project / name
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def replace_checks_of_017(project: Path) -> None:
    path = project / INC_017
    head, _, _ = path.read_text().partition("expect:\n")
    path.write_text(head + "expect:\n  - length: {max: 100000}\ntags: [refunds]\n")


def settle_017(project: Path) -> None:
    edit(project, INC_017, "tags: [refunds", "trials: 3\nmin_pass_rate: 0.3\ntags: [refunds")
    edit(project, SUITE, "gate:\n", "gate:\n  settle_trials: 3\n")


WEAKENINGS = {
    "min_pass_rate 0": (
        lambda project: edit(project, INC_017, "tags: [refunds",
                             "min_pass_rate: 0\ntags: [refunds"),
        ["min_pass_rate lowered from 1 to 0"]),
    "checks replaced by a length check": (
        replace_checks_of_017, ["check approval_required (line 73) was removed",
                                "check tool_order (line 79) was removed"]),
    "trials 3, min_pass_rate 0.3, settle_trials 3": (
        settle_017, ["min_pass_rate lowered from 1 to 0.3", "settle_trials gained (now 3)"]),
}


@pytest.mark.parametrize("weakening", list(WEAKENINGS))
def test_an_incident_case_weakened_in_the_change_that_reintroduces_it_blocks(
        project, stored_baseline, weakening):
    weaken, expected = WEAKENINGS[weakening]
    weaken(project)
    done = harness("validate", SUITE, "--baseline", str(stored_baseline), "--candidate",
                   "next-release", cwd=project)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "BLOCK INC-2026-017: [weakened] weakened:" in done.stdout
    for words in expected:
        assert words in done.stdout


def test_checks_added_to_an_incident_case_are_a_note(project, stored_baseline):
    edit(project, INC_014, "  - cites: refund-policy-2026\n",
         "  - cites: refund-policy-2026\n  - length: {max: 2000}\n")
    done = harness("validate", SUITE, "--baseline", str(stored_baseline), "--candidate",
                   "post-fix", cwd=project)
    assert done.returncode == 3, done.stdout + done.stderr  # the tests pass; sign-off awaited
    assert "note  INC-2026-014: [strengthened] check length was added" in done.stdout


def test_a_weakened_case_restores_only_with_its_risk_accepted_by_name(project, stored_baseline,
                                                                       tmp_path):
    keys = pin_reviewers(tmp_path / "keys", project)
    edit(project, INC_014, "      threshold: 85\n", "      threshold: 99\n")
    done = harness("validate", SUITE, "--baseline", str(stored_baseline), "--candidate",
                   "post-fix", cwd=project)
    assert done.returncode == 1, done.stdout
    assert "[weakened] weakened: the parameters of not_similar (line " in done.stdout
    (report,) = (project / "reports").glob("validation-*.html")

    def sign(reviewer: str, *args: str) -> subprocess.CompletedProcess[str]:
        return harness("signoff", str(report), "--reviewer", reviewer, "--decision", "approve",
                       "--key", str(keys[reviewer]), *args, cwd=project)

    plain = sign("priya.raman")
    assert plain.returncode == 2 and "name the cases accepted (--case)" in plain.stderr
    wrong = sign("priya.raman", "--meaning", "risk_accepted", "--comment", "ok", "--case",
                 "INC-2026-017")
    assert wrong.returncode == 2 and "INC-2026-017: no reason of the gate" in wrong.stderr
    for reviewer in ("priya.raman", "noor.haddad"):
        done = sign(reviewer, "--meaning", "risk_accepted", "--case", "INC-2026-014",
                    "--comment", "the threshold was raised to stop false alarms on a quote")
        assert done.returncode == 0, done.stderr
    assert banner(report) == "RESTORE"
    (pre, post) = (stored_baseline, max((project / "reports" / "runs").glob("*post-fix*"),
                                        key=lambda p: p.stat().st_mtime))
    gate = harness("gate", str(pre), str(post), cwd=project)
    assert gate.returncode == 0, gate.stdout
    assert "risk accepted by priya.raman, noor.haddad" in gate.stdout


# --- incidents do not disappear -------------------------------------------------------------


@pytest.fixture
def registry(project: Path) -> Path:
    """The bundled registry committed on main: what was accepted before the change."""
    git("init", "-q", "-b", "main", cwd=project)
    commit_all(project, "the accepted registry")
    return project


def test_an_incident_case_deleted_in_the_change_that_reintroduces_it_fails_check(registry):
    (registry / INC_017).unlink()
    fresh = harness("validate", SUITE, *NEXT, "--since", "none", cwd=registry)
    assert fresh.returncode == 3, fresh.stdout  # both runs fresh: the gate cannot see it
    done = harness("check", "--no-targets", cwd=registry)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{INC_017}: an incident case file at" in done.stdout
    assert "is gone: a deleted regression case is a silent reintroduction [incident_gone]" in \
        done.stdout
    weak = harness("check", "--no-targets", "--since", "none", cwd=registry)
    assert weak.returncode == 0 and "incident history not checked (--since none)" in weak.stdout


def test_an_incident_case_dropped_from_every_suite_fails_check(registry):
    edit(registry, SUITE, "  - cases/refund-assistant/*.yaml\n",
         "  - cases/refund-assistant/BASE-*.yaml\n  - cases/refund-assistant/INC-2026-00*.yaml\n"
         "  - cases/refund-assistant/INC-2026-01[0-6].yaml\n")
    done = harness("check", "--no-targets", cwd=registry)
    assert done.returncode == 1, done.stdout
    assert "INC-2026-017: was in the registry at" in done.stdout and "[incident_dropped]" in \
        done.stdout


def test_a_retired_incident_case_needs_its_retirement_signed_off(registry, tmp_path):
    baseline = harness("run", SUITE, "-t", "post-fix", "--out", "accepted.jsonl", cwd=registry)
    assert baseline.returncode == 0
    keys = pin_reviewers(tmp_path / "keys", registry)
    edit(registry, INC_017, "tags: [refunds",
         "retired: {reason: the refund flow moved to the payments team's agent}\n"
         "tags: [refunds")
    unsigned = harness("check", "--no-targets", cwd=registry)
    assert unsigned.returncode == 1 and "[retired_unsigned]" in unsigned.stdout
    done = harness("validate", SUITE, "--baseline", "accepted.jsonl", "--candidate", "post-fix",
                   cwd=registry)
    assert done.returncode == 1, done.stdout
    assert "BLOCK INC-2026-017: [retired] incident case retired from the suite (the refund " \
           "flow moved" in done.stdout
    (report,) = (registry / "reports").glob("validation-*.html")
    for reviewer in ("priya.raman", "noor.haddad"):
        signed = harness("signoff", str(report), "--reviewer", reviewer, "--decision",
                         "approve", "--meaning", "risk_accepted", "--case", "INC-2026-017",
                         "--comment", "retired with the refund flow", "--key",
                         str(keys[reviewer]), cwd=registry)
        assert signed.returncode == 0, signed.stderr
    assert banner(report) == "RESTORE"
    done = harness("check", "--no-targets", cwd=registry)
    assert done.returncode == 0, done.stdout


# --- every way to tamper with a signed validation leaves gate, validate and verify refusing --


def _records(validation: Validation) -> list[dict]:
    return [json.loads(line) for line in validation.ledger.read_text().splitlines()]


def _write(validation: Validation, records: list[dict]) -> None:
    validation.ledger.write_text("".join(json.dumps(r) + "\n" for r in records))


def _edit_record(v: Validation) -> None:
    records = _records(v)
    records[0]["comment"] = "approved without reading"
    _write(v, records)


def _delete_record(v: Validation) -> None:
    _write(v, _records(v)[1:])


def _reorder(v: Validation) -> None:
    _write(v, list(reversed(_records(v))))


def _truncate(v: Validation) -> None:
    _write(v, _records(v)[:1])


def _foreign_key(v: Validation) -> None:
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from harness.signoff.ledger import record_hash, signed_payload

    records = _records(v)
    records[1].update(comment="signed by someone else")
    unsigned = {k: val for k, val in records[1].items() if k not in ("signature", "hash")}
    forged = Ed25519PrivateKey.generate().sign(signed_payload(unsigned))
    records[1]["signature"] = base64.b64encode(forged).decode()
    records[1]["hash"] = record_hash(records[1])
    _write(v, records)


def _unsigned(v: Validation) -> None:
    records = _records(v)
    records[1]["signature"] = ""
    _write(v, records)


def _report_edited(v: Validation) -> None:
    v.report.write_text(v.report.read_text().replace("7 fixed", "8 fixed"))


def _run_edited(v: Validation) -> None:
    v.post.write_text(v.post.read_text().replace('"duration_s": ', '"duration_s":  ', 1))


def _manifest_edited(v: Validation) -> None:
    manifest = v.report.with_suffix(".json")
    data = json.loads(manifest.read_text())
    data["signoff_policy"]["required_roles"].pop("data_exposure")
    manifest.write_text(json.dumps(data, indent=2) + "\n")


TAMPERING = {"edit a record": _edit_record, "delete a record": _delete_record,
             "reorder records": _reorder, "truncate the ledger": _truncate,
             "re-sign with a foreign key": _foreign_key, "unsigned downgrade": _unsigned,
             "report edited after signing": _report_edited,
             "candidate run edited after signing": _run_edited,
             "manifest edited after signing": _manifest_edited}


@pytest.fixture(scope="module")
def signed_template(tmp_path_factory: pytest.TempPathFactory) -> Validation:
    """One restored validation (validated, both roles approved), copied by each test that
    tampers with it: building it takes a few seconds."""
    root = tmp_path_factory.mktemp("signed")
    project = copy_example(root / "project")
    keys = pin_reviewers(root / "keys", project)
    assert harness("validate", SUITE, cwd=project).returncode == 3
    (report,) = (project / "reports").glob("validation-*.html")
    runs = sorted((project / "reports" / "runs").glob("*.jsonl"))
    template = Validation(project, keys, report, next(r for r in runs if "pre-fix" in r.name),
                          next(r for r in runs if "post-fix" in r.name))
    return restored(template)


@pytest.fixture
def signed(signed_template: Validation, tmp_path: Path) -> Validation:
    import shutil

    old = signed_template.project.parent
    shutil.copytree(old, tmp_path / "copy")
    moved = {name: (tmp_path / "copy" / Path(getattr(signed_template, name)).relative_to(old))
             for name in ("project", "report", "pre", "post")}
    keys = {who: tmp_path / "copy" / path.relative_to(old)
            for who, path in signed_template.keys.items()}
    return Validation(moved["project"], keys, moved["report"], moved["pre"], moved["post"])


@pytest.mark.parametrize("tamper", list(TAMPERING))
def test_tampering_with_a_signed_validation_is_refused_everywhere(signed, tamper):
    validation = signed
    assert validation.gate().returncode == 0  # the copy is valid before the tampering
    TAMPERING[tamper](validation)
    for name, done in (("gate", validation.gate()), ("validate", validation.validate()),
                       ("verify", harness("verify", cwd=validation.project))):
        assert done.returncode != 0, f"{name} allowed after: {tamper}\n{done.stdout}"
        assert "decision: RESTORE" not in done.stdout, name
        assert "Traceback" not in done.stderr, done.stderr


def test_a_shortened_copy_of_the_ledger_cannot_stand_in_for_it(validation):
    restored(validation)
    before = validation.report.read_bytes()
    accepted = validation.ledger.read_bytes()
    assert validation.sign("noor.haddad", "--decision", "reject").returncode == 0
    copy = validation.project / "ledger-copy.jsonl"
    copy.write_bytes(accepted)
    validation.report.write_bytes(before)  # the report as it was before the reject
    for done in (validation.gate("--ledger", str(copy)), validation.validate_with(
            "--ledger", str(copy))):
        assert done.returncode == 2, done.stdout + done.stderr
        assert "the validation's own ledger is" in done.stderr
    assert validation.gate().returncode == 1


def test_a_key_or_role_added_by_the_change_under_review_signs_nothing_for_it(tracked):
    """An insider pins their own key as the security reviewer, or gives themselves the role,
    in the change under review, and signs. Keys and roles count once the change that adds
    them is accepted."""
    project = tracked.project
    tracked.approve("priya.raman")
    impostor = project.parent / "keys" / "impostor"
    made = harness("keygen", str(impostor), "--comment", "noor.haddad", cwd=project.parent)
    public = made.stdout.strip().splitlines()[-1]
    reviewers = project / "reviewers.yaml"
    text = reviewers.read_text()
    noor = re.search(r'(  - id: noor\.haddad\n.*?    key: )"[^"]+"', text, re.S)
    assert noor
    reviewers.write_text(text.replace(noor.group(0), noor.group(1) + f'"{public}"'))
    tracked.keys["noor.haddad"] = impostor
    tracked.approve("noor.haddad")  # the working tree's reviewers file accepts the key...
    done = tracked.gate()
    assert done.returncode == 1, done.stdout  # ...the accepted history does not
    assert "which the reviewers file of the accepted history did not pin for noor.haddad" in \
        done.stdout
    assert tracked.gate("--since", "none").returncode == 0  # the weaker check is fooled


def test_a_role_given_by_the_change_under_review_signs_nothing_for_it(tracked):
    reviewers = tracked.project / "reviewers.yaml"
    text = reviewers.read_text()
    reviewers.write_text(text.replace("    roles: [workflow_owner]\n",
                                      "    roles: [workflow_owner, security]\n", 1))
    tracked.approve("priya.raman", "--role", "workflow_owner")
    tracked.approve("priya.raman", "--role", "security")
    done = tracked.gate()
    assert done.returncode == 1, done.stdout
    assert "priya.raman did not hold role 'security' in the reviewers file of the accepted " \
           "history" in done.stdout
