"""Where a validation stands once its sign-offs are read, and the report parts derived from it.

:func:`stand` reads a validation's ledger (verifying every record against the pinned keys),
applies the sign-off policy recorded in its manifest, and gives both the decision (RESTORE,
AWAITING SIGN-OFF or BLOCK) and the :class:`~harness.report.status.Status` the report renders
in its derived parts. :func:`report_problems` renders those parts again and compares them with
the report, so a row added to the sign-off section by hand, or a banner turned green, is found.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.errors import InputError
from harness.gate import Decision, Signoffs, with_signoffs
from harness.report.body import ZERO_HASH, derived_parts
from harness.report.html import render_derived
from harness.report.manifest import Manifest, load_manifest
from harness.report.status import SignoffEntry, Status
from harness.signoff.keys import Reviewer, load_reviewers
from harness.signoff.ledger import Accepted, Verification, head_problems, ledger_for, verify
from harness.signoff.policy import SignoffPolicy, bound, signoffs

_LABELS = {"status": "decision banner", "signoff": "sign-off section"}


@dataclass(frozen=True, slots=True)
class Standing:
    """A validation's decision as its sign-offs stand.

    ``decision`` is what the command says (it also names problems outside the ledger, such as
    a missing reviewers file); ``status`` what the report derives from the ledger alone.
    """

    decision: Decision
    status: Status
    verification: Verification | None
    report_problems: tuple[str, ...] = ()
    """How the report departs from the ledger (see :func:`report_problems`); they block."""


def _entries(records: Sequence[Mapping[str, Any]]) -> tuple[SignoffEntry, ...]:
    return tuple(SignoffEntry(
        reviewer=str(r["reviewer"]), name=str(r["name"]), role=str(r["role"]),
        meaning=str(r["meaning"]), decision=str(r["decision"]), time=str(r["time"]),
        comment=str(r["comment"]), cases=tuple(str(c) for c in r.get("cases", ()) or ()),
    ) for r in records)


def stand(manifest: Manifest, *, policy: SignoffPolicy | None, ledger: Path,
          reviewers: Path | Mapping[str, Reviewer], tests: Decision | None = None,
          untrusted: tuple[str, ...] = (),
          verification: Verification | None = None,
          accepted: Accepted | None = None) -> Standing:
    """Read ``ledger`` for ``manifest`` and decide.

    ``tests`` is the gate on the runs (default: as the manifest recorded it); ``policy`` None
    means no sign-off is required, and the gate on the runs decides. ``untrusted`` adds
    problems found outside the ledger's own checks (its history), which block.
    ``verification`` is the ledger's, when the caller verified it already; ``accepted`` what
    its git history accepted (see :meth:`~harness.signoff.history.History.accepted`).
    """
    tests = tests or manifest.tests
    unavailable: tuple[str, ...] = ()
    if isinstance(reviewers, Path):
        if reviewers.exists():
            reviewers = load_reviewers(reviewers)
        else:
            unavailable = (f"no reviewers file at {reviewers}: pin each reviewer's public key "
                           f"there, then each required role signs the report",)
            reviewers = {}
    if verification is None and ledger.exists() and not unavailable:
        verification = verify(ledger, reviewers, accepted=accepted)
    records = [dict(r) for r in verification.records] if verification else []
    mine = [r for r in records if bound(r, manifest)]
    head = (mine[-1]["seq"], mine[-1]["hash"]) if mine else (0, ZERO_HASH)
    problems = verification.problems if verification else ()
    if policy is None:
        status = Status(tests, signoff_required=False, entries=_entries(mine), head=head)
        return Standing(tests, status, verification, _report_issues(manifest, status,
                                                                     verification, ledger))
    found = signoffs(records, manifest, policy)
    derived = with_signoffs(tests, replace(found, untrusted=tuple(problems)))
    status = Status(derived, signoff_required=True, entries=_entries(mine), head=head)
    issues = _report_issues(manifest, status, verification, ledger)
    decision = with_signoffs(tests, replace(found, untrusted=(*problems, *issues, *untrusted),
                                            unavailable=unavailable))
    return Standing(decision, status, verification, issues)


def awaiting(tests: Decision, policy: SignoffPolicy | None,
             incidents: list[tuple[str, str | None]], *, why: str | None = None) -> Decision:
    """The decision for a validation nobody signed yet (``why`` says what is missing)."""
    if policy is None:
        return tests
    found = Signoffs(required=policy.required_for(incidents),
                     unavailable=(why,) if why else ())
    return with_signoffs(tests, found)


def _report_issues(manifest: Manifest, status: Status, verification: Verification | None,
                   ledger: Path) -> tuple[str, ...]:
    """The ledger record the report pins must still be in the ledger, and (for reports of
    version 2 manifests) its banner head and sign-off section must be exactly what the ledger
    says. A report that is missing is not a problem here: the run records and the manifest
    are what sign-offs bind, and verify names files changed since signing."""
    report = manifest.report_path
    if not report.exists():
        return ()
    try:
        html = report.read_bytes().decode("utf-8")
        parts = derived_parts(html)
    except OSError as exc:
        return (f"{report}: cannot read the report: {exc.strerror}",)
    except ValueError as exc:  # not UTF-8, markers missing or damaged
        return (f"{report}: {exc}",)
    entries = verification.entries if verification else ()
    problems = head_problems(report, html, entries, signed=bool(status.entries))
    if manifest.version >= 2:
        expected = render_derived(status)
        problems += [f"{report}: the {_LABELS[name]} differs from what the ledger {ledger} "
                     f"says: it was edited, or the ledger changed after the report was last "
                     f"rendered" for name, text in expected.items() if parts.get(name) != text]
    return tuple(problems)


def report_problems(manifest: Manifest, *, ledger: Path, reviewers: Mapping[str, Reviewer],
                    verification: Verification | None = None) -> list[str]:
    """What is wrong with a report against its ledger: see :func:`_report_issues`."""
    standing = stand(manifest, policy=SignoffPolicy.of_manifest(manifest), ledger=ledger,
                     reviewers=reviewers, verification=verification)
    return list(standing.report_problems)


def accepted_retirements(reports: Path, reviewers: Path) -> frozenset[str]:
    """The ids of the incident cases whose retirement a reviewer accepted: a validation under
    ``reports`` blocked on the case as ``retired``, and its ledger (which must verify) holds a
    ``risk_accepted`` sign-off naming the case. None without a reviewers file."""
    if not reviewers.exists() or not reports.is_dir():
        return frozenset()
    pinned = load_reviewers(reviewers)
    accepted: set[str] = set()
    for path in sorted(reports.glob("validation-*.json")):
        try:
            manifest = load_manifest(path)
        except InputError:
            continue  # verify names a damaged manifest; it accepts nothing here
        retired = {r.case_id for r in manifest.tests.blocking if r.rule == "retired"}
        ledger = ledger_for(manifest)
        if not retired or not ledger.exists():
            continue
        verification = verify(ledger, pinned)
        if not verification.valid:
            continue
        policy = SignoffPolicy.of_manifest(manifest, required=True) or SignoffPolicy()
        found = signoffs(list(verification.records), manifest, policy)
        accepted.update(case for case in retired if case and found.accepted.get(case))
    return frozenset(accepted)
