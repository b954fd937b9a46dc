"""Reviewer sign-off: keys, the reviewers file, manifests, signing rules, and every attack on
the ledger that verify must catch. Keys are generated at run time in a temporary folder."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import importlib.util
import json
import multiprocessing
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from harness.digest import canonical_json, sha256_text
from harness.errors import InputError
from harness.gate import with_signoffs
from harness.report.body import (
    SIGNOFF_BEGIN,
    SIGNOFF_END,
    ZERO_HASH,
    chain_head_meta,
    read_chain_head,
    report_body_sha256,
)
from harness.report.manifest import load_manifest
from harness.signoff import keys, ledger
from harness.signoff.keys import keygen, load_private_key, load_reviewers
from harness.signoff.ledger import record_hash, sign, signed_payload, verify
from harness.signoff.policy import SignoffPolicy, signoffs

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
HAS_BCRYPT = importlib.util.find_spec("bcrypt") is not None
GIT = shutil.which("git")
SSH_KEYGEN = shutil.which("ssh-keygen")
POLICY = SignoffPolicy.from_gate(
    {"signoff": {"required_roles": {"data_exposure": ["security", "workflow_owner"]}}})


# --- building a validation to sign ----------------------------------------------------------


def report_html(inside: str = "", *, body: str = "<h1>RESTORE</h1><p>6 fixed</p>") -> str:
    """A validation report whose sign-off section holds ``inside``."""
    return (f"<!doctype html><html><body><main>{body}</main>\n<section id=\"signoff\">"
            f"{SIGNOFF_BEGIN}{inside}{SIGNOFF_END}</section></body></html>\n")


def public_line(key: Ed25519PrivateKey, comment: str = "") -> str:
    line = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).decode()
    return f"{line} {comment}".strip()


@dataclass
class World:
    """A signed-off validation in a temporary folder: keys, reviewers, runs, report, manifest."""

    root: Path
    keys: Path
    reviewers_path: Path
    reports: Path

    @property
    def reviewers(self) -> dict[str, keys.Reviewer]:
        return load_reviewers(self.reviewers_path)

    @property
    def ledger(self) -> Path:
        return self.reports / "signoffs.jsonl"

    @property
    def manifest(self) -> Path:
        return self.reports / "validation-demo-r2.json"

    @property
    def report(self) -> Path:
        return self.reports / "validation-demo-r2.html"

    @property
    def candidate(self) -> Path:
        return self.reports / "runs" / "validation-demo-r2-candidate.jsonl"

    def key(self, reviewer_id: str) -> Ed25519PrivateKey:
        return load_private_key(self.keys / reviewer_id)

    def sign(self, reviewer_id: str, *, key: str | None = None, role: str = "workflow_owner",
             decision: str = "approve", meaning: str = "approved", comment: str = "",
             reviewers: dict[str, keys.Reviewer] | None = None,
             manifest: Path | None = None, cases: tuple[str, ...] = (),
             now: dt.datetime = NOW) -> dict[str, Any]:
        reviewers = reviewers or self.reviewers
        return sign(manifest_path=manifest or self.manifest, reviewer=reviewers[reviewer_id],
                    private_key=self.key(key or reviewer_id), role=role, decision=decision,
                    meaning=meaning, comment=comment, ledger_path=self.ledger, policy=POLICY,
                    reviewers=reviewers, cases=cases, now=now)

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.ledger.read_text("utf-8").splitlines()]

    def write_records(self, records: list[dict[str, Any]]) -> None:
        self.ledger.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n"
                                       for r in records), "utf-8")

    def verify(self, **options: Any) -> ledger.Verification:
        return verify(self.ledger, self.reviewers, **options)


PEOPLE = {
    "dana": ("Dana Okafor", ["workflow_owner"]),
    "sam": ("Sam Reyes", ["security", "workflow_owner"]),
    "lee": ("Lee Park", ["workflow_owner"]),
    "mallory": ("Mallory Quinn", ["workflow_owner"]),
}
REVIEWERS = ("dana", "sam", "lee")
"""Who the reviewers file pins; mallory has a key but is not pinned."""


def write_reviewers(path: Path, lines: dict[str, str],
                    roles: dict[str, list[str]] | None = None) -> Path:
    roles = roles or {}
    entries = [
        f"  - id: {rid}\n    name: {PEOPLE[rid][0]}\n"
        f"    roles: [{', '.join(roles.get(rid, PEOPLE[rid][1]))}]\n    key: \"{line}\"\n"
        for rid, line in lines.items()
    ]
    path.write_text("reviewers:\n" + "".join(entries), "utf-8")
    return path


def write_validation(reports: Path, *, decision: str = "RESTORE", rule: str = "still_failing",
                     category: str = "data_exposure", name: str = "validation-demo-r2",
                     candidate_text: str = '{"type": "header", "run_id": "r2"}\n') -> Path:
    """Runs, a report and the manifest that binds them, under ``reports``."""
    runs = reports / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    baseline = runs / f"{name}-baseline.jsonl"
    candidate = runs / f"{name}-candidate.jsonl"
    baseline.write_text('{"type": "header", "run_id": "r1"}\n', "utf-8")
    candidate.write_text(candidate_text, "utf-8")
    html = report_html(body=f"<h1>{decision}</h1>")
    (reports / f"{name}.html").write_text(html, "utf-8")

    def run(path: Path, run_id: str, target: str) -> dict[str, str]:
        return {"path": f"runs/{path.name}", "sha256": sha256_text(path.read_bytes()),
                "run_id": run_id, "target": target}

    manifest = {
        "version": 1, "suite": "demo", "suite_path": "suites/demo.yaml",
        "suite_digest": "a" * 64,
        "baseline_run": run(baseline, "r1", "pre-fix"),
        "candidate_run": run(candidate, "r2", "post-fix"),
        "decision": decision,
        "reasons": [] if decision == "RESTORE" else [
            {"rule": rule, "case_id": "INC-1", "message": "still fails" if rule ==
             "still_failing" else "weakened: lost check not_contains", "owner": "dana"}],
        "incidents": [{"id": "INC-1", "category": category, "severity": "sev2",
                       "owner": "dana", "fix_authors": ["lee"]}],
        "report": f"{name}.html",
        "report_body_sha256": report_body_sha256(html),
        "generated_at": "2026-03-10T11:00:00Z",
    }
    path = reports / f"{name}.json"
    path.write_text(json.dumps(manifest, indent=2), "utf-8")
    return path


@pytest.fixture
def world(tmp_path: Path) -> World:
    keys = tmp_path / "keys"
    lines = {rid: keygen(keys / rid, comment=f"{rid}@laptop") for rid in REVIEWERS}
    keygen(keys / "mallory", comment="mallory@elsewhere")
    reviewers_path = write_reviewers(tmp_path / "reviewers.yaml", lines)
    reports = tmp_path / "reports"
    write_validation(reports)
    return World(root=tmp_path, keys=keys, reviewers_path=reviewers_path, reports=reports)


def approvals(records: Any, manifest: Any, policy: SignoffPolicy) -> tuple[str, list[str]]:
    """The decision the sign-offs give on a validation whose runs passed, and why not RESTORE."""
    decision = with_signoffs(
        dataclasses.replace(manifest.tests, outcome="RESTORE", reasons=()),
        signoffs(records, manifest, policy))
    return decision.outcome, [reason.message for reason in decision.blocking]


def problems_of(world: World, **options: Any) -> list[str]:
    result = world.verify(**options)
    assert result.valid is (not result.problems)
    return list(result.problems)


# --- the report's body and chain head -------------------------------------------------------


def test_report_body_digest_drops_only_the_signoff_content():
    html = report_html("<table>no sign-offs</table>")
    expected = hashlib.sha256(report_html().encode()).hexdigest()
    assert report_body_sha256(html) == expected
    assert report_body_sha256(report_html("<p>dana approved</p>" + chain_head_meta(1, "f" * 64))
                              ) == expected
    assert report_body_sha256(report_html(body="<h1>BLOCK</h1>")) != expected


@pytest.mark.parametrize(("html", "message"), [
    ("<html>no markers</html>", "found 0 and 0"),
    (f"<html>{SIGNOFF_BEGIN} only the start</html>", "found 1 and 0"),
    (f"<html>{SIGNOFF_END} x {SIGNOFF_BEGIN}</html>", "comes before"),
    (f"{SIGNOFF_BEGIN}{SIGNOFF_END}{SIGNOFF_BEGIN}{SIGNOFF_END}", "found 2 and 2"),
])
def test_report_body_digest_needs_one_pair_of_markers_in_order(html, message):
    with pytest.raises(ValueError, match=message):
        report_body_sha256(html)


def test_chain_head_is_read_from_inside_the_signoff_section_only():
    meta = chain_head_meta(3, "b" * 64)
    assert meta == f'<meta name="harness-chain-head" content="3:{"b" * 64}">'
    assert read_chain_head(report_html("<p>x</p>" + meta)) == (3, "b" * 64)
    with pytest.raises(ValueError, match="found 0"):
        read_chain_head(report_html(body=meta))
    with pytest.raises(ValueError, match="found 2"):
        read_chain_head(report_html(meta + chain_head_meta(1, "c" * 64)))
    with pytest.raises(ValueError, match="malformed chain head"):
        read_chain_head(report_html('<meta name="harness-chain-head" content="3:short">'))


# --- keys -----------------------------------------------------------------------------------


def test_keygen_writes_an_owner_only_openssh_key_and_returns_its_public_line(tmp_path):
    path = tmp_path / "new" / "folder" / "dana"
    line = keygen(path, comment="dana@laptop")
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    key = load_private_key(path)
    assert line == public_line(key, "dana@laptop")
    assert line.startswith("ssh-ed25519 AAAA") and line.endswith(" dana@laptop")


def test_keygen_refuses_to_overwrite(tmp_path):
    path = tmp_path / "dana"
    path.write_text("keep me")
    with pytest.raises(InputError, match="already exists; refusing to overwrite") as info:
        keygen(path, comment="dana")
    assert info.value.path == str(path)
    assert path.read_text() == "keep me"


@pytest.mark.skipif(GIT is None, reason="needs git")
def test_keygen_refuses_inside_a_git_work_tree(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    for path in (repo / "dana", repo / "not" / "yet" / "there" / "dana"):
        with pytest.raises(InputError, match="inside a git work tree") as info:
            keygen(path, comment="dana")
        assert info.value.path == str(path)
        assert not path.exists()
    assert not (repo / "not").exists()


def test_keygen_works_without_git(tmp_path, monkeypatch):
    empty = tmp_path / "no-programs"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    line = keygen(tmp_path / "dana", comment="dana")
    assert line == public_line(load_private_key(tmp_path / "dana"), "dana")


def test_load_private_key_refuses_what_is_not_an_owner_only_ed25519_key(tmp_path):
    with pytest.raises(InputError, match="private key file not found"):
        load_private_key(tmp_path / "absent")
    keygen(tmp_path / "open", comment="x")
    (tmp_path / "open").chmod(0o644)
    with pytest.raises(InputError, match=r"permissions 0644 are too open.*chmod 600"):
        load_private_key(tmp_path / "open")
    garbage = tmp_path / "garbage"
    garbage.write_text("not a key")
    garbage.chmod(0o600)
    with pytest.raises(InputError, match="not a readable OpenSSH private key"):
        load_private_key(garbage)
    rsa_key = tmp_path / "rsa"
    rsa_key.write_bytes(rsa.generate_private_key(public_exponent=65537, key_size=2048)
                        .private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.OpenSSH,
                                       serialization.NoEncryption()))
    rsa_key.chmod(0o600)
    with pytest.raises(InputError, match="expected an Ed25519 key, found RSAPrivateKey"):
        load_private_key(rsa_key)


def encrypted_key(tmp_path: Path, passphrase: str) -> Path:
    """A key generated without passphrase, then encrypted by ssh-keygen."""
    path = tmp_path / "encrypted"
    keygen(path, comment="x")
    subprocess.run([str(SSH_KEYGEN), "-q", "-p", "-P", "", "-N", passphrase, "-f", str(path)],
                   check=True, capture_output=True)
    return path


@pytest.mark.skipif(SSH_KEYGEN is None, reason="needs ssh-keygen")
def test_an_encrypted_key_needs_the_passphrase_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("HARNESS_KEY_PASSPHRASE", raising=False)
    path = encrypted_key(tmp_path, "correct horse")
    with pytest.raises(InputError, match="the key is encrypted: set HARNESS_KEY_PASSPHRASE"):
        load_private_key(path)


@pytest.mark.skipif(SSH_KEYGEN is None or not HAS_BCRYPT, reason="needs ssh-keygen and bcrypt")
def test_an_encrypted_key_loads_with_its_passphrase(tmp_path, monkeypatch):
    path = encrypted_key(tmp_path, "correct horse")
    monkeypatch.setenv("HARNESS_KEY_PASSPHRASE", "wrong")
    with pytest.raises(InputError, match="wrong passphrase or damaged file"):
        load_private_key(path)
    monkeypatch.setenv("HARNESS_KEY_PASSPHRASE", "correct horse")
    assert isinstance(load_private_key(path), Ed25519PrivateKey)


@pytest.mark.skipif(HAS_BCRYPT, reason="checks the message shown when bcrypt is missing")
def test_passphrases_without_bcrypt_are_refused_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_KEY_PASSPHRASE", "correct horse")
    with pytest.raises(InputError, match="needs the bcrypt package"):
        keygen(tmp_path / "dana", comment="dana")
    assert not (tmp_path / "dana").exists()
    if SSH_KEYGEN is not None:
        with pytest.raises(InputError, match="needs the bcrypt package"):
            load_private_key(encrypted_key(tmp_path, "correct horse"))


# --- the reviewers file ---------------------------------------------------------------------


@pytest.mark.skipif(SSH_KEYGEN is None, reason="compares with ssh-keygen -l")
def test_reviewers_file_pins_keys_with_ssh_keygen_fingerprints(world):
    reviewers = world.reviewers
    assert list(reviewers) == ["dana", "sam", "lee"]
    sam = reviewers["sam"]
    assert (sam.name, sam.roles) == ("Sam Reyes", ("security", "workflow_owner"))
    assert sam.keys[0].key == public_line(world.key("sam"))
    pub = world.root / "sam.pub"
    pub.write_text(sam.keys[0].key + "\n")
    listed = subprocess.run([str(SSH_KEYGEN), "-l", "-f", str(pub)], capture_output=True,
                            text=True, check=True)
    assert listed.stdout.split()[1] == sam.keys[0].fingerprint
    shown = sam.keys[0].fingerprint
    assert shown.startswith("SHA256:") and not shown.endswith("=")


def rsa_public_line() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).decode()


DANA = "reviewers:\n  - id: dana\n    name: Dana\n    roles: [workflow_owner]\n"
"""The first reviewer's lines 1-4; its key line (5) follows."""


@pytest.mark.parametrize(("text", "where", "message"), [
    pytest.param(DANA + '    key: "{rsa}"\n', ":5: reviewers[0].key:",
                 "expected an ssh-ed25519 key, found 'ssh-rsa'", id="not-ed25519"),
    pytest.param(DANA + '    key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDamaged"\n',
                 ":5: reviewers[0].key:", "not a valid OpenSSH public key", id="bad-key-text"),
    pytest.param(DANA + '    key: "{a}"\n  - id: dana\n    name: Dana Again\n'
                 '    roles: [security]\n    key: "{b}"\n',
                 ":6: reviewers[1].id:", "duplicate reviewer id 'dana' (first at line 2)",
                 id="duplicate-id"),
    pytest.param(DANA, ":2: reviewers[0].key:",
                 "expected exactly one of key (one public key) or keys",
                 id="missing-field"),
    pytest.param(DANA + '    key: "{a}"\n    email: dana@example.com\n',
                 ":6: reviewers[0].email:", "unknown field 'email'", id="unknown-field"),
    pytest.param(DANA.replace("[workflow_owner]", "[]") + '    key: "{a}"\n',
                 ":4: reviewers[0].roles:", "expected at least 1 item(s)", id="no-roles"),
    pytest.param(DANA + '    key: "{a}"\n  - id: sam\n    name: Sam\n    roles: [security]\n'
                 '    key: "{a}"\n', ":9: reviewers[1].key:",
                 "already pinned for reviewer 'dana'", id="shared-key"),
    pytest.param(DANA.replace("id: dana", "id: dana doe") + '    key: "{a}"\n',
                 ":2: reviewers[0].id:", "without spaces", id="id-with-space"),
    pytest.param("people: []\n", ":1: reviewers:", "missing required field 'reviewers'",
                 id="no-reviewers"),
])
def test_reviewers_file_errors_name_path_line_and_field(tmp_path, text, where, message):
    path = tmp_path / "reviewers.yaml"
    keys = {"a": public_line(Ed25519PrivateKey.generate()),
            "b": public_line(Ed25519PrivateKey.generate()),
            "rsa": rsa_public_line() if "{rsa}" in text else ""}
    path.write_text(text.format(**keys), "utf-8")
    with pytest.raises(InputError) as info:
        load_reviewers(path)
    assert str(info.value).startswith(f"{path}{where} ")
    assert message in str(info.value)


# --- manifest and policy --------------------------------------------------------------------


def test_manifest_reads_what_validate_writes(world):
    manifest = load_manifest(world.manifest)
    assert manifest.sha256 == sha256_text(world.manifest.read_bytes())
    assert (manifest.suite, manifest.decision, manifest.report) == (
        "demo", "RESTORE", "validation-demo-r2.html")
    assert manifest.report_path == world.report
    assert manifest.candidate_run.resolve(world.reports) == world.candidate
    assert manifest.candidate_run.sha256 == sha256_text(world.candidate.read_bytes())
    assert manifest.fix_authors() == {"lee": ["INC-1"]}


@pytest.mark.parametrize(("edit", "where", "message"), [
    (lambda m: m.pop("suite_digest"), "suite_digest", "missing required field"),
    (lambda m: m.update(decision="MAYBE"), "decision", "expected one of RESTORE, BLOCK"),
    (lambda m: m["candidate_run"].update(sha256="abc"), "candidate_run.sha256",
     "expected a SHA-256"),
    (lambda m: m.update(extra=1), "extra", "unknown field 'extra'"),
    (lambda m: m.update(report="../elsewhere.html"), "report", "expected a file name"),
    (lambda m: m["incidents"][0].update(fix_authors="lee"), "incidents[0].fix_authors",
     "expected a list of reviewer ids"),
    (lambda m: m.update(version=5), "version",
     "expected one of 1, 2, 3, 4, found a number (5)"),
    (lambda m: m.update(version=2), "tests_decision", "missing required field"),
])
def test_manifest_errors_name_the_field(world, edit, where, message):
    data = json.loads(world.manifest.read_text())
    edit(data)
    world.manifest.write_text(json.dumps(data))
    with pytest.raises(InputError) as info:
        load_manifest(world.manifest)
    assert str(info.value).startswith(f"{world.manifest}: {where}: {message}")


def test_manifest_missing_or_not_json(tmp_path):
    with pytest.raises(InputError, match="manifest not found"):
        load_manifest(tmp_path / "absent.json")
    path = tmp_path / "bad.json"
    path.write_text('{\n  "version": 1,\n  oops\n}')
    with pytest.raises(InputError) as info:
        load_manifest(path)
    assert str(info.value).startswith(f"{path}:3: not JSON")


def test_required_roles_are_the_default_plus_each_incident_category():
    exposure = [("INC-1", "data_exposure"), ("BASE-1", None)]
    assert SignoffPolicy().required_for(exposure) == {"workflow_owner": "every validation"}
    assert SignoffPolicy.from_gate({}).required_for(exposure) == {
        "workflow_owner": "every validation"}
    assert POLICY.required_for(exposure) == {
        "workflow_owner": "every validation; data_exposure: INC-1",
        "security": "data_exposure: INC-1"}
    retrieval = [("INC-2", "retrieval"), ("INC-3", "retrieval")]
    assert POLICY.required_for(retrieval) == {"workflow_owner": "every validation"}
    custom = SignoffPolicy.from_gate({"signoff": {"required_roles": {
        "default": ["release_manager"], "retrieval": ["content_owner"]}}})
    assert custom.required_for(retrieval) == {"release_manager": "every validation",
                                              "content_owner": "retrieval: INC-2, INC-3"}
    assert custom.required_for(exposure) == {"release_manager": "every validation"}


@pytest.mark.parametrize(("section", "where"), [
    ({"required_roles": {"dataexposure": ["security"]}},
     "gate.signoff.required_roles.dataexposure"),
    ({"required_roles": {"default": []}}, "gate.signoff.required_roles.default"),
    ({"roles": {}}, "gate.signoff.roles"),
])
def test_signoff_policy_errors_name_the_field(section, where):
    with pytest.raises(InputError) as info:
        SignoffPolicy.from_gate({"signoff": section}, path=Path("suites/demo.yaml"))
    assert info.value.field == where
    assert info.value.path == "suites/demo.yaml"


# --- signing --------------------------------------------------------------------------------


def test_sign_appends_signed_chained_records(world):
    first = world.sign("dana", comment="fix verified on staging")
    second = world.sign("sam", role="security")
    assert list(first) == list(ledger.RECORD_FIELDS)
    manifest = load_manifest(world.manifest)
    assert first | {"signature": "", "hash": ""} == {
        "version": 2, "seq": 1, "reviewer": "dana", "name": "Dana Okafor",
        "role": "workflow_owner", "meaning": "approved", "decision": "approve",
        "time": "2026-03-10T12:00:00Z", "comment": "fix verified on staging", "cases": [],
        "manifest": "validation-demo-r2.json", "manifest_sha256": manifest.sha256,
        "report_body_sha256": manifest.report_body_sha256,
        "baseline_run_sha256": manifest.baseline_run.sha256,
        "candidate_run_sha256": manifest.candidate_run.sha256,
        "suite_digest": "a" * 64, "gate_decision": "RESTORE", "candidate_run_id": "r2",
        "prev_hash": ZERO_HASH, "key_fingerprint": world.reviewers["dana"].keys[0].fingerprint,
        "signature": "", "hash": "",
    }
    unsigned = {k: v for k, v in first.items() if k not in ("signature", "hash")}
    world.key("dana").public_key().verify(base64.b64decode(first["signature"]),
                                          canonical_json(unsigned).encode())
    assert first["hash"] == sha256_text(canonical_json(
        {k: v for k, v in first.items() if k != "hash"}))
    assert (second["seq"], second["prev_hash"]) == (2, first["hash"])
    assert world.records() == [first, second]
    result = world.verify()
    assert (result.valid, result.problems) == (True, ())
    assert result.records == (first, second)
    assert result.head == {"count": 2, "last_hash": second["hash"]}


def test_no_private_key_material_reaches_the_ledger(world):
    world.sign("dana")
    ledger = world.ledger.read_text("utf-8")
    raw = world.key("dana").private_bytes(serialization.Encoding.Raw,
                                          serialization.PrivateFormat.Raw,
                                          serialization.NoEncryption())
    for text in (raw.hex(), base64.b64encode(raw).decode()):
        assert text not in ledger
    for line in (world.keys / "dana").read_text().splitlines()[1:-1]:
        assert line not in ledger
    assert "PRIVATE KEY" not in ledger


def refused(world: World, reviewer_id: str, **options: Any) -> InputError:
    with pytest.raises(InputError) as info:
        world.sign(reviewer_id, **options)
    assert not world.ledger.exists()
    return info.value


@pytest.mark.parametrize("meaning", ["approved", "reviewed", "risk_accepted"])
def test_approving_a_validation_blocked_by_a_still_failing_incident_is_refused(world, meaning):
    write_validation(world.reports, decision="BLOCK")
    err = refused(world, "dana", meaning=meaning, comment="looks fine")
    assert (err.field, err.problem) == (
        "decision", "the gate blocks on INC-1 (still_failing: still fails); that cannot be "
                    "approved, only fixed (or rejected)")
    err = refused(world, "dana", meaning="risk_accepted", comment="accept", cases=("INC-1",))
    assert err.field == "cases" and "no reason of the gate a reviewer can accept" in err.problem
    assert world.sign("dana", decision="reject", meaning="reviewed")["decision"] == "reject"


@pytest.mark.parametrize(("meaning", "cases"), [("approved", ()), ("risk_accepted", ())])
def test_approving_a_weakened_case_needs_its_risk_accepted_by_name(world, meaning, cases):
    write_validation(world.reports, decision="BLOCK", rule="weakened")
    err = refused(world, "dana", meaning=meaning, comment="looks fine", cases=cases)
    assert err.field == "meaning"
    assert "an approval must have meaning risk_accepted, a comment, and name the cases" in \
        err.problem


def test_accepting_the_risk_of_a_weakened_case_with_a_reason_is_allowed(world):
    write_validation(world.reports, decision="BLOCK", rule="weakened")
    assert world.sign("dana", decision="reject", meaning="reviewed")["decision"] == "reject"
    record = world.sign("dana", meaning="risk_accepted", cases=("INC-1",),
                        comment="INC-1's check was reworded, the incident is still covered")
    assert (record["gate_decision"], record["meaning"], record["cases"]) == (
        "BLOCK", "risk_accepted", ["INC-1"])
    assert world.verify().valid
    manifest = load_manifest(world.manifest)
    found = signoffs(world.verify().records, manifest, POLICY)
    assert found.accepted == {"INC-1": ("dana",)}
    lifted = with_signoffs(manifest.tests, found)
    assert [r.rule for r in lifted.blocking] == ["signoff_missing"]  # security still to sign
    assert "risk accepted by dana" in next(r.message for r in lifted.reasons if r.case_id)


def test_accepting_a_risk_needs_a_comment(world):
    err = refused(world, "dana", meaning="risk_accepted", comment="  ")
    assert (err.field, err.problem) == (
        "comment", "meaning risk_accepted needs a comment saying which risk is accepted and why")


def test_a_fix_author_cannot_approve_their_fix_but_may_reject(world):
    err = refused(world, "lee")
    assert (err.field, err.problem) == ("decision",
                                        "lee authored the fix of INC-1 and cannot approve it")
    assert world.sign("lee", decision="reject", meaning="reviewed")["reviewer"] == "lee"


def test_a_role_the_reviewer_does_not_hold_is_refused(world):
    err = refused(world, "dana", role="security")
    assert (err.field, err.problem) == (
        "role", "dana does not hold role 'security' (roles: workflow_owner)")


def test_approving_in_a_role_the_validation_does_not_require_is_refused(world):
    write_validation(world.reports, category="retrieval")
    err = refused(world, "sam", role="security")
    assert err.problem == "role 'security' is not required for this validation " \
                          "(required: workflow_owner)"


def test_another_reviewers_private_key_is_refused(world):
    err = refused(world, "dana", key="sam")
    assert err.field == "key"
    assert f"does not match a key pinned for dana ({world.reviewers['dana'].keys[0].fingerprint})" \
        in err.problem


def test_a_reviewer_not_pinned_in_the_file_is_refused(world):
    reviewers = world.reviewers
    dana = reviewers["dana"]
    impostor = keys.Reviewer(id="dana", name=dana.name, roles=("workflow_owner", "security"),
                             keys=dana.keys)
    with pytest.raises(InputError, match="'dana' is not pinned in the reviewers file as given"):
        sign(manifest_path=world.manifest, reviewer=impostor, private_key=world.key("dana"),
             role="security", decision="approve", meaning="approved", comment="",
             ledger_path=world.ledger, policy=POLICY, reviewers=reviewers, now=NOW)
    assert not world.ledger.exists()


def test_files_changed_since_validation_are_refused(world):
    world.candidate.write_text('{"type": "header", "run_id": "r2-edited"}\n')
    err = refused(world, "dana")
    assert err.path == str(world.candidate)
    assert "candidate run record" in err.problem and "changed after validation" in err.problem
    write_validation(world.reports)
    world.report.write_text(report_html(body="<h1>RESTORE</h1><p>edited</p>"))
    err = refused(world, "dana")
    assert err.path == str(world.report)
    assert "report" in err.problem and "body (outside the sign-off section)" in err.problem


def test_sign_refuses_to_extend_a_damaged_ledger(world):
    world.sign("dana")
    with world.ledger.open("a") as ledger:
        ledger.write('{"version": 1, "seq": 2')
    with pytest.raises(InputError) as info:
        world.sign("sam", role="security")
    assert str(info.value).startswith(f"{world.ledger}:2: the last line is incomplete")


# --- attacks verify must catch --------------------------------------------------------------


def three_signoffs(world: World) -> list[dict[str, Any]]:
    world.sign("dana")
    world.sign("sam", role="security")
    world.sign("lee", decision="reject", meaning="reviewed", comment="wait for EU data")
    records = world.records()
    assert world.verify().valid
    return records


@pytest.mark.parametrize("rehash", [False, True])
def test_an_edited_record_is_caught(world, rehash):
    records = three_signoffs(world)
    records[1]["comment"] = "approved without reading"
    if rehash:
        records[1]["hash"] = record_hash(records[1])
    world.write_records(records)
    problems = problems_of(world)
    prefix = f"{world.ledger}:2: "
    hash_problem = prefix + "hash does not match the record's content: the record was edited"
    assert (hash_problem in problems) is not rehash
    assert prefix + ("signature does not verify with the key pinned for sam "
                     f"({world.reviewers['sam'].keys[0].fingerprint}): the record was edited or "
                     "signed with another key") in problems
    if rehash:  # the chain breaks too: the next record points at the old hash
        assert any(p.startswith(f"{world.ledger}:3: prev_hash does not match") for p in problems)


def test_a_deleted_record_is_caught(world):
    records = three_signoffs(world)
    world.write_records([records[0], records[2]])
    assert problems_of(world) == [
        f"{world.ledger}:2: seq 3 on line 2: a record before it is missing or the records were "
        "reordered",
        f"{world.ledger}:2: prev_hash does not match the hash of the record before it (line 1): "
        "a record was removed, inserted or reordered",
    ]


def test_reordered_records_are_caught(world):
    records = three_signoffs(world)
    world.write_records([records[0], records[2], records[1]])
    problems = problems_of(world)
    assert [p.split(": ")[0].rsplit(":", 1)[1] for p in problems] == ["2", "2", "3", "3"]
    assert f"{world.ledger}:3: seq 2 on line 3: a record before it is missing or the records " \
           "were reordered" in problems


def pin_head(world: World) -> None:
    """Re-render the report's sign-off section with the ledger's current head."""
    head = world.verify().head
    world.report.write_text(report_html(
        "<table>3 sign-offs</table>" + chain_head_meta(head["count"], head["last_hash"]),
        body="<h1>RESTORE</h1>"))


def test_a_truncated_ledger_is_caught_by_the_head_a_report_pins(world):
    records = three_signoffs(world)
    pin_head(world)
    assert world.verify(reports=[world.report]).valid
    world.write_records(records[:2])
    assert world.verify().valid  # the chain alone cannot tell
    assert problems_of(world, reports=[world.report]) == [
        f"{world.report}: pins 3 sign-off(s) but the ledger has 2: the ledger was truncated"]


def test_a_rewritten_tail_is_caught_by_the_head_a_report_pins(world):
    records = three_signoffs(world)
    pin_head(world)
    world.write_records(records[:2])
    world.sign("lee", decision="reject", meaning="reviewed", comment="changed my words")
    problems = problems_of(world, reports=[world.report])
    assert len(problems) == 1
    assert problems[0].startswith(f"{world.report}: pins record 3 with hash {records[2]['hash']}")
    assert problems[0].endswith("the ledger was rewritten")


def test_a_report_without_a_pinned_head_is_a_problem(world):
    three_signoffs(world)
    assert problems_of(world, reports=[world.report]) == [
        f'{world.report}: expected one <meta name="harness-chain-head"> inside the sign-off '
        "section, found 0"]


def forge(record: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """Sign and hash ``record`` again with ``key``, as an attacker with their own key would."""
    record["signature"] = base64.b64encode(key.sign(signed_payload(record))).decode()
    record["hash"] = record_hash(record)
    return record


def test_a_record_resigned_with_a_foreign_key_is_caught(world):
    records = three_signoffs(world)
    records[2].update(decision="approve", meaning="approved", comment="")
    forge(records[2], world.key("mallory"))  # keeps lee's key_fingerprint
    world.write_records(records)
    assert problems_of(world) == [
        f"{world.ledger}:3: signature does not verify with the key pinned for lee "
        f"({world.reviewers['lee'].keys[0].fingerprint}): the record was edited or signed with "
        "another key",
        f"{world.ledger}:3: breaks the sign-off rules: lee authored the fix of INC-1 and cannot "
        "approve it",
    ]


def test_a_hand_made_record_that_breaks_the_rules_is_caught_even_with_the_right_key(world):
    write_validation(world.reports, decision="BLOCK")
    record = world.sign("dana", decision="reject", meaning="reviewed")
    record.update(decision="approve", meaning="approved", gate_decision="RESTORE")
    world.write_records([forge(record, world.key("dana"))])
    result = world.verify()
    assert result.problems == (
        f"{world.ledger}:1: gate_decision does not match its manifest {world.manifest}",
        f"{world.ledger}:1: breaks the sign-off rules: the gate blocks on INC-1 (still_failing: "
        "still fails); that cannot be approved, only fixed (or rejected)",
    )
    assert result.records == ()
    assert approvals([record], load_manifest(world.manifest), POLICY) == (
        "AWAITING SIGN-OFF",
        ["no approval in role workflow_owner (required for every validation; data_exposure: "
         "INC-1)", "no approval in role security (required for data_exposure: INC-1)"])


def test_a_record_by_someone_not_in_the_reviewers_file_is_caught(world):
    mallory = public_line(world.key("mallory"))
    lines = {rid: world.reviewers[rid].keys[0].key for rid in REVIEWERS}
    with_mallory = write_reviewers(world.root / "with-mallory.yaml",
                                   {**lines, "mallory": mallory})
    world.sign("mallory", reviewers=load_reviewers(with_mallory))
    assert problems_of(world) == [
        f"{world.ledger}:1: reviewer 'mallory' is not in the reviewers file"]


def test_a_role_the_reviewer_no_longer_holds_is_caught(world):
    world.sign("sam", role="security")
    lines = {rid: world.reviewers[rid].keys[0].key for rid in REVIEWERS}
    write_reviewers(world.reviewers_path, lines, roles={"sam": ["workflow_owner"]})
    assert problems_of(world) == [
        f"{world.ledger}:1: sam does not hold role 'security' (roles: workflow_owner)"]


@pytest.mark.parametrize("strip", ["empty", "removed"])
def test_an_unsigned_downgrade_is_caught(world, strip):
    records = three_signoffs(world)
    last = records[-1]  # the last record: no later prev_hash gives it away
    if strip == "empty":
        last["signature"] = ""
    else:
        del last["signature"]
    last["hash"] = record_hash(last)
    world.write_records(records)
    assert problems_of(world) == [
        f"{world.ledger}:3: record is not signed (signature missing or empty)"]


def test_malformed_lines_are_named(world):
    records = three_signoffs(world)
    good = [json.dumps(r) for r in records]
    repeated = good[2][:-1] + ', "decision": "approve"}'
    world.ledger.write_text("\n".join([good[0], "not json", "[1, 2]", repeated, "", ""]) + good[1])
    problems = problems_of(world)
    assert problems[0].startswith(f"{world.ledger}:2: malformed line: Expecting value")
    assert f"{world.ledger}:3: malformed line: expected a JSON object, found a list" in problems
    assert f"{world.ledger}:4: malformed line: repeated key 'decision'" in problems
    assert f"{world.ledger}:5: malformed line: empty" in problems
    assert (f"{world.ledger}:6: incomplete line (no newline at the end): an interrupted write"
            in problems)


def test_a_report_edited_after_signing_is_caught(world):
    three_signoffs(world)
    world.report.write_text(report_html(body="<h1>RESTORE</h1><p>nothing regressed</p>"))
    problems = problems_of(world)
    assert len(problems) == 3
    assert all(f"report {world.report} changed after signing: its body (outside the sign-off "
               "section) sha256 is" in p for p in problems)
    assert [p.split(": ")[0] for p in problems] == [f"{world.ledger}:{n}" for n in (1, 2, 3)]


def test_editing_only_inside_the_signoff_markers_is_not_a_problem(world):
    three_signoffs(world)
    pin_head(world)
    assert world.verify(reports=[world.report]).valid


def test_a_run_record_edited_after_signing_is_caught(world):
    world.sign("dana")
    world.candidate.write_text('{"type": "header", "run_id": "r2"}\n{"verdict": "pass"}\n')
    problems = problems_of(world)
    assert len(problems) == 1
    assert problems[0].startswith(f"{world.ledger}:1: candidate run record {world.candidate} "
                                  "changed after signing: its sha256 is")


def test_a_manifest_edited_after_signing_is_caught(world):
    world.sign("dana")
    data = json.loads(world.manifest.read_text())
    data["decision"] = "RESTORE"
    data["reasons"] = []
    data["generated_at"] = "2026-03-11T00:00:00Z"
    world.manifest.write_text(json.dumps(data))
    problems = problems_of(world)
    assert len(problems) == 1
    assert problems[0].startswith(f"{world.ledger}:1: manifest {world.manifest} changed after "
                                  "signing")


def test_files_are_found_relative_to_base(world, tmp_path):
    world.sign("dana")
    moved = tmp_path / "archive"
    moved.mkdir()
    shutil.move(world.ledger, moved / "signoffs.jsonl")
    result = verify(moved / "signoffs.jsonl", world.reviewers)
    assert result.problems == (f"{moved / 'signoffs.jsonl'}:1: manifest "
                               f"{moved / 'validation-demo-r2.json'} is missing or unreadable",)
    assert verify(moved / "signoffs.jsonl", world.reviewers, base=world.reports).valid


def test_a_missing_ledger_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="ledger not found"):
        verify(tmp_path / "signoffs.jsonl", {})


# --- approvals ------------------------------------------------------------------------------


def test_approvals_need_every_required_role(world):
    manifest = load_manifest(world.manifest)
    world.sign("dana")
    assert approvals(world.verify().records, manifest, POLICY) == (
        "AWAITING SIGN-OFF", ["no approval in role security (required for data_exposure: "
                              "INC-1)"])
    world.sign("sam", role="security")
    assert approvals(world.verify().records, manifest, POLICY) == ("RESTORE", [])


def test_a_reject_stands_until_a_later_approval_in_the_same_role(world):
    manifest = load_manifest(world.manifest)
    world.sign("dana")
    world.sign("sam", role="security")
    world.sign("lee", decision="reject", meaning="reviewed")
    assert approvals(world.verify().records, manifest, POLICY) == (
        "BLOCK", ["rejected by lee (workflow_owner, 2026-03-10T12:00:00Z)",
                  "no approval in role workflow_owner (required for every validation; "
                  "data_exposure: INC-1)"])
    world.sign("sam", decision="reject", meaning="reviewed", role="security")
    outcome, findings = approvals(world.verify().records, manifest, POLICY)
    assert outcome == "BLOCK" and len(findings) == 4
    assert "rejected by sam (security, 2026-03-10T12:00:00Z)" in findings
    # dana approves again in workflow_owner: lee's reject in that role is superseded;
    # sam's in security still stands
    world.sign("dana")
    outcome, findings = approvals(world.verify().records, manifest, POLICY)
    assert outcome == "BLOCK" and findings == [
        "rejected by sam (security, 2026-03-10T12:00:00Z)",
        "no approval in role security (required for data_exposure: INC-1)"]
    world.sign("sam", role="security")
    assert approvals(world.verify().records, manifest, POLICY) == ("RESTORE", [])


def test_approvals_count_only_sign_offs_of_this_manifest(world):
    world.sign("dana")
    world.sign("sam", role="security")
    other = write_validation(world.reports, name="validation-demo-r3",
                             candidate_text='{"type": "header", "run_id": "r3"}\n')
    records = world.verify().records
    assert len(records) == 2
    assert approvals(records, load_manifest(world.manifest), POLICY) == ("RESTORE", [])
    outcome, findings = approvals(records, load_manifest(other), POLICY)
    assert outcome == "AWAITING SIGN-OFF" and len(findings) == 2


# --- concurrency ----------------------------------------------------------------------------


SIGNOFFS_PER_PROCESS = 5


def sign_in_another_process(paths: dict[str, str], reviewer_id: str, barrier: Any) -> None:
    reviewers = load_reviewers(Path(paths["reviewers"]))
    key = load_private_key(Path(paths["keys"]) / reviewer_id)
    role = "security" if reviewer_id == "sam" else "workflow_owner"
    barrier.wait(timeout=60)
    for turn in range(SIGNOFFS_PER_PROCESS):
        sign(manifest_path=Path(paths["manifest"]), reviewer=reviewers[reviewer_id],
             private_key=key, role=role, decision="reject" if reviewer_id == "lee" else "approve",
             meaning="reviewed", comment=f"turn {turn}", ledger_path=Path(paths["ledger"]),
             policy=POLICY, reviewers=reviewers)


def test_concurrent_signers_keep_one_linear_chain(world):
    context = multiprocessing.get_context("fork")
    signers = ["dana", "sam", "lee", "dana", "sam", "lee", "dana", "sam"]
    barrier = context.Barrier(len(signers))
    paths = {"reviewers": str(world.reviewers_path), "keys": str(world.keys),
             "manifest": str(world.manifest), "ledger": str(world.ledger)}
    processes = [context.Process(target=sign_in_another_process, args=(paths, rid, barrier))
                 for rid in signers]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        if process.is_alive():
            process.kill()
    assert [process.exitcode for process in processes] == [0] * len(signers)
    result = world.verify()
    assert (result.valid, result.problems) == (True, ())
    records = world.records()
    assert [r["seq"] for r in records] == list(range(1, 8 * SIGNOFFS_PER_PROCESS + 1))
    assert [r["prev_hash"] for r in records] == [ZERO_HASH] + [r["hash"] for r in records[:-1]]
    assert sorted(r["reviewer"] for r in records) == sorted(signers * SIGNOFFS_PER_PROCESS)


# --- keys that rotate and keys that are revoked --------------------------------------------


def rotate_dana(world: World, *, old: str = "", new: str = "") -> None:
    """Pin a second key for dana (``dana-2``), with ``old`` and ``new`` as the extra YAML
    lines of the old and the new key."""
    if not (world.keys / "dana-2").exists():
        keygen(world.keys / "dana-2", comment="dana@new-laptop")
    lines = {rid: world.reviewers[rid].keys[0].key for rid in ("sam", "lee")}
    write_reviewers(world.reviewers_path, lines)
    first = public_line(world.key("dana"))
    second = public_line(world.key("dana-2"))
    text = world.reviewers_path.read_text()
    world.reviewers_path.write_text(text + (
        "  - id: dana\n    name: Dana Okafor\n    roles: [workflow_owner]\n    keys:\n"
        f'      - key: "{first}"\n{old}      - key: "{second}"\n{new}'))


def test_a_rotated_key_keeps_old_sign_offs_valid_and_signs_no_more(world):
    world.sign("dana")  # 2026-03-10, with the first key
    rotate_dana(world, old="        valid_until: 2026-06-01\n",
                new="        valid_from: 2026-06-01\n")
    assert world.verify().valid  # the old record stays valid
    later = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)
    err = refused_after(world, "dana", now=later)
    assert err.field == "key" and "stopped being valid (2026-06-01T00:00:00Z)" in err.problem
    record = world.sign("dana", key="dana-2", role="workflow_owner", now=later)
    assert record["key_fingerprint"] == world.reviewers["dana"].keys[1].fingerprint
    assert world.verify().valid
    too_early = world.sign("sam", role="security")
    assert too_early["seq"] == 3 and world.verify().valid


def refused_after(world: World, reviewer_id: str, **options: Any) -> InputError:
    with pytest.raises(InputError) as info:
        world.sign(reviewer_id, **options)
    return info.value


def test_a_record_dated_outside_its_key_validity_is_caught(world):
    rotate_dana(world, new="        valid_from: 2026-06-01\n")
    record = world.sign("dana", key="dana-2", now=dt.datetime(2026, 7, 1, tzinfo=dt.UTC))
    record["time"] = "2026-05-01T00:00:00Z"  # backdated into a time the key was not valid
    world.write_records([forge(record, world.key("dana-2"))])
    assert problems_of(world) == [
        f"{world.ledger}:1: signed at 2026-05-01T00:00:00Z, before key "
        f"{world.reviewers['dana'].keys[1].fingerprint} became valid (2026-06-01T00:00:00Z)"]


def test_revocation_invalidates_later_signatures_and_keeps_earlier_ones(world):
    world.sign("dana")  # 2026-03-10
    rotate_dana(world, old="        revoked: 2026-04-01\n")
    assert world.verify().valid
    fingerprint_text = world.reviewers["dana"].keys[0].fingerprint
    err = refused_after(world, "dana", now=dt.datetime(2026, 4, 2, tzinfo=dt.UTC))
    assert f"after key {fingerprint_text} was revoked (2026-04-01T00:00:00Z)" in err.problem
    # someone holding the stolen key signs, claiming a time before the revocation
    stolen = world.sign("sam", role="security")
    stolen.update(reviewer="dana", name="Dana Okafor", role="workflow_owner",
                  key_fingerprint=fingerprint_text, time="2026-03-31T23:59:00Z")
    records = [*world.records()[:1], forge(stolen, world.key("dana"))]
    world.write_records(records)
    assert world.verify().valid  # with no history, the claimed time is all there is
    assert world.verify(accepted=ledger.Accepted(2, world.reviewers)).valid  # both accepted
    # the second was added since the history
    problems = problems_of(world, accepted=ledger.Accepted(1, world.reviewers))
    assert problems == [
        f"{world.ledger}:2: signed with key {fingerprint_text}, revoked 2026-04-01, and not in "
        "the ledger's accepted history: a revoked key adds no sign-off, whatever time it "
        "claims"]
    records[1]["time"] = "2026-04-05T09:00:00Z"  # honest about its time: invalid in any case
    world.write_records([records[0], forge(records[1], world.key("dana"))])
    assert problems_of(world) == [
        f"{world.ledger}:2: signed at 2026-04-05T09:00:00Z, after key {fingerprint_text} was "
        "revoked (2026-04-01T00:00:00Z)"]


def test_a_record_naming_a_key_not_pinned_for_its_reviewer_is_caught(world):
    record = world.sign("dana")
    record["key_fingerprint"] = world.reviewers["sam"].keys[0].fingerprint
    world.write_records([forge(record, world.key("sam"))])
    assert problems_of(world) == [
        f"{world.ledger}:1: key_fingerprint {world.reviewers['sam'].keys[0].fingerprint} is not "
        f"a key pinned for dana ({world.reviewers['dana'].keys[0].fingerprint})"]


@pytest.mark.parametrize(("extra", "where", "problem"), [
    ('    key: "{a}"\n    keys:\n      - key: "{b}"\n', ":6: reviewers[0].keys",
     "expected exactly one of key (one public key) or keys"),
    ('    keys:\n      - key: "{a}"\n        valid_from: 2026-06-01\n'
     "        valid_until: 2026-01-01\n", ":8: reviewers[0].keys[0].valid_until",
     "valid_until must come after valid_from"),
    ('    keys:\n      - key: "{a}"\n      - key: "{a}"\n', ":5: reviewers[0].keys",
     "this key is pinned twice for this reviewer"),
    ('    keys:\n      - key: "{a}"\n        revoked: yesterday\n',
     ":7: reviewers[0].keys[0].revoked", "expected an ISO 8601 date-time"),
])
def test_rotation_errors_name_path_line_and_field(tmp_path, extra, where, problem):
    a = public_line(Ed25519PrivateKey.generate())
    b = public_line(Ed25519PrivateKey.generate())
    path = tmp_path / "reviewers.yaml"
    path.write_text("reviewers:\n  - id: dana\n    name: Dana\n    roles: [workflow_owner]\n"
                    + extra.format(a=a, b=b))
    with pytest.raises(InputError) as info:
        load_reviewers(path)
    assert str(info.value).startswith(f"{path}{where}: {problem}"), str(info.value)
