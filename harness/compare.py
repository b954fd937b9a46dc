"""Compare two runs case by case: each case gets a transition, pass rates and what changed.

The baseline is the run the candidate is judged against (the pre-fix run, or the last release);
the candidate is the run to restore or deploy. Comparison only describes; the gate decides.
"""

from __future__ import annotations

import difflib
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from harness.errors import InputError
from harness.model import CaseResult, TargetResponse
from harness.records import RunRecord

MAX_DIFF_LINES = 60
"""Longest structured diff kept per field."""
MAX_DIFF_WORDS = 2_000
"""Outputs longer than this many words are diffed only up to it."""


class Transition(StrEnum):
    """What happened to a case between the baseline and the candidate run."""

    FIXED = "fixed"
    REGRESSED = "regressed"
    STILL_FAILING = "still_failing"
    STILL_PASSING = "still_passing"
    NEW = "new"
    REMOVED = "removed"
    FLAKY = "flaky"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class CheckChange:
    """A check whose verdict differs between the runs (first trial of each)."""

    kind: str
    line: int | None
    baseline: str | None
    candidate: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class CaseComparison:
    """One case across both runs."""

    case_id: str
    transition: Transition
    baseline: CaseResult | None
    candidate: CaseResult | None
    baseline_interval: tuple[float, float] | None = None
    candidate_interval: tuple[float, float] | None = None
    check_changes: tuple[CheckChange, ...] = ()
    output_diff: tuple[tuple[str, str], ...] = ()
    similarity: float | None = None
    structured_diffs: dict[str, list[str]] = field(default_factory=dict)
    case_changed: bool = False

    @property
    def latest(self) -> CaseResult:
        """The candidate's result, or the baseline's for a removed case."""
        result = self.candidate or self.baseline
        assert result is not None  # a comparison always has at least one side
        return result

    @property
    def incident(self) -> bool:
        return self.latest.incident


@dataclass(frozen=True, slots=True)
class Comparison:
    """Both runs and every case's comparison, incident cases first."""

    baseline: RunRecord
    candidate: RunRecord
    cases: tuple[CaseComparison, ...]

    def counts(self) -> dict[Transition, int]:
        counted = Counter(case.transition for case in self.cases)
        return {transition: counted.get(transition, 0) for transition in Transition}


def wilson_interval(passes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (95% by default) of a pass rate of ``passes`` in ``trials``."""
    if trials == 0:
        return (0.0, 1.0)
    rate = passes / trials
    denominator = 1 + z * z / trials
    centre = (rate + z * z / (2 * trials)) / denominator
    margin = z * math.sqrt(rate * (1 - rate) / trials + z * z / (4 * trials * trials))
    margin /= denominator
    return (max(0.0, centre - margin), min(1.0, centre + margin))


def _interval(result: CaseResult | None) -> tuple[float, float] | None:
    if result is None or len(result.trials) < 2:
        return None
    passes = sum(trial.verdict == "pass" for trial in result.trials)
    return wilson_interval(passes, len(result.trials))


def _disagrees(result: CaseResult) -> bool:
    verdicts = {trial.verdict for trial in result.trials}
    return "pass" in verdicts and len(verdicts) > 1


def transition(baseline: CaseResult | None, candidate: CaseResult | None) -> Transition:
    """The transition of one case. The candidate decides first: an error or trials that
    disagree are reported as such whatever the baseline was."""
    if candidate is None:
        return Transition.REMOVED
    if candidate.verdict == "error":
        return Transition.ERROR
    if _disagrees(candidate):
        return Transition.FLAKY
    if baseline is None:
        return Transition.NEW
    passes = candidate.verdict == "pass"
    passed_before = baseline.verdict == "pass"
    if passes:
        return Transition.STILL_PASSING if passed_before else Transition.FIXED
    return Transition.REGRESSED if passed_before else Transition.STILL_FAILING


def _response(result: CaseResult | None) -> TargetResponse | None:
    """The response that stands for a case: one from a trial with the case's verdict."""
    if result is None:
        return None
    with_response = [trial for trial in result.trials if trial.response is not None]
    for trial in with_response:
        if trial.verdict == result.verdict:
            return trial.response
    return with_response[0].response if with_response else None


def word_diff(before: str, after: str) -> tuple[tuple[str, str], ...]:
    """A word-level diff as (op, text) pairs; op is ``equal``, ``delete`` or ``insert``."""
    old = re.findall(r"\S+|\s+", before)[:MAX_DIFF_WORDS]
    new = re.findall(r"\S+|\s+", after)[:MAX_DIFF_WORDS]
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    parts: list[tuple[str, str]] = []
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op == "equal":
            parts.append(("equal", "".join(old[a1:a2])))
            continue
        if op in ("delete", "replace"):
            parts.append(("delete", "".join(old[a1:a2])))
        if op in ("insert", "replace"):
            parts.append(("insert", "".join(new[b1:b2])))
    return tuple(parts)


def _structured(before: TargetResponse, after: TargetResponse) -> dict[str, list[str]]:
    from deepdiff import DeepDiff  # imported here: only comparisons with changes need it

    diffs: dict[str, list[str]] = {}
    old, new = before.to_dict(), after.to_dict()
    for name in ("tool_calls", "sources", "approvals"):
        if old[name] == new[name]:
            continue
        lines = DeepDiff(old[name], new[name], verbose_level=2).pretty().splitlines()
        if len(lines) > MAX_DIFF_LINES:
            lines = [*lines[:MAX_DIFF_LINES], f"... ({len(lines) - MAX_DIFF_LINES} more)"]
        diffs[name] = [line.replace("root", name, 1) for line in lines]
    return diffs


def _check_changes(baseline: CaseResult, candidate: CaseResult) -> tuple[CheckChange, ...]:
    def first(result: CaseResult) -> dict[tuple[str, int | None], Any]:
        checks = next((t.checks for t in result.trials if t.checks), ())
        return {(c.kind, c.line): c for c in checks}

    old, new = first(baseline), first(candidate)
    changes = []
    for key in dict.fromkeys([*old, *new]):
        before, after = old.get(key), new.get(key)
        if before is not None and after is not None and before.verdict == after.verdict:
            continue
        shown = after or before
        assert shown is not None
        changes.append(CheckChange(
            kind=key[0], line=key[1],
            baseline=before.verdict if before else None,
            candidate=after.verdict if after else None,
            reason=shown.reason,
        ))
    return tuple(changes)


def compare_case(baseline: CaseResult | None, candidate: CaseResult | None) -> CaseComparison:
    """Compare one case's results; either side may be missing (new or removed case)."""
    kind = transition(baseline, candidate)
    case_id = (candidate or baseline).case_id  # type: ignore[union-attr]
    details: dict[str, Any] = {}
    if baseline is not None and candidate is not None:
        details["check_changes"] = _check_changes(baseline, candidate)
        details["case_changed"] = baseline.case_digest != candidate.case_digest
        before, after = _response(baseline), _response(candidate)
        if before is not None and after is not None and kind is not Transition.STILL_PASSING:
            from rapidfuzz import fuzz

            if before.output != after.output:
                details["output_diff"] = word_diff(before.output, after.output)
            details["similarity"] = round(fuzz.ratio(before.output, after.output), 1)
            details["structured_diffs"] = _structured(before, after)
    return CaseComparison(
        case_id=case_id, transition=kind, baseline=baseline, candidate=candidate,
        baseline_interval=_interval(baseline), candidate_interval=_interval(candidate),
        **details,
    )


def compare(baseline: RunRecord, candidate: RunRecord) -> Comparison:
    """Compare two runs of the same suite, case by case (incident cases first, then by id)."""
    if baseline.header.suite != candidate.header.suite:
        problem = (f"runs are of different suites: {baseline.header.suite!r} "
                   f"({baseline.path}) and {candidate.header.suite!r}")
        raise InputError(problem, path=candidate.path, field="suite")
    old, new = baseline.by_id(), candidate.by_id()
    cases = [compare_case(old.get(case_id), new.get(case_id))
             for case_id in dict.fromkeys([*new, *old])]
    cases.sort(key=lambda c: (not c.incident, c.case_id))
    return Comparison(baseline=baseline, candidate=candidate, cases=tuple(cases))
