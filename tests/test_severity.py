"""Severity from impact: every default rule, their order and bounds, unknown facts, custom and
broken rules files."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.errors import InputError
from harness.intake.severity import (
    DEFAULT_RULES,
    DEFAULT_RULES_YAML,
    RULES_FILE,
    Derivation,
    ImpactFacts,
    Rules,
    check_explicit,
    derive,
    load_rules,
    rules_for,
)

BAND1 = "10% or more of the workflow's users affected"
BAND2 = "1% or more of the workflow's users affected"
BAND3 = "some of the workflow's users affected"
NO_DATA = {"data_classes": []}


def record(category: str = "output_quality", *, near_miss: bool = False, **impact: object
           ) -> dict[str, object]:
    """A case record's fields with the given impact."""
    return {"category": category, "near_miss": near_miss, "impact": impact}


# (id, record fields, expected severity, expected basis)
TABLE = [
    ("nobody affected", record(users=0, records=0, **NO_DATA),
     "sev4", ("no band matched: sev4",)),
    ("share exactly 10%", record(users=10, workflow_users=100, **NO_DATA),
     "sev1", (f"{BAND1} (share 10%): sev1",)),
    ("share just under 10%", record(users=99, workflow_users=1000, **NO_DATA),
     "sev2", (f"{BAND2} (share 9.9%): sev2",)),
    ("share exactly 1%", record(users=1, workflow_users=100, **NO_DATA),
     "sev2", (f"{BAND2} (share 1%): sev2",)),
    ("share just under 1%", record(users=9, workflow_users=1000, **NO_DATA),
     "sev3", (f"{BAND3} (share 0.9%): sev3",)),
    ("one user of many", record(users=1, workflow_users=1_000_000, **NO_DATA),
     "sev3", (f"{BAND3} (share 0%): sev3",)),
    ("workflow size unknown: share assumed >= 1%, not >= 10%", record(users=5, **NO_DATA),
     "sev2", (f"impact.workflow_users not stated, so assumed {BAND2}: sev2",)),
    ("users unknown", record(workflow_users=1000, **NO_DATA),
     "sev2", (f"impact.users not stated, so assumed {BAND2}: sev2",)),
    ("customer data exposed", record("data_exposure", users=1, workflow_users=1000,
                                     data_classes=["email"], customer_data=True,
                                     restricted_data=False, external_destination=False),
     "sev1", (f"{BAND3} (share 0.1%): sev3", "customer data exposed: sev1")),
    ("customer data unknown when data was involved: assumed",
     record("data_exposure", users=1, workflow_users=1000, data_classes=["email"],
            restricted_data=False, external_destination=False),
     "sev1", (f"{BAND3} (share 0.1%): sev3",
              "impact.customer_data not stated, so assumed customer data exposed: sev1")),
    ("data_exposure without data classes: unknown data flags, only the worst assumed",
     record("data_exposure", users=1, workflow_users=1000),
     "sev1", (f"{BAND3} (share 0.1%): sev3",
              "impact.customer_data not stated, so assumed customer data exposed: sev1")),
    ("no data classes: no data flags assumed", record("data_exposure", users=1,
                                                      workflow_users=1000, **NO_DATA),
     "sev3", (f"{BAND3} (share 0.1%): sev3",)),
    ("no data classes outside data_exposure: nothing assumed",
     record("retrieval", users=1, workflow_users=1000),
     "sev3", (f"{BAND3} (share 0.1%): sev3",)),
    ("restricted data exposed", record("data_exposure", users=1, workflow_users=1000,
                                       data_classes=["health"], customer_data=False,
                                       restricted_data=True, external_destination=False),
     "sev2", (f"{BAND3} (share 0.1%): sev3", "restricted data exposed: sev2")),
    ("restricted data unknown once customer data is ruled out",
     record("data_exposure", users=1, workflow_users=1000, data_classes=["health"],
            customer_data=False),
     "sev2", (f"{BAND3} (share 0.1%): sev3",
              "impact.restricted_data not stated, so assumed restricted data exposed: sev2")),
    ("sent to an unapproved external destination",
     record(users=1, workflow_users=1000, external_destination=True, **NO_DATA),
     "sev2", (f"{BAND3} (share 0.1%): sev3",
              "data sent to an unapproved external destination: sev2")),
    ("customer and restricted data: both recorded",
     record("data_exposure", users=1, workflow_users=1000, data_classes=["email"],
            customer_data=True, restricted_data=True, external_destination=False),
     "sev1", (f"{BAND3} (share 0.1%): sev3", "customer data exposed: sev1",
              "restricted data exposed: sev2")),
    ("assumed rule not recorded when it would not raise",
     record("data_exposure", users=50, workflow_users=100, data_classes=["email"]),
     "sev1", (f"{BAND1} (share 50%): sev1",)),
    ("exactly 10 records modified: at the threshold, not above",
     record("automation_error", users=1, workflow_users=1000, records=10, **NO_DATA),
     "sev3", (f"{BAND3} (share 0.1%): sev3",)),
    ("11 records modified by an automation error",
     record("automation_error", users=1, workflow_users=1000, records=11, **NO_DATA),
     "sev2", (f"{BAND3} (share 0.1%): sev3",
              "more than 10 records wrongly modified (records_modified 11): sev2")),
    ("records_modified stated outside automation_error",
     record("policy", users=1, workflow_users=1000, records=3, records_modified=40, **NO_DATA),
     "sev2", (f"{BAND3} (share 0.1%): sev3",
              "more than 10 records wrongly modified (records_modified 40): sev2")),
    ("records of a policy incident are not taken as modified",
     record("policy", users=1, workflow_users=1000, records=40, **NO_DATA),
     "sev3", (f"{BAND3} (share 0.1%): sev3",)),
    ("automation error with records unknown: assumed above the threshold",
     record("automation_error", users=1, workflow_users=1000, **NO_DATA),
     "sev2", (f"{BAND3} (share 0.1%): sev3", "impact.records_modified not stated, so assumed "
              "more than 10 records wrongly modified: sev2")),
    ("customer commitment breached",
     record(users=1, workflow_users=1000, commitment_breached=True, **NO_DATA),
     "sev2", (f"{BAND3} (share 0.1%): sev3", "a customer commitment breached: sev2")),
    ("bypassed approval on a high-risk action raises one level",
     record("human_review", users=1, workflow_users=1000, high_risk_action=True, **NO_DATA),
     "sev2", (f"{BAND3} (share 0.1%): sev3",
              "approval bypassed on a high-risk action: raised 1 level to sev2")),
    ("high risk unknown: assumed, the raise applies",
     record("human_review", users=1, workflow_users=1000, **NO_DATA),
     "sev2", (f"{BAND3} (share 0.1%): sev3", "impact.high_risk_action not stated, so assumed "
              "approval bypassed on a high-risk action: raised 1 level to sev2")),
    ("human_review whose approval was not bypassed",
     record("human_review", users=1, workflow_users=1000, approval_bypassed=False,
            high_risk_action=True, **NO_DATA),
     "sev3", (f"{BAND3} (share 0.1%): sev3",)),
    ("bypass outside human_review only when stated",
     record("automation_error", users=1, workflow_users=1000, records=1,
            approval_bypassed=True, high_risk_action=True, **NO_DATA),
     "sev2", (f"{BAND3} (share 0.1%): sev3",
              "approval bypassed on a high-risk action: raised 1 level to sev2")),
    ("raise at sev1 stays sev1",
     record("human_review", users=20, workflow_users=100, high_risk_action=True, **NO_DATA),
     "sev1", (f"{BAND1} (share 20%): sev1",
              "approval bypassed on a high-risk action: stays sev1, the highest")),
    ("unknown raise not assumed at sev1",
     record("human_review", users=20, workflow_users=100, **NO_DATA),
     "sev1", (f"{BAND1} (share 20%): sev1",)),
    ("near miss lowers one level", record(near_miss=True, users=1, workflow_users=100,
                                          **NO_DATA),
     "sev3", (f"{BAND2} (share 1%): sev2", "near miss: lowered 1 level to sev3")),
    ("near miss at sev4 stays sev4", record(near_miss=True, users=0, **NO_DATA),
     "sev4", ("no band matched: sev4", "near miss: stays sev4, the lowest")),
    ("near miss at sev1 goes to sev2", record(near_miss=True, users=10, workflow_users=100,
                                              **NO_DATA),
     "sev2", (f"{BAND1} (share 10%): sev1", "near miss: lowered 1 level to sev2")),
    ("near miss with an unknown share: the assumed band is lowered",
     record(near_miss=True, users=3, **NO_DATA),
     "sev3", (f"impact.workflow_users not stated, so assumed {BAND2}: sev2",
              "near miss: lowered 1 level to sev3")),
    ("raise before lower: sev1, raise stays, lower to sev2",
     record("human_review", near_miss=True, users=1, workflow_users=1000,
            high_risk_action=True, commitment_breached=True, customer_data=True,
            data_classes=["email"], restricted_data=False, external_destination=False),
     "sev2", (f"{BAND3} (share 0.1%): sev3", "customer data exposed: sev1",
              "a customer commitment breached: sev2",
              "approval bypassed on a high-risk action: stays sev1, the highest",
              "near miss: lowered 1 level to sev2")),
    ("every at_least below the band: band stands, rules recorded",
     record(users=30, workflow_users=100, commitment_breached=True, **NO_DATA),
     "sev1", (f"{BAND1} (share 30%): sev1", "a customer commitment breached: sev2")),
]


@pytest.mark.parametrize(("fields", "severity", "basis"),
                         [row[1:] for row in TABLE], ids=[row[0] for row in TABLE])
def test_default_rules(fields: dict, severity: str, basis: tuple[str, ...]) -> None:
    derivation = derive(ImpactFacts.from_record(fields))
    assert derivation == Derivation(severity=severity, basis=basis)


def test_default_rules_copied_to_a_file_give_the_same_rules(tmp_path: Path) -> None:
    copied = load_rules(write(tmp_path / RULES_FILE, DEFAULT_RULES_YAML))

    def shape(rules: Rules) -> list[tuple]:
        return [(r.name, r.when, r.effect, r.level, r.steps, r.if_unknown)
                for r in (*rules.bands, *rules.rules)]

    assert copied.base == DEFAULT_RULES.base == "sev4"
    assert shape(copied) == shape(DEFAULT_RULES)
    assert [r.name for r in DEFAULT_RULES.bands] == [BAND1, BAND2, BAND3]
    assert [r.effect for r in DEFAULT_RULES.rules] == ["at_least"] * 5 + ["raise", "lower"]


@pytest.mark.parametrize(("explicit", "warned"), [("sev1", False), ("sev2", False),
                                                   ("sev3", True), ("sev4", True)])
def test_check_explicit_warns_only_when_lower(explicit: str, warned: bool) -> None:
    derivation = Derivation(severity="sev2", basis=("restricted data exposed: sev2",))
    warning = check_explicit(explicit, derivation)
    if warned:
        assert warning == (f"severity {explicit} is lower than sev2, which the impact gives "
                           "(restricted data exposed: sev2); keep it only with a reason the "
                           "rules miss")
    else:
        assert warning is None


# --- facts ---------------------------------------------------------------------------------


def test_facts_fill_in_what_the_record_leaves_out() -> None:
    facts = ImpactFacts.from_record({"category": "human_review",
                                     "impact": {"users": 4, "records": 4, "data_classes": []}})
    assert facts.approval_bypassed is True
    assert facts.high_risk_action is None
    assert (facts.customer_data, facts.restricted_data, facts.external_destination) == (
        False, False, False)
    assert facts.records_modified == 0
    assert facts.commitment_breached is False
    assert facts.share_percent is None
    assert ImpactFacts.from_record({"category": "policy"}).approval_bypassed is False


@pytest.mark.parametrize(("fields", "field", "problem"), [
    ({"impact": {"users": "many"}}, "impact.users", "expected a whole number >= 0, found a "
                                                    "string ('many')"),
    ({"impact": {"users": -1}}, "impact.users", "expected a whole number >= 0, found a "
                                                "number (-1)"),
    ({"impact": {"users": 50, "workflow_users": 40}}, "impact.workflow_users",
     "40 is fewer than the 50 users affected"),
    ({"impact": {"customer_data": "yes"}}, "impact.customer_data",
     "expected true or false, found a string ('yes')"),
    ({"impact": {"data_classes": "email"}}, "impact.data_classes",
     "expected a list of data classes, found a string ('email')"),
    ({"near_miss": "no"}, "near_miss", "expected true or false, found a string ('no')"),
])
def test_bad_facts_name_the_field(fields: dict, field: str, problem: str) -> None:
    with pytest.raises(InputError) as info:
        ImpactFacts.from_record(fields, path="cases/w/INC-1.yaml")
    assert str(info.value) == f"cases/w/INC-1.yaml: {field}: {problem}"


# --- rules files ---------------------------------------------------------------------------

CUSTOM = """\
base: sev3
bands:
  - name: a hundred users or more
    when: {users: {gte: 100}}
    severity: sev1
rules:
  - name: payment cards exposed
    when: {data_classes: payment_card}
    at_least: sev1
  - name: a policy incident on a regulated workflow
    when: {category: {in: [policy, human_review]}}
    at_least: sev2
  - name: automation errors count double
    when: {category: automation_error, records: {gt: 0, lte: 5}}
    raise: 2
  - name: nobody outside the team saw it
    when: {users: 0}
    lower: 2
"""


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.mark.parametrize(("fields", "severity", "basis"), [
    (record(users=100), "sev1", ("a hundred users or more (users 100): sev1",)),
    (record(users=99, **NO_DATA), "sev3", ("no band matched: sev3",)),
    (record(users=99), "sev1",
     ("no band matched: sev3", "impact.data_classes not stated, so assumed payment cards "
      "exposed: sev1")),
    (record(users=2, data_classes=["email", "payment_card"]), "sev1",
     ("no band matched: sev3", "payment cards exposed: sev1")),
    (record("policy", users=2, **NO_DATA), "sev2",
     ("no band matched: sev3", "a policy incident on a regulated workflow: sev2")),
    (record("automation_error", users=2, records=5, **NO_DATA), "sev1",
     ("no band matched: sev3", "automation errors count double (records 5): raised 2 levels "
      "to sev1")),
    (record("automation_error", users=2, records=6, **NO_DATA), "sev3",
     ("no band matched: sev3",)),
    (record(users=0, **NO_DATA), "sev4",
     ("no band matched: sev3", "nobody outside the team saw it (users 0): lowered 2 levels "
      "to sev4")),
    # users unknown: the band is assumed (sev1); the lower rule is never assumed
    (record(**NO_DATA), "sev1",
     ("impact.users not stated, so assumed a hundred users or more: sev1",)),
])
def test_custom_rules_file_at_the_project_root(tmp_path: Path, fields: dict, severity: str,
                                               basis: tuple[str, ...]) -> None:
    write(tmp_path / RULES_FILE, CUSTOM)
    rules = rules_for(tmp_path)
    assert rules.source == str(tmp_path / RULES_FILE)
    assert derive(ImpactFacts.from_record(fields), rules) == Derivation(severity, basis)


def test_rules_for_prefers_an_explicit_file_and_falls_back_to_defaults(tmp_path: Path) -> None:
    assert rules_for(tmp_path) is DEFAULT_RULES
    explicit = write(tmp_path / "strict.yaml", "base: sev2\n")
    write(tmp_path / RULES_FILE, CUSTOM)
    rules = rules_for(tmp_path, explicit)
    assert (rules.base, rules.bands, rules.rules) == ("sev2", (), ())
    assert derive(ImpactFacts.from_record(record(users=0)), rules) == Derivation(
        "sev2", ("no band matched: sev2",))


def test_band_with_if_unknown_ignore_is_skipped(tmp_path: Path) -> None:
    rules = load_rules(write(tmp_path / "r.yaml", """\
        bands:
          - {name: many users, when: {users: {gte: 100}}, severity: sev1, if_unknown: ignore}
          - {name: any users, when: {users: {gt: 0}}, severity: sev3, if_unknown: ignore}
        rules:
          - {name: cards, when: {customer_data: true}, at_least: sev2, if_unknown: ignore}
    """))
    derivation = derive(ImpactFacts.from_record(record("data_exposure")), rules)
    assert derivation == Derivation("sev4", ("no band matched: sev4",))


BAD_RULES = [
    ("unknown fact",
     "rules:\n  - name: x\n    when: {custmer_data: true}\n    at_least: sev1\n",
     "3: rules[0].when.custmer_data: unknown fact 'custmer_data' (did you mean "
     "'customer_data'?); facts: category, near_miss, users, records, data_classes, "
     "workflow_users, share_percent, customer_data, restricted_data, external_destination, "
     "records_modified, commitment_breached, high_risk_action, approval_bypassed"),
    ("two effects",
     "rules:\n  - name: x\n    when: {near_miss: true}\n    at_least: sev1\n    raise: 1\n",
     "2: rules[0]: expected exactly one effect (at_least, raise, lower), found at_least, raise"),
    ("no effect",
     "rules:\n  - name: x\n    when: {near_miss: true}\n",
     "2: rules[0]: expected exactly one effect (at_least, raise, lower), found none"),
    ("bad severity",
     "rules:\n  - name: x\n    when: {near_miss: true}\n    at_least: sev5\n",
     "4: rules[0].at_least: expected one of sev1, sev2, sev3, sev4, found 'sev5' (did you mean "
     "'sev4'?)"),
    ("raise zero",
     "rules:\n  - name: x\n    when: {near_miss: true}\n    raise: 0\n",
     "4: rules[0].raise: expected at least 1, found 0"),
    ("unknown operator",
     "rules:\n  - name: x\n    when:\n      records_modified: {above: 10}\n    at_least: sev2\n",
     "4: rules[0].when.records_modified.above: unknown operator 'above' for records_modified; "
     "expected one of eq, ne, gt, gte, lt, lte"),
    ("number for a flag",
     "rules:\n  - name: x\n    when:\n      customer_data: 1\n    at_least: sev1\n",
     "4: rules[0].when.customer_data: expected true or false, found a number (1)"),
    ("text for a number",
     "bands:\n  - name: x\n    when:\n      share_percent: {gte: ten}\n    severity: sev1\n",
     "4: bands[0].when.share_percent.gte: expected a number, found a string ('ten')"),
    ("unknown category",
     "rules:\n  - name: x\n    when:\n      category: {in: [policy, safety]}\n    at_least: sev2\n",
     "4: rules[0].when.category.in[1]: expected one of output_quality, data_exposure, "
     "automation_error, policy, retrieval, human_review, found 'safety'"),
    ("empty condition",
     "rules:\n  - name: x\n    when: {}\n    lower: 1\n",
     "3: rules[0].when: expected a mapping of facts to tests (e.g. {customer_data: true}), "
     "found an empty mapping"),
    ("lower assuming unknowns",
     "rules:\n  - name: x\n    when: {near_miss: true}\n    lower: 1\n    if_unknown: assume\n",
     "5: rules[0].if_unknown: a lower rule cannot assume unknown facts: when unsure, the "
     "higher severity is taken"),
    ("band without severity",
     "bands:\n  - name: x\n    when: {users: {gt: 0}}\n",
     "2: bands[0].severity: missing required field 'severity'"),
    ("unknown section",
     "base: sev4\nrule:\n  - name: x\n",
     "2: rule: unknown field 'rule' (did you mean 'rules'?); expected one of base, bands, rules"),
    ("rules not a list",
     "rules: {name: x}\n",
     "1: rules: expected a list, found a mapping"),
]


@pytest.mark.parametrize(("text", "message"), [row[1:] for row in BAD_RULES],
                         ids=[row[0] for row in BAD_RULES])
def test_bad_rules_file_names_path_line_and_field(tmp_path: Path, text: str, message: str
                                                  ) -> None:
    path = write(tmp_path / RULES_FILE, text)
    with pytest.raises(InputError) as info:
        rules_for(tmp_path)
    assert str(info.value).splitlines()[0] == f"{path}:{message}"


def test_rules_file_that_is_not_yaml(tmp_path: Path) -> None:
    path = write(tmp_path / RULES_FILE, "rules:\n  - name: [x\n")
    with pytest.raises(InputError) as info:
        rules_for(tmp_path)
    assert str(info.value).startswith(f"{path}:3: invalid YAML: ")


def test_missing_explicit_rules_file(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        rules_for(tmp_path, tmp_path / "nope.yaml")
    assert str(info.value) == f"{tmp_path / 'nope.yaml'}: file not found"
