"""Checks: the registry of kinds and the built-in kinds, grouped by incident category."""

from harness.checks.outcome import failed, passed
from harness.checks.parameters import Parameter
from harness.checks.registry import (
    CheckKind,
    Params,
    build,
    json_schema,
    kinds,
    lookup,
    notes_of,
    register,
    with_notes,
)

__all__ = ["CheckKind", "Parameter", "Params", "build", "failed", "json_schema", "kinds",
           "lookup", "notes_of", "passed", "register", "with_notes"]
