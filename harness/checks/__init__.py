"""Checks: the registry of kinds and the built-in kinds, grouped by incident category."""

from harness.checks.outcome import failed, passed
from harness.checks.registry import (
    CheckKind,
    Params,
    build,
    kinds,
    lookup,
    notes_of,
    register,
    with_notes,
)

__all__ = ["CheckKind", "Params", "build", "failed", "kinds", "lookup", "notes_of", "passed",
           "register", "with_notes"]
