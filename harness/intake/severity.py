"""An incident's severity, derived from its impact by rules that a project can change.

Severity runs from ``sev1`` (worst) to ``sev4``. Two people given the same impact should arrive
at the same severity, and a reader should see why: :func:`derive` applies the rules to the facts
of a case record and returns the severity with its *basis*, one short sentence for every rule that
fired, which intake writes to the case's ``severity_basis``.

The facts
---------
:class:`ImpactFacts` is built from a case record's ``category``, ``near_miss`` and ``impact``.
Each fact is read from ``impact.<fact>``, except ``category`` and ``near_miss`` (top-level
fields) and ``share_percent`` (100 * users / workflow_users, workflow_users being all users of
the workflow). A fact is *unknown* (``None``) when the record does not state it and nothing
settles it:

| fact | when the record does not state it |
|---|---|
| ``category``, ``users``, ``records``, ``data_classes``, ``workflow_users`` | unknown |
| ``near_miss`` | false |
| ``share_percent`` | 0 when users is 0; else unknown when users or workflow_users is |
| ``customer_data``, ``restricted_data``, ``external_destination`` | see below |
| ``records_modified`` | ``impact.records`` for an automation_error, else 0 |
| ``commitment_breached`` | false: a breach is something the record states |
| ``high_risk_action`` | unknown |
| ``approval_bypassed`` | true for human_review, else false |

The data flags are false when no data was involved (``data_classes`` empty, or left out outside
data_exposure), and unknown otherwise.

The default rules
-----------------
| step | rule | condition | effect |
|---|---|---|---|
| base | 10% or more of the workflow's users affected | share_percent >= 10 | sev1 [1] |
| base | 1% or more of the workflow's users affected | share_percent >= 1 | sev2 |
| base | some of the workflow's users affected | share_percent > 0 | sev3 |
| base | no band matched | | sev4 |
| at least | customer data exposed | customer_data | sev1 |
| at least | restricted data exposed | restricted_data | sev2 |
| at least | data sent to an unapproved external destination | external_destination | sev2 |
| at least | more than 10 records wrongly modified | records_modified > 10 | sev2 |
| at least | a customer commitment breached | commitment_breached | sev2 |
| raise | approval bypassed on a high-risk action | approval_bypassed, high_risk_action | 1 level |
| lower | near miss | near_miss | 1 level |

[1] not assumed when the share is unknown (see below), so an unknown share gives sev2.

The order is fixed: the first band that matches sets the base (else ``base``), then every
``at_least`` rule, then every ``raise``, then every ``lower``; a severity never goes above sev1
or below sev4, and a rule that fires at a bound is still recorded ("stays sev1, the highest").

When unsure, the higher
-----------------------
A condition is a list of fact tests that must all hold. A test of an unknown fact is neither
true nor false; a condition with a false test is false, otherwise one with an unknown test is
*unknown*. An unknown condition is assumed to hold only when that gives the higher severity:

- a band (``if_unknown: assume``, the default) is taken, and the bands below it are not tried;
  with ``if_unknown: ignore`` it is skipped. The defaults ignore the 10% band, so a missing
  ``workflow_users`` with users > 0 gives sev2, recorded as "impact.workflow_users not stated,
  so assumed 1% or more of the workflow's users affected: sev2";
- an ``at_least`` rule fires only when its level is above the severity so far (unknown ones are
  tried worst first, after the known ones), so at most one is recorded;
- a ``raise`` rule fires unless the severity is already sev1;
- a ``lower`` rule never fires on an unknown condition (``if_unknown: assume`` is refused).

The rules file
--------------
``severity-rules.yaml`` at the project root (or a file passed explicitly) replaces the defaults
whole; :data:`DEFAULT_RULES_YAML` is the defaults in that format, a starting point to copy::

    base: sev4                 # when no band matches
    bands:                     # the first that matches sets the base
      - name: 1% or more of the workflow's users affected
        when: {share_percent: {gte: 1}}
        severity: sev2
        if_unknown: assume     # assume (default) or ignore
    rules:                     # each with exactly one effect: at_least, raise or lower
      - name: customer data exposed
        when: {customer_data: true}
        at_least: sev1

``when`` maps facts to tests, all of which must hold: a bare value means equal, or a mapping of
operators ``eq``, ``ne``, ``gt``, ``gte``, ``lt``, ``lte`` (numbers), ``in`` (``category``, a
list) and ``has`` (``data_classes``, one class). Every mistake is an :class:`InputError` naming
``path:line`` and the field.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from harness import schema
from harness.errors import InputError
from harness.model import CATEGORIES, SEVERITIES

RULES_FILE = "severity-rules.yaml"
"""The rules file looked for at the project root."""

FACTS: Mapping[str, str] = {
    "category": "category",
    "near_miss": "flag",
    "users": "number",
    "records": "number",
    "data_classes": "classes",
    "workflow_users": "number",
    "share_percent": "number",
    "customer_data": "flag",
    "restricted_data": "flag",
    "external_destination": "flag",
    "records_modified": "number",
    "commitment_breached": "flag",
    "high_risk_action": "flag",
    "approval_bypassed": "flag",
}
"""Every fact a rule can test, with its kind."""

IMPACT_FLAGS = ("customer_data", "restricted_data", "external_destination",
                "commitment_breached", "high_risk_action", "approval_bypassed")
IMPACT_COUNTS = ("workflow_users", "records_modified")
IMPACT_KEYS = (*IMPACT_COUNTS, *IMPACT_FLAGS)
"""The optional ``impact`` keys the rules read, besides users, records and data_classes."""

_OPERATORS: Mapping[str, tuple[str, ...]] = {
    "number": ("eq", "ne", "gt", "gte", "lt", "lte"),
    "flag": ("eq", "ne"),
    "category": ("eq", "ne", "in"),
    "classes": ("has",),
}
_DATA_FLAGS = ("customer_data", "restricted_data", "external_destination")

Effect = Literal["band", "at_least", "raise", "lower"]
Truth = bool | None  # None: the condition tests an unknown fact and no test is false


# --- facts ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImpactFacts:
    """What is known about an incident's impact; ``None`` means unknown."""

    category: str | None = None
    near_miss: bool = False
    users: int | None = None
    records: int | None = None
    data_classes: tuple[str, ...] | None = None
    workflow_users: int | None = None
    customer_data: bool | None = None
    restricted_data: bool | None = None
    external_destination: bool | None = None
    records_modified: int | None = None
    commitment_breached: bool | None = None
    high_risk_action: bool | None = None
    approval_bypassed: bool | None = None

    @property
    def share_percent(self) -> float | None:
        """The share of the workflow's users affected, in percent."""
        if self.users == 0:
            return 0.0
        if self.users is None or not self.workflow_users:
            return None
        return 100 * self.users / self.workflow_users

    def value(self, fact: str) -> Any:
        """The value of a fact by name (``None`` when unknown)."""
        return getattr(self, fact)

    @classmethod
    def from_record(cls, fields: Mapping[str, Any], *, path: str | Path | None = None
                    ) -> ImpactFacts:
        """The facts of a case record (as in a case file), filling in what the record leaves
        out as the module's table says. Bad values raise :class:`InputError` naming the field."""
        impact = fields.get("impact") or {}
        category = fields.get("category")
        near_miss = fields.get("near_miss", False)
        if not isinstance(near_miss, bool):
            problem = f"expected true or false, found {schema.describe(near_miss)}"
            raise InputError(problem, path=path, line=schema.line_of(fields, "near_miss", None),
                             field="near_miss")

        def count(key: str, default: int | None) -> int | None:
            value = impact.get(key)
            if value is None:
                return default
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                problem = f"expected a whole number >= 0, found {schema.describe(value)}"
                raise InputError(problem, path=path, line=schema.line_of(impact, key, None),
                                 field=f"impact.{key}")
            return value

        def flag(key: str, default: bool | None) -> bool | None:
            value = impact.get(key)
            if value is None:
                return default
            if not isinstance(value, bool):
                problem = f"expected true or false, found {schema.describe(value)}"
                raise InputError(problem, path=path, line=schema.line_of(impact, key, None),
                                 field=f"impact.{key}")
            return value

        classes = impact.get("data_classes")
        if classes is not None and (not isinstance(classes, list | tuple) or not all(
                isinstance(c, str) for c in classes)):
            problem = f"expected a list of data classes, found {schema.describe(classes)}"
            raise InputError(problem, path=path, line=schema.line_of(impact, "data_classes", None),
                             field="impact.data_classes")
        data_classes = None if classes is None else tuple(classes)
        involved = bool(data_classes) or (data_classes is None and category == "data_exposure")
        users = count("users", None)
        records = count("records", None)
        workflow_users = count("workflow_users", None)
        if users is not None and workflow_users is not None and workflow_users < users:
            problem = f"{workflow_users} is fewer than the {users} users affected"
            raise InputError(problem, path=path,
                             line=schema.line_of(impact, "workflow_users", None),
                             field="impact.workflow_users")
        data = {key: flag(key, None if involved else False) for key in _DATA_FLAGS}
        return cls(
            category=category,
            near_miss=near_miss,
            users=users,
            records=records,
            data_classes=data_classes,
            workflow_users=workflow_users,
            records_modified=count("records_modified",
                                   records if category == "automation_error" else 0),
            commitment_breached=flag("commitment_breached", False),
            high_risk_action=flag("high_risk_action", None),
            approval_bypassed=flag("approval_bypassed", category == "human_review"),
            **data,
        )


# --- rules ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Test:
    """One test of a fact: ``fact op value``."""

    fact: str
    op: str
    value: Any

    def holds(self, facts: ImpactFacts) -> Truth:
        """True or false, or ``None`` when the fact is unknown."""
        known = facts.value(self.fact)
        if known is None:
            return None
        match self.op:
            case "eq":
                return bool(known == self.value)
            case "ne":
                return bool(known != self.value)
            case "gt":
                return bool(known > self.value)
            case "gte":
                return bool(known >= self.value)
            case "lt":
                return bool(known < self.value)
            case "lte":
                return bool(known <= self.value)
            case "in":
                return known in self.value
            case _:  # has
                return self.value in known


@dataclass(frozen=True, slots=True)
class Rule:
    """A band (sets the base severity) or a rule (at_least, raise or lower)."""

    name: str
    when: tuple[Test, ...]
    effect: Effect
    level: str = ""  # band and at_least: the severity; empty for raise and lower
    steps: int = 1  # raise and lower: how many levels
    if_unknown: Literal["assume", "ignore"] = "assume"

    def holds(self, facts: ImpactFacts) -> Truth:
        """All tests hold (true), one fails (false), or otherwise one is unknown (``None``)."""
        results = [test.holds(facts) for test in self.when]
        if False in results:
            return False
        return None if None in results else True

    def unknown(self, facts: ImpactFacts) -> list[str]:
        """What the record would have to state to settle the condition, e.g.
        ``impact.workflow_users``."""
        missing = []
        for fact in dict.fromkeys(t.fact for t in self.when if facts.value(t.fact) is None):
            if fact == "share_percent":
                fact = "users" if facts.users is None else "workflow_users"
            missing.append(fact if fact in ("category", "near_miss") else f"impact.{fact}")
        return missing

    def shown(self, facts: ImpactFacts) -> str:
        """The rule's name with the known numbers it tested, e.g. ``... (share 3.2%)``."""
        details = []
        for fact in dict.fromkeys(t.fact for t in self.when if FACTS[t.fact] == "number"):
            value = facts.value(fact)
            if value is None:
                continue
            if fact == "share_percent":
                details.append(f"share {round(value, 2):g}%")
            else:
                details.append(f"{fact} {value}")
        return f"{self.name} ({', '.join(details)})" if details else self.name


@dataclass(frozen=True, slots=True)
class Rules:
    """A rule set: the base severity, the bands, and the rules; ``source`` says where from."""

    base: str
    bands: tuple[Rule, ...]
    rules: tuple[Rule, ...]
    source: str = "default rules"


@dataclass(frozen=True, slots=True)
class Derivation:
    """A derived severity and the sentences saying why, in the order the rules applied."""

    severity: str
    basis: tuple[str, ...]


def _level(severity: str) -> int:
    return SEVERITIES.index(severity)


def derive(facts: ImpactFacts, rules: Rules | None = None) -> Derivation:
    """Apply the rules to the facts: base from the bands, then at_least, raise, lower."""
    rules = rules or DEFAULT_RULES
    basis: list[str] = []
    current = rules.base
    for band in rules.bands:
        truth = band.holds(facts)
        if truth is None and band.if_unknown == "assume":
            current = band.level
            basis.append(f"{_assumed(band, facts)}: {current}")
            break
        if truth:
            current = band.level
            basis.append(f"{band.shown(facts)}: {current}")
            break
    else:
        basis.append(f"no band matched: {current}")

    at_least = [r for r in rules.rules if r.effect == "at_least"]
    for rule in at_least:
        if rule.holds(facts):
            current = min(current, rule.level, key=_level)
            basis.append(f"{rule.shown(facts)}: {rule.level}")
    unsure = [r for r in at_least if r.if_unknown == "assume" and r.holds(facts) is None]
    for rule in sorted(unsure, key=lambda r: _level(r.level)):
        if _level(rule.level) < _level(current):
            current = rule.level
            basis.append(f"{_assumed(rule, facts)}: {current}")

    for rule in rules.rules:
        if rule.effect != "raise":
            continue
        truth = rule.holds(facts)
        assumed = truth is None and rule.if_unknown == "assume" and current != SEVERITIES[0]
        if truth or assumed:
            before = current
            current = SEVERITIES[max(0, _level(current) - rule.steps)]
            name = _assumed(rule, facts) if assumed else rule.shown(facts)
            basis.append(_moved(name, "raised", before, current, rule.steps))

    for rule in rules.rules:
        if rule.effect == "lower" and rule.holds(facts):
            before = current
            current = SEVERITIES[min(len(SEVERITIES) - 1, _level(current) + rule.steps)]
            basis.append(_moved(rule.shown(facts), "lowered", before, current, rule.steps))
    return Derivation(severity=current, basis=tuple(basis))


def _assumed(rule: Rule, facts: ImpactFacts) -> str:
    return f"{', '.join(rule.unknown(facts))} not stated, so assumed {rule.shown(facts)}"


def _moved(name: str, verb: str, before: str, after: str, steps: int) -> str:
    if before == after:
        bound = "the highest" if verb == "raised" else "the lowest"
        return f"{name}: stays {after}, {bound}"
    levels = "1 level" if steps == 1 else f"{steps} levels"
    return f"{name}: {verb} {levels} to {after}"


def check_explicit(explicit: str, derivation: Derivation) -> str | None:
    """A warning when a severity set by hand is lower (less severe) than the derived one."""
    if _level(explicit) <= _level(derivation.severity):
        return None
    return (f"severity {explicit} is lower than {derivation.severity}, which the impact gives "
            f"({'; '.join(derivation.basis)}); keep it only with a reason the rules miss")


# --- the rules file ------------------------------------------------------------------------


def _test(fact: str, op: str, value: Any, where: str, line: int | None) -> Test:
    kind = FACTS[fact]
    allowed = _OPERATORS[kind]
    if op not in allowed:
        problem = f"unknown operator {op!r} for {fact}; expected one of {', '.join(allowed)}"
        raise schema.Invalid(problem, field=where, line=line)
    if kind == "number":
        checked = schema.Number().check(value, where, line)
    elif kind == "flag":
        checked = schema.Flag().check(value, where, line)
    elif kind == "classes":
        checked = schema.Text().check(value, where, line)
    elif op == "in":
        checked = tuple(schema.ListOf(schema.Text(choices=CATEGORIES), min_items=1)
                        .check(value, where, line))
    else:
        checked = schema.Text(choices=CATEGORIES).check(value, where, line)
    return Test(fact=fact, op=op, value=checked)


def _condition(value: Any, where: str, line: int | None) -> tuple[Test, ...]:
    if not isinstance(value, Mapping) or not value:
        found = "an empty mapping" if isinstance(value, Mapping) else schema.describe(value)
        problem = (f"expected a mapping of facts to tests (e.g. {{customer_data: true}}), "
                   f"found {found}")
        raise schema.Invalid(problem, field=where, line=line)
    line = getattr(value, "line", line)
    tests: list[Test] = []
    for fact, test in value.items():
        at = f"{where}.{fact}"
        fact_line = schema.line_of(value, fact, line)
        if fact not in FACTS:
            hint = difflib.get_close_matches(str(fact), list(FACTS), n=1)
            tip = f" (did you mean {hint[0]!r}?)" if hint else ""
            problem = f"unknown fact {fact!r}{tip}; facts: {', '.join(FACTS)}"
            raise schema.Invalid(problem, field=at, line=fact_line)
        if isinstance(test, Mapping):
            if not test:
                raise schema.Invalid("expected at least one operator", field=at, line=fact_line)
            for op, operand in test.items():
                tests.append(_test(fact, str(op), operand, f"{at}.{op}",
                                   schema.line_of(test, op, fact_line)))
        else:
            default = "has" if FACTS[fact] == "classes" else "eq"
            tests.append(_test(fact, default, test, at, fact_line))
    return tuple(tests)


_IF_UNKNOWN = schema.Text(choices=("assume", "ignore"),
                          description="What an unknown condition does (default assume).")
_WHEN = schema.Custom(lambda value, where, line: _condition(value, where, line))
_BAND = schema.Record(
    {"name": schema.Text(), "when": _WHEN, "severity": schema.Text(choices=SEVERITIES),
     "if_unknown": _IF_UNKNOWN},
    required=("name", "when", "severity"),
)
_RULE = schema.Record(
    {"name": schema.Text(), "when": _WHEN, "at_least": schema.Text(choices=SEVERITIES),
     "raise": schema.Number(integer=True, minimum=1),
     "lower": schema.Number(integer=True, minimum=1),
     "if_unknown": _IF_UNKNOWN},
    required=("name", "when"),
)
_EFFECTS: tuple[Effect, ...] = ("at_least", "raise", "lower")


def _band(value: Any, where: str, line: int | None) -> Rule:
    fields = _BAND.check(value, where, line)
    return Rule(name=fields["name"], when=fields["when"], effect="band", level=fields["severity"],
                if_unknown=fields.get("if_unknown", "assume"))


def _rule(value: Any, where: str, line: int | None) -> Rule:
    fields = _RULE.check(value, where, line)
    line = getattr(value, "line", line)
    effects = [key for key in _EFFECTS if key in fields]
    if len(effects) != 1:
        found = ", ".join(effects) if effects else "none"
        problem = f"expected exactly one effect ({', '.join(_EFFECTS)}), found {found}"
        raise schema.Invalid(problem, field=where, line=line)
    effect = effects[0]
    if_unknown = fields.get("if_unknown", "ignore" if effect == "lower" else "assume")
    if effect == "lower" and if_unknown == "assume":
        problem = ("a lower rule cannot assume unknown facts: when unsure, the higher "
                   "severity is taken")
        raise schema.Invalid(problem, field=f"{where}.if_unknown",
                             line=schema.line_of(value, "if_unknown", line))
    return Rule(
        name=fields["name"], when=fields["when"], effect=effect,
        level=fields.get("at_least", ""), steps=1 if effect == "at_least" else fields[effect],
        if_unknown=if_unknown,
    )


RULES_SCHEMA = schema.Record(
    {
        "base": schema.Text(choices=SEVERITIES, description="When no band matches (default sev4)."),
        "bands": schema.ListOf(schema.Custom(_band),
                               description="The first band that matches sets the base."),
        "rules": schema.ListOf(schema.Custom(_rule),
                               description="Rules with one effect: at_least, raise or lower."),
    },
    description="How harness incident new derives severity from impact.",
)


def parse_rules(data: Any, *, source: str, path: str | Path | None = None) -> Rules:
    """Build a rule set from parsed YAML; mistakes raise :class:`InputError` at path:line."""
    try:
        fields = RULES_SCHEMA.check(data, "", getattr(data, "line", 1))
    except schema.Invalid as exc:
        raise InputError(exc.problem, path=path, line=exc.line, field=exc.field or None) from None
    return Rules(base=fields.get("base", SEVERITIES[-1]), bands=tuple(fields.get("bands", ())),
                 rules=tuple(fields.get("rules", ())), source=source)


def load_rules(path: Path) -> Rules:
    """Read a rules file (the format is in the module's documentation)."""
    from harness.loader import read_yaml

    data, _ = read_yaml(path)
    return parse_rules(data, source=str(path), path=path)


def rules_for(root: Path, path: Path | None = None) -> Rules:
    """The rules to use: ``path`` when given, else ``severity-rules.yaml`` at the project
    root when it exists, else the defaults."""
    if path is not None:
        return load_rules(path)
    found = root / RULES_FILE
    return load_rules(found) if found.is_file() else DEFAULT_RULES


DEFAULT_RULES_YAML = """\
# How harness incident new derives an incident's severity from its impact (sev1 is the worst).
# Order: the first band that matches sets the base, then at_least, raise, lower.
base: sev4
bands:
  - name: 10% or more of the workflow's users affected
    when: {share_percent: {gte: 10}}
    severity: sev1
    if_unknown: ignore      # an unknown share is assumed to be 1% or more, not 10%
  - name: 1% or more of the workflow's users affected
    when: {share_percent: {gte: 1}}
    severity: sev2
  - name: some of the workflow's users affected
    when: {share_percent: {gt: 0}}
    severity: sev3
rules:
  - name: customer data exposed
    when: {customer_data: true}
    at_least: sev1
  - name: restricted data exposed
    when: {restricted_data: true}
    at_least: sev2
  - name: data sent to an unapproved external destination
    when: {external_destination: true}
    at_least: sev2
  - name: more than 10 records wrongly modified
    when: {records_modified: {gt: 10}}
    at_least: sev2
  - name: a customer commitment breached
    when: {commitment_breached: true}
    at_least: sev2
  - name: approval bypassed on a high-risk action
    when: {approval_bypassed: true, high_risk_action: true}
    raise: 1
  - name: near miss
    when: {near_miss: true}
    lower: 1
"""
"""The default rules in the rules-file format: copy to severity-rules.yaml to change them."""

DEFAULT_RULES = parse_rules(yaml.safe_load(DEFAULT_RULES_YAML), source="default rules")

