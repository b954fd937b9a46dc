"""The validation manifest: what ``harness validate`` compared and decided, beside its report.

A manifest (JSON) names the suite and its digest, both run records with their digests, the
gate's decision and reasons, the incidents covered (with their fixes' authors), the report and
the SHA-256 of its body. It is what a sign-off binds to. :func:`build_manifest` writes what
:func:`load_manifest` reads.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import schema
from harness.compare import Comparison
from harness.digest import sha256_file, sha256_text
from harness.errors import InputError
from harness.gate import Decision
from harness.model import Suite

FORMAT_VERSION = 1
GATE_DECISIONS = ("RESTORE", "BLOCK")
_HEX64 = re.compile(r"[0-9a-f]{64}")
MANIFEST_FIELDS = (
    "version", "suite", "suite_path", "suite_digest", "baseline_run", "candidate_run",
    "decision", "reasons", "incidents", "report", "report_body_sha256", "generated_at",
)
_RUN_FIELDS = ("path", "sha256", "run_id", "target")
_INCIDENT_FIELDS = ("id", "category", "severity", "owner", "fix_authors")

_HEX64 = re.compile(r"[0-9a-f]{64}")
@dataclass(frozen=True, slots=True)
class RunRef:
    """One run record a validation compared: where it is, its digest, id and target."""

    path: str
    sha256: str
    run_id: str
    target: str

    def resolve(self, folder: Path) -> Path:
        """The run's file: ``path`` as is when absolute, else relative to ``folder``."""
        return Path(self.path) if Path(self.path).is_absolute() else folder / self.path


@dataclass(frozen=True, slots=True)
class IncidentRef:
    """An incident the validation covered, and who authored its fix."""

    id: str
    category: str
    severity: str
    owner: str
    fix_authors: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Manifest:
    """What ``harness validate`` validated and decided, as written beside its report."""

    path: Path
    sha256: str
    """SHA-256 of the manifest file's bytes: what a sign-off binds to."""
    version: int
    suite: str
    suite_path: str
    suite_digest: str
    baseline_run: RunRef
    candidate_run: RunRef
    decision: str
    reasons: tuple[Mapping[str, Any], ...]
    incidents: tuple[IncidentRef, ...]
    report: str
    report_body_sha256: str
    generated_at: str

    @property
    def report_path(self) -> Path:
        return self.path.parent / self.report

    def fix_authors(self) -> dict[str, list[str]]:
        """Each fix author -> the ids of the incidents whose fix they authored."""
        authors: dict[str, list[str]] = {}
        for incident in self.incidents:
            for author in incident.fix_authors:
                authors.setdefault(author, []).append(incident.id)
        return authors


def _manifest_error(problem: str, path: Path, field_name: str) -> InputError:
    return InputError(problem, path=path, field=field_name)


def _take(data: Mapping[str, Any], keys: Sequence[str], path: Path,
          where: str) -> dict[str, Any]:
    """The mapping's ``keys``, all present and none other; values still unchecked."""
    if not isinstance(data, Mapping):
        raise _manifest_error(f"expected an object, found {schema.describe(data)}", path,
                              where or "(top level)")
    unknown = [key for key in data if key not in keys]
    if unknown:
        problem = f"unknown field {unknown[0]!r}; expected {', '.join(keys)}"
        raise _manifest_error(problem, path, schema.join_path(where, unknown[0]))
    missing = [key for key in keys if key not in data]
    if missing:
        raise _manifest_error("missing required field", path, schema.join_path(where, missing[0]))
    return dict(data)


def _text(value: Any, path: Path, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise _manifest_error(f"expected a non-empty string, found {schema.describe(value)}",
                              path, where)
    return value


def _digest(value: Any, path: Path, where: str) -> str:
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        problem = f"expected a SHA-256 (64 lowercase hex digits), found {schema.describe(value)}"
        raise _manifest_error(problem, path, where)
    return value


def _run_ref(value: Any, path: Path, where: str) -> RunRef:
    fields = _take(value, _RUN_FIELDS, path, where)
    return RunRef(path=_text(fields["path"], path, f"{where}.path"),
                  sha256=_digest(fields["sha256"], path, f"{where}.sha256"),
                  run_id=_text(fields["run_id"], path, f"{where}.run_id"),
                  target=_text(fields["target"], path, f"{where}.target"))


def _incident_ref(value: Any, path: Path, where: str) -> IncidentRef:
    fields = _take(value, _INCIDENT_FIELDS, path, where)
    authors = fields["fix_authors"]
    if not isinstance(authors, list):
        raise _manifest_error(f"expected a list of reviewer ids, found "
                              f"{schema.describe(authors)}", path, f"{where}.fix_authors")
    return IncidentRef(
        id=_text(fields["id"], path, f"{where}.id"),
        category=_text(fields["category"], path, f"{where}.category"),
        severity=_text(fields["severity"], path, f"{where}.severity"),
        owner=_text(fields["owner"], path, f"{where}.owner"),
        fix_authors=tuple(_text(author, path, f"{where}.fix_authors[{index}]")
                          for index, author in enumerate(authors)),
    )


def _list(value: Any, path: Path, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise _manifest_error(f"expected a list, found {schema.describe(value)}", path, where)
    return value


def load_manifest(path: Path) -> Manifest:
    """Read a validation manifest; a missing or malformed one is an InputError."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError("manifest not found", path=path) from None
    except OSError as exc:
        raise InputError(f"cannot read the manifest: {exc.strerror}", path=path) from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError("the manifest is not UTF-8 text", path=path) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON: {exc.msg}", path=path, line=exc.lineno) from None
    fields = _take(data, MANIFEST_FIELDS, path, "")
    if fields["version"] != FORMAT_VERSION:
        raise _manifest_error(f"expected {FORMAT_VERSION}, found {fields['version']!r}", path,
                              "version")
    if fields["decision"] not in GATE_DECISIONS:
        problem = f"expected RESTORE or BLOCK, found {schema.describe(fields['decision'])}"
        raise _manifest_error(problem, path, "decision")
    report = _text(fields["report"], path, "report")
    if Path(report).name != report:
        raise _manifest_error(f"expected a file name beside the manifest, found {report!r}",
                              path, "report")
    reasons = _list(fields["reasons"], path, "reasons")
    for index, reason in enumerate(reasons):
        if not isinstance(reason, Mapping):
            raise _manifest_error(f"expected an object, found {schema.describe(reason)}",
                                  path, f"reasons[{index}]")
    return Manifest(
        path=path,
        sha256=sha256_text(raw),
        version=FORMAT_VERSION,
        suite=_text(fields["suite"], path, "suite"),
        suite_path=_text(fields["suite_path"], path, "suite_path"),
        suite_digest=_digest(fields["suite_digest"], path, "suite_digest"),
        baseline_run=_run_ref(fields["baseline_run"], path, "baseline_run"),
        candidate_run=_run_ref(fields["candidate_run"], path, "candidate_run"),
        decision=fields["decision"],
        reasons=tuple(reasons),
        incidents=tuple(_incident_ref(item, path, f"incidents[{index}]")
                        for index, item in enumerate(_list(fields["incidents"], path,
                                                           "incidents"))),
        report=report,
        report_body_sha256=_digest(fields["report_body_sha256"], path, "report_body_sha256"),
        generated_at=_text(fields["generated_at"], path, "generated_at"),
    )


def relative_path(path: Path, folder: Path) -> str:
    """``path`` relative to ``folder`` (both resolved), as manifests and reports name files."""
    return os.path.relpath(path.resolve(), folder.resolve())


def build_manifest(comparison: Comparison, decision: Decision, suite: Suite, path: Path, *,
                   report: Path, body_sha256: str, generated_at: str) -> dict[str, Any]:
    """The manifest of a validation, as :func:`load_manifest` reads it, to be written at
    ``path`` beside its ``report``."""
    folder = path.parent
    fix_authors = {
        case.id: list(case.incident.fix.get("authors", ()))
        for case in suite.cases if case.incident is not None
    }

    def run(record: Any) -> dict[str, str]:
        return {"path": relative_path(record.path, folder), "sha256": sha256_file(record.path),
                "run_id": record.header.run_id, "target": record.header.target}

    return {
        "version": FORMAT_VERSION,
        "suite": suite.name,
        "suite_path": relative_path(suite.path, folder),
        "suite_digest": comparison.candidate.header.suite_digest,
        "baseline_run": run(comparison.baseline),
        "candidate_run": run(comparison.candidate),
        "decision": decision.outcome,
        "reasons": [{"rule": r.rule, "case_id": r.case_id, "message": r.message,
                     "owner": r.owner} for r in decision.reasons],
        "incidents": [
            {"id": c.case_id, "category": c.latest.category, "severity": c.latest.severity,
             "owner": c.latest.owner, "fix_authors": fix_authors.get(c.case_id, [])}
            for c in comparison.cases if c.incident
        ],
        "report": report.name,
        "report_body_sha256": body_sha256,
        "generated_at": generated_at,
    }
