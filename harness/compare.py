"""Compare two runs case by case: each case gets a transition, pass rates and what changed.

The baseline is the run the candidate is judged against (the pre-fix run, or the last release);
the candidate is the run to restore or deploy. Comparison only describes; the gate decides.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from harness.diff import (
    MAX_DIFF_CHARS,
    CallChange,
    CallOp,
    align_calls,
    call_lines,
    not_diffed,
    word_diff,
)
from harness.errors import InputError
from harness.model import CaseResult, TargetResponse
from harness.records import RunRecord

MAX_DIFF_LINES = 60
"""Longest structured diff kept per field."""


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


class OutputState(StrEnum):
    """Whether a case's two outputs were diffed and, if not, why."""

    CHANGED = "changed"
    IDENTICAL = "identical"
    ONE_RUN = "one_run"
    """The case is in one run only."""
    STILL_PASSING = "still_passing"
    """Not diffed: the case passes in both runs."""
    NO_RESPONSE = "no_response"
    """A run has no response for the case (its trials errored)."""


@dataclass(frozen=True, slots=True)
class CheckChange:
    """A check whose verdict differs between the runs (first trial of each); ``None`` where
    the check is absent from a run. The reason is the candidate's (the baseline's for a check
    the candidate lacks)."""

    kind: str
    line: int | None
    baseline: str | None
    candidate: str | None
    reason: str
    turn: int | None = None
    """The turn a per-turn check judged (multi-turn cases); None for the case's own checks."""

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "line": self.line, "baseline": self.baseline,
                "candidate": self.candidate, "reason": self.reason}


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
    output_diff_omitted: int = 0
    """Characters of the two outputs past what the word diff covers (its caps)."""
    similarity: float | None = None
    """rapidfuzz's ratio (0-100) of the two outputs' first :data:`MAX_DIFF_CHARS` characters."""
    tool_call_diff: tuple[CallChange, ...] = ()
    """The tool calls of both runs aligned; empty when no call changed."""
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

    @property
    def output_state(self) -> OutputState:
        if self.baseline is None or self.candidate is None:
            return OutputState.ONE_RUN
        if self.transition is Transition.STILL_PASSING:
            return OutputState.STILL_PASSING
        if self.similarity is None:
            return OutputState.NO_RESPONSE
        return OutputState.CHANGED if self.output_diff else OutputState.IDENTICAL

    def to_dict(self) -> dict[str, Any]:
        """The JSON form ``harness compare --format json`` prints for this case."""
        baseline, candidate = self.baseline, self.candidate
        return {
            "case_id": self.case_id, "transition": self.transition.value,
            "incident": self.incident,
            "baseline": baseline.verdict if baseline else None,
            "candidate": candidate.verdict if candidate else None,
            "baseline_pass_rate": baseline.pass_rate if baseline else None,
            "candidate_pass_rate": candidate.pass_rate if candidate else None,
            "candidate_interval": self.candidate_interval, "similarity": self.similarity,
            "check_changes": [change.to_dict() for change in self.check_changes],
            "structured_diffs": self.structured_diffs,
            "output_diff_state": self.output_state.value,
            "output_diff": [{"op": op, "text": text} for op, text in self.output_diff],
            "output_diff_omitted": self.output_diff_omitted,
            "tool_call_diff": [change.to_dict() for change in self.tool_call_diff],
        }


@dataclass(frozen=True, slots=True)
class Comparison:
    """Both runs and every case's comparison, incident cases first."""

    baseline: RunRecord
    candidate: RunRecord
    cases: tuple[CaseComparison, ...]

    def counts(self) -> dict[Transition, int]:
        counted = Counter(case.transition for case in self.cases)
        return {transition: counted.get(transition, 0) for transition in Transition}

    def to_dict(self) -> dict[str, Any]:
        """The JSON form ``harness compare --format json`` prints."""
        return {"counts": {t.value: n for t, n in self.counts().items()},
                "cases": [case.to_dict() for case in self.cases]}


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
    return wilson_interval(result.passes, len(result.trials))


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


def _capped(lines: list[str]) -> list[str]:
    if len(lines) > MAX_DIFF_LINES:
        return [*lines[:MAX_DIFF_LINES], f"... ({len(lines) - MAX_DIFF_LINES} more)"]
    return lines


def _structured(before: TargetResponse, after: TargetResponse,
                calls: tuple[CallChange, ...]) -> dict[str, list[str]]:
    """Human-readable lines per field that differs: the tool calls as aligned by
    :func:`harness.diff.align_calls`, sources and approvals position by position."""
    diffs: dict[str, list[str]] = {}
    if calls:
        diffs["tool_calls"] = _capped(call_lines(calls))
    old, new = before.to_dict(), after.to_dict()
    for name in ("sources", "approvals"):
        if old[name] == new[name]:
            continue
        from deepdiff import DeepDiff  # imported here: only comparisons with changes need it

        lines = DeepDiff(old[name], new[name], verbose_level=2).pretty().splitlines()
        diffs[name] = _capped([line.replace("root", name, 1) for line in lines])
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
            turn=shown.turn,
        ))
    return tuple(changes)


def compare_case(baseline: CaseResult | None, candidate: CaseResult | None) -> CaseComparison:
    """Compare one case's results; either side may be missing (new or removed case)."""
    kind = transition(baseline, candidate)
    present = candidate or baseline
    if present is None:
        raise ValueError("compare_case needs a result on at least one side")
    case_id = present.case_id
    details: dict[str, Any] = {}
    if baseline is not None and candidate is not None:
        details["check_changes"] = _check_changes(baseline, candidate)
        details["case_changed"] = baseline.case_digest != candidate.case_digest
        before, after = _response(baseline), _response(candidate)
        if before is not None and after is not None and kind is not Transition.STILL_PASSING:
            from rapidfuzz import fuzz

            if before.output != after.output:
                details["output_diff"] = word_diff(before.output, after.output)
                details["output_diff_omitted"] = (not_diffed(before.output)
                                                  + not_diffed(after.output))
            cut = MAX_DIFF_CHARS  # an output of megabytes would take rapidfuzz minutes
            details["similarity"] = round(fuzz.ratio(before.output[:cut], after.output[:cut]), 1)
            calls = align_calls(before.tool_calls, after.tool_calls)
            if any(call.op is not CallOp.UNCHANGED for call in calls):
                details["tool_call_diff"] = calls
            details["structured_diffs"] = _structured(before, after,
                                                      details.get("tool_call_diff", ()))
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
