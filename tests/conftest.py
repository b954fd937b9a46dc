"""Shared fixtures: a small project (cases/, suites/, a workflow module) in a temporary folder."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.model import CaseResult, CheckOutcome, TargetResponse, Trial
from harness.records import RunHeader, RunRecord

WORKFLOW = '''
def respond(request, *, mode="good"):
    """A tiny workflow: echoes the message; in 'bad' mode it leaks an email address."""
    if mode == "broken":
        raise RuntimeError("model route unavailable")
    text = "Hello, " + request["message"]
    if mode == "bad":
        text += " (contact jane@example.com)"
    return {"output": text, "metadata": {"prompt_version": mode}}
'''

SUITE = """
name: demo
cases:
  - cases/demo/*.yaml
targets:
  good:
    python: wf_fixture:respond
    params: {mode: good}
  bad:
    python: wf_fixture:respond
    params: {mode: bad}
  broken:
    python: wf_fixture:respond
    params: {mode: broken}
  replay:
    replay: true
"""

INCIDENT = """
id: INC-1
title: Reply leaked another customer's email
workflow: demo
category: data_exposure
severity: sev2
status: closed
owner: dana.okafor
timeline:
  detected: 2026-03-02T08:15:00Z
  contained: 2026-03-02T09:00:00Z
evidence:
  input: {message: where is my order}
  output: "Hello, where is my order (contact jane@example.com)"
expect:
  - not_contains: "@example.com"
"""

BASELINE = """
id: BASE-1
title: Greets the customer
input: {message: hi}
expect:
  - contains: "Hello, hi"
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def make_project(root: Path) -> Path:
    """A project with one incident case, one baseline case, a suite and a workflow module."""
    write(root / "wf_fixture.py", WORKFLOW)
    write(root / "suites" / "demo.yaml", SUITE)
    write(root / "cases" / "demo" / "INC-1.yaml", INCIDENT)
    write(root / "cases" / "demo" / "BASE-1.yaml", BASELINE)
    return root


@pytest.fixture(autouse=True)
def judge_cache(tmp_path_factory: pytest.TempPathFactory,
                monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's own cache folder, for judges and parsed case files (also for the harness
    commands it starts): nothing is read from or written to the machine's cache."""
    folder = tmp_path_factory.mktemp("judge-cache")
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path)


def case_with_check(folder: Path, check: str) -> Path:
    """A minimal case file whose only check is the YAML line ``check`` (line 4)."""
    return write(folder / "C1.yaml", f"id: C1\ninput: hi\nexpect:\n  - {check}\n")


def make_trial(verdict: str, output: str = "ok", *, tools: tuple = (),
               check: str | None = None) -> Trial:
    """A trial with one check (or a target error) and a response with output and tools."""
    if verdict == "error":
        return Trial(index=1, verdict="error", error="timed out after 10 s")
    checks = (CheckOutcome(kind="contains", verdict=check or verdict, reason=f"was {verdict}",
                           line=7),)
    response = TargetResponse.parse({"output": output, "tool_calls": list(tools)})
    return Trial(index=1, verdict=verdict, checks=checks, response=response)


def make_result(case_id: str, *verdicts: str, incident: bool = False, digest: str = "d",
                output: str = "ok", tools: tuple = (), min_pass_rate: float = 1.0,
                severity: str = "sev2", category: str = "policy") -> CaseResult:
    """A case result whose verdict follows its trials: error if any errored, else pass when
    the pass rate reaches ``min_pass_rate``."""
    trials = tuple(make_trial(v, output, tools=tools) for v in verdicts)
    rate = sum(v == "pass" for v in verdicts) / len(verdicts)
    verdict = "pass" if rate >= min_pass_rate else "fail"
    return CaseResult(case_id=case_id, verdict="error" if "error" in verdicts else verdict,
                      trials=trials, pass_rate=rate, min_pass_rate=min_pass_rate,
                      path=f"{case_id}.yaml", line=1, workflow="w", incident=incident,
                      category=category if incident else None,
                      severity=severity if incident else None,
                      owner="dana" if incident else None, case_digest=digest)


def make_run(*results: CaseResult, suite: str = "s", complete: bool = True) -> RunRecord:
    """A run record in memory; ``complete`` False leaves out its end line."""
    header = RunHeader(run_id="r", suite=suite, suite_digest="x", target="t", target_kind="python",
                       target_digest="y", started_at="2026-03-10T00:00:00Z")
    return RunRecord(path=Path("run.jsonl"), header=header, results=results,
                     end={"counts": {}} if complete else None)


REPO = Path(__file__).resolve().parent.parent
EXAMPLE_REVIEWERS = (("priya.raman", "workflow_owner"), ("noor.haddad", "security"),
                     ("li.wei", "workflow_owner"))
"""The bundled example's reviewers; li.wei authored the fix of INC-2026-017."""


def run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``code`` run by a Python process of its own, with ``args`` as its arguments: what it
    imports, what it leaves registered and how it ends stay out of the test session."""
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=60, check=False)


def run_harness(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The ``harness`` command as a user runs it, in ``cwd``."""
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=300, check=False)


def copy_example(root: Path) -> Path:
    """The bundled example's cases and suites in ``root``."""
    shutil.copytree(REPO / "cases", root / "cases")
    shutil.copytree(REPO / "suites", root / "suites")
    return root


def pin_reviewers(keys: Path, project: Path,
                  people: tuple[tuple[str, str], ...] = EXAMPLE_REVIEWERS) -> dict[str, Path]:
    """A key for each (reviewer, role) under ``keys``, pinned in ``project``/reviewers.yaml."""
    keys.mkdir(exist_ok=True)
    lines = ["reviewers:"]
    paths = {}
    for reviewer, role in people:
        path = keys / reviewer
        done = run_harness("keygen", str(path), "--comment", reviewer, cwd=keys)
        assert done.returncode == 0, done.stderr
        public = done.stdout.strip().splitlines()[-1]
        lines += [f"  - id: {reviewer}", f"    name: {reviewer.title()}",
                  f"    roles: [{role}]", f'    key: "{public}"']
        paths[reviewer] = path
    (project / "reviewers.yaml").write_text("\n".join(lines) + "\n")
    return paths
