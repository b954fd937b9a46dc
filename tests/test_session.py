"""The run engine without pytest (harness.run.session), and the same run record whichever way
a run begins: harness run, harness validate, a plain pytest (serial or under pytest-xdist),
or the session driven directly."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import copy_example, run_harness, write

from harness import loader
from harness.errors import InputError
from harness.records import read_run
from harness.run.session import RunOptions, Session, parse_shard, run_header, shard_of

SUITE = "suites/refund-assistant.yaml"
VOLATILE = {"run_id", "started_at", "finished_at", "duration_s", "call_ms"}


def stable(value):
    """A run record's content without what differs between two runs of the same cases: ids,
    clocks and timings."""
    if isinstance(value, dict):
        return {key: stable(item) for key, item in value.items() if key not in VOLATILE}
    if isinstance(value, list):
        return [stable(item) for item in value]
    return value


def lines(path: Path) -> list[dict]:
    return [stable(json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines()]


def git_project(root: Path) -> Path:
    copy_example(root)
    for command in (["init", "-q"], ["add", "."],
                    ["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q",
                     "-m", "cases"]):
        subprocess.run(["git", *command], cwd=root, check=True, capture_output=True)
    return root


def plain_pytest(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-p", "no:randomly", *args], cwd=root, text=True,
                          capture_output=True, timeout=300, check=False)


def direct(root: Path, out: Path, target: str) -> None:
    """The run made by the session alone, without pytest."""
    suite = loader.load_suite(root / SUITE)
    spec = loader.choose_target(suite, target)
    session = Session(RunOptions(), record=out, header=run_header(suite, spec))
    cases = session.add(suite, spec, suite.cases)
    session.open()
    for case in cases:
        session.result(case)
    session.close()


def test_a_run_record_is_the_same_however_the_run_began(tmp_path, monkeypatch):
    root = git_project(tmp_path / "p")
    done = run_harness("run", SUITE, "-t", "pre-fix", "--out", "cli.jsonl", cwd=root)
    assert done.returncode == 1, done.stdout + done.stderr  # pre-fix fails its incidents
    done = plain_pytest(root, SUITE, "--harness-target", "pre-fix",
                        "--harness-record", "pytest.jsonl")
    assert done.returncode == 1, done.stdout + done.stderr
    done = plain_pytest(root, SUITE, "--harness-target", "pre-fix",
                        "--harness-record", "xdist.jsonl", "-n", "2")
    assert done.returncode == 1, done.stdout + done.stderr
    done = run_harness("validate", SUITE, "--baseline", "cli.jsonl", "--candidate", "pre-fix",
                       cwd=root)
    assert done.returncode in (0, 1), done.stdout + done.stderr
    made = [p for p in (root / "reports" / "runs").glob("refund-assistant-pre-fix-*.jsonl")]
    assert len(made) == 1
    monkeypatch.chdir(root)
    direct(root, root / "direct.jsonl", "pre-fix")

    expected = lines(root / "cli.jsonl")
    header = expected[0]
    assert header["suite_path"] == SUITE and header["git_commit"]  # provenance, always
    for other in ("pytest.jsonl", "xdist.jsonl", made[0], "direct.jsonl"):
        got = lines(root / other)
        # pytest-xdist reports in the order the workers finish: compare the cases by id
        assert got[0] == header, other
        assert sorted(got[1:-1], key=lambda r: r["case_id"]) == \
            sorted(expected[1:-1], key=lambda r: r["case_id"]), other
        assert got[-1] == expected[-1], other


CALLS = '''
import os, pathlib


def respond(request):
    """Counts its calls, one line per call, in a file beside it."""
    with open(pathlib.Path(__file__).with_name("calls.log"), "a") as log:
        log.write(f"{request}\\n")
    return {"output": f"ok {request}"}
'''


@pytest.fixture(autouse=True)
def fresh_workflow_module(monkeypatch):
    """Each test's project has its own wf_calls.py: none may find another test's imported."""
    monkeypatch.delitem(sys.modules, "wf_calls", raising=False)


def counting_project(root: Path, cases: int = 8) -> Path:
    write(root / "wf_calls.py", CALLS)
    for number in range(1, cases + 1):
        write(root / "cases" / "w" / f"C{number:02d}.yaml",
              f"id: C{number:02d}\ninput: {number}\nexpect:\n  - contains: ok\n")
    write(root / "suites" / "s.yaml", """
        name: s
        cases: cases/w/*.yaml
        targets:
          t:
            python: wf_calls:respond
    """)
    return root


def test_workers_of_pytest_xdist_call_each_case_once_with_concurrency(tmp_path):
    """Each worker collects every case but runs only its own: calling ahead must not call
    the other workers' cases too (a paid model would be asked, and billed, twice)."""
    root = counting_project(tmp_path)
    done = plain_pytest(root, "suites/s.yaml", "--harness-target", "t",
                        "--harness-concurrency", "4", "-n", "2",
                        "--harness-record", "run.jsonl")
    assert done.returncode == 0, done.stdout + done.stderr
    calls = (root / "calls.log").read_text().split()
    assert sorted(calls, key=int) == [str(n) for n in range(1, 9)]
    assert len(read_run(root / "run.jsonl").results) == 8


SKIPPING = """
import pytest


def pytest_collection_modifyitems(config, items):
    # pytest's documented way to skip by a condition: mark the items while collecting
    for item in items:
        if item.name == "C02":
            item.add_marker(pytest.mark.skip(reason="needs the live account"))
        if item.name == "C03":
            item.add_marker(pytest.mark.skipif(True, reason="not on this platform"))
        if item.name == "C04":
            item.add_marker(pytest.mark.xfail(run=False, reason="known broken"))
"""


@pytest.mark.parametrize("args", [(), ("-k", "not C05"), ("-m", "not slow")],
                         ids=["skip-marks", "-k", "-m"])
def test_cases_that_will_not_run_are_not_called_ahead(tmp_path, args):
    """A case skipped by a mark, or deselected by -k or -m, must not reach a live target:
    calling ahead calls only the cases that will run."""
    root = counting_project(tmp_path, cases=6)
    write(root / "cases" / "w" / "C05.yaml",
          "id: C05\ninput: 5\ntags: [slow]\nexpect:\n  - contains: ok\n")
    if not args:
        write(root / "conftest.py", SKIPPING)
    done = plain_pytest(root, "suites/s.yaml", "--harness-target", "t",
                        "--harness-concurrency", "4", *args)
    assert done.returncode == 0, done.stdout + done.stderr
    calls = sorted((root / "calls.log").read_text().split(), key=int) \
        if (root / "calls.log").exists() else []
    ran = ["1", "5", "6"] if not args else ["1", "2", "3", "4", "6"]
    assert calls == ran


def test_calls_made_ahead_are_the_ones_reported(tmp_path, monkeypatch):
    root = counting_project(tmp_path)
    monkeypatch.chdir(root)
    monkeypatch.syspath_prepend(str(root))
    suite = loader.load_suite(root / "suites" / "s.yaml")
    spec = loader.choose_target(suite, "t")
    session = Session(RunOptions(concurrency=4))
    cases = session.add(suite, spec, suite.cases)
    session.start(cases)
    results = [session.result(case) for case in cases]
    session.close()
    assert [r.case_id for r in results] == [f"C{n:02d}" for n in range(1, 9)]
    assert [r.trials[0].response.output for r in results] == [f"ok {n}" for n in range(1, 9)]
    assert len((root / "calls.log").read_text().split()) == 8  # none twice


def test_a_session_without_a_record_writes_nothing(tmp_path, monkeypatch):
    root = counting_project(tmp_path, cases=2)
    monkeypatch.syspath_prepend(str(root))
    suite = loader.load_suite(root / "suites" / "s.yaml")
    spec = loader.choose_target(suite, "t")
    session = Session()
    for case in session.add(suite, spec, suite.cases):
        assert session.result(case).verdict == "pass"
    session.open()
    session.close()
    assert session.writer is None
    made = sorted(p.name for p in root.iterdir() if p.name != "__pycache__")
    assert made == ["calls.log", "cases", "suites", "wf_calls.py"]  # and no run record


def test_a_session_of_two_suites_has_no_single_header(tmp_path, monkeypatch):
    root = counting_project(tmp_path, cases=2)
    write(root / "suites" / "other.yaml", """
        name: other
        cases: cases/w/*.yaml
        targets:
          t:
            python: wf_calls:respond
    """)
    monkeypatch.syspath_prepend(str(root))
    session = Session(record=root / "run.jsonl")
    for name in ("s", "other"):
        suite = loader.load_suite(root / "suites" / f"{name}.yaml")
        session.add(suite, loader.choose_target(suite, "t"), suite.cases)
    with pytest.raises(InputError, match="one run of one suite against one target"):
        session.open()
    assert not (root / "run.jsonl").exists()  # refused before anything was written


def test_retired_cases_and_other_shards_are_not_run(tmp_path, monkeypatch):
    root = counting_project(tmp_path, cases=6)
    write(root / "cases" / "w" / "C01.yaml",
          "id: C01\ninput: 1\nretired: {reason: superseded by C02, date: 2026-09-01}\n"
          "expect:\n  - contains: ok\n")
    monkeypatch.syspath_prepend(str(root))
    suite = loader.load_suite(root / "suites" / "s.yaml")
    spec = loader.choose_target(suite, "t")
    session = Session(RunOptions(shard="1/2"))
    kept = session.add(suite, spec, suite.cases)
    assert [case.id for case in kept] == [f"C{n:02d}" for n in range(2, 7)]
    wanted = [case.id for case in kept if session.wanted(case)]
    assert wanted == [case.id for case in kept if shard_of(case.id, 2) == 1]
    assert run_header(suite, spec).retired == {"C01": "superseded by C02"}


@pytest.mark.parametrize("text", ["0/2", "3/2", "1-2", "", "a/b"])
def test_a_malformed_shard_is_bad_input(text):
    with pytest.raises(InputError, match="K/N"):
        parse_shard(text)
    with pytest.raises(InputError, match="K/N"):
        RunOptions(shard=text)


def test_concurrency_below_one_is_bad_input():
    with pytest.raises(InputError, match="at least 1"):
        RunOptions(concurrency=0)


# --- calls that must wait --------------------------------------------------------------------


class Busy(ThreadingHTTPServer):
    """Answers ``{"output": "ok ..."}`` at once, except the first request for each order in
    ``refuse``: 429 with ``Retry-After``. Keeps the order requests arrive in."""

    daemon_threads = True
    refuse: set[str]
    retry_after = "1"
    arrived: list[str]
    lock: threading.Lock


class BusyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Busy

    def do_POST(self) -> None:
        order = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            refused = order in self.server.refuse
            self.server.refuse.discard(order)
            self.server.arrived.append(f"{order}{'!' if refused else ''}")
        body = b"" if refused else json.dumps({"output": f"ok {order}"}).encode()
        self.send_response(429 if refused else 200)
        if refused:
            self.send_header("Retry-After", self.server.retry_after)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def busy():
    server = Busy(("127.0.0.1", 0), BusyHandler)
    server.refuse, server.arrived, server.lock = set(), [], threading.Lock()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def busy_session(root: Path, server: Busy, orders: str, *, concurrency: int,
                 calls: str = "retries: 1") -> tuple[Session, list]:
    for order in orders:
        write(root / "cases" / "w" / f"{order}.yaml",
              f"id: {order}\ninput: {order}\nexpect:\n  - contains: ok\n")
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    write(root / "suites" / "s.yaml",
          f"name: s\ncases: cases/w/*.yaml\ntargets:\n  t: {{http: '{url}', {calls}}}\n")
    suite = loader.load_suite(root / "suites" / "s.yaml")
    session = Session(RunOptions(concurrency=concurrency))
    cases = session.add(suite, loader.choose_target(suite, "t"), suite.cases)
    return session, cases


def test_a_call_told_to_retry_later_gives_its_place_to_the_next_case(tmp_path, busy):
    """Two cases answered 429 + Retry-After 1 s with two calls at once: the third case is
    called while they wait, not after (a waiting call is not a call in flight)."""
    busy.refuse = {"A", "B"}
    session, cases = busy_session(tmp_path, busy, "ABC", concurrency=2)
    session.start(cases)
    results = [session.result(case) for case in cases]
    session.close()
    assert [r.verdict for r in results] == ["pass"] * 3
    assert busy.arrived.index("C") < busy.arrived.index("A")  # before either retry
    assert busy.arrived.index("C") < busy.arrived.index("B")
    first = results[0].trials[0]
    assert first.attempts == 2
    assert first.response.metadata["call_ms"] >= 1000  # the mandated wait counts


def test_a_target_limited_to_one_call_at_once_is_free_while_a_call_waits(tmp_path, busy):
    busy.refuse = {"A"}
    session, cases = busy_session(tmp_path, busy, "ACD", concurrency=4,
                                  calls="retries: 1, max_concurrency: 1")
    session.start(cases)
    results = [session.result(case) for case in cases]
    session.close()
    assert [r.verdict for r in results] == ["pass"] * 3
    assert busy.arrived == ["A!", "C", "D", "A"]


def test_closing_a_run_does_not_wait_for_a_retry_far_ahead(tmp_path, busy):
    """Interrupted while a call waits out a long Retry-After, the run ends at once: no thread
    sleeps on to keep the process alive."""
    busy.refuse, busy.retry_after = {"A"}, "30"
    session, cases = busy_session(tmp_path, busy, "A", concurrency=2)
    session.start(cases)
    deadline = time.monotonic() + 10
    while busy.arrived != ["A!"] and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)  # the 429 has been read and the wait begun
    session.close(interrupted=True)
    for thread in threading.enumerate():
        if thread.name.startswith("harness-call"):
            thread.join(timeout=5)
            assert not thread.is_alive(), thread.name
    assert busy.arrived == ["A!"]  # and the retry was never made
