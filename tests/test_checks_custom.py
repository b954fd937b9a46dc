"""Checks written in Python and named from case files."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import case_with_check, write

from harness import checks
from harness.errors import InputError
from harness.loader import import_project_code, load_case, load_suite
from harness.model import Case, Expectation, TargetResponse

CASE = Case(id="C1", path=Path("c.yaml"), line=1, workflow="w", title=None, input="x", expect=())

MODULE = '''
from harness.checks import failed, passed

def outcome(response, case, *, word):
    if word in response.output:
        return passed(f"found {word}", match=word)
    return failed(f"{word} is missing from the answer for {case.id}")

def boolean(response, case):
    return response.output == "yes"

def pair(response, case):
    return (False, "refund amount does not match the order")

def wrong(response, case):
    return 42

VALUE = 3
'''


@pytest.fixture
def custom_module(tmp_path, monkeypatch):
    write(tmp_path / "team_checks.py", MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "team_checks"
    sys.modules.pop("team_checks", None)


def test_a_function_returning_an_outcome(custom_module):
    check = checks.build("python", {"function": f"{custom_module}:outcome",
                                    "params": {"word": "refund"}})
    assert check(TargetResponse(output="your refund"), CASE).verdict == "pass"
    outcome = check(TargetResponse(output="hello"), CASE)
    assert outcome.verdict == "fail"
    assert outcome.reason == "refund is missing from the answer for C1"


def test_a_function_returning_a_bool_or_a_pair(custom_module):
    boolean = checks.build("python", f"{custom_module}:boolean")
    assert boolean(TargetResponse(output="yes"), CASE).verdict == "pass"
    assert boolean(TargetResponse(output="no"), CASE).verdict == "fail"
    pair = checks.build("python", f"{custom_module}:pair")(TargetResponse(output="x"), CASE)
    assert (pair.verdict, pair.reason) == ("fail", "refund amount does not match the order")


def test_a_function_returning_something_else_is_an_error_outcome(custom_module):
    expectation = Expectation(kind="python", params=None, line=7,
                              check=checks.build("python", f"{custom_module}:wrong"))
    outcome = expectation.evaluate(TargetResponse(output="x"), CASE)
    assert outcome.verdict == "error"
    assert "returned int" in outcome.reason and outcome.line == 7


def test_a_malformed_reference_fails_at_load(tmp_path):
    folder = tmp_path / "cases"
    folder.mkdir()
    with pytest.raises(InputError) as caught:
        load_case(case_with_check(folder, 'python: "no_colon"'))
    assert "C1.yaml:4: expect[0].python.function: expected 'package.module:function'" \
        in str(caught.value)


@pytest.mark.parametrize(("reference", "problem"), [
    ("no_such_module_xyz:f", "cannot import module 'no_such_module_xyz'"),
    ("team_checks:missing", "module 'team_checks' has no attribute 'missing'"),
    ("team_checks:VALUE", "'team_checks:VALUE' is not callable"),
])
def test_bad_references_fail_before_anything_runs(tmp_path, custom_module, reference, problem):
    folder = tmp_path / "cases"
    folder.mkdir()
    case = load_case(case_with_check(folder, f'python: "{reference}"'))  # nothing imported yet
    with pytest.raises(InputError) as caught:
        import_project_code([case], tmp_path)
    assert "C1.yaml:4: expect[0].python.function: " + problem in str(caught.value)


def test_reading_a_suite_imports_none_of_the_project_code(tmp_path, monkeypatch):
    """A suite is read to decide and to sign off: that must not run the project's code. The
    code runs only when checks run, with the project folder appended to sys.path, not first."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    marker = tmp_path / "imported"
    write(tmp_path / "side_effect_checks.py",
          f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n"
          "def check(response, case):\n    return True\n")
    write(tmp_path / "suites" / "s.yaml",
          "name: s\ncases: [cases/*.yaml]\ntargets: {replay: {replay: true}}\n")
    case_with_check(tmp_path / "cases", 'python: "side_effect_checks:check"')
    try:
        suite = load_suite(tmp_path / "suites" / "s.yaml")
        assert not marker.exists() and str(tmp_path) not in sys.path
        assert "side_effect_checks" not in sys.modules
        import_project_code(suite.cases, suite.root)
        assert marker.read_text() == "ran"
        assert sys.path[-1] == str(tmp_path)  # appended: it cannot shadow an installed library
    finally:
        sys.modules.pop("side_effect_checks", None)


def test_params_must_be_a_mapping(tmp_path, custom_module):
    with pytest.raises(InputError, match=r"expect\[0\]\.python\.params: expected a mapping"):
        load_case(case_with_check(tmp_path, "python: {function: 'team_checks:boolean', "
                                            "params: [1]}"))
