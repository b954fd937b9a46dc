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
        checks.registry._KINDS.remove("max_refund")


def _quick_start() -> list[str]:
    block = re.search(r"## Quick start.*?```sh\n(.*?)```", README, re.DOTALL).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_the_quick_start_is_two_commands_for_a_system_python3_and_ci_runs_the_second():
    install, tests = _quick_start()
    for command in (install, tests):
        # stock Debian/Ubuntu: python3, no python on PATH, pip refusing system installs
        assert command.startswith("python3 -m venv .venv && .venv/bin/python -m pip install ")
        assert " python " not in f" {command} " and "sudo" not in command
    assert install.endswith(".venv/bin/harness validate suites/refund-assistant.yaml")
    assert tests.endswith(".venv/bin/tox")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert ci.rstrip().splitlines()[-1] == tests  # CI runs exactly the README's test command


def test_no_shell_example_loses_a_dollar_amount_to_the_shell():
    for block in re.findall(r"```sh\n(.*?)```", README, re.DOTALL):
        for quoted in re.findall(r'"[^"\n]*"', block):
            assert not re.search(r"\$\d", quoted), quoted


def test_the_license_the_metadata_declares_ships_with_the_package():
    from importlib import metadata

    assert "Apache License" in (ROOT / "LICENSE").read_text(encoding="utf-8")[:200]
    assert metadata.metadata("incident-harness")["License"] == "Apache-2.0"
    shipped = [f for f in metadata.files("incident-harness") or () if f.name == "LICENSE"]
    assert shipped, "LICENSE is not in the installed distribution"
    assert "Apache License" in shipped[0].read_text(encoding="utf-8")[:200]


def test_the_bundled_suite_runs_without_naming_a_target(tmp_path):
    done = subprocess.run([sys.executable, "-m", "harness", "run",
                           str(ROOT / "suites" / "refund-assistant.yaml"), "--out",
                           str(tmp_path / "run.jsonl")], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "\npost-fix: 20 passed, 0 failed, 0 errors; run record: " in done.stdout
