"""The README's "Your own workflow, from scratch" works as written.

Its file blocks (each opened by a comment naming its path) are written into an empty folder,
and its commands run there: each must exit as its comment says and print the lines shown under
it, in order. A misspelt check kind, a changed command or a changed output fails here.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest

from harness import loader

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
HEADING = "## Your own workflow, from scratch\n"
RUN_ID = r"\d{8}T\d{6}Z-[0-9a-f]{8}"  # as <run id> stands for it
CASE_FILE = "cases/support-bot/INC-2026-031.yaml"


def _section() -> str:
    assert HEADING in README, f"README.md has no {HEADING.strip()!r} section"
    return README.split(HEADING, 1)[1].split("\n## ", 1)[0]


SECTION = _section()
BLOCKS = re.findall(r"^```(\w+)\n(.*?)^```$", SECTION, re.DOTALL | re.MULTILINE)


def _files() -> dict[str, str]:
    """Each python or yaml block, by the path its first line names."""
    files = {}
    for language, text in BLOCKS:
        if language in ("python", "yaml"):
            first = text.splitlines()[0]
            named = re.fullmatch(r"# (\S+)", first)
            assert named, f"a {language} block does not open with '# PATH': {first!r}"
            files[named.group(1)] = text
    return files


@dataclass(frozen=True)
class Command:
    """One command of a shell block, the exit code its comment states and the lines shown."""

    argv: list[str]
    exit_code: int
    shown: list[str]


def _commands(block: str) -> list[Command]:
    """A shell block's commands: ``harness ... # exit N: ...`` followed by ``# `` output lines,
    where a line indented four spaces past ``# `` continues the one before."""
    commands: list[Command] = []
    for line in block.splitlines():
        if not line.startswith("#"):
            command, _, comment = line.partition("#")
            stated = re.match(r"\s*exit (\d+)\b", comment)
            assert stated, f"no exit code stated for {line!r}"
            commands.append(Command(shlex.split(command), int(stated.group(1)), []))
        elif line.strip("# "):
            shown = commands[-1].shown
            if line.startswith("#     "):
                shown[-1] += " " + line[2:].strip()
            else:
                shown.append(line[2:].strip())
    return commands


def _sessions() -> list[list[Command]]:
    return [_commands(text) for language, text in BLOCKS if language == "sh"]


def _pattern(shown: str) -> re.Pattern[str]:
    """A shown line as a pattern for a printed one: ``<run id>`` is any run id, ``...`` any
    text, and runs of white space are one space."""
    parts = re.split(r"(<run id>|\.\.\.)", " ".join(shown.split()))
    wild = {"<run id>": RUN_ID, "...": ".*"}
    return re.compile("".join(wild.get(part, re.escape(part)) for part in parts))


def _harness(project: Path, command: Command) -> subprocess.CompletedProcess[str]:
    assert command.argv[0] == "harness", command.argv
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(project.parent)}  # an empty folder
    return subprocess.run([sys.executable, "-m", "harness", *command.argv[1:]], cwd=project,
                          env=env, capture_output=True, text=True, timeout=180, check=False)


def _as_shown(project: Path, stdout: str) -> list[str]:
    """Printed lines as the README shows them: paths relative to the project, spaces folded."""
    for folder in {str(project.resolve()), str(project)}:
        stdout = stdout.replace(folder + os.sep, "")
    return [" ".join(line.split()) for line in stdout.splitlines()]


def _run_as_documented(project: Path, session: list[Command]) -> dict[str, list[str]]:
    """Run each command; assert its exit code and that it prints the shown lines, in order."""
    printed = {}
    for command in session:
        done = _harness(project, command)
        said = f"$ {shlex.join(command.argv)}\n{done.stdout}{done.stderr}"
        assert done.returncode == command.exit_code, said
        lines = iter(_as_shown(project, done.stdout))
        for shown in command.shown:
            pattern = _pattern(shown)
            assert any(pattern.fullmatch(line) for line in lines), f"{shown!r} not in\n{said}"
        printed[shlex.join(command.argv)] = _as_shown(project, done.stdout)
    return printed


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An empty folder holding exactly the section's files."""
    root = tmp_path / "support-bot"
    for path, text in _files().items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return root


def test_the_section_follows_the_bundled_example_and_gives_the_three_files():
    sections = re.findall(r"^## (.+)$", README, re.MULTILINE)
    assert sections[sections.index("The bundled example") + 1] == HEADING[3:].strip()
    assert sorted(_files()) == sorted(["support_bot.py", "suites/support-bot.yaml", CASE_FILE])
    assert [len(session) for session in _sessions()] == [3, 1]


def test_the_case_file_passes_the_schema_harness_schema_prints(project):
    done = subprocess.run([sys.executable, "-m", "harness", "schema", "case"], cwd=project,
                          capture_output=True, text=True, timeout=120, check=True)
    schema = json.loads(done.stdout)
    validator = jsonschema.validators.validator_for(schema)
    data, _ = loader.read_yaml(project / CASE_FILE)
    case = json.loads(json.dumps(data))  # as an editor reads it: dates stay strings
    errors = [error.message for error in validator(schema).iter_errors(case)]
    assert errors == []
    for field in ("category", "severity", "status", "owner", "business_owner", "timeline",
                  "impact", "root_cause", "fix", "prevention", "evidence", "expect"):
        assert case.get(field), f"the README's incident case has no {field}"


def test_run_validate_and_check_exit_and_print_as_the_readme_says(project):
    fixed, _ = _sessions()
    assert [command.argv[:2] for command in fixed] == [
        ["harness", "run"], ["harness", "validate"], ["harness", "check"]]
    assert [command.exit_code for command in fixed] == [0, 0, 0]
    printed = _run_as_documented(project, fixed)

    validated = printed["harness validate suites/support-bot.yaml"]
    assert "pre-fix -> current: 1 fixed" in validated
    assert "decision: RESTORE" in validated
    reports = sorted(path.suffix for path in (project / "reports").glob("validation-*"))
    assert reports == [".html", ".json", ".md", ".xml"]


def test_with_the_fix_reverted_validate_blocks_naming_the_incident_and_its_owners(project):
    workflow = project / "support_bot.py"
    fix = 'prompt_version="v8"'
    assert f"(`{fix.replace('v8', 'v7')}`)" in SECTION  # the revert the README describes
    assert workflow.read_text(encoding="utf-8").count(fix) == 1
    workflow.write_text(workflow.read_text(encoding="utf-8").replace(fix, 'prompt_version="v7"'),
                        encoding="utf-8")

    _, reverted = _sessions()
    (validate,) = reverted
    assert validate.exit_code == 1
    printed = _run_as_documented(project, reverted)[shlex.join(validate.argv)]

    assert "decision: BLOCK" in printed
    (reason,) = [line for line in printed if line.startswith("BLOCK ")]
    assert reason.startswith("BLOCK INC-2026-031: [still_failing] ")
    assert "(owner sam.ortiz, business owner maria.lopez)" in reason
    assert "owners to notify: sam.ortiz" in printed
    assert "business owners to notify: maria.lopez" in printed
