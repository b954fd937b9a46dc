"""The README stays true: its check table, its worked examples and its commands."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from conftest import write

from harness import checks, runner
from harness.loader import load_case
from harness.model import TargetResponse

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def harness(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True,
                          text=True, timeout=60, check=True)
    return done.stdout


def test_readme_check_table_is_what_harness_checks_prints():
    block = README.split("<!-- checks:begin -->\n", 1)[1].split("<!-- checks:end -->", 1)[0]
    assert block == harness("checks", "--format", "markdown")


def test_harness_checks_lists_every_kind_with_its_parameters():
    text = harness("checks")
    for kind in checks.kinds().values():
        assert f"{kind.name}  [" in text
        for param in kind.params:
            assert f"- {param}" in text


def test_every_kind_has_a_summary_an_example_and_described_parameters():
    for kind in checks.kinds().values():
        assert kind.summary and kind.example, kind.name
        assert all(text for text in kind.params.values()), kind.name


def _python_block(after: str) -> str:
    return re.search(r"```python\n(.*?)```", README.split(after, 1)[1], re.DOTALL).group(1)


def test_the_worked_python_check_runs_as_documented(tmp_path, monkeypatch):
    write(tmp_path / "checks" / "refunds.py", _python_block("#### Writing a check"))
    write(tmp_path / "checks" / "__init__.py", "")
    monkeypatch.syspath_prepend(str(tmp_path))
    case = load_case(write(tmp_path / "cases" / "w" / "C1.yaml", """
        id: C1
        input: refund please
        expect:
          - python: {function: "checks.refunds:refund_matches_order", params: {currency: USD}}
    """))

    class Target:
        def __init__(self, amount):
            self.amount = amount

        def call(self, case_input, *, case, timeout_s):
            return TargetResponse.parse({"output": "done", "tool_calls": [
                {"name": "lookup_order", "args": {}, "result": {"total": 39.99}},
                {"name": "issue_refund", "args": {"amount": self.amount}}]})

    assert runner.run_case(case, Target(39.99)).verdict == "pass"
    wrong = runner.run_case(case, Target(129.0))
    assert wrong.verdict == "fail"
    assert wrong.trials[0].checks[0].reason == "refunded 129.0 USD, but the order total is 39.99"
    sys.modules.pop("checks.refunds", None)
    sys.modules.pop("checks", None)


def test_the_worked_plugin_check_registers_and_judges(tmp_path):
    source = _python_block("To ship checks as a package")
    namespace: dict = {}
    exec(compile(source, "my_checks/__init__.py", "exec"), namespace)
    try:
        check = checks.build("max_refund", 500)
        over = TargetResponse.parse({"tool_calls": [{"name": "issue_refund",
                                                     "args": {"amount": 640}}]})
        assert check(over, None).reason == "refund of 640 exceeds the limit of 500"
    finally:
        checks.registry._KINDS.pop("max_refund", None)
