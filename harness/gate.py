"""The gate: a comparison and a policy -> RESTORE, AWAITING SIGN-OFF or BLOCK, with every reason.

The gate never averages: one regressed case blocks however many others were fixed. It is a pure
function of its inputs, so the same two runs, policy and sign-offs always give the same
decision. :func:`decide` judges the runs; :func:`with_signoffs` adds what reviewers signed,
when the suite's policy requires sign-off.

Rules (each blocking unless stated):

- a case that passed in the baseline and fails in the candidate (``regressed``);
- a case whose candidate run errored (``error``): an unknown is never a pass;
- an incident case still failing (``still_failing``), unless the policy's ``severities`` or
  ``categories`` leave it out of scope (then a note); a baseline case failing in both runs;
- a new case that fails;
- an incident case missing from the candidate (``removed``): a deleted regression case is a
  silent reintroduction (a removed baseline case is a note); one the candidate's suite marks
  retired blocks as ``retired`` until a reviewer accepts the retirement;
- a case whose trials disagree (``flaky``), unless the policy's ``settle_trials`` says how many
  trials settle it and the case ran at least that many: then its verdict decides; but an
  incident case settled below a ``min_pass_rate`` of 1.0 blocks (``settled_below_full``): only
  a reviewer's signed acceptance lets settling pass an incident case below every trial;
- an incident case weakened since the baseline (``weakened``): a check lost or its parameters
  changed, ``trials`` or ``min_pass_rate`` lowered, its input changed, or settling gained or
  made sooner; an incident case whose file changed while the baseline recorded no strictness
  (``strictness_unknown``). Checks added are a note: a case may get stricter silently;
- a candidate run that did not finish, or that has no cases;
- with ``judges.max_false_pass_rate`` set, a judge the candidate's verdicts came from without a
  complete calibration of its configuration (``judge_uncalibrated``) or whose calibration's
  false-pass rate is above the limit (``judge_miscalibrated``). Without the setting, an
  uncalibrated judge is a note.

With sign-off required (:func:`with_signoffs`):

- a reason of a :data:`LIFTABLE` rule about a case whose risk a reviewer accepted in a signed
  ``risk_accepted`` sign-off naming it becomes a note; nothing else is ever lifted;
- the runs blocking, a ledger that cannot be trusted, or a reviewer's standing reject: BLOCK;
- otherwise a required role without an approval, or no readable sign-offs: AWAITING SIGN-OFF;
- otherwise RESTORE.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from harness.calibration import Calibration, judges_relied_on
from harness.compare import CaseComparison, Comparison, Transition
from harness.model import CATEGORIES, SEVERITIES

Outcome = Literal["RESTORE", "AWAITING SIGN-OFF", "BLOCK"]
OUTCOMES: tuple[Outcome, ...] = ("RESTORE", "AWAITING SIGN-OFF", "BLOCK")
AWAITING: Outcome = "AWAITING SIGN-OFF"
LIFTABLE = frozenset({"weakened", "strictness_unknown", "settled_below_full", "retired"})
"""Rules a reviewer's signed risk acceptance can lift for the case it names. A regression, an
error or a still-failing incident is never among them."""
SIGNOFF_MISSING = "signoff_missing"


@dataclass(frozen=True, slots=True)
class GatePolicy:
    """What the suite's ``gate`` section says; the defaults are the safe ones."""

    severities: frozenset[str] = frozenset(SEVERITIES)
    categories: frozenset[str] = frozenset(CATEGORIES)
    settle_trials: int | None = None
    max_false_pass_rate: float | None = None
    """``judges.max_false_pass_rate``: what every judge relied on must be calibrated to."""

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> GatePolicy:
        """Build from a suite's validated ``gate`` section."""
        return cls(
            severities=frozenset(section.get("severities", SEVERITIES)),
            categories=frozenset(section.get("categories", CATEGORIES)),
            settle_trials=section.get("settle_trials"),
            max_false_pass_rate=(section.get("judges") or {}).get("max_false_pass_rate"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The policy as a ``gate`` section reads, for :meth:`from_section` to read back."""
        policy: dict[str, Any] = {
            "severities": [s for s in SEVERITIES if s in self.severities]
            + sorted(self.severities - set(SEVERITIES)),
            "categories": [c for c in CATEGORIES if c in self.categories]
            + sorted(self.categories - set(CATEGORIES)),
            "settle_trials": self.settle_trials}
        if self.max_false_pass_rate is not None:
            policy["judges"] = {"max_false_pass_rate": self.max_false_pass_rate}
        return policy

    def in_scope(self, case: CaseComparison) -> bool:
        """Whether the policy's filters keep this incident case. A severity or category the
        harness does not know is always in scope: a filter can only leave out what it names."""
        result = case.latest
        severity_known = result.severity in SEVERITIES
        category_known = result.category in CATEGORIES
        return ((not severity_known or result.severity in self.severities)
                and (not category_known or result.category in self.categories))


@dataclass(frozen=True, slots=True)
class FailingCheck:
    """A check a reason names: what failed in the candidate, where, and why in one line."""

    kind: str
    line: int | None
    verdict: str
    reason: str

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line else ""
        return f"{self.kind}{where}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Reason:
    """Why the gate decided as it did, about one case (or the run, when ``case_id`` is None)."""

    rule: str
    message: str
    blocking: bool
    case_id: str | None = None
    title: str | None = None
    owner: str | None = None
    severity: str | None = None
    category: str | None = None
    business_owner: str | None = None
    checks: tuple[FailingCheck, ...] = ()
    """The candidate's failing checks the message names (the first failing trial's)."""

    def to_dict(self) -> dict[str, Any]:
        """The reason as ``--format json`` and the manifest give it."""
        return {"rule": self.rule, "blocking": self.blocking, "case_id": self.case_id,
                "message": self.message, "title": self.title, "owner": self.owner,
                "business_owner": self.business_owner, "severity": self.severity,
                "category": self.category,
                "checks": [{"kind": c.kind, "line": c.line, "verdict": c.verdict,
                            "reason": c.reason} for c in self.checks]}


@dataclass(frozen=True, slots=True)
class Decision:
    """The gate's decision: RESTORE only when nothing blocks."""

    outcome: Outcome
    reasons: tuple[Reason, ...]

    @property
    def allowed(self) -> bool:
        return self.outcome == "RESTORE"

    @property
    def awaiting(self) -> bool:
        return self.outcome == AWAITING

    @property
    def blocking(self) -> tuple[Reason, ...]:
        return tuple(reason for reason in self.reasons if reason.blocking)

    @property
    def notes(self) -> tuple[Reason, ...]:
        return tuple(reason for reason in self.reasons if not reason.blocking)

    def owners(self) -> list[str]:
        """The owners of the cases that block."""
        return sorted({r.owner for r in self.blocking if r.owner})

    def to_dict(self) -> dict[str, Any]:
        """The decision as ``--format json`` gives it: the outcome, every reason (blocking
        first), the owners and everyone to tell."""
        return {"outcome": self.outcome,
                "reasons": [reason.to_dict() for reason in (*self.blocking, *self.notes)],
                "owners": self.owners(),
                "notify": [{"person": r.person, "role": r.role, "case_ids": list(r.case_ids)}
                           for r in self.recipients()]}

    def recipients(self) -> list[Recipient]:
        """Everyone who must be told: each blocking case's owner and business owner, with the
        cases that concern them, in a stable order."""
        found: dict[tuple[str, str], list[str]] = {}
        for reason in self.blocking:
            if reason.case_id is None:
                continue
            for role, person in (("owner", reason.owner),
                                 ("business_owner", reason.business_owner)):
                if person:
                    cases = found.setdefault((person, role), [])
                    if reason.case_id not in cases:
                        cases.append(reason.case_id)
        return [Recipient(person, role, tuple(cases))
                for (person, role), cases in sorted(found.items())]


@dataclass(frozen=True, slots=True)
class Recipient:
    """Someone a blocking decision must reach, in which role, about which cases."""

    person: str
    role: str
    """``owner`` (fixes the workflow) or ``business_owner`` (answers for it to customers)."""
    case_ids: tuple[str, ...]


def _reason(case: CaseComparison, rule: str, message: str, *, blocking: bool = True,
            checks: tuple[FailingCheck, ...] = ()) -> Reason:
    result = case.latest
    return Reason(rule=rule, message=message, blocking=blocking, case_id=case.case_id,
                  title=result.title, owner=result.owner, severity=result.severity,
                  category=result.category, business_owner=result.business_owner,
                  checks=checks)


def _rate(case: CaseComparison) -> str:
    result = case.latest
    passed = result.passes
    return f"{passed} of {len(result.trials)} trial(s) passed"


MAX_NAMED_CHECKS = 2
"""How many failing checks a reason names before counting the rest."""


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def failing_checks(case: CaseComparison,
                   verdicts: tuple[str, ...] = ("fail", "error")) -> tuple[FailingCheck, ...]:
    """The candidate's failing checks: every one of the first trial that has any."""
    for trial in case.latest.trials:
        failing = tuple(FailingCheck(check.kind, check.line, check.verdict, _short(check.reason))
                        for check in trial.checks if check.verdict in verdicts)
        if failing:
            return failing
    return ()


def _because(checks: tuple[FailingCheck, ...]) -> str:
    """The checks as a reason's message says them: the first few, then how many more."""
    if not checks:
        return ""
    more = len(checks) - MAX_NAMED_CHECKS
    return (": " + "; ".join(map(str, checks[:MAX_NAMED_CHECKS]))
            + (f"; and {more} more" if more > 0 else ""))


def _judge_case(case: CaseComparison, policy: GatePolicy,
                retired: Mapping[str, str]) -> Reason | None:
    kind = case.transition
    what = "incident case" if case.incident else "case"
    failing = failing_checks(case)
    if kind is Transition.REGRESSED:
        return _reason(case, "regressed",
                       f"{what} passed in the baseline and fails in the candidate ({_rate(case)})"
                       f"{_because(failing)}", checks=failing)
    if kind is Transition.ERROR:
        errored = failing_checks(case, ("error",))
        errors = [t.error for t in case.latest.trials if t.error]
        detail = f": {_short(errors[0])}" if errors else _because(errored)
        return _reason(case, "error", f"{what} errored in the candidate run{detail}",
                       checks=errored)
    if kind is Transition.STILL_FAILING:
        if case.incident and not policy.in_scope(case):
            return _reason(case, "still_failing_out_of_scope",
                           "incident case still fails, outside the gate's severities/categories",
                           blocking=False)
        message = ("incident case still fails: the fix is not validated" if case.incident
                   else "case fails in both runs")
        return _reason(case, "still_failing", message + _because(failing), checks=failing)
    if kind is Transition.NEW and case.latest.verdict != "pass":
        return _reason(case, "new_failing", f"new {what} fails in the candidate ({_rate(case)})"
                                            f"{_because(failing)}", checks=failing)
    if kind is Transition.REMOVED:
        if case.incident and case.case_id in retired:
            return _reason(case, "retired",
                           f"incident case retired from the suite ({retired[case.case_id]}): "
                           "a reviewer must accept the retirement (risk_accepted naming it)")
        if case.incident:
            return _reason(case, "removed_incident",
                           "incident case is missing from the candidate run: a deleted "
                           "regression case is a silent reintroduction")
        return _reason(case, "removed", "case is missing from the candidate run", blocking=False)
    if kind is Transition.FLAKY:
        trials = len(case.latest.trials)
        settled = policy.settle_trials is not None and trials >= policy.settle_trials
        if settled and case.latest.verdict == "pass" and case.incident:
            return _reason(case, "settled_below_full",
                           f"trials disagree ({_rate(case)}): settling would pass this incident "
                           f"case below all of its trials (min_pass_rate "
                           f"{case.latest.min_pass_rate:g}); a reviewer must accept that risk")
        if settled and case.latest.verdict == "pass":
            return _reason(case, "flaky_settled",
                           f"trials disagree ({_rate(case)}) but reach the pass rate over "
                           f"{trials} trials", blocking=False)
        if settled:
            return _reason(case, "flaky_failing", f"trials disagree and fall short ({_rate(case)})"
                                                  f"{_because(failing)}", checks=failing)
        need = (f"; the policy settles at {policy.settle_trials} trials"
                if policy.settle_trials else "; set gate.settle_trials to settle it by trials")
        return _reason(case, "flaky", f"trials disagree ({_rate(case)}){need}"
                                      f"{_because(failing)}", checks=failing)
    if case.case_changed and kind is not Transition.NEW:
        return _reason(case, "case_changed",
                       "case file changed between the runs: verdicts may not be comparable",
                       blocking=False)
    return None


def _check_changes(before: list[Mapping[str, Any]], after: list[Mapping[str, Any]]
                   ) -> tuple[list[str], list[str]]:
    """(what weakened, what was added) between two cases' recorded checks."""
    remaining = [(c["kind"], c["params"]) for c in after]
    lost = []
    for check in before:
        identity = (check["kind"], check["params"])
        if identity in remaining:
            remaining.remove(identity)
        else:
            lost.append(check)
    weakened = []
    for check in lost:
        kinds = [kind for kind, _ in remaining]
        where = f" (line {check['line']})" if check.get("line") else ""
        if check["kind"] in kinds:
            remaining.pop(kinds.index(check["kind"]))
            weakened.append(f"the parameters of {check['kind']}{where} changed")
        else:
            weakened.append(f"check {check['kind']}{where} was removed")
    return weakened, [f"check {kind} was added" for kind, _ in remaining]


def _judge_strictness(case: CaseComparison, policy: GatePolicy) -> list[Reason]:
    """Whether an incident case present in both runs got weaker (blocks) or stricter (a note).

    The baseline's recorded strictness is compared with the candidate's, and the baseline's
    ``settle_trials`` with the policy's: what the gate applies now.
    """
    if not case.incident or case.baseline is None or case.candidate is None:
        return []
    before, after = case.baseline.strictness, case.candidate.strictness
    if before is None or after is None:
        if not case.case_changed:
            return []
        return [_reason(case, "strictness_unknown",
                        "incident case file changed between the runs, and the "
                        f"{'baseline' if before is None else 'candidate'} run does not record "
                        "how strict it was: run it again with this harness to compare, or have "
                        "a reviewer accept the change")]
    weakened, added = _check_changes(list(before["checks"]), list(after["checks"]))
    if after["trials"] < before["trials"]:
        weakened.append(f"trials lowered from {before['trials']} to {after['trials']}")
    if after["min_pass_rate"] < before["min_pass_rate"]:
        weakened.append(f"min_pass_rate lowered from {before['min_pass_rate']:g} to "
                        f"{after['min_pass_rate']:g}")
    if after["input"] != before["input"]:
        weakened.append("its input changed, so it no longer replays the incident's")
    settle, was = policy.settle_trials, before.get("settle_trials")
    if settle is not None and (was is None or settle < was):
        weakened.append(f"settle_trials {'gained' if was is None else 'lowered from ' + str(was)}"
                        f" (now {settle}): trials that disagree can settle it")
    reasons = []
    if weakened:
        reasons.append(_reason(case, "weakened", f"weakened: {'; '.join(weakened)}"))
    if added:
        reasons.append(_reason(case, "strengthened", f"{'; '.join(added)}", blocking=False))
    return reasons


def _judge_judges(comparison: Comparison, policy: GatePolicy,
                  calibrations: Mapping[str, Calibration]) -> list[Reason]:
    """Whether the judges behind the candidate's verdicts were proved (see the module)."""
    limit = policy.max_false_pass_rate
    reasons = []
    for name, digests in sorted(judges_relied_on(comparison.candidate.results).items()):
        for digest in sorted(digests):
            record = calibrations.get(digest)
            judge = f"judge {name} (configuration {digest[:12]})"
            if record is None or not record.complete:
                why = ("has no calibration of this configuration" if record is None else
                       f"has an incomplete calibration ({record.figures.errors} example(s) got "
                       f"no verdict; {record.path.name})")
                need = (f"the gate requires a false-pass rate <= {limit:g}" if limit is not None
                        else "its verdicts are unproved")
                reasons.append(Reason("judge_uncalibrated",
                                      f"{judge} {why}: run harness judge calibrate; {need}",
                                      blocking=limit is not None))
                continue
            rate = record.figures.false_pass_rate
            if limit is not None and (rate is None or rate > limit):
                shown = "unknown (no known-bad example)" if rate is None else f"{rate:g}"
                reasons.append(Reason("judge_miscalibrated",
                                      f"{judge} lets bad answers pass: false-pass rate {shown} "
                                      f"in {record.path.name}, above the gate's {limit:g}",
                                      blocking=True))
    return reasons


def decide(comparison: Comparison, policy: GatePolicy | None = None,
           calibrations: Mapping[str, Calibration] | None = None) -> Decision:
    """Decide RESTORE or BLOCK for the candidate run of ``comparison`` (on the runs alone, and
    the ``calibrations`` of the judges it relied on, by configuration digest)."""
    policy = policy or GatePolicy()
    reasons: list[Reason] = _judge_judges(comparison, policy, calibrations or {})
    if not comparison.candidate.complete:
        reasons.append(Reason("incomplete_run", "the candidate run did not finish (no end line)",
                              blocking=True))
    if not comparison.baseline.complete:
        reasons.append(Reason("incomplete_baseline",
                              "the baseline run did not finish: cases it lacks count as new",
                              blocking=False))
    if not comparison.candidate.results:
        reasons.append(Reason("empty_run", "the candidate run has no cases", blocking=True))
    retired = comparison.candidate.header.retired or {}
    for case in comparison.cases:
        strictness = _judge_strictness(case, policy)
        reason = _judge_case(case, policy, retired)
        if reason is not None and not (strictness and reason.rule == "case_changed"):
            reasons.append(reason)
        reasons.extend(strictness)
    reasons.sort(key=lambda r: (not r.blocking, r.case_id or ""))
    outcome: Outcome = "BLOCK" if any(r.blocking for r in reasons) else "RESTORE"
    return Decision(outcome=outcome, reasons=tuple(reasons))


@dataclass(frozen=True, slots=True)
class Signoffs:
    """What the verified sign-offs of one validation say, as the gate needs it.

    ``required`` maps each required role to why it is required ("every validation",
    "data_exposure: INC-2026-011"); ``approved`` each role to the reviewers whose approval in it
    stands; ``rejected`` the standing rejects as (reviewer, role, time); ``accepted`` each case
    id to the reviewers who accepted its risk; ``untrusted`` why the ledger cannot be trusted
    (it blocks); ``unavailable`` why no sign-off could be read at all (it waits).
    """

    required: Mapping[str, str]
    approved: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    rejected: tuple[tuple[str, str, str], ...] = ()
    accepted: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    untrusted: tuple[str, ...] = ()
    unavailable: tuple[str, ...] = ()

    @property
    def missing(self) -> list[str]:
        """The required roles nobody approved in, in policy order."""
        return [role for role in self.required if not self.approved.get(role)]


def _outcome(reasons: list[Reason]) -> Outcome:
    blocking = [reason for reason in reasons if reason.blocking]
    if any(reason.rule != SIGNOFF_MISSING for reason in blocking):
        return "BLOCK"
    return AWAITING if blocking else "RESTORE"


def with_signoffs(decision: Decision, signoffs: Signoffs) -> Decision:
    """The decision once sign-off is required: see the module's rules.

    ``decision`` is the gate on the runs (:func:`decide`); it is never made more permissive
    except by lifting, for a case a reviewer accepted, a reason of a :data:`LIFTABLE` rule.
    """
    reasons: list[Reason] = []
    for reason in decision.reasons:
        accepted = signoffs.accepted.get(reason.case_id or "")
        if reason.blocking and reason.rule in LIFTABLE and accepted:
            message = f"{reason.message} (risk accepted by {', '.join(accepted)})"
            reason = replace(reason, message=message, blocking=False)
        reasons.append(reason)
    reasons += [Reason("signoff_invalid", problem, blocking=True)
                for problem in signoffs.untrusted]
    reasons += [Reason("signoff_rejected", f"rejected by {reviewer} ({role}, {time})",
                       blocking=True)
                for reviewer, role, time in signoffs.rejected]
    reasons += [Reason(SIGNOFF_MISSING, problem, blocking=True)
                for problem in signoffs.unavailable]
    reasons += [Reason(SIGNOFF_MISSING, f"no approval in role {role} (required for "
                                        f"{signoffs.required[role]})", blocking=True)
                for role in signoffs.missing]
    if not any(reason.blocking for reason in reasons):
        approvals = "; ".join(f"{role}: {', '.join(signoffs.approved[role])}"
                              for role in signoffs.required)
        reasons.append(Reason("signoff", f"approved by every required role ({approvals})",
                              blocking=False))
    reasons.sort(key=lambda r: (not r.blocking, r.rule == SIGNOFF_MISSING, r.case_id or ""))
    return Decision(outcome=_outcome(reasons), reasons=tuple(reasons))
