"""Shared fixtures: a small project (cases/, suites/, a workflow module) in a temporary folder."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

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


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path)


def case_with_check(folder: Path, check: str) -> Path:
    """A minimal case file whose only check is the YAML line ``check`` (line 4)."""
    return write(folder / "C1.yaml", f"id: C1\ninput: hi\nexpect:\n  - {check}\n")
