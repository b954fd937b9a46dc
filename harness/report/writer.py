"""Write a validation's reports and its manifest, and refresh them once reviewers sign.

A validation writes four files named after the suite and the candidate run:
``validation-<suite>-<run id>.html`` (the report), ``.md`` (the summary), ``.xml`` (JUnit) and
``.json`` (the manifest: which runs and suite were compared, the decisions, the policies, and
the SHA-256 of the report's body, which is what reviewers sign). Refreshing after a sign-off
replaces only the report's derived parts (the banner's head and the sign-off section) and
writes the summaries again, so what was signed stays byte for byte the same.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.calibration import Calibration
from harness.compare import Comparison
from harness.errors import InputError
from harness.files import write_atomic
from harness.gate import Decision, GatePolicy
from harness.model import Suite
from harness.records import RunRecord, utc_now
from harness.report.body import derived_parts, report_body_sha256, splice
from harness.report.html import render_derived, render_html
from harness.report.junit import render_junit
from harness.report.manifest import Manifest, build_manifest, relative_path
from harness.report.markdown import render_markdown
from harness.report.status import SignoffPolicyView, Status


@dataclass(frozen=True, slots=True)
class Written:
    """Where the files of one validation were written."""

    html: Path
    markdown: Path
    junit: Path
    manifest: Path


def paths_for(folder: Path, suite: str, run_id: str, baseline_run_id: str | None = None
              ) -> Written:
    """Where a validation's files go: ``validation-<suite>-<candidate run>-vs-<baseline run>``,
    so a comparison with another baseline never lands on (or is mistaken for) an older one.
    Without ``baseline_run_id``: the earlier name (the candidate run alone), which reports
    written before keep."""
    vs = f"-vs-{baseline_run_id}" if baseline_run_id else ""
    return _beside(folder / f"validation-{suite}-{run_id}{vs}.json")


def _beside(manifest: Path) -> Written:
    """A validation's files, named after its manifest."""
    return Written(manifest.with_suffix(".html"), manifest.with_suffix(".md"),
                   manifest.with_suffix(".xml"), manifest)


def _portable(comparison: Comparison, folder: Path) -> Comparison:
    """The comparison with run record paths relative to the report's folder, so the report
    reads (and hashes) the same wherever the project is checked out."""
    def moved(record: RunRecord) -> RunRecord:
        return dataclasses.replace(record, path=Path(relative_path(record.path, folder)))

    return dataclasses.replace(comparison, baseline=moved(comparison.baseline),
                               candidate=moved(comparison.candidate))


def policy_view(required_roles: Mapping[str, Sequence[str]], comparison: Comparison,
                suite: Suite) -> SignoffPolicyView:
    """What the report shows of the sign-off policy: roles, the incidents behind each
    category's roles, and the fixes' authors, who may not approve."""
    incidents: dict[str, list[str]] = {}
    for compared in comparison.cases:
        if compared.incident and compared.latest.category:
            incidents.setdefault(compared.latest.category, []).append(compared.case_id)
    authors: dict[str, list[str]] = {}
    for case in suite.cases:
        if case.incident is not None:
            for author in case.incident.fix.get("authors", ()):
                authors.setdefault(str(author), []).append(case.id)
    return SignoffPolicyView(
        required_roles={scope: tuple(roles) for scope, roles in required_roles.items()},
        incidents={category: tuple(ids) for category, ids in incidents.items()},
        fix_authors={author: tuple(ids) for author, ids in authors.items()},
    )


def write_reports(comparison: Comparison, tests: Decision, *, status: Status,
                  policy: GatePolicy, required_roles: Mapping[str, Sequence[str]] | None,
                  suite: Suite, folder: Path,
                  calibrations: Mapping[str, Calibration] | None = None) -> Written:
    """Render and write the report, summary, JUnit XML and manifest of a new validation.

    ``tests`` is the gate on the runs, ``status`` the decision as the sign-offs stand (none,
    for a new validation) with what the report derives from them. An existing report of the
    same candidate run is never overwritten (it may be signed).
    """
    header = comparison.candidate.header
    written = paths_for(folder, header.suite, header.run_id, comparison.baseline.header.run_id)
    if written.html.exists() or written.manifest.exists():
        raise InputError("a validation report of these runs already exists; it is kept as it "
                         "is (it may be signed)", path=written.html)
    generated_at = utc_now()
    view = None if required_roles is None else policy_view(required_roles, comparison, suite)
    html = render_html(_portable(comparison, written.html.parent), tests, policy=policy,
                       generated_at=generated_at, status=status, signoff_policy=view,
                       calibrations=calibrations,
                       records={case.id: case for case in suite.cases})
    body = report_body_sha256(html)
    manifest = build_manifest(comparison, tests, suite, written.manifest,
                              decision=status.decision.outcome, gate_policy=policy,
                              required_roles=required_roles, report=written.html,
                              body_sha256=body, generated_at=generated_at)
    write_atomic(written.html, html)
    write_atomic(written.manifest, json.dumps(manifest, indent=2) + "\n")
    _write_summaries(comparison, status, written, body_sha256=body)
    return written


def _write_summaries(comparison: Comparison, status: Status, written: Written, *,
                     body_sha256: str) -> None:
    write_atomic(written.markdown, render_markdown(
        comparison, status.decision, report_path=written.html.name, report_sha256=body_sha256,
        chain_head=status.head))
    write_atomic(written.junit, render_junit(comparison, status.decision))


def refresh_reports(manifest: Manifest, comparison: Comparison, status: Status, *,
                    dry_run: bool = False) -> Written:
    """Render a validation's derived parts and summaries again from ``status``.

    The report's body is left byte for byte as it is; refused (InputError) when the report is
    missing, has no derived parts to replace, or its body no longer matches the manifest.
    With ``dry_run`` only that is checked, and nothing is written.
    """
    written = _beside(manifest.path)
    report = manifest.report_path
    try:
        html = report.read_bytes().decode("utf-8")
        body = report_body_sha256(html)
        present = derived_parts(html)  # a report written before version 2 has no status part
        refreshed = splice(html, {name: text for name, text in render_derived(status).items()
                                  if name in present})
    except OSError as exc:
        raise InputError(f"cannot read the report: {exc.strerror}", path=report) from None
    except ValueError as exc:  # not UTF-8, markers missing or damaged
        raise InputError(f"cannot refresh the report: {exc}", path=report) from None
    if body != manifest.report_body_sha256:
        problem = (f"the report changed since validation (its body's sha256 is {body}, the "
                   f"manifest says {manifest.report_body_sha256}); it is kept as it is")
        raise InputError(problem, path=report)
    if not dry_run:
        write_atomic(report, refreshed)
        _write_summaries(comparison, status, dataclasses.replace(written, html=report),
                         body_sha256=body)
    return written
