"""The ledgers cannot shrink unseen: each must extend its own past, as git recorded it.

An append-only ledger is consistent with its history when the ledger at an earlier revision is
a prefix of the ledger now, byte for byte, the way a transparency log proves consistency. A
deleted line, an edited one, a rewritten tail or a ledger file removed outright all break it,
even when the report that pinned the old head was edited to match. The earlier revision is
``--since REF``, by default the merge base of HEAD with the default branch: what was accepted
before this change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness import git
from harness.signoff.ledger import LEGACY_LEDGER

LEDGER_SUFFIX = ".signoffs.jsonl"


@dataclass(frozen=True, slots=True)
class History:
    """What the history check found: ``problems`` block; ``note`` says what was checked;
    ``held`` maps each ledger git held at the revision to its number of records then."""

    problems: tuple[str, ...]
    note: str
    checked: bool = False
    held: Mapping[Path, int] = field(default_factory=dict)

    def accepted(self, ledger: Path) -> int | None:
        """How many of the ledger's first records were already in its history (None when no
        history was checked): any record after them was added by the change under review."""
        return self.held.get(ledger.resolve(), 0) if self.checked else None


def is_ledger(name: str) -> bool:
    return name == LEGACY_LEDGER or name.endswith(LEDGER_SUFFIX)


def check(folder: Path, since: str | None) -> History:
    """Every ledger under ``folder`` that git holds at the revision (see
    :func:`harness.git.revision`) must still exist and begin with exactly the bytes it had
    then."""
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
                                    f"{len(held)} ledger(s) held then", checked=True, held=held)
