"""Reviewers and their keys: the pinned public keys of the reviewers file, and private keys.

Each reviewer signs with an Ed25519 key of their own (OpenSSH format). The public keys are
pinned in a reviewers file that changes only through code review; private keys stay where
:func:`keygen` wrote them, outside any git work tree, and nothing here writes them elsewhere.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import schema
from harness.errors import InputError
from harness.git import work_tree
from harness.loader import read_yaml

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

PASSPHRASE_ENV = "HARNESS_KEY_PASSPHRASE"

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
class PinnedKey:
    """One public key pinned for a reviewer, and when signatures made with it count.

    A signature counts when its time is at or after ``valid_from``, before ``valid_until``
    and before ``revoked``. The time is the signer's claim; a revoked key's signatures that
    were not already in the ledger's accepted history are refused whatever time they claim
    (see :func:`harness.signoff.ledger.verify`).
    """

    key: str
    """``ssh-ed25519 AAAA...`` (without its comment)."""
    fingerprint: str
    public_key: Ed25519PublicKey = field(compare=False, repr=False)
    valid_from: dt.datetime | None = None
    valid_until: dt.datetime | None = None
    revoked: dt.datetime | None = None

    def problem_at(self, moment: dt.datetime) -> str | None:
        """Why a signature made at ``moment`` with this key does not count, or None."""
        if self.revoked is not None and moment >= self.revoked:
            return f"after key {self.fingerprint} was revoked ({_shown(self.revoked)})"
        if self.valid_from is not None and moment < self.valid_from:
            return f"before key {self.fingerprint} became valid ({_shown(self.valid_from)})"
        if self.valid_until is not None and moment >= self.valid_until:
            return f"after key {self.fingerprint} stopped being valid ({_shown(self.valid_until)})"
        return None


def _shown(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Reviewer:
    """A person allowed to sign, the roles they hold, and the public keys pinned for them
    (several when keys rotate: the old ones stay, with the dates that bound them)."""

    id: str
    name: str
    roles: tuple[str, ...]
    keys: tuple[PinnedKey, ...]

    def key_for(self, fingerprint_text: str) -> PinnedKey | None:
        """The pinned key with this fingerprint, if any."""
        return next((k for k in self.keys if k.fingerprint == fingerprint_text), None)

    @property
    def fingerprints(self) -> str:
        return ", ".join(k.fingerprint for k in self.keys)


def _check_key(value: Any, where: str, line: int | None) -> tuple[str, Ed25519PublicKey]:
    if not isinstance(value, str):
        problem = f"expected an OpenSSH public key line, found {schema.describe(value)}"
        raise schema.Invalid(problem, field=where, line=line)
    try:
        public_key = parse_public_key(value)
    except ValueError as exc:
        raise schema.Invalid(str(exc), field=where, line=line) from None
    return " ".join(value.split()[:2]), public_key


_KEY = schema.Custom(_check_key, schema={"type": "string", "description": "ssh-ed25519 AAAA..."})
_MOMENT = schema.Timestamp(description="An ISO 8601 date or date-time (UTC when no zone).")
_REVIEWERS_SCHEMA = schema.Record(
    {"reviewers": schema.ListOf(
        schema.Record(
            {"id": schema.Text(), "name": schema.Text(),
             "roles": schema.ListOf(schema.Text(), min_items=1),
             "key": _KEY,
             "keys": schema.ListOf(schema.Record(
                 {"key": _KEY, "valid_from": _MOMENT, "valid_until": _MOMENT,
                  "revoked": _MOMENT},
                 required=("key",)), min_items=1)},
            required=("id", "name", "roles"),
        ),
        min_items=1,
    )},
    required=("reviewers",),
)


def _pinned(entry: dict[str, Any], marks: Any, path: Path, where: str) -> list[PinnedKey]:
    if ("key" in entry) == ("keys" in entry):
        problem = ("expected exactly one of key (one public key) or keys (several, with the "
                   "dates they are valid)")
        field_name = "keys" if "keys" in entry else "key"
        raise InputError(problem, path=path, line=marks.lines.get(field_name, marks.line),
                         field=f"{where}.{field_name}")
    if "key" in entry:
        text, public_key = entry["key"]
        return [PinnedKey(text, fingerprint(public_key), public_key)]
    pinned = []
    for index, item in enumerate(entry["keys"]):
        text, public_key = item["key"]
        start, end = item.get("valid_from"), item.get("valid_until")
        if start is not None and end is not None and end <= start:
            line = marks["keys"][index].lines.get("valid_until")
            raise InputError("valid_until must come after valid_from", path=path, line=line,
                             field=f"{where}.keys[{index}].valid_until")
        pinned.append(PinnedKey(text, fingerprint(public_key), public_key, start, end,
                                item.get("revoked")))
    return pinned


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
        pinned = _pinned(entry, marks, path, where)
        for key in pinned:
            if key.key in key_owner:
                owner = key_owner[key.key]
                problem = (f"this key is already pinned for reviewer {owner!r}" if owner !=
                           reviewer_id else "this key is pinned twice for this reviewer")
                problem += ": each reviewer signs with keys of their own"
                field_name = "key" if "key" in entry else "keys"
                raise InputError(problem, path=path, line=marks.lines[field_name],
                                 field=f"{where}.{field_name}")
            key_owner[key.key] = reviewer_id
        empty_roles = [role for role in entry["roles"] if not role.strip()]
        if empty_roles or not entry["name"].strip():
            name = "roles" if empty_roles else "name"
            problem = f"expected a non-empty {'role' if empty_roles else 'name'}"
            raise InputError(problem, path=path, line=marks.lines[name], field=f"{where}.{name}")
        reviewers[reviewer_id] = Reviewer(
            id=reviewer_id, name=entry["name"], roles=tuple(dict.fromkeys(entry["roles"])),
            keys=tuple(pinned),
        )
        first_line[reviewer_id] = id_line
    return reviewers


# --- private keys ---------------------------------------------------------------------------


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
    if work_tree(private_path.parent) is not None:
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
