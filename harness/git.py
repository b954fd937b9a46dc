"""Asking git about the project: the commit checked out, the work tree, a file's history.

Every call runs ``git`` with the environment's ``GIT_*`` variables removed (a hook or an outer
repository's settings must not redirect it) and a timeout; git missing or failing is an answer
(None, False), never an exception.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

TIMEOUT_S = 30


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
