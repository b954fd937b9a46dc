"""The validation manifest: what ``harness validate`` compared and decided, beside its report.

A manifest (JSON) names the suite and its digest, both run records with their digests, the
decision at validation and the gate's decision on the runs with every reason, the incidents
covered (with their fixes' authors), the gate and sign-off policies that applied, the report
and the SHA-256 of its body. It is what a sign-off binds to, and the policy travels with it: a
later gate or verify takes the policy from here, not from a suite file that may have changed.
:func:`build_manifest` writes what :func:`load_manifest` reads; version 1 manifests (no
policies, reasons without ``blocking``), version 2 ones (no ``gate_policy.judges``) and
version 3 ones (reasons without ``business_owner`` and ``checks``) still load.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import __version__, schema
from harness.compare import Comparison
from harness.digest import sha256_file, sha256_text
from harness.errors import InputError
from harness.gate import OUTCOMES, Decision, FailingCheck, GatePolicy, Outcome, Reason
from harness.model import CATEGORIES, Suite

FORMAT_VERSION = 4
VERSIONS = (1, 2, 3, 4)
_FIELDS_V1 = (
    "version", "suite", "suite_path", "suite_digest", "baseline_run", "candidate_run",
    "decision", "reasons", "incidents", "report", "report_body_sha256", "generated_at",
)
MANIFEST_FIELDS = (
    "version", "suite", "suite_path", "suite_digest", "baseline_run", "candidate_run",
    "decision", "tests_decision", "reasons", "incidents", "gate_policy", "signoff_policy",
    "report", "report_body_sha256", "generated_at", "harness_version",
)
_RUN_FIELDS = ("path", "sha256", "run_id", "target")
_INCIDENT_FIELDS = ("id", "category", "severity", "owner", "fix_authors")
_REASON_TEXTS = ("rule", "message")
_REASON_OPTIONAL = ("case_id", "title", "owner", "severity", "category")
_REASON_OPTIONAL_V4 = ("business_owner",)
_CHECK_FIELDS = ("kind", "line", "verdict", "reason")
_V1_NOTES = frozenset({"still_failing_out_of_scope", "removed", "flaky_settled", "case_changed",
                       "incomplete_baseline", "signoff"})
"""The rules that were notes when version 1 manifests did not yet say which reasons block."""
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
    decision: Outcome
    """The decision at validation, before any sign-off."""
    tests: Decision
    """The gate's decision on the runs alone, with every reason."""
    incidents: tuple[IncidentRef, ...]
    report: str
    report_body_sha256: str
    generated_at: str
    gate_policy: GatePolicy | None = None
    """None for a version 1 manifest, which did not record it."""
    required_roles: Mapping[str, tuple[str, ...]] | None = None
    """The sign-off policy (roles by ``default`` and by category); None when the validation
    required no sign-off, or for a version 1 manifest, which did not record it."""

    @property
    def report_path(self) -> Path:
        return self.path.parent / self.report

    @property
    def reasons(self) -> tuple[Reason, ...]:
        return self.tests.reasons

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


def _reason(value: Any, path: Path, where: str, *, version: int) -> Reason:
    if not isinstance(value, Mapping):
        raise _manifest_error(f"expected an object, found {schema.describe(value)}", path, where)
    texts = {name: _text(value.get(name), path, f"{where}.{name}") for name in _REASON_TEXTS}
    optional = {}
    for name in _REASON_OPTIONAL + (_REASON_OPTIONAL_V4 if version >= 4 else ()):
        item = value.get(name)
        if item is not None and not isinstance(item, str):
            raise _manifest_error(f"expected a string or null, found {schema.describe(item)}",
                                  path, f"{where}.{name}")
        optional[name] = item
    blocking: Any = texts["rule"] not in _V1_NOTES if version == 1 else value.get("blocking")
    if not isinstance(blocking, bool):
        raise _manifest_error(f"expected true or false, found {schema.describe(blocking)}",
                              path, f"{where}.blocking")
    checks = tuple(_failing_check(item, path, f"{where}.checks[{index}]") for index, item
                   in enumerate(_list(value.get("checks", []), path, f"{where}.checks")))
    return Reason(rule=texts["rule"], message=texts["message"], blocking=blocking,
                  checks=checks, **optional)


def _failing_check(value: Any, path: Path, where: str) -> FailingCheck:
    fields = _take(value, _CHECK_FIELDS, path, where)
    line = fields["line"]
    if line is not None and (isinstance(line, bool) or not isinstance(line, int)):
        raise _manifest_error(f"expected a line number or null, found {schema.describe(line)}",
                              path, f"{where}.line")
    return FailingCheck(kind=_text(fields["kind"], path, f"{where}.kind"), line=line,
                        verdict=_text(fields["verdict"], path, f"{where}.verdict"),
                        reason=_text(fields["reason"], path, f"{where}.reason"))


def _outcome(value: Any, path: Path, where: str, allowed: Sequence[Outcome]) -> Outcome:
    for outcome in allowed:
        if value == outcome:
            return outcome
    problem = f"expected one of {', '.join(allowed)}, found {schema.describe(value)}"
    raise _manifest_error(problem, path, where)


def _gate_policy(value: Any, path: Path, *, version: int) -> GatePolicy:
    keys: tuple[str, ...] = ("severities", "categories", "settle_trials")
    if version >= 3 and isinstance(value, Mapping) and "judges" in value:
        keys += ("judges",)  # version 3: what the gate required of the judges, when anything
        judges = _take(value["judges"], ("max_false_pass_rate",), path, "gate_policy.judges")
        rate = judges["max_false_pass_rate"]
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
            raise _manifest_error(f"expected a number from 0 to 1, found "
                                  f"{schema.describe(rate)}", path,
                                  "gate_policy.judges.max_false_pass_rate")
    fields = _take(value, keys, path, "gate_policy")
    for name in ("severities", "categories"):
        items = _list(fields[name], path, f"gate_policy.{name}")
        for index, item in enumerate(items):
            _text(item, path, f"gate_policy.{name}[{index}]")
    settle = fields["settle_trials"]
    if settle is not None and (isinstance(settle, bool) or not isinstance(settle, int)
                               or settle < 1):
        raise _manifest_error(f"expected a whole number from 1 or null, found "
                              f"{schema.describe(settle)}", path, "gate_policy.settle_trials")
    return GatePolicy.from_section(fields)


def _required_roles(value: Any, path: Path) -> Mapping[str, tuple[str, ...]] | None:
    if value is None:
        return None
    fields = _take(value, ("required_roles",), path, "signoff_policy")
    roles = fields["required_roles"]
    if not isinstance(roles, Mapping) or "default" not in roles:
        problem = f"expected an object with default, found {schema.describe(roles)}"
        raise _manifest_error(problem, path, "signoff_policy.required_roles")
    required: dict[str, tuple[str, ...]] = {}
    for scope, names in roles.items():
        where = f"signoff_policy.required_roles.{scope}"
        if scope != "default" and scope not in CATEGORIES:
            raise _manifest_error(f"expected default or an incident category, found "
                                  f"{scope!r}", path, where)
        listed = _list(names, path, where)
        required[scope] = tuple(_text(name, path, f"{where}[{index}]")
                                for index, name in enumerate(listed))
    return required


def load_manifest(path: Path) -> Manifest:
    """Read a validation manifest (any version in :data:`VERSIONS`); a missing or malformed
    one is an InputError naming the field."""
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
    version = data.get("version") if isinstance(data, Mapping) else None
    if version not in VERSIONS or isinstance(version, bool):
        raise _manifest_error(f"expected one of {', '.join(map(str, VERSIONS))}, found "
                              f"{schema.describe(version)}", path, "version")
    fields = _take(data, _FIELDS_V1 if version == 1 else MANIFEST_FIELDS, path, "")
    if version == 1:
        decision = _outcome(fields["decision"], path, "decision", ("RESTORE", "BLOCK"))
        tests_outcome = decision
    else:
        decision = _outcome(fields["decision"], path, "decision", OUTCOMES)
        tests_outcome = _outcome(fields["tests_decision"], path, "tests_decision",
                                 ("RESTORE", "BLOCK"))
        _text(fields["harness_version"], path, "harness_version")
    report = _text(fields["report"], path, "report")
    if Path(report).name != report:
        raise _manifest_error(f"expected a file name beside the manifest, found {report!r}",
                              path, "report")
    reasons = tuple(_reason(item, path, f"reasons[{index}]", version=version)
                    for index, item in enumerate(_list(fields["reasons"], path, "reasons")))
    return Manifest(
        path=path,
        sha256=sha256_text(raw),
        version=version,
        suite=_text(fields["suite"], path, "suite"),
        suite_path=_text(fields["suite_path"], path, "suite_path"),
        suite_digest=_digest(fields["suite_digest"], path, "suite_digest"),
        baseline_run=_run_ref(fields["baseline_run"], path, "baseline_run"),
        candidate_run=_run_ref(fields["candidate_run"], path, "candidate_run"),
        decision=decision,
        tests=Decision(tests_outcome, reasons),
        incidents=tuple(_incident_ref(item, path, f"incidents[{index}]")
                        for index, item in enumerate(_list(fields["incidents"], path,
                                                           "incidents"))),
        report=report,
        report_body_sha256=_digest(fields["report_body_sha256"], path, "report_body_sha256"),
        generated_at=_text(fields["generated_at"], path, "generated_at"),
        gate_policy=None if version == 1 else _gate_policy(fields["gate_policy"], path,
                                                               version=version),
        required_roles=None if version == 1 else _required_roles(fields["signoff_policy"],
                                                                   path),
    )


def find_manifest(folders: Sequence[Path], *, baseline_sha256: str, candidate_sha256: str
                  ) -> Manifest | None:
    """The manifest, in one of ``folders``, of a validation of exactly these two run records
    (by digest); None when there is none. A manifest that does not load is skipped."""
    for folder in dict.fromkeys(f.resolve() for f in folders if f.is_dir()):
        for path in sorted(folder.glob("validation-*.json")):
            try:
                manifest = load_manifest(path)
            except InputError:
                continue
            if (manifest.candidate_run.sha256, manifest.baseline_run.sha256) == (
                    candidate_sha256, baseline_sha256):
                return manifest
    return None


def relative_path(path: Path, folder: Path) -> str:
    """``path`` relative to ``folder`` (both resolved), as manifests and reports name files."""
    return os.path.relpath(path.resolve(), folder.resolve())


def build_manifest(comparison: Comparison, tests: Decision, suite: Suite, path: Path, *,
                   decision: Outcome, gate_policy: GatePolicy,
                   required_roles: Mapping[str, Sequence[str]] | None, report: Path,
                   body_sha256: str, generated_at: str) -> dict[str, Any]:
    """The manifest of a validation, as :func:`load_manifest` reads it, to be written at
    ``path`` beside its ``report``: ``tests`` is the gate on the runs, ``decision`` the
    outcome at validation (with the sign-offs known then)."""
    folder = path.parent
    fix_authors = {
        case.id: list(case.incident.fix.get("authors", ()))
        for case in suite.cases if case.incident is not None
    }

    def run(record: Any) -> dict[str, str]:
        return {"path": relative_path(record.path, folder), "sha256": sha256_file(record.path),
                "run_id": record.header.run_id, "target": record.header.target}

    signoff = (None if required_roles is None else
               {"required_roles": {scope: list(roles) for scope, roles in required_roles.items()}})
    return {
        "version": FORMAT_VERSION,
        "suite": suite.name,
        "suite_path": relative_path(suite.path, folder),
        "suite_digest": comparison.candidate.header.suite_digest,
        "baseline_run": run(comparison.baseline),
        "candidate_run": run(comparison.candidate),
        "decision": decision,
        "tests_decision": tests.outcome,
        "reasons": [reason.to_dict() for reason in tests.reasons],
        "incidents": [
            {"id": c.case_id, "category": c.latest.category, "severity": c.latest.severity,
             "owner": c.latest.owner, "fix_authors": fix_authors.get(c.case_id, [])}
            for c in comparison.cases if c.incident
        ],
        "gate_policy": gate_policy.to_dict(),
        "signoff_policy": signoff,
        "report": report.name,
        "report_body_sha256": body_sha256,
        "generated_at": generated_at,
        "harness_version": __version__,
    }
