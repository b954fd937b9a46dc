"""Who must approve a validation, the rules a sign-off must keep, and what the sign-offs say.

The suite's ``gate.signoff.required_roles`` names the roles that must approve every validation
(``default``) and more per incident category; the validation's manifest records that policy,
and it is read back from there. A fix's author cannot approve the validation of their own fix.
A validation the gate blocked can be approved only where every blocking reason is one a
reviewer may accept (:data:`~harness.gate.LIFTABLE`: a weakened or retired incident case), as
``risk_accepted``, with a comment, naming those cases; a regression, an error or a still-failing
incident can never be approved.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import schema
from harness.errors import InputError
from harness.gate import LIFTABLE, Signoffs
from harness.model import CATEGORIES, Suite
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

    @classmethod
    def of_suite(cls, suite: Suite, *, required: bool = False) -> SignoffPolicy | None:
        """The suite's policy; None when it declares none and ``required`` (the command's
        ``--require-signoff``) does not ask for the default one."""
        if "signoff" in suite.gate or required:
            return cls.from_gate(suite.gate, path=suite.path)
        return None

    @classmethod
    def of_manifest(cls, manifest: Manifest, *, required: bool = False) -> SignoffPolicy | None:
        """The policy recorded in the manifest; None when the validation required no sign-off
        and ``required`` does not ask for the default one."""
        if manifest.required_roles is not None:
            return cls(dict(manifest.required_roles))
        return cls() if required else None

    def required_for(self, incidents: Iterable[tuple[str, str | None]]) -> dict[str, str]:
        """Each required role -> why, for a validation covering ``incidents`` (id, category):
        ``default``'s roles for every validation, and each category's for its incidents."""
        why: dict[str, list[str]] = {role: ["every validation"]
                                     for role in self.required.get("default", ())}
        by_category: dict[str, list[str]] = {}
        for case_id, category in incidents:
            if category is not None:
                by_category.setdefault(category, []).append(case_id)
        for category, ids in by_category.items():
            for role in self.required.get(category, ()):
                why.setdefault(role, []).append(f"{category}: {', '.join(ids)}")
        return {role: "; ".join(reasons) for role, reasons in why.items()}

    def to_roles(self) -> dict[str, tuple[str, ...]]:
        return dict(self.required)


def _incidents(manifest: Manifest) -> list[tuple[str, str | None]]:
    return [(incident.id, incident.category) for incident in manifest.incidents]


def rule_problems(*, reviewer_id: str, decision: str, meaning: str, comment: str,
                  cases: Sequence[str], manifest: Manifest) -> list[tuple[str, str]]:
    """(field, problem) for each sign-off rule the sign-off would break."""
    problems = []
    if meaning == "risk_accepted" and not comment.strip():
        problems.append(("comment", "meaning risk_accepted needs a comment saying which risk is "
                                    "accepted and why"))
    if cases and meaning != "risk_accepted":
        problems.append(("cases", "naming cases is for meaning risk_accepted: the risk of "
                                  "those cases is what the sign-off accepts"))
    liftable = {reason.case_id for reason in manifest.tests.blocking
                if reason.rule in LIFTABLE and reason.case_id}
    unknown = [case for case in cases if case not in liftable]
    if unknown:
        problems.append(("cases", f"{', '.join(unknown)}: no reason of the gate a reviewer can "
                                  f"accept (only {', '.join(sorted(LIFTABLE))}); a regression, "
                                  f"an error or a still-failing incident cannot be accepted"))
    if decision == "approve" and manifest.tests.outcome == "BLOCK":
        stopping = [reason for reason in manifest.tests.blocking if reason.rule not in LIFTABLE]
        if stopping:
            first = stopping[0]
            about = f" {first.case_id}" if first.case_id else ""
            problems.append(("decision", f"the gate blocks on{about} ({first.rule}: "
                                         f"{first.message}); that cannot be approved, only "
                                         f"fixed (or rejected)"))
        elif meaning != "risk_accepted" or not cases:
            problems.append(("meaning", f"the gate blocks on {', '.join(sorted(liftable))}: an "
                                        f"approval must have meaning risk_accepted, a comment, "
                                        f"and name the cases accepted (--case)"))
    authored = manifest.fix_authors().get(reviewer_id)
    if decision == "approve" and authored:
        problems.append(("decision", f"{reviewer_id} authored the fix of {', '.join(authored)} "
                                     f"and cannot approve it"))
    return problems


def bound(record: Mapping[str, Any], manifest: Manifest) -> bool:
    """Whether the record signs off exactly this validation."""
    return (record.get("manifest_sha256") == manifest.sha256
            and record.get("report_body_sha256") == manifest.report_body_sha256
            and record.get("candidate_run_sha256") == manifest.candidate_run.sha256
            and record.get("candidate_run_id") == manifest.candidate_run.run_id)


def signoffs(records: Sequence[Mapping[str, Any]], manifest: Manifest,
             policy: SignoffPolicy) -> Signoffs:
    """What the verified ``records`` (``verify(...).records``) say about this validation.

    An approval counts for the role it was signed in. Per role, the latest sign-off stands: a
    reject withdraws the role's approvals until a later approval in that role supersedes it.
    A ``risk_accepted`` approval accepts the risk of the cases it names.
    """
    approved: dict[str, list[str]] = {}
    rejected: dict[str, Mapping[str, Any]] = {}
    accepted: dict[str, list[str]] = {}
    for record in sorted((r for r in records if bound(r, manifest)), key=lambda r: r["seq"]):
        role, reviewer_id = record["role"], record["reviewer"]
        if record["decision"] == "reject":
            approved.pop(role, None)
            rejected[role] = record
            continue
        if rule_problems(reviewer_id=reviewer_id, decision="approve",
                         meaning=record["meaning"], comment=record["comment"],
                         cases=record.get("cases", ()), manifest=manifest):
            continue
        rejected.pop(role, None)
        names = approved.setdefault(role, [])
        if reviewer_id not in names:
            names.append(reviewer_id)
        for case_id in record.get("cases", ()):
            accepted.setdefault(case_id, []).append(reviewer_id)
    return Signoffs(
        required=policy.required_for(_incidents(manifest)),
        approved={role: tuple(names) for role, names in approved.items()},
        rejected=tuple((r["reviewer"], role, r["time"]) for role, r in rejected.items()),
        accepted={case_id: tuple(names) for case_id, names in accepted.items()},
    )
