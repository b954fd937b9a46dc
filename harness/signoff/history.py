"""The ledgers cannot shrink unseen: each must extend its own past, as git recorded it.

An append-only ledger is consistent with its history when the ledger at an earlier revision is
a prefix of the ledger now, byte for byte, the way a transparency log proves consistency. A
deleted line, an edited one, a rewritten tail or a ledger file removed outright all break it,
even when the report that pinned the old head was edited to match. The earlier revision is
``--since REF``, by default the merge base of HEAD with the default branch: what was accepted
before this change.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness import git
from harness.errors import InputError
from harness.signoff.keys import Reviewer, load_reviewers
from harness.signoff.ledger import LEGACY_LEDGER, Accepted

LEDGER_SUFFIX = ".signoffs.jsonl"


@dataclass(frozen=True, slots=True)
class History:
    """What the history check found: ``problems`` block; ``note`` says what was checked;
    ``held`` maps each ledger git held at the revision to its number of records then;
    ``reviewers`` is the reviewers file as it was then (empty when git did not hold one)."""

    problems: tuple[str, ...]
    note: str
    checked: bool = False
    held: Mapping[Path, int] = field(default_factory=dict)
    reviewers: Mapping[str, Reviewer] = field(default_factory=dict)

    def accepted(self, ledger: Path) -> Accepted | None:
        """What the ledger's history accepted (None when no history was checked): any record
        after its first ``lines`` was added by the change under review."""
        if not self.checked:
            return None
        return Accepted(self.held.get(ledger.resolve(), 0), self.reviewers)


def is_ledger(name: str) -> bool:
    return name == LEGACY_LEDGER or name.endswith(LEDGER_SUFFIX)


def _reviewers_then(top: Path, commit: str, reviewers: Path | None) -> dict[str, Reviewer]:
    """The reviewers file as git held it at ``commit``; empty when it did not hold one (a
    reviewers file not yet accepted pins nobody). A file that did not load then is an error."""
    if reviewers is None:
        return {}
    try:
        name = reviewers.resolve().relative_to(top.resolve()).as_posix()
    except ValueError:
        problem = (f"is outside the git work tree {top}, so whether its keys were accepted "
                   f"cannot be checked: keep it in the repository (or pass --since none)")
        raise InputError(problem, path=reviewers, field="--reviewers") from None
    data = git.show(top, commit, name)
    if data is None:
        return {}
    with tempfile.TemporaryDirectory() as folder:
        then = Path(folder) / "reviewers.yaml"
        then.write_bytes(data)
        try:
            return load_reviewers(then)
        except InputError as exc:
            problem = f"the reviewers file at {commit[:12]} does not load: {exc.problem}"
            raise InputError(problem, path=reviewers) from None


def check(folder: Path, since: str | None, *, reviewers: Path | None = None) -> History:
    """Every ledger under ``folder`` that git holds at the revision (see
    :func:`harness.git.revision`) must still exist and begin with exactly the bytes it had
    then; ``reviewers`` (the reviewers file) is read as it was then."""
    found = git.revision(since, folder)
    if found is None:
        why = ("--since none" if since == git.NONE else f"{folder} is not in a git work tree")
        return History((), f"ledger history not checked ({why}): only the heads the reports "
                           f"pin guard against a shortened ledger")
    top, commit, how = found
    problems = []
    held: dict[Path, int] = {}
    for name in sorted(n for n in git.files_at(top, commit, folder) if is_ledger(Path(n).name)):
        then = git.show(top, commit, name)
        if then is None:
            problems.append(f"{name}: cannot read it at {commit[:12]}")
            continue
        path = top / name
        held[path.resolve()] = then.count(b"\n")
        try:
            now = path.read_bytes()
        except FileNotFoundError:
            problems.append(f"{path}: the ledger existed at {commit[:12]} ({how}) and is gone")
            continue
        if not now.startswith(then):
            problems.append(f"{path}: does not extend the ledger as it was at {commit[:12]} "
                            f"({how}, {held[path.resolve()]} record(s)): records were removed "
                            f"or edited")
    return History(tuple(problems), f"ledger history checked against {commit[:12]} ({how}): "
                                    f"{len(held)} ledger(s) held then", checked=True, held=held,
                   reviewers=_reviewers_then(top, commit, reviewers))
