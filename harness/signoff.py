"""Reviewer sign-off of validation reports: Ed25519 signatures in a hash-chained ledger.

A RESTORE decision is only as trustworthy as the people who signed it off, so each sign-off is
one JSON line in an append-only ledger, signed with the reviewer's own Ed25519 key (OpenSSH
format) whose public key is pinned in a reviewers file that changes only through code review.
Each record names the SHA-256 of everything it vouches for (the validation manifest, the
report's body, both run records) and the hash of the record before it, so :func:`verify` finds
an edited, removed, reordered, forged or unsigned record and any file changed after signing; a
ledger cut short is found against the chain head that a report pins.

The files:

- the reviewers file (YAML): ``reviewers: [{id, name, roles: [..], key: "ssh-ed25519 ..."}]``;
- the manifest (JSON) that ``harness validate`` writes beside its HTML report: what was
  validated, the gate's decision, and the digests of the report body and both runs;
- the ledger (JSON Lines): one signed record per sign-off, ``version`` first.

The report's sign-off section lies between :data:`SIGNOFF_BEGIN` and :data:`SIGNOFF_END`; it is
left out of the report's digest, so the report can be re-rendered with its sign-offs without
changing what was signed. Private keys stay where :func:`keygen` wrote them, outside any git
work tree; nothing here writes them anywhere else.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import fcntl
import hashlib
import json
import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import schema
from harness.digest import canonical_json, sha256_text
from harness.errors import InputError
from harness.loader import read_yaml
from harness.model import CATEGORIES

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

FORMAT_VERSION = 1
SIGNOFF_BEGIN = "<!-- harness:signoff:begin -->"
SIGNOFF_END = "<!-- harness:signoff:end -->"
CHAIN_HEAD_META = "harness-chain-head"
ZERO_HASH = "0" * 64
"""The ``prev_hash`` of the first record, and the hash a report pins for an empty ledger."""
DECISIONS = ("approve", "reject")
MEANINGS = ("reviewed", "approved", "risk_accepted")
GATE_DECISIONS = ("RESTORE", "BLOCK")
PASSPHRASE_ENV = "HARNESS_KEY_PASSPHRASE"
DEFAULT_REQUIRED_ROLES = {"default": ("workflow_owner",)}

RECORD_FIELDS = (
    "version", "seq", "reviewer", "name", "role", "meaning", "decision", "time", "comment",
    "manifest", "manifest_sha256", "report_body_sha256", "baseline_run_sha256",
    "candidate_run_sha256", "suite_digest", "gate_decision", "candidate_run_id", "prev_hash",
    "key_fingerprint", "signature", "hash",
)
_TEXT_FIELDS = ("reviewer", "name", "role", "time", "comment", "manifest", "candidate_run_id",
                "key_fingerprint", "signature")
_DIGEST_FIELDS = ("manifest_sha256", "report_body_sha256", "baseline_run_sha256",
                  "candidate_run_sha256", "suite_digest", "prev_hash", "hash")
MANIFEST_FIELDS = (
    "version", "suite", "suite_path", "suite_digest", "baseline_run", "candidate_run",
    "decision", "reasons", "incidents", "report", "report_body_sha256", "generated_at",
)
_RUN_FIELDS = ("path", "sha256", "run_id", "target")
_INCIDENT_FIELDS = ("id", "category", "severity", "owner", "fix_authors")

_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEAD_META = re.compile(rf'<meta name="{CHAIN_HEAD_META}" content="(\d+):([0-9a-f]{{64}})">')
_ANY_HEAD_META = re.compile(rf"<meta\b[^>]*{CHAIN_HEAD_META}[^>]*>", re.IGNORECASE)


# --- the report's body and the chain head it pins ------------------------------------------


def _signoff_span(html: str) -> tuple[int, int]:
    """Where the sign-off section's content starts and ends (between the two markers)."""
    begins, ends = html.count(SIGNOFF_BEGIN), html.count(SIGNOFF_END)
    if begins != 1 or ends != 1:
        problem = (f"expected one {SIGNOFF_BEGIN} and one {SIGNOFF_END} marker, "
                   f"found {begins} and {ends}")
        raise ValueError(problem)
    start = html.index(SIGNOFF_BEGIN) + len(SIGNOFF_BEGIN)
    end = html.index(SIGNOFF_END)
    if end < start:
        problem = f"the {SIGNOFF_END} marker comes before {SIGNOFF_BEGIN}"
        raise ValueError(problem)
    return start, end


def report_body_sha256(html: str) -> str:
    """SHA-256 of the report with the sign-off section's content dropped (markers kept).

    Raises ValueError when the markers are missing, repeated or out of order.
    """
    start, end = _signoff_span(html)
    return sha256_text(html[:start] + html[end:])


def chain_head_meta(count: int, last_hash: str) -> str:
    """The tag a report renders inside its sign-off section to pin the ledger's head."""
    return f'<meta name="{CHAIN_HEAD_META}" content="{count}:{last_hash}">'


def read_chain_head(html: str) -> tuple[int, str]:
    """The (count, last hash) a report pins inside its sign-off section.

    Raises ValueError when the section holds no such tag, more than one, or a malformed one.
    """
    start, end = _signoff_span(html)
    section = html[start:end]
    tags = _ANY_HEAD_META.findall(section)
    if len(tags) != 1:
        problem = (f"expected one <meta name=\"{CHAIN_HEAD_META}\"> inside the sign-off "
                   f"section, found {len(tags)}")
        raise ValueError(problem)
    found = _HEAD_META.fullmatch(tags[0])
    if found is None:
        problem = f"malformed chain head {tags[0]!r}: expected {chain_head_meta(0, 'HASH')!r}"
        raise ValueError(problem)
    return int(found.group(1)), found.group(2)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def report_file_body_sha256(path: Path) -> str:
    """:func:`report_body_sha256` of an HTML file, read as exact UTF-8 (no newline changes)."""
    return report_body_sha256(path.read_bytes().decode("utf-8"))


# --- reviewers ------------------------------------------------------------------------------


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """``SHA256:<base64>`` of the key's OpenSSH blob, as ``ssh-keygen -l`` prints it."""
    from cryptography.hazmat.primitives import serialization

    line = public_key.public_bytes(serialization.Encoding.OpenSSH,
                                   serialization.PublicFormat.OpenSSH)
    blob = base64.b64decode(line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def parse_public_key(text: str) -> Ed25519PublicKey:
    """An ``ssh-ed25519 AAAA... [comment]`` line -> the key; ValueError says what is wrong."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_ssh_public_key

    parts = text.split()
    if len(parts) < 2:
        problem = "expected an OpenSSH public key line 'ssh-ed25519 AAAA... comment'"
        raise ValueError(problem)
    if parts[0] != "ssh-ed25519":
        problem = f"expected an ssh-ed25519 key, found {parts[0]!r}"
        raise ValueError(problem)
    try:
        key = load_ssh_public_key(f"{parts[0]} {parts[1]}".encode())
    except (ValueError, UnsupportedAlgorithm):
        problem = "not a valid OpenSSH public key: the base64 text is damaged"
        raise ValueError(problem) from None
    if not isinstance(key, Ed25519PublicKey):
        problem = "expected an Ed25519 key inside the ssh-ed25519 line"
        raise ValueError(problem)
    return key


@dataclass(frozen=True, slots=True)
class Reviewer:
    """A person allowed to sign, the roles they hold, and the public key pinned for them."""

    id: str
    name: str
    roles: tuple[str, ...]
    key: str
    """The pinned key as ``ssh-ed25519 AAAA...`` (without its comment)."""
    fingerprint: str
    public_key: Ed25519PublicKey = field(compare=False, repr=False)


def _check_key(value: Any, where: str, line: int | None) -> tuple[str, Ed25519PublicKey]:
    if not isinstance(value, str):
        problem = f"expected an OpenSSH public key line, found {schema.describe(value)}"
        raise schema.Invalid(problem, field=where, line=line)
    try:
        public_key = parse_public_key(value)
    except ValueError as exc:
        raise schema.Invalid(str(exc), field=where, line=line) from None
    return " ".join(value.split()[:2]), public_key


_REVIEWERS_SCHEMA = schema.Record(
    {"reviewers": schema.ListOf(
        schema.Record(
            {"id": schema.Text(), "name": schema.Text(),
             "roles": schema.ListOf(schema.Text(), min_items=1),
             "key": schema.Custom(_check_key)},
            required=("id", "name", "roles", "key"),
        ),
        min_items=1,
    )},
    required=("reviewers",),
)


def load_reviewers(path: Path) -> dict[str, Reviewer]:
    """Read the reviewers file; every problem is an InputError at ``path:line`` with its field."""
    data, _ = read_yaml(path)
    try:
        entries = _REVIEWERS_SCHEMA.check(data, "", data.line)["reviewers"]
    except schema.Invalid as exc:
        raise InputError(exc.problem, path=path, line=exc.line, field=exc.field) from None
    raw = data["reviewers"]
    reviewers: dict[str, Reviewer] = {}
    first_line: dict[str, int] = {}
    key_owner: dict[str, str] = {}
    for index, entry in enumerate(entries):
        marks = raw[index]
        where = f"reviewers[{index}]"
        reviewer_id = entry["id"]
        id_line = marks.lines["id"]
        if not reviewer_id or reviewer_id.split() != [reviewer_id]:
            problem = f"expected a non-empty id without spaces, found {reviewer_id!r}"
            raise InputError(problem, path=path, line=id_line, field=f"{where}.id")
        if reviewer_id in reviewers:
            first = first_line[reviewer_id]
            problem = f"duplicate reviewer id {reviewer_id!r} (first at line {first})"
            raise InputError(problem, path=path, line=id_line, field=f"{where}.id")
        key_text, public_key = entry["key"]
        if key_text in key_owner:
            problem = (f"this key is already pinned for reviewer {key_owner[key_text]!r}: "
                       f"each reviewer signs with a key of their own")
            raise InputError(problem, path=path, line=marks.lines["key"], field=f"{where}.key")
        empty_roles = [role for role in entry["roles"] if not role.strip()]
        if empty_roles or not entry["name"].strip():
            name = "roles" if empty_roles else "name"
            problem = f"expected a non-empty {'role' if empty_roles else 'name'}"
            raise InputError(problem, path=path, line=marks.lines[name], field=f"{where}.{name}")
        reviewers[reviewer_id] = Reviewer(
            id=reviewer_id, name=entry["name"], roles=tuple(dict.fromkeys(entry["roles"])),
            key=key_text, fingerprint=fingerprint(public_key), public_key=public_key,
        )
        first_line[reviewer_id] = id_line
        key_owner[key_text] = reviewer_id
    return reviewers


# --- private keys ---------------------------------------------------------------------------


def _existing_folder(folder: Path) -> Path:
    while not folder.exists():
        folder = folder.parent
    return folder


def _inside_work_tree(folder: Path) -> bool:
    """Whether ``folder`` is inside a git work tree; False when git is not installed."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("GIT_")}
    try:
        done = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=folder,
                              env=env, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0 and done.stdout.strip() == "true"


def keygen(private_path: Path, *, comment: str) -> str:
    """Write a new Ed25519 private key (OpenSSH format, mode 0600) and return its public line.

    Refuses to overwrite a file and to write inside a git work tree: private keys never go
    into a repository. When ``HARNESS_KEY_PASSPHRASE`` is set, the key is encrypted with it.
    The returned ``ssh-ed25519 AAAA... comment`` line goes into the reviewers file.
    """
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if "\n" in comment or "\r" in comment:
        problem = "the comment must be one line"
        raise InputError(problem, field="comment")
    private_path = private_path.absolute()
    if os.path.lexists(private_path):
        problem = "already exists; refusing to overwrite a key"
        raise InputError(problem, path=private_path)
    if _inside_work_tree(_existing_folder(private_path.parent)):
        problem = ("is inside a git work tree: private keys never go into a repository; "
                   "choose a folder outside it (e.g. ~/.config/harness/)")
        raise InputError(problem, path=private_path)
    key = Ed25519PrivateKey.generate()
    passphrase = os.environ.get(PASSPHRASE_ENV)
    encryption = (serialization.BestAvailableEncryption(passphrase.encode()) if passphrase
                  else serialization.NoEncryption())
    try:
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                encryption)
    except UnsupportedAlgorithm:
        problem = (f"encrypting a key with {PASSPHRASE_ENV} needs the bcrypt package "
                   f"(pip install bcrypt)")
        raise InputError(problem, path=private_path) from None
    private_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        handle = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        problem = "already exists; refusing to overwrite a key"
        raise InputError(problem, path=private_path) from None
    try:
        with os.fdopen(handle, "wb") as file:
            os.fchmod(file.fileno(), 0o600)
            file.write(pem)
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        private_path.unlink(missing_ok=True)
        raise
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    return f"{public} {comment}".strip()


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Read an OpenSSH Ed25519 private key; the passphrase comes from ``HARNESS_KEY_PASSPHRASE``.

    Refuses a key file that others may read, as ssh does. Every problem is an InputError.
    """
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_ssh_private_key

    try:
        mode = path.stat().st_mode & 0o777
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError("private key file not found", path=path) from None
    except OSError as exc:
        raise InputError(f"cannot read the private key: {exc.strerror}", path=path) from None
    if mode & 0o077:
        problem = (f"permissions {mode:04o} are too open: a private key must be readable by "
                   f"its owner only (chmod 600 {path})")
        raise InputError(problem, path=path)
    passphrase = os.environ.get(PASSPHRASE_ENV)
    try:
        try:
            key = load_ssh_private_key(data, password=None)
        except TypeError:  # encrypted, and no passphrase given
            if passphrase is None:
                problem = f"the key is encrypted: set {PASSPHRASE_ENV} to its passphrase"
                raise InputError(problem, path=path) from None
            key = load_ssh_private_key(data, password=passphrase.encode())
    except UnsupportedAlgorithm as exc:
        problem = (f"cannot read this key: {exc}; an encrypted key needs the bcrypt package "
                   f"(pip install bcrypt)")
        raise InputError(problem, path=path) from None
    except ValueError as exc:
        problem = f"not a readable OpenSSH private key ({exc}); wrong passphrase or damaged file?"
        raise InputError(problem, path=path) from None
    if not isinstance(key, Ed25519PrivateKey):
        problem = f"expected an Ed25519 key, found {type(key).__name__}"
        raise InputError(problem, path=path)
    return key


# --- the manifest ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunRef:
    """One run record a validation compared: where it is, its digest, id and target."""

    path: str
    sha256: str
    run_id: str
    target: str

    def resolve(self, folder: Path) -> Path:
        """The run's file: ``path`` as is when absolute, else relative to ``folder``."""
        return Path(self.path) if Path(self.path).is_absolute() else folder / self.path


@dataclass(frozen=True, slots=True)
class IncidentRef:
    """An incident the validation covered, and who authored its fix."""

    id: str
    category: str
    severity: str
    owner: str
    fix_authors: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Manifest:
    """What ``harness validate`` validated and decided, as written beside its report."""

    path: Path
    sha256: str
    """SHA-256 of the manifest file's bytes: what a sign-off binds to."""
    version: int
    suite: str
    suite_path: str
    suite_digest: str
    baseline_run: RunRef
    candidate_run: RunRef
    decision: str
    reasons: tuple[Mapping[str, Any], ...]
    incidents: tuple[IncidentRef, ...]
    report: str
    report_body_sha256: str
    generated_at: str

    @property
    def report_path(self) -> Path:
        return self.path.parent / self.report

    def fix_authors(self) -> dict[str, list[str]]:
        """Each fix author -> the ids of the incidents whose fix they authored."""
        authors: dict[str, list[str]] = {}
        for incident in self.incidents:
            for author in incident.fix_authors:
                authors.setdefault(author, []).append(incident.id)
        return authors


def _manifest_error(problem: str, path: Path, field_name: str) -> InputError:
    return InputError(problem, path=path, field=field_name)


def _take(data: Mapping[str, Any], keys: Sequence[str], path: Path,
          where: str) -> dict[str, Any]:
    """The mapping's ``keys``, all present and none other; values still unchecked."""
    if not isinstance(data, Mapping):
        raise _manifest_error(f"expected an object, found {schema.describe(data)}", path,
                              where or "(top level)")
    unknown = [key for key in data if key not in keys]
    if unknown:
        problem = f"unknown field {unknown[0]!r}; expected {', '.join(keys)}"
        raise _manifest_error(problem, path, schema.join_path(where, unknown[0]))
    missing = [key for key in keys if key not in data]
    if missing:
        raise _manifest_error("missing required field", path, schema.join_path(where, missing[0]))
    return dict(data)


def _text(value: Any, path: Path, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise _manifest_error(f"expected a non-empty string, found {schema.describe(value)}",
                              path, where)
    return value


def _digest(value: Any, path: Path, where: str) -> str:
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        problem = f"expected a SHA-256 (64 lowercase hex digits), found {schema.describe(value)}"
        raise _manifest_error(problem, path, where)
    return value


def _run_ref(value: Any, path: Path, where: str) -> RunRef:
    fields = _take(value, _RUN_FIELDS, path, where)
    return RunRef(path=_text(fields["path"], path, f"{where}.path"),
                  sha256=_digest(fields["sha256"], path, f"{where}.sha256"),
                  run_id=_text(fields["run_id"], path, f"{where}.run_id"),
                  target=_text(fields["target"], path, f"{where}.target"))


def _incident_ref(value: Any, path: Path, where: str) -> IncidentRef:
    fields = _take(value, _INCIDENT_FIELDS, path, where)
    authors = fields["fix_authors"]
    if not isinstance(authors, list):
        raise _manifest_error(f"expected a list of reviewer ids, found "
                              f"{schema.describe(authors)}", path, f"{where}.fix_authors")
    return IncidentRef(
        id=_text(fields["id"], path, f"{where}.id"),
        category=_text(fields["category"], path, f"{where}.category"),
        severity=_text(fields["severity"], path, f"{where}.severity"),
        owner=_text(fields["owner"], path, f"{where}.owner"),
        fix_authors=tuple(_text(author, path, f"{where}.fix_authors[{index}]")
                          for index, author in enumerate(authors)),
    )


def _list(value: Any, path: Path, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise _manifest_error(f"expected a list, found {schema.describe(value)}", path, where)
    return value


def load_manifest(path: Path) -> Manifest:
    """Read a validation manifest; a missing or malformed one is an InputError."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError("manifest not found", path=path) from None
    except OSError as exc:
        raise InputError(f"cannot read the manifest: {exc.strerror}", path=path) from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError("the manifest is not UTF-8 text", path=path) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON: {exc.msg}", path=path, line=exc.lineno) from None
    fields = _take(data, MANIFEST_FIELDS, path, "")
    if fields["version"] != FORMAT_VERSION:
        raise _manifest_error(f"expected {FORMAT_VERSION}, found {fields['version']!r}", path,
                              "version")
    if fields["decision"] not in GATE_DECISIONS:
        problem = f"expected RESTORE or BLOCK, found {schema.describe(fields['decision'])}"
        raise _manifest_error(problem, path, "decision")
    report = _text(fields["report"], path, "report")
    if Path(report).name != report:
        raise _manifest_error(f"expected a file name beside the manifest, found {report!r}",
                              path, "report")
    reasons = _list(fields["reasons"], path, "reasons")
    for index, reason in enumerate(reasons):
        if not isinstance(reason, Mapping):
            raise _manifest_error(f"expected an object, found {schema.describe(reason)}",
                                  path, f"reasons[{index}]")
    return Manifest(
        path=path,
        sha256=sha256_text(raw),
        version=FORMAT_VERSION,
        suite=_text(fields["suite"], path, "suite"),
        suite_path=_text(fields["suite_path"], path, "suite_path"),
        suite_digest=_digest(fields["suite_digest"], path, "suite_digest"),
        baseline_run=_run_ref(fields["baseline_run"], path, "baseline_run"),
        candidate_run=_run_ref(fields["candidate_run"], path, "candidate_run"),
        decision=fields["decision"],
        reasons=tuple(reasons),
        incidents=tuple(_incident_ref(item, path, f"incidents[{index}]")
                        for index, item in enumerate(_list(fields["incidents"], path,
                                                           "incidents"))),
        report=report,
        report_body_sha256=_digest(fields["report_body_sha256"], path, "report_body_sha256"),
        generated_at=_text(fields["generated_at"], path, "generated_at"),
    )


def _file_digests(manifest: Manifest) -> list[tuple[str, str, Path, str | None]]:
    """(record field, what, file, its digest now or None when unreadable) for each file."""
    folder = manifest.path.parent
    files = [
        ("report_body_sha256", "report", manifest.report_path, report_file_body_sha256),
        ("baseline_run_sha256", "baseline run record", manifest.baseline_run.resolve(folder),
         file_sha256),
        ("candidate_run_sha256", "candidate run record", manifest.candidate_run.resolve(folder),
         file_sha256),
    ]
    digests = []
    for name, what, file, digest in files:
        try:
            now: str | None = digest(file)
        except (OSError, ValueError):  # missing, unreadable, not UTF-8, no markers
            now = None
        digests.append((name, what, file, now))
    return digests


def _changed_files(digests: Sequence[tuple[str, str, Path, str | None]],
                   expected: Mapping[str, Any], *, since: str) -> list[tuple[Path, str]]:
    """The files (of :func:`_file_digests`) whose digest is not ``expected`` (by record field)."""
    changed = []
    for name, what, file, now in digests:
        if now is None:
            changed.append((file, f"{what} {file} is missing or unreadable"))
        elif now != expected[name]:
            body = " body (outside the sign-off section)" if what == "report" else ""
            changed.append((file, f"{what} {file} changed after {since}: its{body} sha256 is "
                                  f"{now}, was {expected[name]}"))
    return changed


def _manifest_digests(manifest: Manifest) -> dict[str, str]:
    """What a record copies from its manifest, by record field."""
    return {
        "report_body_sha256": manifest.report_body_sha256,
        "baseline_run_sha256": manifest.baseline_run.sha256,
        "candidate_run_sha256": manifest.candidate_run.sha256,
        "suite_digest": manifest.suite_digest,
        "gate_decision": manifest.decision,
        "candidate_run_id": manifest.candidate_run.run_id,
    }


# --- policy ---------------------------------------------------------------------------------


_ROLES = schema.ListOf(schema.Text(), min_items=1)
_POLICY_SCHEMA = schema.Record(
    {"required_roles": schema.Record({"default": _ROLES, **dict.fromkeys(CATEGORIES, _ROLES)})},
)


@dataclass(frozen=True, slots=True)
class SignoffPolicy:
    """Which roles must approve: ``default`` for every validation, more per incident category."""

    required: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: dict(DEFAULT_REQUIRED_ROLES))

    @classmethod
    def from_gate(cls, gate: Mapping[str, Any], *, path: Path | None = None) -> SignoffPolicy:
        """From a suite's ``gate`` section: its ``signoff`` key, or the default when absent.

        ``default`` stays ``[workflow_owner]`` unless the section names it.
        """
        section = gate.get("signoff")
        if section is None:
            return cls()
        line = schema.line_of(gate, "signoff", getattr(gate, "line", None))
        try:
            checked = _POLICY_SCHEMA.check(section, "gate.signoff", line)
        except schema.Invalid as exc:
            raise InputError(exc.problem, path=path, line=exc.line, field=exc.field) from None
        given = checked.get("required_roles", {})
        return cls({**DEFAULT_REQUIRED_ROLES,
                    **{name: tuple(roles) for name, roles in given.items()}})

    def required_roles(self, manifest: Manifest) -> set[str]:
        """``default`` plus the roles of every incident category the manifest covers."""
        roles = set(self.required.get("default", ()))
        for incident in manifest.incidents:
            roles.update(self.required.get(incident.category, ()))
        return roles


def _rule_problems(*, reviewer_id: str, decision: str, meaning: str, comment: str,
                   manifest: Manifest) -> list[tuple[str, str]]:
    """(field, problem) for each sign-off rule the sign-off would break."""
    problems = []
    if meaning == "risk_accepted" and not comment.strip():
        problems.append(("comment", "meaning risk_accepted needs a comment saying which risk is "
                                    "accepted and why"))
    if decision == "approve" and manifest.decision == "BLOCK" and meaning != "risk_accepted":
        problems.append(("meaning", f"the gate decided BLOCK: an approval must have meaning "
                                    f"risk_accepted with a comment, not {meaning!r} (or reject)"))
    authored = manifest.fix_authors().get(reviewer_id)
    if decision == "approve" and authored:
        problems.append(("decision", f"{reviewer_id} authored the fix of {', '.join(authored)} "
                                     f"and cannot approve it"))
    return problems


# --- signing --------------------------------------------------------------------------------


def _utc(now: dt.datetime | None) -> str:
    moment = now or dt.datetime.now(dt.UTC)
    if moment.tzinfo is None:
        problem = "now must be timezone-aware"
        raise ValueError(problem)
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def signed_payload(record: Mapping[str, Any]) -> bytes:
    """What the signature covers: the canonical JSON of the record without signature and hash."""
    unsigned = {key: value for key, value in record.items() if key not in ("signature", "hash")}
    return canonical_json(unsigned).encode("utf-8")


def record_hash(record: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of the record without its ``hash`` (signature included)."""
    return sha256_text(canonical_json({k: v for k, v in record.items() if k != "hash"}))


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes_raw()


def sign(
    *,
    manifest_path: Path,
    reviewer: Reviewer,
    private_key: Ed25519PrivateKey,
    role: str,
    decision: str,
    meaning: str,
    comment: str,
    ledger_path: Path,
    policy: SignoffPolicy,
    reviewers: Mapping[str, Reviewer],
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Sign a validation off and append the signed record to the ledger; returns the record.

    Refuses (InputError) a reviewer not pinned, a key not theirs, a role they do not hold,
    an approval in a role the validation does not require, files changed since validation,
    and sign-offs that break the rules (approving a BLOCK without accepting the risk in a
    comment, approving one's own fix, accepting a risk without saying why).
    """
    if decision not in DECISIONS:
        raise InputError(f"expected one of {', '.join(DECISIONS)}, found {decision!r}",
                         field="decision")
    if meaning not in MEANINGS:
        raise InputError(f"expected one of {', '.join(MEANINGS)}, found {meaning!r}",
                         field="meaning")
    if reviewers.get(reviewer.id) != reviewer:
        problem = f"reviewer {reviewer.id!r} is not pinned in the reviewers file as given"
        raise InputError(problem, field="reviewer")
    if _raw(private_key.public_key()) != _raw(reviewer.public_key):
        problem = (f"the private key ({fingerprint(private_key.public_key())}) does not match "
                   f"the key pinned for {reviewer.id} ({reviewer.fingerprint})")
        raise InputError(problem, field="key")
    if role not in reviewer.roles:
        problem = f"{reviewer.id} does not hold role {role!r} (roles: {', '.join(reviewer.roles)})"
        raise InputError(problem, field="role")
    manifest = load_manifest(manifest_path)
    required = policy.required_roles(manifest)
    if decision == "approve" and role not in required:
        problem = (f"role {role!r} is not required for this validation "
                   f"(required: {', '.join(sorted(required))})")
        raise InputError(problem, field="role")
    for name, problem in _rule_problems(reviewer_id=reviewer.id, decision=decision,
                                        meaning=meaning, comment=comment, manifest=manifest):
        raise InputError(problem, field=name)
    for file, problem in _changed_files(_file_digests(manifest), _manifest_digests(manifest),
                                        since="validation"):
        raise InputError(problem, path=file)
    ledger_path = ledger_path.absolute()
    body = {
        "reviewer": reviewer.id,
        "name": reviewer.name,
        "role": role,
        "meaning": meaning,
        "decision": decision,
        "time": _utc(now),
        "comment": comment,
        "manifest": Path(os.path.relpath(manifest_path.absolute(), ledger_path.parent)).as_posix(),
        "manifest_sha256": manifest.sha256,
        "report_body_sha256": manifest.report_body_sha256,
        "baseline_run_sha256": manifest.baseline_run.sha256,
        "candidate_run_sha256": manifest.candidate_run.sha256,
        "suite_digest": manifest.suite_digest,
        "gate_decision": manifest.decision,
        "candidate_run_id": manifest.candidate_run.run_id,
    }
    return _append(ledger_path, body, private_key, reviewer)


def _tail(data: bytes, ledger_path: Path) -> tuple[int, str]:
    """(count, last hash) of the ledger's records; refuses to extend a damaged ledger."""
    if not data:
        return 0, ZERO_HASH
    lines = data.split(b"\n")
    count = len(lines) - 1
    if lines[-1]:
        problem = "the last line is incomplete: the ledger is damaged (run harness verify)"
        raise InputError(problem, path=ledger_path, line=count + 1)
    try:
        last = json.loads(lines[-2])
    except (UnicodeDecodeError, json.JSONDecodeError):
        last = None
    if not (isinstance(last, dict) and last.get("seq") == count
            and isinstance(last.get("hash"), str) and _HEX64.fullmatch(last["hash"])):
        problem = (f"the last record is malformed or its seq is not {count}: the ledger is "
                   f"damaged (run harness verify)")
        raise InputError(problem, path=ledger_path, line=count)
    return count, last["hash"]


def _append(ledger_path: Path, body: Mapping[str, Any], private_key: Ed25519PrivateKey,
            reviewer: Reviewer) -> dict[str, Any]:
    """Chain, sign and append one record, holding an exclusive lock on the ledger meanwhile."""
    ledger_path.parent.mkdir(parents=True, exist_ok=True)
    with ledger_path.open("a+b") as ledger:
        fcntl.flock(ledger.fileno(), fcntl.LOCK_EX)
        try:
            ledger.seek(0)
            count, prev_hash = _tail(ledger.read(), ledger_path)
            record: dict[str, Any] = {"version": FORMAT_VERSION, "seq": count + 1, **body,
                                      "prev_hash": prev_hash,
                                      "key_fingerprint": reviewer.fingerprint}
            signature = private_key.sign(signed_payload(record))
            record["signature"] = base64.b64encode(signature).decode("ascii")
            record["hash"] = record_hash(record)
            ledger.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
            ledger.flush()
            os.fsync(ledger.fileno())
        finally:
            fcntl.flock(ledger.fileno(), fcntl.LOCK_UN)
    return record


# --- verifying ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verification:
    """What :func:`verify` found.

    ``records`` are the records that passed every check of their own and of the chain, in
    ledger order; ``head`` is the ledger's ``count`` of lines and the ``last_hash`` (None when
    the last line is unreadable), which a report pins with :func:`chain_head_meta`.
    """

    valid: bool
    problems: tuple[str, ...]
    records: tuple[dict[str, Any], ...]
    head: dict[str, Any]


def _parse_line(raw: bytes) -> tuple[dict[str, Any] | None, str | None]:
    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _ in pairs]
        repeated = sorted({key for key in keys if keys.count(key) > 1})
        if repeated:
            problem = f"repeated key {repeated[0]!r}"
            raise ValueError(problem)
        return dict(pairs)

    if not raw.strip():
        return None, "malformed line: empty"
    try:
        record = json.loads(raw.decode("utf-8"), object_pairs_hook=unique)
    except UnicodeDecodeError:
        return None, "malformed line: not UTF-8"
    except ValueError as exc:  # JSONDecodeError or a repeated key
        return None, f"malformed line: {exc}"
    if not isinstance(record, dict):
        return None, f"malformed line: expected a JSON object, found {schema.describe(record)}"
    return record, None


def _shape_problems(record: Mapping[str, Any]) -> list[str]:
    """What is missing or mistyped; an unsigned record is named first."""
    if not record.get("signature"):
        return ["record is not signed (signature missing or empty)"]
    problems = []
    missing = [name for name in RECORD_FIELDS if name not in record]
    unknown = [name for name in record if name not in RECORD_FIELDS]
    if missing:
        problems.append(f"missing field(s) {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown field(s) {', '.join(unknown)}")
    if problems:
        return problems
    if record["version"] != FORMAT_VERSION:
        problems.append(f"version: expected {FORMAT_VERSION}, found {record['version']!r}")
    seq = record["seq"]
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        problems.append(f"seq: expected a whole number from 1, found {seq!r}")
    problems += [f"{name}: expected a string" for name in _TEXT_FIELDS
                 if not isinstance(record[name], str)]
    problems += [f"{name}: expected a SHA-256 (64 lowercase hex digits)"
                 for name in _DIGEST_FIELDS
                 if not (isinstance(record[name], str) and _HEX64.fullmatch(record[name]))]
    if record["decision"] not in DECISIONS:
        problems.append(f"decision: expected one of {', '.join(DECISIONS)}")
    if record["meaning"] not in MEANINGS:
        problems.append(f"meaning: expected one of {', '.join(MEANINGS)}")
    if record["gate_decision"] not in GATE_DECISIONS:
        problems.append(f"gate_decision: expected one of {', '.join(GATE_DECISIONS)}")
    return problems


def _signature_problems(record: Mapping[str, Any], reviewers: Mapping[str, Reviewer]) -> list[str]:
    """Whether the record is intact and signed with the key pinned for its reviewer."""
    from cryptography.exceptions import InvalidSignature

    problems = []
    if record_hash(record) != record["hash"]:
        problems.append("hash does not match the record's content: the record was edited")
    reviewer = reviewers.get(record["reviewer"])
    if reviewer is None:
        problems.append(f"reviewer {record['reviewer']!r} is not in the reviewers file")
        return problems
    try:
        signature = base64.b64decode(record["signature"], validate=True)
        reviewer.public_key.verify(signature, signed_payload(record))
    except (binascii.Error, InvalidSignature):
        problems.append(f"signature does not verify with the key pinned for {reviewer.id} "
                        f"({reviewer.fingerprint}): the record was edited or signed with "
                        f"another key")
    if record["key_fingerprint"] != reviewer.fingerprint:
        problems.append(f"key_fingerprint {record['key_fingerprint']} is not the key pinned for "
                        f"{reviewer.id} ({reviewer.fingerprint})")
    if record["role"] not in reviewer.roles:
        problems.append(f"{reviewer.id} does not hold role {record['role']!r} "
                        f"(roles: {', '.join(reviewer.roles)})")
    return problems


class _Files:
    """Manifests and their files' digests, read once per manifest however many records."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.seen: dict[Path, tuple[str | None, Manifest | None, str | None]] = {}
        self.digests: dict[Path, list[tuple[str, str, Path, str | None]]] = {}

    def manifest(self, name: str) -> tuple[Path, str | None, Manifest | None, str | None]:
        """(path, file sha256 or None, manifest or None, why it did not load)."""
        path = Path(name) if Path(name).is_absolute() else self.base / name
        if path not in self.seen:
            try:
                digest = file_sha256(path)
            except OSError:
                self.seen[path] = (None, None, f"manifest {path} is missing or unreadable")
            else:
                try:
                    self.seen[path] = (digest, load_manifest(path), None)
                except InputError as exc:
                    self.seen[path] = (digest, None, f"manifest {exc}")
        return (path, *self.seen[path])

    def problems(self, record: Mapping[str, Any]) -> list[str]:
        """Files changed since the record was signed, and rules the record breaks."""
        path, digest, manifest, failure = self.manifest(record["manifest"])
        problems = []
        if digest is not None and digest != record["manifest_sha256"]:
            problems.append(f"manifest {path} changed after signing: its sha256 is {digest}, "
                            f"signed {record['manifest_sha256']}")
        if manifest is None:
            return [*problems, str(failure)]
        if not problems:
            copied = _manifest_digests(manifest)
            problems += [f"{name} does not match its manifest {path}"
                         for name, value in copied.items() if record[name] != value]
        if path not in self.digests:
            self.digests[path] = _file_digests(manifest)
        problems += [problem for _, problem in
                     _changed_files(self.digests[path], record, since="signing")]
        problems += [
            f"breaks the sign-off rules: {problem}"
            for _, problem in _rule_problems(
                reviewer_id=record["reviewer"], decision=record["decision"],
                meaning=record["meaning"], comment=record["comment"], manifest=manifest)
        ]
        return problems


def _head_problems(report: Path, entries: Sequence[dict[str, Any] | None]) -> list[str]:
    """Whether the ledger still holds the chain head the report pins."""
    try:
        count, last_hash = read_chain_head(report.read_bytes().decode("utf-8"))
    except OSError as exc:
        return [f"{report}: cannot read the report: {exc.strerror}"]
    except ValueError as exc:  # not UTF-8, no markers, no head or a malformed one
        return [f"{report}: {exc}"]
    if count > len(entries):
        return [f"{report}: pins {count} sign-off(s) but the ledger has {len(entries)}: "
                f"the ledger was truncated"]
    if count == 0:
        found = ZERO_HASH
    else:
        entry = entries[count - 1]
        found = entry.get("hash") if entry is not None else None
    if found != last_hash:
        return [f"{report}: pins record {count} with hash {last_hash}, but the ledger's record "
                f"{count} has {found}: the ledger was rewritten"]
    return []


def verify(
    ledger_path: Path,
    reviewers: Mapping[str, Reviewer],
    *,
    base: Path | None = None,
    reports: Sequence[Path] = (),
) -> Verification:
    """Check every record of the ledger, the chain, the files they sign and the reports' heads.

    Manifest paths in records are relative to ``base`` (default: the ledger's folder); the
    files a manifest names are relative to the manifest's folder. Each problem names
    ``ledger:LINE`` or the report. A missing ledger is an InputError.
    """
    try:
        data = ledger_path.read_bytes()
    except FileNotFoundError:
        raise InputError("ledger not found", path=ledger_path) from None
    except OSError as exc:
        raise InputError(f"cannot read the ledger: {exc.strerror}", path=ledger_path) from None
    lines = data.split(b"\n")
    complete = not lines[-1]
    if complete:
        lines.pop()
    files = _Files(base if base is not None else ledger_path.parent)
    problems: list[str] = []
    entries: list[dict[str, Any] | None] = []
    trusted: list[dict[str, Any]] = []
    for number, raw in enumerate(lines, 1):
        record, malformed = _parse_line(raw)
        if record is None:
            found = [str(malformed)]
        else:
            found = _shape_problems(record)
            if not found:
                found = _signature_problems(record, reviewers) + files.problems(record)
                found += _chain_problems(record, number, entries[-1] if entries else None)
        if number == len(lines) and not complete:
            found.append("incomplete line (no newline at the end): an interrupted write")
        if record is not None and not found:
            trusted.append(record)
        entries.append(record)
        problems += [f"{ledger_path}:{number}: {problem}" for problem in found]
    for report in reports:
        problems += _head_problems(report, entries)
    last = entries[-1] if entries else None
    last_hash = ZERO_HASH if not entries else (last or {}).get("hash")
    return Verification(valid=not problems, problems=tuple(problems), records=tuple(trusted),
                        head={"count": len(entries), "last_hash": last_hash})


def _chain_problems(record: Mapping[str, Any], number: int,
                    previous: Mapping[str, Any] | None) -> list[str]:
    """A record's seq must equal its line, its prev_hash the hash of the line before."""
    problems = []
    if record["seq"] != number:
        problems.append(f"seq {record['seq']} on line {number}: a record before it is missing "
                        f"or the records were reordered")
    if number == 1:
        expected: Any = ZERO_HASH
    elif previous is not None:
        expected = previous.get("hash")
    else:
        return problems  # the line before is malformed, which is reported there
    if record["prev_hash"] != expected:
        problems.append(f"prev_hash does not match the hash of the record before it "
                        f"(line {number - 1}): a record was removed, inserted or reordered"
                        if number > 1 else "prev_hash of the first record is not 64 zeros")
    return problems


# --- approvals ------------------------------------------------------------------------------


def _bound(record: Mapping[str, Any], manifest: Manifest) -> bool:
    """Whether the record signs off exactly this validation."""
    return (record.get("manifest_sha256") == manifest.sha256
            and record.get("report_body_sha256") == manifest.report_body_sha256
            and record.get("candidate_run_sha256") == manifest.candidate_run.sha256
            and record.get("candidate_run_id") == manifest.candidate_run.run_id)


def approvals(records: Sequence[Mapping[str, Any]], manifest: Manifest,
              policy: SignoffPolicy) -> tuple[bool, list[str]]:
    """Whether the sign-offs of this manifest approve restoring it, and what is missing.

    Pass only verified records (``verify(...).records``). An approval counts for the role it
    was signed in; each reviewer's latest decision stands, so a reject after their approvals
    withdraws them and blocks until that reviewer approves again. The list names each required
    role without an approval and each reviewer whose latest decision is reject.
    """
    approved: dict[str, set[str]] = {}
    rejected: dict[str, Mapping[str, Any]] = {}
    for record in sorted((r for r in records if _bound(r, manifest)), key=lambda r: r["seq"]):
        reviewer_id = record["reviewer"]
        if record["decision"] == "reject":
            approved.pop(reviewer_id, None)
            rejected[reviewer_id] = record
        elif not _rule_problems(reviewer_id=reviewer_id, decision="approve",
                                meaning=record["meaning"], comment=record["comment"],
                                manifest=manifest):
            approved.setdefault(reviewer_id, set()).add(record["role"])
            rejected.pop(reviewer_id, None)
    covered = set().union(*approved.values())
    missing = sorted(policy.required_roles(manifest) - covered)
    findings = [f"no approval in role {role}" for role in missing]
    findings += [f"rejected by {reviewer_id} ({record['role']}, {record['time']})"
                 for reviewer_id, record in rejected.items()]
    return not findings, findings
