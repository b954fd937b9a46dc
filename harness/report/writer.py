"""Write a validation's reports and its manifest, and re-render them once reviewers sign.

A validation writes four files named after the suite and the candidate run:
``validation-<suite>-<run id>.html`` (the report), ``.md`` (the summary), ``.xml`` (JUnit) and
``.json`` (the manifest: which runs and suite were compared, the decision, and the SHA-256 of
the report's body, which is what reviewers sign). Re-rendering with sign-offs changes only the
report's sign-off section, so what was signed stays byte for byte the same.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.compare import Comparison
from harness.files import write_atomic
from harness.gate import Decision, GatePolicy
from harness.model import Suite
from harness.records import RunRecord, utc_now
from harness.report.body import report_body_sha256
from harness.report.html import render_html
from harness.report.junit import render_junit
from harness.report.manifest import build_manifest, relative_path
from harness.report.markdown import render_markdown


@dataclass(frozen=True, slots=True)
class Written:
    """Where the files of one validation were written."""

    html: Path
    markdown: Path
    junit: Path
    manifest: Path


def paths_for(folder: Path, suite: str, run_id: str) -> Written:
    stem = folder / f"validation-{suite}-{run_id}"
    return Written(stem.with_suffix(".html"), stem.with_suffix(".md"), stem.with_suffix(".xml"),
                   stem.with_suffix(".json"))


def _render(comparison: Comparison, decision: Decision, policy: GatePolicy, written: Written, *,
            generated_at: str, signoffs: Sequence[Mapping[str, Any]],
            chain_head: Mapping[str, Any] | None) -> tuple[str, str]:
    """The HTML and the SHA-256 of its body (everything but the sign-off section)."""
    html = render_html(_portable(comparison, written.html.parent), decision, policy=policy,
                       generated_at=generated_at, signoffs=signoffs, chain_head=chain_head)
    return html, report_body_sha256(html)


def _portable(comparison: Comparison, folder: Path) -> Comparison:
    """The comparison with run record paths relative to the report's folder, so the report
    reads (and hashes) the same wherever the project is checked out."""
    def moved(record: RunRecord) -> RunRecord:
        return dataclasses.replace(record, path=Path(relative_path(record.path, folder)))

    return dataclasses.replace(comparison, baseline=moved(comparison.baseline),
                               candidate=moved(comparison.candidate))


def write_reports(comparison: Comparison, decision: Decision, *, policy: GatePolicy,
                  suite: Suite, folder: Path) -> Written:
    """Render and write the report, summary, JUnit XML and manifest of a new validation.

    An existing report of the same candidate run is never overwritten (it may be signed).
    """
    from harness.errors import InputError

    header = comparison.candidate.header
    written = paths_for(folder, header.suite, header.run_id)
    if written.html.exists() or written.manifest.exists():
        raise InputError("a validation report of this candidate run already exists; it is "
                         "kept as it is (it may be signed)", path=written.html)
    generated_at = utc_now()
    html, body = _render(comparison, decision, policy, written, generated_at=generated_at,
                         signoffs=(), chain_head=None)
    manifest = build_manifest(comparison, decision, suite, written.manifest, report=written.html,
                              body_sha256=body, generated_at=generated_at)
    write_atomic(written.html, html)
    write_atomic(written.manifest, json.dumps(manifest, indent=2) + "\n")
    _write_summaries(comparison, decision, written, body_sha256=body, chain_head=None)
    return written


def _write_summaries(comparison: Comparison, decision: Decision, written: Written, *,
                     body_sha256: str, chain_head: Mapping[str, Any] | None) -> None:
    write_atomic(written.markdown, render_markdown(
        comparison, decision, report_path=written.html.name, report_sha256=body_sha256,
        chain_head=chain_head))
    write_atomic(written.junit, render_junit(comparison, decision))


def rerender(comparison: Comparison, decision: Decision, *, policy: GatePolicy,
             manifest: Any, signoffs: Sequence[Mapping[str, Any]],
             chain_head: Mapping[str, Any] | None, dry_run: bool = False) -> Written:
    """Re-render a validation's report and summary with its sign-offs and chain head.

    Refuses (InputError) when the new body would differ from what was validated: the runs,
    the suite's gate policy or the harness changed since the report was written. With
    ``dry_run`` only that is checked, and nothing is written.
    """
    from harness.errors import InputError

    written = paths_for(manifest.path.parent, manifest.suite, manifest.candidate_run.run_id)
    html, body = _render(comparison, decision, policy, written,
                         generated_at=manifest.generated_at, signoffs=signoffs,
                         chain_head=chain_head)
    if body != manifest.report_body_sha256:
        problem = ("the report cannot be re-rendered as it was validated (the runs, the "
                   "suite's gate policy or the harness version changed); it is kept as it is")
        raise InputError(problem, path=written.html)
    if dry_run:
        return written
    write_atomic(written.html, html)
    _write_summaries(comparison, decision, written, body_sha256=body, chain_head=chain_head)
    return written
