"""The sign-off ledger: signed, hash-chained records, appended under a lock and verified.

Each sign-off is one JSON line (``version`` first), signed with the reviewer's Ed25519 key.
Each record names the SHA-256 of everything it vouches for (the validation manifest, the
report's body, both run records) and the hash of the record before it, so :func:`verify` finds
an edited, removed, reordered, forged or unsigned record and any file changed after signing; a
ledger cut short is found against the chain head that a report pins.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import fcntl
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import schema
from harness.digest import canonical_json, sha256_file, sha256_text
from harness.errors import InputError
from harness.gate import OUTCOMES
from harness.report.body import ZERO_HASH, read_chain_head, report_file_body_sha256
from harness.report.manifest import Manifest, load_manifest
from harness.signoff.keys import Reviewer, fingerprint
from harness.signoff.policy import SignoffPolicy, rule_problems

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

FORMAT_VERSION = 2
DECISIONS = ("approve", "reject")
MEANINGS = ("reviewed", "approved", "risk_accepted")
RECORD_FIELDS = (
    "version", "seq", "reviewer", "name", "role", "meaning", "decision", "time", "comment",
    "cases", "manifest", "manifest_sha256", "report_body_sha256", "baseline_run_sha256",
    "candidate_run_sha256", "suite_digest", "gate_decision", "candidate_run_id", "prev_hash",
    "key_fingerprint", "signature", "hash",
)
"""A version 2 record's fields; version 1 records (still valid) have all but ``cases``."""
_FIELDS = {1: tuple(name for name in RECORD_FIELDS if name != "cases"), 2: RECORD_FIELDS}
_GATE_DECISIONS = {1: ("RESTORE", "BLOCK"), 2: OUTCOMES}
LEGACY_LEDGER = "signoffs.jsonl"
"""The one ledger every report shared before version 2 manifests; still read for them."""
_TEXT_FIELDS = ("reviewer", "name", "role", "time", "comment", "manifest", "candidate_run_id",
                "key_fingerprint", "signature")
_DIGEST_FIELDS = ("manifest_sha256", "report_body_sha256", "baseline_run_sha256",
                  "candidate_run_sha256", "suite_digest", "prev_hash", "hash")
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Accepted:
    """What a ledger's history accepted: its first ``lines`` records, and the reviewers file
    as it was then. A record after them was added by the change under review; its key and role
    must already have been pinned then (a key a change adds signs nothing for that change), and
    a revoked key adds none."""

    lines: int
    reviewers: Mapping[str, Reviewer]


def ledger_for(manifest: Manifest, given: Path | None = None) -> Path:
    """Where a validation's sign-offs are appended: its own ledger beside its report
    (``validation-...signoffs.jsonl``), so branches that sign different reports never touch the
    same file; a version 1 manifest's sign-offs went to the shared ``signoffs.jsonl``.

    ``given`` (a command's ``--ledger``) may name another file only while the validation's own
    ledger does not exist: a copy cut short must not stand in for the real one.
    """
    own = (manifest.path.parent / LEGACY_LEDGER if manifest.version == 1
           else manifest.path.with_name(f"{manifest.path.stem}.signoffs.jsonl"))
    if given is None or given.resolve() == own.resolve():
        return own
    if own.exists():
        problem = (f"the validation's own ledger is {own}: its sign-offs are read there, not "
                   f"from another file")
        raise InputError(problem, path=given, field="--ledger")
    return given


# --- what a record vouches for --------------------------------------------------------------

def _file_digests(manifest: Manifest) -> list[tuple[str, str, Path, str | None]]:
    """(record field, what, file, its digest now or None when unreadable) for each file."""
    folder = manifest.path.parent
    files = [
        ("report_body_sha256", "report", manifest.report_path, report_file_body_sha256),
        ("baseline_run_sha256", "baseline run record", manifest.baseline_run.resolve(folder),
         sha256_file),
        ("candidate_run_sha256", "candidate run record", manifest.candidate_run.resolve(folder),
         sha256_file),
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


# --- signing --------------------------------------------------------------------------------


def _moment(text: str) -> dt.datetime:
    """A record's ``time`` as an aware datetime (records write ``...Z``)."""
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


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
    cases: Sequence[str] = (),
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Sign a validation off and append the signed record to the ledger; returns the record.

    Refuses (InputError) a reviewer not pinned, a key not theirs, a role they do not hold,
    an approval in a role the validation does not require, files changed since validation,
    and sign-offs that break the rules (approving what the gate blocked other than by
    accepting the risk of the weakened or retired cases it names, approving one's own fix,
    accepting a risk without saying why). ``cases`` are the cases whose risk is accepted.
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
    time = _utc(now)
    mine = fingerprint(private_key.public_key())
    pinned = reviewer.key_for(mine)
    if pinned is None or _raw(private_key.public_key()) != _raw(pinned.public_key):
        problem = (f"the private key ({mine}) does not match a key pinned for {reviewer.id} "
                   f"({reviewer.fingerprints})")
        raise InputError(problem, field="key")
    expired = pinned.problem_at(_moment(time))
    if expired is not None:
        problem = f"a signature made now would be {expired}: sign with a current key"
        raise InputError(problem, field="key")
    if role not in reviewer.roles:
        problem = f"{reviewer.id} does not hold role {role!r} (roles: {', '.join(reviewer.roles)})"
        raise InputError(problem, field="role")
    manifest = load_manifest(manifest_path)
    required = policy.required_for((i.id, i.category) for i in manifest.incidents)
    if decision == "approve" and role not in required:
        problem = (f"role {role!r} is not required for this validation "
                   f"(required: {', '.join(required)})")
        raise InputError(problem, field="role")
    for name, problem in rule_problems(reviewer_id=reviewer.id, decision=decision,
                                       meaning=meaning, comment=comment, cases=cases,
                                       manifest=manifest):
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
        "time": time,
        "comment": comment,
        "cases": list(dict.fromkeys(cases)),
        "manifest": Path(os.path.relpath(manifest_path.absolute(), ledger_path.parent)).as_posix(),
        "manifest_sha256": manifest.sha256,
        **_manifest_digests(manifest),
    }
    return _append(ledger_path, body, private_key, pinned.fingerprint)


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
            key_fingerprint: str) -> dict[str, Any]:
    """Chain, sign and append one record, holding an exclusive lock on the ledger meanwhile."""
    ledger_path.parent.mkdir(parents=True, exist_ok=True)
    with ledger_path.open("a+b") as ledger:
        fcntl.flock(ledger.fileno(), fcntl.LOCK_EX)
        try:
            ledger.seek(0)
            count, prev_hash = _tail(ledger.read(), ledger_path)
            record: dict[str, Any] = {"version": FORMAT_VERSION, "seq": count + 1, **body,
                                      "prev_hash": prev_hash,
                                      "key_fingerprint": key_fingerprint}
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
    entries: tuple[dict[str, Any] | None, ...] = ()
    """Every line as parsed (None for a malformed one), verified or not."""


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
    version = record.get("version")
    if isinstance(version, bool) or version not in _FIELDS:
        return [f"version: expected one of {', '.join(map(str, _FIELDS))}, found {version!r}"]
    problems = []
    fields = _FIELDS[version]
    missing = [name for name in fields if name not in record]
    unknown = [name for name in record if name not in fields]
    if missing:
        problems.append(f"missing field(s) {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown field(s) {', '.join(unknown)}")
    if problems:
        return problems
    cases = record.get("cases", [])
    if not (isinstance(cases, list) and all(isinstance(case, str) for case in cases)):
        problems.append("cases: expected a list of case ids")
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
    if record["gate_decision"] not in _GATE_DECISIONS[version]:
        problems.append(f"gate_decision: expected one of "
                        f"{', '.join(_GATE_DECISIONS[version])}")
    return problems


def _signature_problems(record: Mapping[str, Any], reviewers: Mapping[str, Reviewer], *,
                        added: Mapping[str, Reviewer] | None, now: dt.datetime) -> list[str]:
    """Whether the record is intact and signed with a key pinned for its reviewer, valid when
    it was signed. ``added`` is, for a record added since the ledger's checked history, the
    reviewers file as that history had it (None otherwise): see :class:`Accepted`."""
    from cryptography.exceptions import InvalidSignature

    problems = []
    if record_hash(record) != record["hash"]:
        problems.append("hash does not match the record's content: the record was edited")
    reviewer = reviewers.get(record["reviewer"])
    if reviewer is None:
        problems.append(f"reviewer {record['reviewer']!r} is not in the reviewers file")
        return problems
    pinned = reviewer.key_for(record["key_fingerprint"])
    if pinned is None:
        problems.append(f"key_fingerprint {record['key_fingerprint']} is not a key pinned for "
                        f"{reviewer.id} ({reviewer.fingerprints})")
        return problems
    try:
        signature = base64.b64decode(record["signature"], validate=True)
        pinned.public_key.verify(signature, signed_payload(record))
    except (binascii.Error, InvalidSignature):
        problems.append(f"signature does not verify with the key pinned for {reviewer.id} "
                        f"({pinned.fingerprint}): the record was edited or signed with "
                        f"another key")
    try:
        moment = _moment(record["time"])
    except ValueError:
        problems.append(f"time {record['time']!r} is not an ISO 8601 date-time")
    else:
        expired = pinned.problem_at(moment)
        if expired is not None:
            problems.append(f"signed at {record['time']}, {expired}")
        elif pinned.revoked is not None and pinned.revoked <= now and added is not None:
            problems.append(f"signed with key {pinned.fingerprint}, revoked "
                            f"{pinned.revoked.date()}, and not in the ledger's accepted "
                            f"history: a revoked key adds no sign-off, whatever time it claims")
    if added is not None:
        then = added.get(reviewer.id)
        if then is None or then.key_for(pinned.fingerprint) is None:
            problems.append(f"signed with key {pinned.fingerprint}, which the reviewers file "
                            f"of the accepted history did not pin for {reviewer.id}: a key "
                            f"counts once the change that pins it is accepted")
        elif record["role"] not in then.roles:
            problems.append(f"{reviewer.id} did not hold role {record['role']!r} in the "
                            f"reviewers file of the accepted history")
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
                digest = sha256_file(path)
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
            for _, problem in rule_problems(
                reviewer_id=record["reviewer"], decision=record["decision"],
                meaning=record["meaning"], comment=record["comment"],
                cases=record.get("cases", ()), manifest=manifest)
        ]
        return problems


def head_problems(report: Path, html: str, entries: Sequence[Mapping[str, Any] | None], *,
                  signed: bool = True) -> list[str]:
    """Whether the ledger (its parsed ``entries``, None for a malformed line) still holds the
    record the report pins. A report with no pin is a problem only when it has sign-offs."""
    try:
        count, last_hash = read_chain_head(html)
    except ValueError as exc:  # no head, several, or a malformed one
        return [f"{report}: {exc}"] if signed else []
    if count > len(entries):
        return [f"{report}: pins {count} sign-off(s) but the ledger has {len(entries)}: "
                f"the ledger was truncated"]
    found: Any = ZERO_HASH
    if count > 0:
        entry = entries[count - 1]
        found = entry.get("hash") if entry is not None else None
    if found != last_hash:
        return [f"{report}: pins record {count} with hash {last_hash}, but the ledger's record "
                f"{count} has {found}: the ledger was rewritten"]
    return []


def _report_head_problems(report: Path, entries: Sequence[Mapping[str, Any] | None]
                          ) -> list[str]:
    try:
        html = report.read_bytes().decode("utf-8")
    except OSError as exc:
        return [f"{report}: cannot read the report: {exc.strerror}"]
    except ValueError as exc:  # not UTF-8
        return [f"{report}: {exc}"]
    return head_problems(report, html, entries)


def verify(
    ledger_path: Path,
    reviewers: Mapping[str, Reviewer],
    *,
    base: Path | None = None,
    reports: Sequence[Path] = (),
    accepted: Accepted | None = None,
    now: dt.datetime | None = None,
) -> Verification:
    """Check every record of the ledger, the chain, the files they sign and the reports' heads.

    Manifest paths in records are relative to ``base`` (default: the ledger's folder); the
    files a manifest names are relative to the manifest's folder. ``accepted`` is what the
    ledger's history accepted (None: no history was checked). Each problem names
    ``ledger:LINE`` or the report. A missing ledger is an InputError.
    """
    now = now or dt.datetime.now(dt.UTC)
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
                added = (accepted.reviewers if accepted is not None
                         and number > accepted.lines else None)
                found = _signature_problems(record, reviewers, added=added, now=now)
                found += files.problems(record)
                found += _chain_problems(record, number, entries[-1] if entries else None)
        if number == len(lines) and not complete:
            found.append("incomplete line (no newline at the end): an interrupted write")
        if record is not None and not found:
            trusted.append(record)
        entries.append(record)
        problems += [f"{ledger_path}:{number}: {problem}" for problem in found]
    for report in reports:
        problems += _report_head_problems(report, entries)
    last = entries[-1] if entries else None
    last_hash = ZERO_HASH if not entries else (last or {}).get("hash")
    return Verification(valid=not problems, problems=tuple(problems), records=tuple(trusted),
                        head={"count": len(entries), "last_hash": last_hash},
                        entries=tuple(entries))


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
