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
from harness.errors import InputError
from harness.signoff.ledger import LEGACY_LEDGER

NONE = "none"
"""``--since none``: check no history (a weaker check, and said so)."""
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


def _default_branch(top: Path) -> str | None:
    remote = git.text("symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD", cwd=top)
    if remote:
        return remote
    configured = git.text("config", "--get", "init.defaultBranch", cwd=top)
    for name in filter(None, (configured, "main", "master")):
        for ref in (f"refs/heads/{name}", f"refs/remotes/origin/{name}"):
            if git.text("rev-parse", "--verify", "--quiet", ref, cwd=top):
                return ref
    return None


def _how_to(problem: str) -> InputError:
    hint = ("; name the revision the ledgers must extend with --since REF (e.g. the commit of "
            "the last accepted release, or origin/main after fetching it), or --since none for "
            "the weaker check against the heads the reports pin")
    return InputError(problem + hint, field="--since")


def resolve(since: str | None, folder: Path) -> tuple[Path, str, str] | None:
    """(work tree top, commit, how it was chosen) of the revision to check against; None for
    ``--since none`` or outside a git work tree without ``--since``.

    Fails closed (InputError, exit 2) where a revision should be found and cannot: a work tree
    with no commits, a shallow clone without the merge base, an unknown REF.
    """
    if since == NONE:
        return None
    top = git.work_tree(folder)
    if top is None:
        if since is not None:
            raise _how_to(f"--since {since}: {folder} is not in a git work tree")
        return None
    if since is not None:
        commit = git.text("rev-parse", "--verify", "--quiet", f"{since}^{{commit}}", cwd=top)
        if not commit:
            raise _how_to(f"--since {since}: no such revision in {top}")
        return top, commit, f"--since {since}"
    if not git.text("rev-parse", "--verify", "--quiet", "HEAD", cwd=top):
        raise _how_to(f"{top} has no commits, so there is no history to check the ledgers "
                      f"against")
    branch = _default_branch(top)
    if branch is None:
        raise _how_to(f"no default branch (origin/HEAD, main or master) in {top} to take the "
                      f"merge base with")
    base = git.text("merge-base", "HEAD", branch, cwd=top)
    if not base:
        raise _how_to(f"no merge base of HEAD and {branch} (a shallow clone without it?)")
    return top, base, f"the merge base of HEAD and {branch}"


def check(folder: Path, since: str | None) -> History:
    """Every ledger under ``folder`` that git holds at the revision (see :func:`resolve`) must
    still exist and begin with exactly the bytes it had then."""
    found = resolve(since, folder)
    if found is None:
        why = ("--since none" if since == NONE else f"{folder} is not in a git work tree")
        return History((), f"ledger history not checked ({why}): only the heads the reports "
                           f"pin guard against a shortened ledger")
    top, commit, how = found
    relative = folder.resolve().relative_to(top.resolve())
    listed = git.git("ls-tree", "-r", "-z", "--name-only", "--full-tree", commit, "--",
                     relative.as_posix(), cwd=top)
    names = ([n for n in listed.stdout.decode("utf-8", "replace").split("\0") if n]
             if listed is not None and listed.returncode == 0 else [])
    problems = []
    held: dict[Path, int] = {}
    for name in sorted(n for n in names if is_ledger(Path(n).name)):
        then = git.git("show", f"{commit}:{name}", cwd=top)
        if then is None or then.returncode != 0:
            problems.append(f"{name}: cannot read it at {commit[:12]}")
            continue
        path = top / name
        held[path.resolve()] = then.stdout.count(b"\n")
        try:
            now = path.read_bytes()
        except FileNotFoundError:
            problems.append(f"{path}: the ledger existed at {commit[:12]} ({how}) and is gone")
            continue
        if not now.startswith(then.stdout):
            lines = then.stdout.count(b"\n")
            problems.append(f"{path}: does not extend the ledger as it was at {commit[:12]} "
                            f"({how}, {lines} record(s)): records were removed or edited")
    return History(tuple(problems), f"ledger history checked against {commit[:12]} ({how}): "
                                    f"{len(held)} ledger(s) held then", checked=True, held=held)
