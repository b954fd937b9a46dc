"""The two intake paths combined: ``incident new``, then the trace ``--into`` the same draft,
then ``harness check`` listing what is left, then ``harness case close`` in one command."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from conftest import run_harness, write

from harness.loader import load_case

SAMPLES = Path(__file__).parent / "samples" / "traces"
TRACE = SAMPLES / "langsmith-refund.json"
SUITE = """
name: refunds
cases: [cases/refund-assistant/*.yaml]
targets:
  replay: {replay: true}
"""
FILLED = {
    "root_cause": "The agent issued refunds while the approval was still pending.",
    "fix": "summary: The refund tool now checks the approval status (PR 812).",
    "prevention": "A regression case blocks deploys when the approval is skipped.",
}


def project(root: Path) -> Path:
    write(root / "suites" / "refunds.yaml", SUITE)
    (root / "cases" / "refund-assistant").mkdir(parents=True)
    return root


def new_incident(root: Path) -> Path:
    done = run_harness("incident", "new", "--workflow", "refund-assistant", "--category",
                       "human_review", "--title", "Refund issued while approval was pending",
                       "--owner", "sofia.brandt", "--users", "1", "--records", "1", cwd=root)
    assert done.returncode == 0, done.stderr
    (path,) = (root / "cases" / "refund-assistant").glob("INC-*.yaml")
    return path


def fill(path: Path) -> None:
    """What a person does: write the root cause, the fix and the prevention."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"^root_cause: .*$", f"root_cause: {FILLED['root_cause']}", text, flags=re.M)
    text = re.sub(r"^fix:\n  summary: .*$", f"fix:\n  {FILLED['fix']}", text, flags=re.M)
    text = re.sub(r"^prevention: .*$", f"prevention: {FILLED['prevention']}", text, flags=re.M)
    path.write_text(text, encoding="utf-8")


def test_incident_new_then_the_trace_into_it_then_close(tmp_path: Path) -> None:
    root = project(tmp_path)
    path = new_incident(root)
    before = load_case(path)
    assert [e.kind for e in before.expect] == ["not_contains"]  # nothing to draft from yet

    done = run_harness("case", "from-trace", str(TRACE), "--into", str(path), cwd=root)
    assert done.returncode == 0, done.stderr
    assert "left to fill: root_cause, fix.summary, prevention" in done.stdout
    case = load_case(path)
    # the record is kept; the evidence and the checks come from the trace
    assert (case.id, case.title, case.incident.owner) == (
        before.id, "Refund issued while approval was pending", "sofia.brandt")
    assert case.incident.severity == before.incident.severity
    assert [e.kind for e in case.expect] == ["approval_required"]
    assert case.expect[0].params == {"step": "refund_over_threshold", "before": "issue_refund"}
    assert case.evidence["tool_calls"][2]["name"] == "issue_refund"
    assert case.evidence["trace"]["format"] == "langsmith"
    assert case.input == case.evidence["input"]  # input: TODO went
    assert case.draft is True

    done = run_harness("check", ".", "--no-targets", cwd=root)
    assert done.returncode == 1
    assert "left to fill: root_cause, fix.summary, prevention [draft]" in done.stdout

    done = run_harness("case", "close", str(path), cwd=root)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "left to fill: root_cause, fix.summary, prevention" in done.stdout
    assert load_case(path).draft is True  # nothing changed

    fill(path)
    done = run_harness("case", "close", str(path), cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    closed = load_case(path)
    assert (closed.draft, closed.incident.status) == (False, "closed")
    assert "closed" in closed.incident.timeline
    assert closed.incident.root_cause == FILLED["root_cause"]
    text = path.read_text(encoding="utf-8")
    assert "draft:" not in text and not text.startswith("# Drafted by")
    assert run_harness("check", ".", "--no-targets", cwd=root).returncode == 0


def test_close_refuses_a_case_that_passes_on_its_own_evidence(tmp_path: Path) -> None:
    root = project(tmp_path)
    path = new_incident(root)
    run_harness("case", "from-trace", str(TRACE), "--into", str(path), cwd=root)
    fill(path)
    text = path.read_text(encoding="utf-8")
    # a check that the incident's own evidence passes: it would not have caught anything
    weak = re.sub(r"expect:\n(  .*\n)+", "expect:\n  - contains: refund\n", text)
    path.write_text(weak, encoding="utf-8")
    done = run_harness("case", "close", str(path), cwd=root)
    assert done.returncode == 1
    assert "passes on its own evidence" in done.stdout
    assert path.read_text(encoding="utf-8") == weak


def test_the_two_paths_never_collide_on_an_id(tmp_path: Path) -> None:
    root = project(tmp_path)
    first = new_incident(root)
    done = run_harness("case", "from-trace", str(TRACE), "--category", "retrieval", cwd=root)
    assert done.returncode == 0, done.stderr
    ids = sorted(p.stem for p in (root / "cases" / "refund-assistant").glob("*.yaml"))
    assert ids == [first.stem, f"INC-{first.stem.split('-')[1]}-002"]
    done = run_harness("case", "from-trace", str(TRACE), "--category", "retrieval", "--id",
                       first.stem, cwd=root)
    assert done.returncode == 2
    assert "already exists" in done.stderr and "--into" in done.stderr


def test_into_refuses_a_finished_case_and_options_that_would_rewrite_its_record(
        tmp_path: Path) -> None:
    root = project(tmp_path)
    path = new_incident(root)
    done = run_harness("case", "from-trace", str(TRACE), "--into", str(path), "--owner", "x",
                       cwd=root)
    assert done.returncode == 2 and "--owner does not go with --into" in done.stderr
    assert yaml.safe_load(path.read_text(encoding="utf-8"))["category"] == "human_review"
    done = run_harness("case", "from-trace", str(TRACE), "--into", str(path), "--category",
                       "policy", cwd=root)
    assert done.returncode == 2
    assert "the draft's category is human_review, not policy" in done.stderr
    text = path.read_text(encoding="utf-8").replace("draft: true\n", "")
    path.write_text(text, encoding="utf-8")
    done = run_harness("case", "from-trace", str(TRACE), "--into", str(path), cwd=root)
    assert done.returncode == 2 and "not a draft" in done.stderr
    assert path.read_text(encoding="utf-8") == text
