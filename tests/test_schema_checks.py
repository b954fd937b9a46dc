"""The JSON Schema ``harness schema`` prints, read with a real validator and held to the loader.

It is a valid schema of the draft it declares; every bundled case and suite file (and the ones
the README and the fixtures show) passes it; it names every check kind the registry knows, with
each parameter's type, default and description, so an editor refuses ``contians`` or a number
where a list of strings belongs; and for check entries it accepts what the loader loads and
refuses what the loader refuses, except for the few rules JSON Schema cannot say (listed in
``BEYOND_THE_SCHEMA``).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from conftest import BASELINE, INCIDENT, SUITE, write
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import checks, cli, loader, schema
from harness.canaries import canary_digest
from harness.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
CASE_FILES = sorted((ROOT / "cases").glob("**/*.yaml"))
SUITE_FILES = sorted((ROOT / "suites").glob("*.yaml"))
KINDS = sorted(checks.kinds())
FAST = settings(max_examples=120, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])


def _printed(which: str) -> dict[str, Any]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["schema", which]) == 0
    return json.loads(out.getvalue())


@pytest.fixture(scope="module")
def printed() -> dict[str, dict[str, Any]]:
    """What ``harness schema`` prints: ``all`` (the default), ``case`` and ``suite``."""
    return {which: _printed(which) for which in ("all", "case", "suite")}


def _validator(document: dict[str, Any]) -> jsonschema.protocols.Validator:
    """A validator of the draft ``document`` declares, checking formats too."""
    kind = jsonschema.validators.validator_for(document)
    return kind(document, format_checker=kind.FORMAT_CHECKER)


@pytest.fixture(scope="module")
def entry() -> jsonschema.protocols.Validator:
    """A validator of one ``expect`` entry."""
    return _validator({"$schema": "https://json-schema.org/draft/2020-12/schema",
                       **checks.json_schema()})


def _as_editors_read(path: Path) -> Any:
    """A file's data as an editor checks it: YAML 1.2 style, dates left as strings."""
    data, _ = loader.read_yaml(path)
    return json.loads(json.dumps(data))


def _from_text(text: str, tmp_path: Path, name: str = "CASE.yaml") -> Any:
    return _as_editors_read(write(tmp_path / name, text))


def _errors(validator: jsonschema.protocols.Validator, data: Any) -> list[Any]:
    return list(validator.iter_errors(data))


def _loads(entry_value: Any) -> bool:
    """Whether the loader takes a case whose one check is ``entry_value``."""
    try:
        loader.CASE_SCHEMA.check({"input": "hi", "expect": [entry_value]}, "", 1)
    except schema.Invalid:
        return False
    return True


# --- a valid schema ---------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["all", "case", "suite"])
def test_harness_schema_prints_a_valid_schema_of_the_draft_it_declares(printed, which):
    document = printed[which]
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.validators.validator_for(document).check_schema(document)


NEWER_THAN_DRAFT_7 = {"prefixItems", "dependentRequired", "dependentSchemas", "$anchor",
                      "unevaluatedProperties", "unevaluatedItems", "$dynamicRef",
                      "$dynamicAnchor", "minContains", "maxContains", "$recursiveRef"}


def _keywords(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            if key == "properties":
                for each in value.values():
                    yield from _keywords(each)
            elif key not in ("enum", "default", "const", "examples"):
                yield from _keywords(value)
    elif isinstance(node, list):
        for value in node:
            yield from _keywords(value)


@pytest.mark.parametrize("which", ["case", "suite"])
def test_the_schema_means_the_same_to_a_draft_7_validator(printed, which):
    """The YAML language server behind most editors implements draft 7: the schema uses only
    keywords that mean the same there."""
    document = {key: value for key, value in printed[which].items() if key != "$schema"}
    assert not set(_keywords(document)) & NEWER_THAN_DRAFT_7
    jsonschema.Draft7Validator.check_schema(document)
    validator = jsonschema.Draft7Validator(document)
    for path in CASE_FILES if which == "case" else SUITE_FILES:
        assert validator.is_valid(_as_editors_read(path)), path
    if which == "case":
        data = _as_editors_read(CASE_FILES[0])
        assert not validator.is_valid({**data, "expect": [{"contians": "refund"}]})


def test_the_case_schema_takes_its_check_entries_from_the_registry(printed):
    assert printed["case"]["properties"]["expect"]["items"] == checks.json_schema()
    assert printed["all"]["$defs"]["case"] == {
        k: v for k, v in printed["case"].items() if k not in ("$schema", "title")}


# --- every bundled file passes ----------------------------------------------------------------


def test_there_are_bundled_files_to_check():
    assert len(CASE_FILES) >= 19 and SUITE_FILES


@pytest.mark.parametrize("path", CASE_FILES, ids=lambda p: p.name)
def test_every_bundled_case_file_passes(printed, path):
    data = _as_editors_read(path)
    assert _errors(_validator(printed["case"]), data) == []
    assert _errors(_validator(printed["all"]), data) == []


@pytest.mark.parametrize("path", SUITE_FILES, ids=lambda p: p.name)
def test_every_bundled_suite_file_passes(printed, path):
    data = _as_editors_read(path)
    assert _errors(_validator(printed["suite"]), data) == []
    assert _errors(_validator(printed["all"]), data) == []


def _yaml_block(after: str) -> str:
    return re.search(r"```yaml\n(.*?)```", README.split(after, 1)[1], re.DOTALL).group(1)


# (The README's case file is a sketch with placeholders, not a file to load.)
@pytest.mark.parametrize(("which", "text"), [
    ("case", INCIDENT), ("case", BASELINE), ("suite", SUITE),
    ("suite", _yaml_block("## The suite file")),
], ids=["fixture-incident", "fixture-baseline", "fixture-suite", "readme-suite"])
def test_the_files_the_readme_and_the_fixtures_show_pass(printed, tmp_path, which, text):
    data = _from_text(textwrap.dedent(text), tmp_path)
    assert _errors(_validator(printed[which]), data) == []


# --- an unknown kind fails, at its check ------------------------------------------------------


def test_a_misspelt_kind_fails_at_its_check_as_the_loader_refuses_it(printed, tmp_path):
    source = ROOT / "cases" / "refund-assistant" / "INC-2026-014.yaml"
    text = source.read_text(encoding="utf-8")
    assert "\n  - contains: " in text
    misspelt = text.replace("\n  - contains: ", "\n  - contians: ", 1)
    path = write(tmp_path / "cases" / "refund-assistant" / "INC-2026-014.yaml", misspelt)
    data = _as_editors_read(path)
    index = next(i for i, check in enumerate(data["expect"]) if "contians" in check)

    (error,) = _errors(_validator(printed["case"]), data)
    assert list(error.absolute_path) == ["expect", index]
    assert "'contians' was unexpected" in error.message
    assert _errors(_validator(printed["all"]), data)
    with pytest.raises(InputError, match=r"unknown check kind 'contians'; did you mean "
                                         r"'contains'\?"):
        loader.load_case(path)


# --- a parameter of the wrong type fails, at the parameter ------------------------------------


WRONG_VALUES = [
    ({"tool_order": {"sequence": 30}}, ["tool_order", "sequence"]),
    ({"contains": {"text": ["30 days", 30]}}, ["contains", "text", 1]),
    ({"no_pii": {"detectors": ["phone", "passport"]}}, ["no_pii", "detectors", 1]),
    ({"not_contains": {"text": "2024", "ignore_case": "yes"}}, ["not_contains", "ignore_case"]),
    ({"latency": {"max_ms": "fast"}}, ["latency", "max_ms"]),
    ({"source_fresh": {"max_age_days": -1}}, ["source_fresh", "max_age_days"]),
    ({"tokens": {"max": 10, "kind": "all"}}, ["tokens", "kind"]),
]


@pytest.mark.parametrize(("check", "where"), WRONG_VALUES,
                         ids=[".".join(map(str, where)) for _, where in WRONG_VALUES])
def test_a_parameter_of_the_wrong_type_fails_at_the_parameter(printed, check, where):
    data = _as_editors_read(ROOT / "cases" / "refund-assistant" / "INC-2026-014.yaml")
    data["expect"].append(check)
    errors = _errors(_validator(printed["case"]), data)
    assert errors
    best = jsonschema.exceptions.best_match(errors)
    assert list(best.absolute_path) == ["expect", len(data["expect"]) - 1, *where]
    assert not _loads(check)


# --- every kind, with every parameter ---------------------------------------------------------


def _mapping_form(kind_schema: dict[str, Any]) -> dict[str, Any]:
    """The ``{param: value}`` form of a kind's schema (beside its bare-value and null forms)."""
    if kind_schema.get("type") == "object":
        return kind_schema
    (mapping,) = [form for form in kind_schema["anyOf"] if form.get("type") == "object"]
    return mapping


def test_every_registered_kind_is_in_the_schema_with_every_parameter(entry):
    described = entry.schema["properties"]
    assert sorted(described) == KINDS
    for name, kind in checks.kinds().items():
        assert described[name]["description"].startswith(kind.summary)
        mapping = _mapping_form(described[name])
        assert list(mapping["properties"]) == list(kind.parameters), name
        assert mapping["additionalProperties"] is False
        required = [p for p, parameter in kind.parameters.items() if parameter.required]
        assert mapping.get("required", []) == required, name
        for param, parameter in kind.parameters.items():
            assert mapping["properties"][param]["description"] == parameter.description


def test_every_built_in_parameter_declares_what_it_takes():
    """A kind added with parameters described by a plain string only (which the schema cannot
    check) fails here: declare them with ``Parameter.text``, ``texts``, ``number``, ..."""
    for kind in checks.kinds().values():
        if not kind.factory.__module__.startswith("harness.checks."):
            continue  # an installed package's kind: declaring is up to it
        for param, parameter in kind.parameters.items():
            assert parameter.schema is not None, f"{kind.name}.{param} is not declared"
            assert parameter.description, f"{kind.name}.{param} has no description"
        if kind.shorthand is not None:
            assert kind.shorthand in kind.parameters, kind.name


def test_the_schema_shows_types_choices_defaults_and_bare_values(entry):
    kinds = entry.schema["properties"]
    tokens = _mapping_form(kinds["tokens"])["properties"]
    assert tokens["max"]["type"] == "number" and tokens["max"]["minimum"] == 0
    assert tokens["kind"]["default"] == "total"
    assert {"enum": ["total", "prompt", "completion"]} in tokens["kind"]["anyOf"]
    assert entry.is_valid({"tokens": 4000})  # the bare value stands for max
    assert entry.is_valid({"json": None})  # no parameter is required
    assert not entry.is_valid({"contains": None})  # text is
    assert _mapping_form(kinds["tool_args"])["properties"]["partial"]["default"] is True


def test_a_kind_registered_now_is_in_the_schema_printed_now(entry):
    @checks.register("max_refund", summary="No refund above a limit.",
                     params={"limit": checks.Parameter.number("Largest amount.", required=True,
                                                              minimum=0),
                             "currency": "Only refunds in this currency (default any)."},
                     shorthand="limit", example="- max_refund: 500")
    def max_refund(params: checks.Params) -> Any:
        params.number("limit", minimum=0)
        return lambda response, case: checks.passed("fine")

    try:
        printed = _validator(_printed("case"))
        case = {"input": "hi", "expect": [{"max_refund": 500}]}
        assert printed.is_valid(case)
        assert printed.is_valid({**case, "expect": [{"max_refund": {"limit": 5,
                                                                    "currency": ["any value"]}}]})
        assert not printed.is_valid({**case, "expect": [{"max_refund": {"limit": -5}}]})
        assert not printed.is_valid({**case, "expect": [{"max_refund": {"limt": 5}}]})
    finally:
        checks.registry._KINDS.remove("max_refund")
    assert "max_refund" not in _printed("case")["properties"]["expect"]["items"]["properties"]


def test_an_installed_checks_package_is_in_the_schema_harness_schema_prints(tmp_path):
    site = tmp_path / "site"
    write(site / "refund_checks" / "__init__.py", """
        from harness.checks import Parameter, passed, register


        @register("max_refund", summary="No refund above a limit.",
                  params={"limit": Parameter.number("Largest amount.", required=True)},
                  shorthand="limit", category="policy", example="- max_refund: 500")
        def max_refund(params):
            return lambda response, case: passed("fine")
    """)
    info = site / "refund_checks-0.1.dist-info"
    write(info / "METADATA", "Metadata-Version: 2.1\nName: refund-checks\nVersion: 0.1\n")
    write(info / "entry_points.txt", "[harness.checks]\nrefunds = refund_checks\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", "harness", "schema", "case"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    printed = _validator(json.loads(done.stdout))
    case = {"input": "hi", "expect": [{"max_refund": 500}]}
    assert printed.is_valid(case)
    assert not printed.is_valid({**case, "expect": [{"max_refund": "a lot"}]})
    assert not printed.is_valid({**case, "expect": [{"max_refnd": 500}]})


# --- the schema and the loader agree on check entries -----------------------------------------


AGREED = [
    # bare values, mappings and nothing
    {"contains": "30 days"}, {"contains": ["30 days", "refund"]}, {"contains": {"text": ""}},
    {"contains": []}, {"contains": None}, {"contains": {}}, {"contains": {"txt": "a"}},
    {"contains": "a", "regex": "b"}, {}, "contains: a", ["contains"], {"json": None},
    {"json": {"expected": {"a": 1}, "exclude": ["meta.id"]}}, {"json": {"exclude": "meta.id"}},
    {"json": "yes"}, {"length": {"max": 600}}, {"length": {}}, {"length": {"unit": "words"}},
    {"length": 5}, {"equals": 42}, {"equals": True}, {"equals": {"value": "x"}},
    # numbers and bounds
    {"latency": 4000}, {"latency": -1}, {"latency": True}, {"similar": " "},
    {"similar": {"reference": "a", "threshold": 101}}, {"tool_called": {"name": "x", "min": 1.5}},
    {"tool_called": {"name": "x", "min": 0}}, {"max_tool_calls": {"name": "x"}},
    {"max_tool_calls": 2}, {"judge": {"rubric": "unsafe_advice", "judge": "j", "votes": 2}},
    {"judge": {"rubric": "unsafe_advice", "judge": "j", "votes": 3}},
    {"judge": {"rubric": "unsafe advise", "judge": "j"}},
    {"judge": {"rubric": "Does the answer stay polite?", "judge": "j"}},
    {"judge": {"rubric": "unsafe_advice", "judge": " "}},
    # choices
    {"tokens": {"max": 10, "kind": "prompt"}}, {"cites": {"ids": "a", "require": "some"}},
    {"no_pii": {"detectors": "email", "scan": ["output"]}}, {"no_pii": {"scan": "logs"}},
    {"judge": {"rubric": "unsafe_advice", "judge": "j", "sees": ["output", "memory"]}},
    # shapes of their own
    {"tool_order": ["a"]}, {"tool_order": ["a", "b"]}, {"tool_order": "a"},
    {"tool_args": {"name": "x", "args": {}}}, {"tool_args": {"name": "x", "args": {"a": 1}}},
    {"approval_required": {"step": "s", "before": "t", "when": {"amount": {"gt": 500}}}},
    {"approval_required": {"step": "s", "before": "t", "when": {"amount": {"gt": "500"}}}},
    {"approval_required": {"step": "s", "before": "t", "when": {"amount": {"over": 5}}}},
    {"approval_required": {"step": "s", "before": "t", "when": {"amount": 500}}},
    {"approval_required": {"step": "s", "before": "t", "not_by": []}},
    {"approval_required": {"step": "s", "before": "t", "roles": []}},
    {"forbidden_claims": ["a", {"text": "b", "threshold": 80}]},
    {"forbidden_claims": [{"text": "b", "threshold": 0}]}, {"forbidden_claims": []},
    {"forbidden_claims": {"text": "b"}}, {"required_phrases": {"phrases": {"text": "b"}}},
    {"no_leak": {"digests": [canary_digest("14 Alder Lane", "0f1e2d3c4b5a6978")]}},
    {"no_leak": {"scan": "output"}},
    {"no_leak": {"digests": "sha256:zz"}}, {"no_leak": ["14 Alder Lane"]},
    {"tool_destinations": {"allowed": [], "external_domains_allowed": ["@shop.example"]}},
    {"tool_destinations": {"external_domains_allowed": "shop"}},
    {"python": "checks.refunds:amount_matches"}, {"python": "checks.refunds"},
    {"python": {"function": "m:f", "params": []}}, {"semantic_similar": "refunds in 30 days"},
]


@pytest.mark.parametrize("check", AGREED, ids=json.dumps)
def test_the_schema_and_the_loader_agree_on_a_check(entry, check):
    assert entry.is_valid(check) == _loads(check), _errors(entry, check)


BEYOND_THE_SCHEMA = [
    ({"regex": "(30 days"}, "the pattern must compile"),
    ({"length": {"min": 10, "max": 5}}, "min may not exceed max"),
    ({"tool_called": {"name": "x", "min": 3, "max": 1}}, "max may not be below min"),
    ({"judge": {"rubric": "violates_policy", "judge": "j"}}, "this rubric needs a policy"),
    ({"json": {"exclude": ["items[x"]}}, "a path must parse"),
    ({"record_target": {"arg": "a..b"}}, "a path must parse"),
]
"""Check entries the schema takes and the loader refuses: rules that join two parameters, or
that only the check's own parser can tell (the loader names them at ``path:line``)."""


@pytest.mark.parametrize(("check", "rule"), BEYOND_THE_SCHEMA,
                         ids=[next(iter(check)) for check, _ in BEYOND_THE_SCHEMA])
def test_what_the_schema_cannot_say_is_left_to_the_loader(entry, check, rule):
    assert entry.is_valid(check), rule
    assert not _loads(check), rule


def _example(kind: checks.CheckKind) -> dict[str, Any]:
    """A kind's documented example, as a mapping of parameters."""
    ((name, params),) = yaml.safe_load(kind.example or "")[0].items()
    assert name == kind.name
    return params if isinstance(params, dict) else {kind.shorthand: params}


@pytest.mark.parametrize("name", KINDS)
def test_every_kind_s_example_passes_the_schema_and_loads(entry, name):
    example = {name: _example(checks.kinds()[name])}
    assert entry.is_valid(example), _errors(entry, example)
    assert _loads(example)


def _enums(node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        yield from node.get("enum", [])
        for value in node.values():
            yield from _enums(value)
    elif isinstance(node, list):
        for value in node:
            yield from _enums(value)


WORDS = sorted({str(word) for word in _enums(checks.json_schema())} | {
    "", " ", "x", "a b c d", "order_id", "items[0].sku", "meta.id", "(unclosed", "mod:fn",
    "shop.example", "@shop.example", "a@b.c", canary_digest("14 Alder Lane", "0f1e2d3c4b5a6978"),
})
KEYS = st.sampled_from(["text", "threshold", "gt", "gte", "lt", "eq", "ne", "amount",
                        "items[0].sku", "x"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 1000),
                    st.floats(-10, 1000, allow_nan=False), st.sampled_from(WORDS),
                    st.text(max_size=8))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=3)), max_leaves=8)


@pytest.mark.parametrize("name", KINDS)
@FAST
@given(data=st.data())
def test_the_schema_never_refuses_a_check_that_loads(entry, name, data):
    """From each kind's example: one parameter changed or dropped, a bare value, or nothing."""
    kind = checks.kinds()[name]
    params = copy.deepcopy(_example(kind))
    change = data.draw(st.sampled_from(["set", "drop", "bare", "none"]), label="change")
    value = data.draw(VALUES, label="value")
    param = data.draw(st.sampled_from(list(kind.parameters)), label="param")
    if change == "set":
        params[param] = value
    elif change == "drop":
        params.pop(param, None)
    check = {name: {"set": params, "drop": params, "bare": value, "none": None}[change]}
    if _loads(check):
        assert entry.is_valid(check), _errors(entry, check)
