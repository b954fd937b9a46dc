"""Asking git about the project: the commit checked out, the work tree, a file's history.

Every call runs ``git`` with the environment's ``GIT_*`` variables removed (a hook or an outer
repository's settings must not redirect it) and a timeout; git missing or failing is an answer
(None, False), never an exception.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from harness.errors import InputError

TIMEOUT_S = 30
NONE = "none"
"""``--since none``: check no history (a weaker check, and said so)."""


def git(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes] | None:
    """``git ARGS`` in ``cwd`` (its nearest existing folder); None when git cannot run."""
    while not cwd.exists() and cwd != cwd.parent:
        cwd = cwd.parent
    env = {name: value for name, value in os.environ.items() if not name.startswith("GIT_")}
    try:
        return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True,
                              timeout=TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return None


def text(*args: str, cwd: Path) -> str | None:
    """The stripped standard output of a git command that succeeded, else None."""
    done = git(*args, cwd=cwd)
    if done is None or done.returncode != 0:
        return None
    return done.stdout.decode("utf-8", "replace").strip()


def work_tree(folder: Path) -> Path | None:
    """The top of the git work tree ``folder`` is in; None outside one (or without git)."""
    top = text("rev-parse", "--show-toplevel", cwd=folder)
    return Path(top) if top else None


def head_commit(folder: Path) -> str | None:
    """The commit checked out in ``folder``, or None outside a git work tree."""
    return text("rev-parse", "HEAD", cwd=folder) or None


def _default_branch(top: Path) -> str | None:
    remote = text("symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD", cwd=top)
    if remote:
        return remote
    configured = text("config", "--get", "init.defaultBranch", cwd=top)
    for name in filter(None, (configured, "main", "master")):
        for ref in (f"refs/heads/{name}", f"refs/remotes/origin/{name}"):
            if text("rev-parse", "--verify", "--quiet", ref, cwd=top):
                return ref
    return None


def _how_to(problem: str) -> InputError:
    hint = ("; name the revision to check against with --since REF (e.g. the commit of the "
            "last accepted release, or origin/main after fetching it), or --since none for the "
            "weaker check without history")
    return InputError(problem + hint, field="--since")


def revision(since: str | None, folder: Path) -> tuple[Path, str, str] | None:
    """(work tree top, commit, how it was chosen) of the revision a history check compares
    with: ``since`` itself, or by default the merge base of HEAD with the default branch
    (``origin/HEAD``, else ``main`` or ``master``), what was accepted before this change.

    None for ``--since none``, or outside a git work tree when ``since`` is not given. Fails
    closed (InputError, exit 2) where a revision should be found and cannot: a work tree with
    no commits, a shallow clone without the merge base, an unknown REF.
    """
    if since == NONE:
        return None
    top = work_tree(folder)
    if top is None:
        if since is not None:
            raise _how_to(f"--since {since}: {folder} is not in a git work tree")
        return None
    if since is not None:
        commit = text("rev-parse", "--verify", "--quiet", f"{since}^{{commit}}", cwd=top)
        if not commit:
            raise _how_to(f"--since {since}: no such revision in {top}")
        return top, commit, f"--since {since}"
    if not text("rev-parse", "--verify", "--quiet", "HEAD", cwd=top):
        raise _how_to(f"{top} has no commits, so there is no history to check against")
    branch = _default_branch(top)
    if branch is None:
        raise _how_to(f"no default branch (origin/HEAD, main or master) in {top} to take the "
                      f"merge base with")
    base = text("merge-base", "HEAD", branch, cwd=top)
    if not base:
        raise _how_to(f"no merge base of HEAD and {branch} (a shallow clone without it?)")
    return top, base, f"the merge base of HEAD and {branch}"


def files_at(top: Path, commit: str, folder: Path) -> list[str]:
    """The files under ``folder`` at ``commit``, as paths relative to ``top``."""
    relative = folder.resolve().relative_to(top.resolve())
    listed = git("ls-tree", "-r", "-z", "--name-only", "--full-tree", commit, "--",
                 relative.as_posix(), cwd=top)
    if listed is None or listed.returncode != 0:
        return []
    return [name for name in listed.stdout.decode("utf-8", "replace").split("\0") if name]


def show(top: Path, commit: str, name: str) -> bytes | None:
    """The bytes of file ``name`` (relative to ``top``) at ``commit``, or None."""
    done = git("show", f"{commit}:{name}", cwd=top)
    return done.stdout if done is not None and done.returncode == 0 else None
