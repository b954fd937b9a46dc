"""Check a case registry before it is trusted (``harness check``, meant for CI).

A registry is a project folder holding ``cases/`` and ``suites/``. Its regression cases protect
something only when they load, have unique ids, are run by a suite, and reproduce their
incident: an incident case that passes on what the workflow did during the incident (its
evidence), or on the release from before the fix, passes whatever the workflow does and guards
nothing. Each such problem is a :class:`Finding` naming the file, the line and what to do.

Which evidence each incident kept (input, prompt version, model route, sources, tool calls,
approvals, output) is reported beside the findings by :func:`completeness`, for information.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from harness import git, judges, judging, loader, schema, targets
from harness.checks.judge import resources_of
from harness.errors import InputError
from harness.intake import writer
from harness.model import EVIDENCE_FIELDS, Case, CaseResult, Suite
from harness.redact import Redactor, run_redactor
from harness.runner import run_case
from harness.targets.replay import ReplayTarget

PRE_FIX = "pre-fix"
"""A suite target of this name is the release from before the fixes: incident cases must fail
on it."""
REPLAYABLE = ("output", "tool_calls", "sources", "approvals")
"""Evidence fields the replay target answers with; a case with none of them cannot replay."""
YAML_SUFFIXES = (".yaml", ".yml")

DUPLICATE_ID = "duplicate_id"
NOT_IN_SUITE = "not_in_suite"
NO_EVIDENCE = "no_evidence"
PASSES_ON_EVIDENCE = "passes_on_evidence"
PASSES_ON_TARGET = "passes_on_target"
NOT_REPRODUCED = "not_reproduced"
DRAFT = "draft"
RETIRED_UNSIGNED = "retired_unsigned"
GONE = "incident_gone"
JUDGE_PASSES_ON_EVIDENCE = "judge_passes_on_evidence"
DROPPED = "incident_dropped"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem in the registry: where it stands, which case, which rule, and what to do."""

    path: str
    line: int | None
    case_id: str | None
    rule: str
    message: str
    fix: str

    def render(self) -> str:
        """``path:line: case: message`` and, indented below, what to do."""
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        case = f"{self.case_id}: " if self.case_id else ""
        return f"{where}: {case}{self.message} [{self.rule}]\n  fix: {self.fix}"


class Completeness(NamedTuple):
    """Which evidence fields one incident case kept (``present``) and which it lacks."""

    case_id: str
    present: list[str]
    missing: list[str]
    reconstructed: list[str] = []  # noqa: RUF012 - a NamedTuple default, never mutated
    """Present fields rebuilt after the fact rather than logged (``evidence.reconstructed``)."""


# --- loading --------------------------------------------------------------------------------


def _shown(file: Path, base: Path) -> str:
    try:
        return str(file.relative_to(base))
    except ValueError:
        return str(file)


def _yaml_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file())


def _load_files(cases_dir: Path) -> list[tuple[Path, Case]]:
    if not cases_dir.is_dir():
        problem = "no cases folder here; expected cases/<workflow>/<ID>.yaml"
        raise InputError(problem, path=cases_dir)
    files = _yaml_files(cases_dir)
    if not files:
        raise InputError("no case files (*.yaml) in this folder", path=cases_dir)
    base = cases_dir.parent
    return [(file, loader.load_case(file, display=_shown(file, base))) for file in files]


def load_cases(cases_dir: Path) -> list[Case]:
    """Every case file under ``cases_dir`` (recursively), named relative to its parent folder.

    A missing or empty folder, or a file that does not load, raises :class:`InputError`.
    """
    return [case for _, case in _load_files(cases_dir)]


def load_suites(root: Path) -> list[Suite]:
    """Every suite file in ``root/suites`` (none when the folder does not exist)."""
    folder = root / "suites"
    if not folder.is_dir():
        return []
    files = sorted(p for p in folder.iterdir() if p.suffix in YAML_SUFFIXES and p.is_file())
    return [loader.load_suite(file) for file in files]


# --- the rules ------------------------------------------------------------------------------


def _duplicates(loaded: Sequence[tuple[Path, Case]]) -> list[Finding]:
    first: dict[str, Case] = {}
    findings = []
    for _, case in loaded:
        if case.id not in first:
            first[case.id] = case
            continue
        other = first[case.id]
        findings.append(Finding(
            path=str(case.path), line=case.line, case_id=case.id, rule=DUPLICATE_ID,
            message=f"duplicate case id {case.id!r}; also used in {other.path}:{other.line}",
            fix="give each case its own id (the id field, or the file name when there is none)",
        ))
    return findings


def _drafts(loaded: Sequence[tuple[Path, Case]]) -> list[Finding]:
    findings = []
    for file, case in loaded:
        if not case.draft:
            continue
        data, _ = loader.read_yaml(file, shown=case.path)
        left = writer.left_to_fill(data)
        what = f"; left to fill: {', '.join(left)}" if left else "; nothing left to fill"
        findings.append(Finding(
            path=str(case.path), line=data.lines.get("draft", case.line), case_id=case.id,
            rule=DRAFT, message=f"draft case: drafted by tooling and not yet reviewed{what}",
            fix=f"fill what is left, review it, then: harness case close {case.path}",
        ))
    return findings


def _included(suites: Sequence[Suite]) -> set[Path]:
    return {(suite.root / case.path).resolve() for suite in suites for case in suite.cases}


def _orphans(loaded: Sequence[tuple[Path, Case]], suites: Sequence[Suite]) -> list[Finding]:
    included = _included(suites)
    findings = []
    for file, case in loaded:
        incident = case.incident
        if (incident is None or incident.status != "closed" or file.resolve() in included
                or case.retired is not None):
            continue
        kind = "closed near miss" if incident.near_miss else "closed incident"
        findings.append(Finding(
            path=str(case.path), line=case.line, case_id=case.id, rule=NOT_IN_SUITE,
            message=f"{kind} is not included by any suite, so no run guards it",
            fix="add it to a suite's cases globs (suites/*.yaml)",
        ))
    return findings


def _retired(loaded: Sequence[tuple[Path, Case]], accepted: frozenset[str]) -> list[Finding]:
    """A retired incident case stays an incident record; its retirement counts once a reviewer
    signed off a validation that shows it (risk_accepted naming the case)."""
    return [
        Finding(path=str(case.path), line=case.line, case_id=case.id, rule=RETIRED_UNSIGNED,
                message=f"retired ({case.retired}), and no signed-off validation accepted the "
                        "retirement",
                fix=f"run harness validate (its report shows the retirement) and have a "
                    f"reviewer sign it: --meaning risk_accepted --case {case.id} --comment WHY")
        for _, case in loaded
        if case.incident is not None and case.retired is not None and case.id not in accepted
    ]


def _is_incident_text(data: bytes, name: str) -> bool:
    """Whether a case file's text (as it was at a revision) holds an incident record; a file
    that no longer parses counts as one: nothing is let go on a guess."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        file = Path(folder) / "case.yaml"
        file.write_bytes(data)
        try:
            parsed, _ = loader.read_yaml(file, shown=Path(name))
        except InputError:
            return True
    return any(key in parsed for key in schema.INCIDENT_FIELDS)


def vanished(root: Path, since: str | None, loaded: Sequence[tuple[Path, Case]],
             suites: Sequence[Suite], accepted: frozenset[str]) -> tuple[list[Finding], str]:
    """Incident case files that existed at the revision (see :func:`harness.git.revision`) and
    are gone, or are no longer in any suite without an accepted retirement; and a note saying
    what was checked."""
    found = git.revision(since, root)
    if found is None:
        why = "--since none" if since == git.NONE else f"{root} is not in a git work tree"
        return [], f"incident history not checked ({why})"
    top, commit, how = found
    now = {file.resolve(): case for file, case in loaded}
    included = _included(suites)
    findings = []
    names = [n for n in git.files_at(top, commit, root / "cases")
             if Path(n).suffix in YAML_SUFFIXES]
    for name in names:
        path = (top / name).resolve()
        shown = _shown(top / name, root)
        data = git.show(top, commit, name)
        if data is None or not _is_incident_text(data, name):
            continue
        case = now.get(path)
        if case is None:
            findings.append(Finding(
                path=shown, line=None, case_id=None, rule=GONE,
                message=f"an incident case file at {commit[:12]} ({how}) is gone: a deleted "
                        "regression case is a silent reintroduction",
                fix="restore it; to stop running it, keep the file and mark it retired: "
                    "{reason: ...}, then have the validation that shows it signed off"))
        elif path not in included and case.retired is None:
            findings.append(Finding(
                path=shown, line=case.line, case_id=case.id, rule=DROPPED,
                message=f"was in the registry at {commit[:12]} ({how}) and is now in no suite",
                fix="add it back to a suite's cases globs, or mark it retired: {reason: ...}"))
    return findings, f"incident history checked against {commit[:12]} ({how}): " \
                     f"{len(names)} case file(s) then"


def _error_of(result: CaseResult) -> str:
    for trial in result.trials:
        if trial.error:
            return trial.error
        for check in trial.checks:
            if check.verdict == "error":
                return f"{check.kind}: {check.reason}"
    return "no trial ran"


class Judging:
    """How ``harness check`` treats checks that call a suite's judges or embedders: with the
    judges of the suite that runs the case, or (``enabled`` False) left out."""

    def __init__(self, suites: Sequence[Suite], cases: Iterable[Case], *, enabled: bool,
                 no_cache: bool) -> None:
        self.enabled = enabled
        redactor = run_redactor(cases)

        def redaction() -> Redactor:
            return redactor

        self._services = {
            (suite.root / case.path).resolve(): service
            for suite in reversed(suites)  # the first suite including a case wins
            if (service := judges.for_suite(suite, no_cache=no_cache,
                                            redactor=redaction)) is not None
            for case in suite.cases}

    def service(self, case: Case, root: Path) -> judges.Judges | None:
        return self._services.get((root / case.path).resolve())

    def applied(self, case: Case) -> Case:
        """The case as it is checked: without its model-graded checks when judging is off."""
        if self.enabled:
            return case
        turns = tuple(dataclasses.replace(turn, expect=tuple(
            e for e in turn.expect if not resources_of(e.check))) for turn in case.turns)
        return dataclasses.replace(case, turns=turns, expect=tuple(
            e for e in case.expect if not resources_of(e.check)))


def _model_graded_passes(case: Case, result: CaseResult) -> list[Finding]:
    """Each judge or semantic check that passed on the incident's evidence, on its own: the
    model it relies on did not see the failure, whatever the case's other checks say."""
    graded = {e.line for e in case.expect if resources_of(e.check)}
    findings = []
    for trial in result.trials[:1]:
        for check in trial.checks:
            if check.line in graded and check.verdict == "pass":
                findings.append(Finding(
                    path=str(case.path), line=check.line, case_id=case.id,
                    rule=JUDGE_PASSES_ON_EVIDENCE,
                    message=f"{check.kind} check passes on the incident's own evidence: "
                            f"{check.reason}",
                    fix="make the rubric or reference catch the failure of the evidence, or "
                        "use a judge that does (harness judge calibrate measures it)"))
    return findings


def evidence_findings(cases: Iterable[Case], judging_: Judging, root: Path) -> list[Finding]:
    """The findings about incident cases on their own evidence: none to replay, passing on it
    (as a whole, or a judge check on its own), or not reproducing it."""
    findings = []
    replay = ReplayTarget()
    for original in cases:
        if original.incident is None:
            continue
        case = judging_.applied(original)
        if not any(key in case.evidence for key in REPLAYABLE):
            findings.append(Finding(
                path=str(case.path), line=case.line, case_id=case.id, rule=NO_EVIDENCE,
                message=f"no evidence to replay: evidence has none of {', '.join(REPLAYABLE)}",
                fix="record what the workflow did during the incident under evidence",
            ))
            continue
        if not case.expect:
            continue  # only model-graded checks, and judging is off: nothing to replay
        with judging.using(judging_.service(case, root)):
            result = run_case(case, replay)
        findings += _model_graded_passes(case, result)
        if result.verdict == "pass":
            findings.append(Finding(
                path=str(case.path), line=case.line, case_id=case.id, rule=PASSES_ON_EVIDENCE,
                message="passes on its own evidence: its checks would not have caught the "
                        "incident, so it guards nothing",
                fix="make expect fail on what the workflow did during the incident (evidence)",
            ))
        elif result.verdict == "error":
            findings.append(Finding(
                path=str(case.path), line=case.line, case_id=case.id, rule=NOT_REPRODUCED,
                message=f"could not reproduce on its evidence: {_error_of(result)}",
                fix="correct the case's checks or evidence so that its replay runs",
            ))
    return findings


def proof_targets(suite: Suite) -> list[str]:
    """The suite's targets its incident cases must fail on: ``pre-fix`` and the target that
    ``gate.baseline`` names (a baseline that is a run record file is not a target)."""
    names = [PRE_FIX, suite.gate.get("baseline")]
    return [name for name in dict.fromkeys(names)
            if isinstance(name, str) and name in suite.targets
            and suite.targets[name].kind != "replay"]


def _on_targets(suites: Sequence[Suite], judging_: Judging) -> list[Finding]:
    findings = []
    for suite in suites:
        incidents = [judging_.applied(case) for case in suite.cases
                     if case.incident is not None and case.retired is None]
        incidents = [case for case in incidents if case.expect]
        if not incidents:
            continue
        for name in proof_targets(suite):
            spec = suite.targets[name]
            target = targets.build(spec, suite.root)
            on = f"target {name!r} of {suite.path}:{spec.line}"
            for case in incidents:
                with judging.using(judging_.service(case, suite.root)):
                    result = run_case(case, target)
                if result.verdict == "pass":
                    findings.append(Finding(
                        path=str(case.path), line=case.line, case_id=case.id,
                        rule=PASSES_ON_TARGET,
                        message=f"passes on {on}: it does not reproduce its incident there "
                                "and guards nothing",
                        fix=f"make expect fail on the {name} release (the failure of the "
                            f"incident), or point {name!r} at the release from before the fix",
                    ))
                elif result.verdict == "error":
                    findings.append(Finding(
                        path=str(case.path), line=case.line, case_id=case.id,
                        rule=NOT_REPRODUCED,
                        message=f"could not reproduce on {on}: {_error_of(result)}",
                        fix=f"make target {name!r} answer (see the error), then run again",
                    ))
    return findings


def check_registry(root: Path, *, run_targets: bool = True, since: str | None = None,
                   accepted_retirements: frozenset[str] = frozenset(),
                   notes: list[str] | None = None, judges: bool = True,
                   no_cache: bool = False) -> list[Finding]:
    """Every finding for the registry in ``root``, ordered by file and line.

    Case files under ``root/cases`` and suites under ``root/suites`` must load, and the targets
    to run must build: any that does not raises :class:`InputError` (bad input).
    ``run_targets`` False skips running the incident cases against each suite's ``pre-fix``
    (or ``gate.baseline``) target. Incident cases that existed at ``since`` (see
    :func:`vanished`) must still be here; ``accepted_retirements`` are the ids whose
    retirement a reviewer signed. What the history check covered is appended to ``notes``.
    Judge and semantic checks call the judges of the suite that runs their case (cached
    unless ``no_cache``); ``judges`` False leaves them out.
    """
    loaded = _load_files(root / "cases")
    suites = load_suites(root)
    # Replaying and running cases runs their python checks: this is the project's code.
    loader.import_project_code((case for _, case in loaded), root)
    history, note = vanished(root, since, loaded, suites, accepted_retirements)
    if notes is not None:
        notes.append(note)
    findings = [
        *_duplicates(loaded),
        *_drafts(loaded),
        *_orphans(loaded, suites),
        *_retired(loaded, accepted_retirements),
        *history,
    ]
    judging_ = Judging(suites, (case for _, case in loaded), enabled=judges, no_cache=no_cache)
    findings += evidence_findings((case for _, case in loaded if case.retired is None),
                                  judging_, root)
    if run_targets:
        findings.extend(_on_targets(suites, judging_))
    return sorted(findings, key=lambda f: (f.path, f.line or 0, f.rule, f.message))


# --- evidence completeness ------------------------------------------------------------------


def completeness(cases: Iterable[Case]) -> list[Completeness]:
    """For each incident case, which evidence fields it kept and which are absent or listed in
    ``evidence.missing`` (in the order of :data:`~harness.model.EVIDENCE_FIELDS`)."""
    rows = []
    for case in cases:
        if case.incident is None:
            continue
        listed = set(case.evidence.get("missing", ()))
        present = [name for name in EVIDENCE_FIELDS
                   if name in case.evidence and name not in listed]
        missing = [name for name in EVIDENCE_FIELDS if name not in present]
        rows.append(Completeness(case.id, present, missing, reconstructed(case, present)))
    return rows


def reconstructed(case: Case, present: Sequence[str]) -> list[str]:
    """The case's evidence fields rebuilt rather than logged: all present ones when
    ``evidence.reconstructed`` is true, those it lists otherwise."""
    said = case.evidence.get("reconstructed", False)
    if said is True:
        return list(present)
    if isinstance(said, list):
        return [name for name in present if name in said]
    return []


def render_report(findings: Sequence[Finding], rows: Sequence[Completeness]) -> str:
    """The terminal report: evidence completeness (information), then the findings."""
    lines = ["Evidence completeness (information, not findings):"]
    width = max((len(row.case_id) for row in rows), default=0)
    for row in rows:
        logged = len(row.present) - len(row.reconstructed)
        kept = f"{logged}/{len(EVIDENCE_FIELDS)} fields logged"
        rebuilt = (f"; reconstructed: {', '.join(row.reconstructed)}" if row.reconstructed
                   else "")
        gap = f"; missing: {', '.join(row.missing)}" if row.missing else ""
        lines.append(f"  {row.case_id:<{width}}  {kept}{rebuilt}{gap}")
    if not rows:
        lines.append("  no incident cases")
    lines.append("")
    lines.extend(finding.render() for finding in findings)
    count = len(findings)
    lines.append(f"{count} finding{'s' if count != 1 else ''}" if count
                 else "no findings: every incident case is unique, included and reproduces")
    return "\n".join(lines)
