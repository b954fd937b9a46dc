"""Who must approve a validation, the rules a sign-off must keep, and whether it is approved.

The suite's ``gate.signoff.required_roles`` names the roles that must approve every validation
(``default``) and more per incident category; a fix's author cannot approve the validation of
their own fix; a BLOCK can be approved only as an accepted risk, with a comment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import schema
from harness.errors import InputError
from harness.model import CATEGORIES
from harness.report.manifest import Manifest

DEFAULT_REQUIRED_ROLES = {"default": ("workflow_owner",)}

_ROLES = schema.ListOf(schema.Text(), min_items=1)
_POLICY_SCHEMA = schema.Record(
    {"required_roles": schema.Record({"default": _ROLES, **dict.fromkeys(CATEGORIES, _ROLES)})},
)


@dataclass(frozen=True, slots=True)
class SignoffPolicy:
    """Which roles must approve: ``default`` for every validation, more per incident category."""

    required: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: dict(DEFAULT_REQUIRED_ROLES))

    @classmethod
    def from_gate(cls, gate: Mapping[str, Any], *, path: Path | None = None) -> SignoffPolicy:
        """From a suite's ``gate`` section: its ``signoff`` key, or the default when absent.

        ``default`` stays ``[workflow_owner]`` unless the section names it.
        """
        section = gate.get("signoff")
        if section is None:
            return cls()
        line = schema.line_of(gate, "signoff", getattr(gate, "line", None))
        try:
            checked = _POLICY_SCHEMA.check(section, "gate.signoff", line)
        except schema.Invalid as exc:
            raise InputError(exc.problem, path=path, line=exc.line, field=exc.field) from None
        given = checked.get("required_roles", {})
        return cls({**DEFAULT_REQUIRED_ROLES,
                    **{name: tuple(roles) for name, roles in given.items()}})

    def required_roles(self, manifest: Manifest) -> set[str]:
        """``default`` plus the roles of every incident category the manifest covers."""
        roles = set(self.required.get("default", ()))
        for incident in manifest.incidents:
            roles.update(self.required.get(incident.category, ()))
        return roles


def rule_problems(*, reviewer_id: str, decision: str, meaning: str, comment: str,
                   manifest: Manifest) -> list[tuple[str, str]]:
    """(field, problem) for each sign-off rule the sign-off would break."""
    problems = []
    if meaning == "risk_accepted" and not comment.strip():
        problems.append(("comment", "meaning risk_accepted needs a comment saying which risk is "
                                    "accepted and why"))
    if decision == "approve" and manifest.decision == "BLOCK" and meaning != "risk_accepted":
        problems.append(("meaning", f"the gate decided BLOCK: an approval must have meaning "
                                    f"risk_accepted with a comment, not {meaning!r} (or reject)"))
    authored = manifest.fix_authors().get(reviewer_id)
    if decision == "approve" and authored:
        problems.append(("decision", f"{reviewer_id} authored the fix of {', '.join(authored)} "
                                     f"and cannot approve it"))
    return problems


def _bound(record: Mapping[str, Any], manifest: Manifest) -> bool:
    """Whether the record signs off exactly this validation."""
    return (record.get("manifest_sha256") == manifest.sha256
            and record.get("report_body_sha256") == manifest.report_body_sha256
            and record.get("candidate_run_sha256") == manifest.candidate_run.sha256
            and record.get("candidate_run_id") == manifest.candidate_run.run_id)


def approvals(records: Sequence[Mapping[str, Any]], manifest: Manifest,
              policy: SignoffPolicy) -> tuple[bool, list[str]]:
    """Whether the sign-offs of this manifest approve restoring it, and what is missing.

    Pass only verified records (``verify(...).records``). An approval counts for the role it
    was signed in; each reviewer's latest decision stands, so a reject after their approvals
    withdraws them and blocks until that reviewer approves again. The list names each required
    role without an approval and each reviewer whose latest decision is reject.
    """
    approved: dict[str, set[str]] = {}
    rejected: dict[str, Mapping[str, Any]] = {}
    for record in sorted((r for r in records if _bound(r, manifest)), key=lambda r: r["seq"]):
        reviewer_id = record["reviewer"]
        if record["decision"] == "reject":
            approved.pop(reviewer_id, None)
            rejected[reviewer_id] = record
        elif not rule_problems(reviewer_id=reviewer_id, decision="approve",
                                meaning=record["meaning"], comment=record["comment"],
                                manifest=manifest):
            approved.setdefault(reviewer_id, set()).add(record["role"])
            rejected.pop(reviewer_id, None)
    covered = set().union(*approved.values())
    missing = sorted(policy.required_roles(manifest) - covered)
    findings = [f"no approval in role {role}" for role in missing]
    findings += [f"rejected by {reviewer_id} ({record['role']}, {record['time']})"
                 for reviewer_id, record in rejected.items()]
    return not findings, findings
