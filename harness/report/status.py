"""What a report derives from its sign-off ledger, as plain data the renderers lay out.

The sign-off package computes a :class:`Status` (it reads the ledger; the report never does)
and the report renders it into its derived parts: the decision banner's head and the sign-off
section. ``harness verify`` computes it again from the ledger and compares the rendering.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from harness.gate import Decision


@dataclass(frozen=True, slots=True)
class SignoffEntry:
    """One verified sign-off of the report, as the report lists it."""

    reviewer: str
    name: str
    role: str
    meaning: str
    decision: str
    time: str
    comment: str = ""
    cases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Status:
    """The decision as the sign-offs stand, the sign-offs, and the ledger head pinned.

    ``decision`` is the gate's decision with the sign-offs applied (RESTORE, AWAITING SIGN-OFF
    or BLOCK); ``head`` the (seq, hash) of the last ledger record of this report, (0, zeros)
    when it has none, or None for a report that pins nothing.
    """

    decision: Decision
    signoff_required: bool
    entries: tuple[SignoffEntry, ...] = ()
    head: tuple[int, str] | None = None


@dataclass(frozen=True, slots=True)
class SignoffPolicyView:
    """The sign-off policy a report shows: which roles approve, for what, and who may not.

    ``required_roles`` maps ``default`` and incident categories to roles; ``incidents`` each
    category to the ids of the incidents of this validation in it; ``fix_authors`` each
    reviewer id who authored a fix to the incidents whose validation they may not approve.
    """

    required_roles: Mapping[str, tuple[str, ...]]
    incidents: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    fix_authors: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
