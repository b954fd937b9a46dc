"""Signing a validation: who may sign, with which key and role, and what the report and the
decision become once the record is in the ledger.

:func:`sign_validation` is what ``harness signoff`` does: it reads the validation's manifest
and the policy recorded with it (a version 1 manifest did not record one: the suite's, as it
is), finds the pinned reviewer and the role they sign in, refuses a validation whose ledger and
report disagree and a report that could not be refreshed, appends the signed record, and
renders the report's derived parts again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import loader
from harness.compare import compare
from harness.errors import InputError
from harness.gate import Decision
from harness.records import read_run
from harness.report.manifest import load_manifest
from harness.report.writer import refresh_reports
from harness.signoff.keys import load_private_key, load_reviewers
from harness.signoff.ledger import ledger_for, sign
from harness.signoff.policy import SignoffPolicy
from harness.signoff.status import stand

KEY_ENV = "HARNESS_SIGNING_KEY"
"""The environment variable naming the private key when none is given."""


@dataclass(frozen=True, slots=True)
class Signed:
    """A sign-off made: the ledger record, the ledger, the decision as it now stands, and
    whether the validation requires sign-off at all."""

    record: dict[str, Any]
    ledger: Path
    decision: Decision
    required: bool


def sign_validation(report: Path, *, reviewer_id: str, decision: str, key: Path | None = None,
                    role: str | None = None, meaning: str | None = None,
                    comment: str = "", ledger: Path | None = None,
                    reviewers: Path | None = None, cases: tuple[str, ...] = ()) -> Signed:
    """Sign the validation ``report`` as ``reviewer_id``; every refusal is bad input."""
    manifest = load_manifest(report.resolve().with_suffix(".json"))
    suite_path = manifest.path.parent / manifest.suite_path
    root = loader.suite_root(suite_path)
    if manifest.version >= 2:  # the policy travels with the validation
        policy = SignoffPolicy.of_manifest(manifest)
    else:  # a version 1 manifest did not record it: the suite's, as it was then
        policy = SignoffPolicy.of_suite(loader.load_suite(suite_path), required=True)
    pinned = load_reviewers(reviewers or root / "reviewers.yaml")
    if reviewer_id not in pinned:
        raise InputError(f"reviewer {reviewer_id!r} is not pinned; pinned: "
                         f"{', '.join(pinned) or 'none'}", field="--reviewer")
    reviewer = pinned[reviewer_id]
    key_path = key or (Path(os.environ[KEY_ENV]) if os.environ.get(KEY_ENV) else None)
    if key_path is None:
        raise InputError(f"name your private key: --key PATH or ${KEY_ENV}", field="--key")
    role = role or (reviewer.roles[0] if len(reviewer.roles) == 1 else None)
    if role is None:
        raise InputError(f"{reviewer.id} holds several roles ({', '.join(reviewer.roles)}): "
                         "choose one with --role", field="--role")
    meaning = meaning or ("approved" if decision == "approve" else "reviewed")
    chain = ledger_for(manifest, ledger)
    folder = manifest.path.parent
    comparison = compare(read_run(manifest.baseline_run.resolve(folder)),
                         read_run(manifest.candidate_run.resolve(folder)))
    before = stand(manifest, policy=policy, ledger=chain, reviewers=pinned)
    if before.report_problems:  # e.g. the ledger lost the record the report pins
        problem = (f"{before.report_problems[0]}; refusing to sign a validation whose ledger "
                   f"and report disagree (run harness verify)")
        raise InputError(problem, path=chain)
    # Refuse before signing when the report could not be refreshed with the sign-off.
    refresh_reports(manifest, comparison, before.status, dry_run=True)
    record = sign(
        manifest_path=manifest.path, reviewer=reviewer, private_key=load_private_key(key_path),
        role=role, decision=decision, meaning=meaning, comment=comment, ledger_path=chain,
        policy=policy or SignoffPolicy(), reviewers=pinned, cases=cases,
    )
    after = stand(manifest, policy=policy, ledger=chain, reviewers=pinned)
    refresh_reports(manifest, comparison, after.status)
    now = stand(manifest, policy=policy, ledger=chain, reviewers=pinned,
                verification=after.verification).decision
    return Signed(record=record, ledger=chain, decision=now, required=policy is not None)
