"""The benchmark's machinery: a quick run prints every figure; measuring and inputs are right.

No timing target is asserted here: the benchmark is a report, and this machine's speed is not
the product's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from harness import bench
from harness.compare import Transition, compare
from harness.records import read_run

NUMBER = r"\d+\.\d+"
ROW = r"\s+{measured}\s+{floor}\s+\d+\.\d\dx\s+<={target}x\s+(PASS|MISS)$"


def row(name: str, *, unit: str, floor_label: str, target: str) -> re.Pattern[str]:
    value = rf"{NUMBER} {unit}"
    pattern = re.escape(name) + ROW.format(
        measured=value, floor=rf"{value} \({re.escape(floor_label)}\)", target=target)
    return re.compile(pattern, re.MULTILINE)


def test_quick_run_prints_every_figure_and_writes_real_runs(tmp_path):
    work = tmp_path / "work"
    done = subprocess.run(
        [sys.executable, "-m", "harness.bench", "--quick", "--help-repeats", "2",
         "--workdir", str(work)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    first, second = out.splitlines()[:2]
    assert first == ("reproduce: python -m harness.bench --cases 100 --slow-cases 50 "
                     "--latency 0.1 --concurrency 50 --report-cases 200 --repeats 1 "
                     "--help-repeats 2")
    assert re.fullmatch(r"machine: \d+ cores, Python 3\.\d+\.\d+ \(\w+\), .+", second)
    rows = [
        row("1. per-case overhead, 100 cases", unit="s", floor_label="YAML-collection floor",
            target="1.2"),
        row("2. slow target, 50 cases x 0.1 s, concurrency 50", unit="s",
            floor_label="ideal N x lat / C", target="1.15"),
        row("2b. slow target, 1 in 10 calls answered 429 + Retry-After: 1 s", unit="s",
            floor_label="bound with the mandated waits", target="1.15"),
        row("3a. compare + gate + HTML report, 2 x 200 cases", unit="s",
            floor_label="read_run x 2", target="5"),
        row("3b. report size, 200 cases, 10 changed", unit="MB", floor_label="bound",
            target="1"),
        row("3c. peak memory, validating 2 x 200 cases, 10 changed", unit="MiB",
            floor_label="the 100-case run", target="2"),
        row("4a. peak memory, 100-case run", unit="MiB", floor_label="YAML-collection floor",
            target="1.5"),
        row("4b. harness --help (median of 2)", unit="s",
            floor_label="python -c 'import argparse'", target="3"),
    ]
    if shutil.which("chromium"):
        rows.insert(6, row("3d. the report opens in Chromium, 200 cases, 10 changed", unit="s",
                           floor_label="bound", target="1"))
    results = []
    for pattern in rows:
        found = pattern.search(out)
        assert found, f"no row matching {pattern.pattern!r} in:\n{out}"
        results.append(found.group(1))
    assert re.search(rf"harness start-up, a run of 1 case: {NUMBER} s \(informational\)", out)
    assert re.search(rf"bare client, same calls, 50 threads: {NUMBER} s", out)
    assert re.search(rf"report size: {NUMBER} MB", out)
    assert re.search(rf"per case: harness \d+\.\d\d ms, floor \d+\.\d\d ms; CPU time: "
                     rf"harness {NUMBER} s, floor {NUMBER} s", out)
    verdict = out.strip().splitlines()[-1]
    met = results.count("PASS")
    assert verdict.startswith(f"verdict: {met} of {len(rows)} targets met")
    assert verdict.count(" > ") == results.count("MISS")
    # the harness runs wrote their run records: the figure includes record writing
    record = read_run(work / "runs" / "fast-100-0.jsonl")
    assert record.complete and len(record.results) == 100
    assert {r.verdict for r in record.results} == {"pass"}
    assert len(read_run(work / "runs" / "slow-0.jsonl").results) == 50


def test_measure_reports_the_peak_memory_of_the_measured_process_alone(tmp_path):
    small = bench.measure([sys.executable, "-c", "pass"], cwd=tmp_path, log=tmp_path / "a.log")
    big = bench.measure([sys.executable, "-c", "x = bytearray(200 * 1024 * 1024); x[-1] = 1"],
                        cwd=tmp_path, log=tmp_path / "b.log")
    assert big.max_rss_kib >= 200 * 1024
    assert small.max_rss_kib < 100 * 1024
    assert small.wall_s > 0
    assert list(tmp_path.glob("*.json")) == []  # the wrapper's report is cleaned up


def test_a_failing_measured_process_is_an_error_naming_it_and_its_output(tmp_path):
    command = [sys.executable, "-c", "import sys; print('collection failed here'); sys.exit(3)"]
    with pytest.raises(bench.BenchError) as caught:
        bench.measure(command, cwd=tmp_path, log=tmp_path / "run.log")
    message = str(caught.value)
    assert message.startswith(f"exit code 3 from: {sys.executable} -c ")
    assert "collection failed here" in message


def test_main_reports_a_failed_measurement_and_exits_1(tmp_path, capsys, monkeypatch):
    def failing(root, sizes, *, with_peers=False):
        raise bench.BenchError("exit code 4 from: pytest suites/x.yaml")

    monkeypatch.setattr(bench, "run_figures", failing)
    assert bench.main(["--quick", "--workdir", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ("error: a measured process failed: exit code 4 from: pytest "
                            "suites/x.yaml\n")


def test_ratio_and_verdict_judge_each_figure_by_its_target():
    at_target = bench.Figure("a", "1. a", measured=2.4, floor=2.0, floor_label="f", target=1.2)
    over = bench.Figure("b", "2. b", measured=2.5, floor=2.0, floor_label="f", target=1.2)
    assert at_target.ratio == pytest.approx(1.2) and at_target.passed
    assert over.ratio == pytest.approx(1.25) and not over.passed
    assert bench.verdict([at_target]) == "verdict: 1 of 1 targets met"
    assert bench.verdict([at_target, over]) == "verdict: 1 of 2 targets met; MISS b 1.25x > 1.2x"
    table = bench.render_table([at_target, over]).splitlines()
    assert table[2].endswith("1.20x   <=1.2x  PASS")
    assert table[3].endswith("1.25x   <=1.2x  MISS")


def test_generated_runs_change_two_percent_of_verdicts(tmp_path):
    baseline, candidate = bench.generated_runs(tmp_path, 200)
    comparison = compare(read_run(baseline), read_run(candidate))
    counts = comparison.counts()
    assert counts[Transition.REGRESSED] == 2
    assert counts[Transition.FIXED] == 2
    assert counts[Transition.STILL_PASSING] == 196
    result = read_run(candidate).results[0]
    assert 150 <= len(result.trials[0].response.output) <= 250
    assert len(result.trials[0].checks) == 3
    assert [c.name for c in result.trials[0].response.tool_calls] == ["lookup_order",
                                                                      "issue_refund"]


def test_the_floor_collects_the_same_case_files_with_pytests_non_python_pattern(tmp_path):
    from harness.loader import load_case

    bench.write_project(tmp_path)
    bench.write_cases(tmp_path, "fast-7", 7)
    floor = bench.write_floor(tmp_path, 7)
    ours, theirs = (root / "cases" / "fast-7" / "C00007.yaml" for root in (tmp_path, floor))
    assert ours.read_text(encoding="utf-8") == theirs.read_text(encoding="utf-8")
    case = load_case(ours)
    assert case.input == bench.case_input(7) == {"order": "A-00007", "name": "Customer 7"}
    assert [e.kind for e in case.expect] == ["contains", "not_regex", "length"]
    done = subprocess.run([sys.executable, "-m", "pytest", "cases/fast-7", "-p", "no:harness",
                           "-p", "no:cacheprovider", "-p", "no:randomly", "-q"], cwd=floor,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and "7 passed" in done.stdout, done.stdout + done.stderr
    # the floor makes the checks for real: a reply that breaks one fails its item
    (floor / "bench_wf.py").write_text("def respond(request):\n    return {'output': 'x'}\n",
                                       encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "pytest", "cases/fast-7", "-p", "no:harness",
                           "-p", "no:cacheprovider", "-p", "no:randomly", "-q"], cwd=floor,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1 and "7 failed" in done.stdout, done.stdout + done.stderr


def test_pairs_are_judged_by_the_median_of_their_ratios():
    ones = [bench.Measure(wall_s=w, max_rss_kib=k) for w, k in ((2.0, 100), (9.0, 300),
                                                                 (2.4, 200))]
    twos = [bench.Measure(wall_s=w, max_rss_kib=k) for w, k in ((1.0, 100), (6.0, 100),
                                                                 (2.0, 100))]
    pair = bench.Pair.of(ones, twos)
    assert (pair.measured, pair.floor) == (2.4, 2.0)
    assert pair.ratio == 1.5  # ratios 2.0, 1.5, 1.2: a noisy pair moves both sides
    assert bench.Pair.of(ones, twos, memory=True).ratio == 2.0
    figure = bench.Figure("a", "1. a", pair.measured, pair.floor, "f", 1.2, paired=pair.ratio)
    assert figure.ratio == 1.5 and not figure.passed


def test_generated_runs_change_as_many_cases_as_asked(tmp_path):
    baseline, candidate = bench.generated_runs(tmp_path, 1000, changed_every=100)
    counts = compare(read_run(baseline), read_run(candidate)).counts()
    assert counts[Transition.REGRESSED] + counts[Transition.FIXED] == 10
    assert counts[Transition.STILL_PASSING] == 990


def test_the_throttling_server_turns_away_every_tenth_order_once(tmp_path):
    def post(url: str, number: int) -> tuple[int, str | None]:
        request = urllib.request.Request(url, data=json.dumps(bench.case_input(number)).encode(),
                                         method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, None
        except urllib.error.HTTPError as refused:
            return refused.code, refused.headers.get("Retry-After")

    with bench.slow_server(0.0, busy_every=10, retry_after_s=1.0) as url:
        first = [post(url, n) for n in (9, 10, 20, 10, 20, 21)]
    assert first == [(200, None), (429, "1"), (429, "1"), (200, None), (200, None), (200, None)]


def test_slow_server_answers_after_its_latency_with_the_reply(tmp_path):
    with bench.slow_server(0.05) as url:
        request = urllib.request.Request(url, data=json.dumps(bench.case_input(3)).encode(),
                                         method="POST")
        measured = bench.timed(lambda: urllib.request.urlopen(request, timeout=10).read())
        with urllib.request.urlopen(request, timeout=10) as answer:
            body = json.loads(answer.read())
    assert measured.wall_s >= 0.05
    assert body == {"output": "Order A-00003 for Customer 3 has shipped and will arrive "
                              "within 3 business days."}


def test_quick_sizes_give_way_to_options_given():
    args = bench.parser().parse_args(["--quick", "--cases", "10,20", "--repeats", "2"])
    sizes = bench.resolve_sizes(args)
    assert sizes.cases == (10, 20) and sizes.repeats == 2
    assert sizes.slow_cases == bench.QUICK["slow_cases"]
    assert bench.resolve_sizes(bench.parser().parse_args([])).cases == (1000, 10000)


@pytest.mark.parametrize(("option", "given", "message"), [
    ("--cases", "1,x", "expected a comma-separated list of case counts, found '1,x'"),
    ("--cases", "0", "expected a comma-separated list of case counts, found '0'"),
    ("--cases", "", "expected a comma-separated list of case counts, found ''"),
    ("--repeats", "0", "expected a whole number of at least 1, found '0'"),
    ("--latency", "-0.1", "expected seconds, at least 0, found '-0.1'"),
    ("--latency", "nan", "expected seconds, at least 0, found 'nan'"),
])
def test_bad_sizes_are_a_usage_error(option, given, message, capsys):
    with pytest.raises(SystemExit) as caught:
        bench.parser().parse_args([option, given])
    assert caught.value.code == 2
    assert f"argument {option}: {message}" in capsys.readouterr().err


def test_workflow_module_matches_the_plain_test_target(tmp_path):
    bench.write_project(tmp_path)
    namespace: dict[str, object] = {}
    exec((tmp_path / "bench_wf.py").read_text(encoding="utf-8"), namespace)
    reply = namespace["respond"](bench.case_input(12))  # type: ignore[operator]
    assert reply["output"] == ("Order A-00012 for Customer 12 has shipped and will arrive "
                               "within 3 business days.")
    assert (tmp_path / "pytest.ini").read_text(encoding="utf-8") == "[pytest]\n"


def test_promptfoo_runs_the_same_cases_with_the_same_checks():
    config = bench.promptfoo_config(3)
    assert config["providers"] == [{"id": "file://bench_provider.py"}]
    tests = config["tests"]
    assert [t["vars"]["request"] for t in tests] == [bench.case_input(n) for n in (1, 2, 3)]
    assert [a["type"] for a in tests[1]["assert"]] == ["contains", "not-regex", "javascript"]
    assert tests[1]["assert"][0]["value"] == "A-00002"
    assert tests[1]["assert"][1]["value"] == bench.FORBIDDEN
    assert tests[1]["assert"][2]["value"] == "output.length >= 20 && output.length <= 400"


def test_peers_are_skipped_saying_why_without_npm(tmp_path, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert bench.peers(tmp_path, 5, 1) == "npm is not installed"
    assert not (tmp_path / "peers").exists()


def test_a_measured_process_gets_the_environment_it_is_given_and_ours_is_left_alone(tmp_path):
    script = "import os, sys; sys.exit(0 if os.environ.get('BENCH_PROBE') == 'set' else 5)"
    bench.measure([sys.executable, "-c", script], cwd=tmp_path, log=tmp_path / "a.log",
                  env={"BENCH_PROBE": "set"})
    assert "BENCH_PROBE" not in os.environ
    with pytest.raises(bench.BenchError, match="exit code 5"):
        bench.measure([sys.executable, "-c", script], cwd=tmp_path, log=tmp_path / "b.log")


def test_measured_pytest_runs_leave_out_the_development_extras_plugins(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTEST_ADDOPTS", "-x")  # a developer's own options do not leak in
    script = ("import os, sys; print(os.environ.get('PYTEST_ADDOPTS')); "
              "import pytest; sys.exit(pytest.main(['--co', '-q', '-p', 'no:cacheprovider']))")
    (tmp_path / "test_probe.py").write_text("def test_probe():\n    pass\n")
    bench.measure([sys.executable, "-c", script], cwd=tmp_path, log=tmp_path / "a.log")
    shown = (tmp_path / "a.log").read_text()
    assert shown.splitlines()[0] == "-p no:hypothesispytest"  # installed here, for the tests
    assert "1 test collected" in shown  # and pytest runs with it


def test_the_slow_server_answers_without_waiting_on_nagles_algorithm():
    # its headers and body are two writes: with Nagle's algorithm on, each answer would wait
    # 40 ms for the client's delayed acknowledgement, and the slow figure would measure that
    assert bench._SlowHandler.disable_nagle_algorithm is True
    with bench.slow_server(0.0) as url:
        port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
        with socket.create_connection(("127.0.0.1", port)) as client:
            client.sendall(b'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}')
            assert client.recv(1024).startswith(b"HTTP/1.1 200")


def test_the_peers_live_in_the_harness_cache_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    assert bench.peers_home() == tmp_path / "cache" / "peers"
    monkeypatch.delenv("HARNESS_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert bench.peers_home() == tmp_path / "xdg" / "incident-harness" / "peers"
