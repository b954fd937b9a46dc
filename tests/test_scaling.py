"""Concurrency, sharding, merging and resuming runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import copy_example, run_harness, write

from harness.records import read_run
from harness.run.session import shard_of

WORKFLOW = '''
import threading, time

_lock = threading.Lock()
_state = {"now": 0, "peak": 0}


def respond(request, *, delay=0.05):
    """Answers after a delay, and reports how many calls were in flight at its peak."""
    with _lock:
        _state["now"] += 1
        _state["peak"] = max(_state["peak"], _state["now"])
    time.sleep(delay)
    with _lock:
        _state["now"] -= 1
        peak = _state["peak"]
    return {"output": f"ok {request}", "metadata": {"peak": peak}}
'''


def project(root: Path, *, cases: int = 12, extra: str = "") -> Path:
    write(root / "wf_scaling.py", WORKFLOW)
    for number in range(1, cases + 1):
        write(root / "cases" / "w" / f"C{number:02d}.yaml",
              f"id: C{number:02d}\ninput: {number}\nexpect:\n  - contains: ok\n")
    write(root / "suites" / "s.yaml", f"""
        name: s
        cases: cases/w/*.yaml
        targets:
          free:
            python: wf_scaling:respond
          capped:
            python: wf_scaling:respond
            max_concurrency: 2
          {extra}
    """)
    return root


def harness(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=120, check=False)


def peak(record_path: Path) -> int:
    return max(r.trials[0].response.metadata["peak"] for r in read_run(record_path).results)


def test_concurrent_calls_overlap_and_results_keep_their_order(tmp_path):
    root = project(tmp_path)
    done = harness("run", "suites/s.yaml", "-t", "free", "-c", "6", "--out", "run.jsonl",
                   cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    record = read_run(root / "run.jsonl")
    assert [r.case_id for r in record.results] == [f"C{n:02d}" for n in range(1, 13)]
    assert peak(root / "run.jsonl") > 1


def test_one_call_at_a_time_by_default(tmp_path):
    root = project(tmp_path)
    assert harness("run", "suites/s.yaml", "-t", "free", "--out", "run.jsonl",
                   cwd=root).returncode == 0
    assert peak(root / "run.jsonl") == 1


def test_a_targets_max_concurrency_caps_the_run(tmp_path):
    root = project(tmp_path)
    assert harness("run", "suites/s.yaml", "-t", "capped", "-c", "8", "--out", "run.jsonl",
                   cwd=root).returncode == 0
    assert peak(root / "run.jsonl") == 2


def test_concurrency_below_one_is_bad_input(tmp_path):
    root = project(tmp_path)
    done = harness("run", "suites/s.yaml", "-t", "free", "-c", "0", cwd=root)
    assert done.returncode == 2 and "--concurrency: expected at least 1" in done.stderr


def test_shards_are_stable_disjoint_and_cover_the_suite(tmp_path):
    ids = [f"C{n:02d}" for n in range(1, 13)]
    # the split is the SHA-256 of the id: pinned here, so it never moves between machines,
    # processes or versions (a moved case would run in no shard, or in two)
    assert [shard_of(case_id, 3) for case_id in ids] == [1, 2, 3, 1, 2, 2, 2, 2, 3, 2, 3, 1]
    root = project(tmp_path)
    seen: list[str] = []
    for k in (1, 2, 3):
        done = harness("run", "suites/s.yaml", "-t", "free", "--shard", f"{k}/3", "--out",
                       f"shard{k}.jsonl", cwd=root)
        assert done.returncode == 0, done.stderr
        record = read_run(root / f"shard{k}.jsonl")
        assert record.header.shard == f"{k}/3"
        assert all(shard_of(r.case_id, 3) == k for r in record.results)
        seen += [r.case_id for r in record.results]
    assert sorted(seen) == ids
    merged = harness("merge", "all.jsonl", "shard1.jsonl", "shard2.jsonl", "shard3.jsonl",
                     cwd=root)
    assert merged.returncode == 0 and "12 cases, complete" in merged.stdout
    record = read_run(root / "all.jsonl")
    assert record.complete and len(record.header.merged_from) == 3
    assert harness("gate", "shard1.jsonl", "all.jsonl", cwd=root).returncode == 0
    # shard 1 of 3 missing: the merge says so, and the gate blocks on what it made
    partial = harness("merge", "part.jsonl", "shard2.jsonl", "shard3.jsonl", cwd=root)
    assert partial.returncode == 1, partial.stdout
    assert "INCOMPLETE (shard(s) 1/3 missing)" in partial.stdout
    assert not read_run(root / "part.jsonl").complete
    blocked = harness("gate", "all.jsonl", "part.jsonl", cwd=root)
    assert blocked.returncode == 1 and "[incomplete_run]" in blocked.stdout


def test_merge_refuses_shards_of_different_splits(tmp_path):
    root = project(tmp_path)
    harness("run", "suites/s.yaml", "-t", "free", "--shard", "1/2", "--out", "a.jsonl", cwd=root)
    harness("run", "suites/s.yaml", "-t", "free", "--shard", "2/3", "--out", "b.jsonl", cwd=root)
    harness("run", "suites/s.yaml", "-t", "free", "--out", "whole.jsonl", cwd=root)
    split = harness("merge", "m.jsonl", "a.jsonl", "b.jsonl", cwd=root)
    assert split.returncode == 2 and "is of 3 shards, the others of 2" in split.stderr
    mixed = harness("merge", "m.jsonl", "a.jsonl", "whole.jsonl", cwd=root)
    assert mixed.returncode == 2 and "expected a shard 'K/N'" in mixed.stderr
    assert not (root / "m.jsonl").exists()


def test_merge_refuses_overlapping_or_foreign_shards(tmp_path):
    root = project(tmp_path)
    harness("run", "suites/s.yaml", "-t", "free", "--shard", "1/2", "--out", "a.jsonl", cwd=root)
    harness("run", "suites/s.yaml", "-t", "capped", "--shard", "2/2", "--out", "b.jsonl",
            cwd=root)
    twice = harness("merge", "m.jsonl", "a.jsonl", "a.jsonl", cwd=root)
    assert twice.returncode == 2 and "shard 1/2 is given twice" in twice.stderr
    foreign = harness("merge", "m.jsonl", "a.jsonl", "b.jsonl", cwd=root)
    assert foreign.returncode == 2 and "target differs" in foreign.stderr
    assert not (root / "m.jsonl").exists()


def test_bad_shard_is_a_usage_error(tmp_path):
    root = project(tmp_path)
    done = harness("run", "suites/s.yaml", "-t", "free", "--shard", "4/3", cwd=root)
    assert done.returncode == 2 and "K/N with 1 <= K <= N" in done.stdout + done.stderr


def _interrupt(root: Path, sig: int) -> Path:
    """Start a slow run, stop it with ``sig`` once some cases are recorded."""
    out = root / "run.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", "suites/s.yaml", "-t", "slow", "--out",
         str(out)], cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if out.exists() and out.read_text().count('"type": "case"') >= 3:
            break
        time.sleep(0.05)
    os.kill(process.pid, sig)
    process.wait(timeout=60)
    return out


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_an_interrupted_run_keeps_its_finished_cases_and_resumes(tmp_path, sig):
    slow = "slow:\n            python: wf_scaling:respond\n            params: {delay: 0.3}"
    root = project(tmp_path, extra=slow)
    out = _interrupt(root, sig)
    partial = read_run(out)
    assert not partial.complete
    finished = [r.case_id for r in partial.results]
    assert 3 <= len(finished) < 12
    done = harness("run", "suites/s.yaml", "--resume", "run.jsonl", cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    record = read_run(out)
    assert record.complete
    assert sorted(r.case_id for r in record.results) == [f"C{n:02d}" for n in range(1, 13)]
    assert [r.case_id for r in record.results][: len(finished)] == finished
    again = harness("run", "suites/s.yaml", "--resume", "run.jsonl", cwd=root)
    assert again.returncode == 0 and "nothing to resume" in again.stdout


def test_resume_refuses_a_changed_suite(tmp_path):
    slow = "slow:\n            python: wf_scaling:respond\n            params: {delay: 0.3}"
    root = project(tmp_path, extra=slow)
    _interrupt(root, signal.SIGKILL)
    (root / "cases" / "w" / "C01.yaml").write_text("id: C01\ninput: 1\nexpect:\n"
                                                   "  - contains: changed\n")
    done = harness("run", "suites/s.yaml", "--resume", "run.jsonl", cwd=root)
    assert done.returncode == 2 and "changed since this run started" in done.stderr


def test_runs_under_pytest_xdist_and_records_every_case(tmp_path):
    pytest.importorskip("xdist")
    root = project(tmp_path)
    done = harness("run", "suites/s.yaml", "-t", "free", "--out", "run.jsonl", "--", "-n", "2",
                   cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    record = read_run(root / "run.jsonl")
    assert record.complete
    assert sorted(r.case_id for r in record.results) == [f"C{n:02d}" for n in range(1, 13)]
    direct = subprocess.run(
        [sys.executable, "-m", "pytest", "suites/s.yaml", "--harness-target", "free",
         "--harness-record", "direct.jsonl", "-n", "2", "-p", "no:cacheprovider"],
        cwd=root, text=True, capture_output=True, timeout=120, check=False)
    assert direct.returncode == 0, direct.stdout
    record = read_run(root / "direct.jsonl")
    assert (record.header.suite, record.header.target, len(record.results)) == ("s", "free", 12)


def _stable(record: Path) -> dict[str, dict]:
    """The case lines of a run record by case id, without what differs from run to run."""
    cases = {}
    for line in record.read_text(encoding="utf-8").splitlines():
        data = json.loads(line)
        if data["type"] != "case":
            continue
        data.pop("duration_s")
        for trial in data["trials"]:
            trial.pop("duration_s")
            trial["response"]["metadata"].pop("call_ms")
            for turn in trial.get("turns", ()):  # a conversation times each of its turns
                turn.pop("duration_s")
                turn["response"]["metadata"].pop("call_ms")
        cases[data["case_id"]] = data
    return cases


def test_xdist_on_the_bundled_suite_records_what_a_serial_run_records(tmp_path):
    """Case inputs are YAML mappings: what crosses the xdist wire must be plain data, and the
    controller writes the one record."""
    project = copy_example(tmp_path / "project")
    serial = run_harness("run", "suites/refund-assistant.yaml", "-t", "pre-fix", "--out",
                         "serial.jsonl", cwd=project)
    parallel = run_harness("run", "suites/refund-assistant.yaml", "-t", "pre-fix", "--out",
                           "parallel.jsonl", "--", "-n", "2", cwd=project)
    assert serial.returncode == parallel.returncode == 1, parallel.stdout + parallel.stderr
    assert "INTERNALERROR" not in parallel.stdout + parallel.stderr
    assert "13 passed, 7 failed, 0 errors" in parallel.stdout
    assert _stable(project / "parallel.jsonl") == _stable(project / "serial.jsonl")
    assert len(_stable(project / "serial.jsonl")) == 20


SLOW = "slow:\n            python: wf_scaling:respond\n            params: {delay: 0.3}"


def test_two_resumes_at_once_leave_one_writer_and_a_record_that_loads(tmp_path):
    root = project(tmp_path, extra=SLOW)
    out = _interrupt(root, signal.SIGKILL)
    command = [sys.executable, "-m", "harness", "run", "suites/s.yaml", "--resume", "run.jsonl"]
    first = subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    lock = root / "run.jsonl.lock"  # left by the killed run, unlocked: the first takes it
    while time.monotonic() < deadline:
        if lock.exists() and lock.read_text().startswith(f"pid {first.pid} "):
            break
        time.sleep(0.02)
    second = harness("run", "suites/s.yaml", "--resume", "run.jsonl", cwd=root)
    _, _ = first.communicate(timeout=120)
    assert first.returncode == 0
    assert second.returncode == 2, second.stdout + second.stderr
    assert f"another process is writing this run record (pid {first.pid} on" in second.stderr
    record = read_run(out)  # loads: each case once, one end line
    assert record.complete
    assert sorted(r.case_id for r in record.results) == [f"C{n:02d}" for n in range(1, 13)]
    assert out.read_text().count('"type": "end"') == 1
    assert not (root / "run.jsonl.lock").exists()


def test_a_record_being_written_is_refused_to_a_second_writer(tmp_path):
    from harness.records import RunLock

    root = project(tmp_path)
    with RunLock(root / "taken.jsonl"):
        done = harness("run", "suites/s.yaml", "-t", "free", "--out", "taken.jsonl", cwd=root)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"(pid {os.getpid()} on" in done.stderr
    assert not (root / "taken.jsonl").exists()  # nothing half-written
    assert harness("run", "suites/s.yaml", "-t", "free", "--out", "taken.jsonl",
                   cwd=root).returncode == 0  # released: the next writer goes ahead
