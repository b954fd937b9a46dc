"""How a run keeps CPython's cyclic garbage collector out of its way.

A suite of 10,000 cases is a few hundred thousand small containers that all live until the run
ends. The collector is triggered by allocations: while they are built, it walks the growing
heap again and again (half the time of loading 10,000 cases), and each of its full passes
during the run, and the one pytest makes at its end, walks them all once more. Building a
suite creates almost no cyclic garbage (145 objects for 10,000 cases), so the collector can
rest while it is built, and what was built can be set aside once the run begins.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def building() -> Iterator[None]:
    """The collector paused while long-lived structures are built (as it was before, after;
    nested uses leave it to the outermost)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


_aside = False
"""Whether this module set the heap aside (and has not given it back)."""


def set_aside() -> None:
    """Move what is alive now (suites, cases, pytest's items, imported modules) out of the
    collector's sight (``gc.freeze``): a run's cases live until it ends, so its passes need
    walk only what the run makes. It stays aside until :func:`give_back`, or until the
    process ends, which then need not walk or free it either (for 10,000 cases, half a
    second of the run). What is set aside and has become cyclic garbage by then is not
    collected at exit, so its finalisers do not run: Python does not promise them for what
    is alive at exit either, and the harness closes its own files and records itself."""
    global _aside
    # A program that froze its heap itself (before forking workers, say) decides when to
    # give it back: the harness neither adds to that nor thaws it.
    if not _aside and not gc.get_freeze_count():
        gc.freeze()
        _aside = True


def give_back() -> None:
    """Return what :func:`set_aside` set aside to the collector (``gc.unfreeze``), so a
    process that runs again frees what it no longer holds."""
    global _aside
    if _aside:
        gc.unfreeze()
        _aside = False
