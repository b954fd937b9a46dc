"""Reviewers and their keys: the pinned public keys of the reviewers file, and private keys.

Each reviewer signs with an Ed25519 key of their own (OpenSSH format). The public keys are
pinned in a reviewers file that changes only through code review; private keys stay where
:func:`keygen` wrote them, outside any git work tree, and nothing here writes them elsewhere.
"""

from __future__ import annotations

import base64
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
