"""The pytest plugin: suite and case files become test items; results become run records.

YAML files are collected when ``--harness-target`` is given or when the file (or a folder above
it) is named on the command line, so a plain ``pytest`` in a project never starts running
its suites by surprise. A file in a ``suites`` folder is a suite; a file below a ``cases``
folder is a case.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from harness import judges, judging, loader, runner, targets
from harness.errors import HarnessError, InputError
from harness.explain import explain
from harness.model import CATEGORIES, SEVERITIES, Case, CaseResult, Suite, TargetSpec
from harness.records import (
    RunHeader,
    RunLock,
    RunRecord,
    RunWriter,
    git_commit,
    new_run_id,
    plain_json,
    result_from_dict,
    result_to_dict,
    utc_now,
)
from harness.redact import Redactor, run_redactor

RESULT_KEY = pytest.StashKey[CaseResult]()
WORKER_RESULT = "harness_result"
CALLS_KEY = pytest.StashKey[list["Future[runner.Call]"]]()
MARKERS_KEY = pytest.StashKey[set[str]]()
RECORDER_KEY = pytest.StashKey["Recorder"]()
PRELOADED_KEY = pytest.StashKey[dict[Path, Suite]]()
RUN_CASES_KEY = pytest.StashKey[dict[tuple[str, str], Case]]()
"""Every case of the suites collected (by file and id): whose canaries the run redacts."""
REDACTOR_KEY = pytest.StashKey[Redactor]()
JUDGES_KEY = pytest.StashKey[dict[tuple[str, str], "judges.Judges | None"]]()
RETIRED_KEY = pytest.StashKey[dict[str, str]]()
"""Retired cases met while collecting (id -> why): not run, named in the run record."""
REPLAY = "replay"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "incident-harness")
    group.addoption(
        "--harness-target", dest="harness_target", metavar="NAME", default=None,
        help="Run suites (and case files) against the suite's target NAME. Case files named "
             "directly default to 'replay' (each case's own evidence).",
    )
    group.addoption(
        "--harness-suite", dest="harness_suite", metavar="PATH", default=None,
        help="Suite whose targets apply to case files named directly (default: the suite in "
             "the project's suites/ folder that includes the case).",
    )
    group.addoption(
        "--harness-record", dest="harness_record", metavar="PATH", default=None,
        help="Write a run record (JSON Lines) of every case to PATH.",
    )
    group.addoption(
        "--harness-concurrency", dest="harness_concurrency", metavar="N", type=int, default=1,
        help="Call targets for up to N cases at once (each target's max_concurrency still "
             "applies); items still report one per case, in order.",
    )
    group.addoption(
        "--harness-no-redact", dest="harness_no_redact", action="store_true", default=False,
        help="Keep detected secrets, personal data and no_leak canaries in run records and "
             "failure text (by default they are redacted).",
    )
    group.addoption(
        "--harness-no-cache", dest="harness_no_cache", action="store_true", default=False,
        help="Call judges and embedders afresh instead of using their cached verdicts and "
             "embeddings (the fresh answers are cached).",
    )
    group.addoption(
        "--harness-shard", dest="harness_shard", metavar="K/N", default=None,
        help="Run only shard K of N (1-based): a stable split by case id, the same on every "
             "machine. Merge the shards' run records with harness merge.",
    )


def pytest_configure(config: pytest.Config) -> None:
    for category in CATEGORIES:
        config.addinivalue_line("markers", f"{category}: incident cases of this category")
    for severity in SEVERITIES:
        config.addinivalue_line("markers", f"{severity}: incident cases of this severity")
    config.addinivalue_line("markers", "incident: cases that hold an incident record")
    config.addinivalue_line("markers", "baseline: cases of normal behaviour (no incident)")
    config.stash[MARKERS_KEY] = set()
    config.stash[RETIRED_KEY] = {}
    config.stash[RUN_CASES_KEY] = {}
    shard = config.getoption("harness_shard", None)
    if shard is not None:
        parse_shard(shard)  # a malformed K/N is a usage error before anything runs
    if config.getoption("harness_concurrency", 1) < 1:
        raise pytest.UsageError("--harness-concurrency must be at least 1")
    path = config.getoption("harness_record", None)
    worker = hasattr(config, "workerinput")  # under pytest-xdist, the controller records
    if path and not worker and not config.stash.get(RECORDER_KEY, None):
        recorder = Recorder(Path(path))
        config.stash[RECORDER_KEY] = recorder
        config.pluginmanager.register(recorder, "harness-recorder")


def _explicit(config: pytest.Config, file_path: Path) -> bool:
    """Whether the file, or a folder above it, was named on the command line."""
    root = Path(config.invocation_params.dir)
    for arg in config.invocation_params.args:
        if str(arg).startswith("-"):
            continue
        named = (root / str(arg).split("::")[0]).resolve()
        if named == file_path or named in file_path.parents:
            return True
    return False


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.File | None:
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    config = parent.config
    if not (config.getoption("harness_target") or _explicit(config, file_path.resolve())):
        return None
    if file_path.parent.name == "suites":
        return SuiteFile.from_parent(parent, path=file_path)
    if any(folder.name == "cases" for folder in file_path.resolve().parents):
        return CaseFile.from_parent(parent, path=file_path)
    return None


def parse_shard(text: str) -> tuple[int, int]:
    """``K/N`` -> (K, N) with 1 <= K <= N; anything else is a usage error."""
    found = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if not found or not 1 <= int(found.group(1)) <= int(found.group(2)):
        raise pytest.UsageError(f"--harness-shard expects K/N with 1 <= K <= N, found {text!r}")
    return int(found.group(1)), int(found.group(2))


def shard_of(case_id: str, shards: int) -> int:
    """The shard (1-based) a case belongs to: stable across machines and Python versions."""
    digest = hashlib.sha256(case_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shards + 1


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    shard = config.getoption("harness_shard", None)
    if shard is None:
        return
    number, total = parse_shard(shard)
    keep, drop = [], []
    for item in items:
        mine = not isinstance(item, CaseItem) or shard_of(item.case.id, total) == number
        (keep if mine else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    concurrency = session.config.getoption("harness_concurrency", 1)
    if concurrency <= 1 or session.testsfailed or session.config.option.collectonly:
        return
    scheduler = Scheduler(concurrency)
    session.config.stash[SCHEDULER_KEY] = scheduler
    scheduler.submit(item for item in session.items if isinstance(item, CaseItem))


def pytest_sessionfinish(session: pytest.Session) -> None:
    scheduler = session.config.stash.get(SCHEDULER_KEY, None)
    if scheduler is not None:
        scheduler.close()


class Scheduler:
    """Calls targets ahead of pytest's item order, several at once, so slow targets overlap;
    each item then waits for its own calls, so results still report in order."""

    def __init__(self, concurrency: int) -> None:
        self.pool = ThreadPoolExecutor(max_workers=concurrency,
                                       thread_name_prefix="harness-call")

    def submit(self, items: Iterator[CaseItem]) -> None:
        for item in items:
            item.stash[CALLS_KEY] = [self.pool.submit(item.binding.call, item.case)
                                     for _ in range(item.case.trials)]

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


SCHEDULER_KEY = pytest.StashKey[Scheduler]()


def outgoing_redaction(config: pytest.Config) -> Redactor:
    """The run's redactor (every detector, every canary of every case collected), built once
    collection is over. What is sent to a judge is redacted by it even with
    ``--harness-no-redact``, which concerns what the run keeps."""
    redactor = config.stash.get(REDACTOR_KEY, None)
    if redactor is None:
        redactor = run_redactor(config.stash[RUN_CASES_KEY].values())
        config.stash[REDACTOR_KEY] = redactor
    return redactor


def run_redaction(config: pytest.Config) -> Redactor | None:
    """The run's redactor for what it keeps and shows; None with ``--harness-no-redact``."""
    if config.getoption("harness_no_redact", False):
        return None
    return outgoing_redaction(config)


def judge_service(config: pytest.Config, suite: Suite) -> judges.Judges | None:
    """The suite's judges for this run, one per suite (shared by its suite and case files)."""
    services = config.stash.setdefault(JUDGES_KEY, {})
    key = (str(suite.path.resolve()), suite.digest)
    if key not in services:
        workers = getattr(config, "workerinput", {}).get("workercount", 1)
        services[key] = judges.for_suite(
            suite, no_cache=config.getoption("harness_no_cache", False),
            redactor=lambda: outgoing_redaction(config), share=workers)
    return services[key]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """What a case's target printed (captured stdout, stderr and log) is redacted like its
    result before pytest shows it or writes it to JUnit XML."""
    outcome = yield
    report = outcome.get_result()
    redactor = run_redaction(item.config) if isinstance(item, CaseItem) else None
    if redactor is not None and report.sections:
        report.sections = [(title, redactor.text(content))
                           for title, content in report.sections]


class CaseFailed(Exception):
    """Raised by a case item whose verdict is not ``pass``; carries the result."""

    def __init__(self, result: CaseResult) -> None:
        self.result = result
        super().__init__(result.case_id)


def _marker_name(text: str) -> str:
    return re.sub(r"\W", "_", text)


class CaseItem(pytest.Item):
    """One case against one target: pytest reports it under the case's id."""

    def __init__(self, *, case: Case, binding: runner.Binding, suite: str, suite_digest: str,
                 settle_trials: int | None = None, judges: judging.JudgeService | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.judges = judges
        self.settle_trials = settle_trials
        self.binding = binding
        self.spec = binding.spec
        self.suite_name = suite
        self.suite_digest = suite_digest
        marks = ["incident" if case.incident else "baseline", _marker_name(case.workflow)]
        if case.incident:
            marks += [case.incident.category, case.incident.severity]
        marks += [_marker_name(tag) for tag in case.tags]
        registered = self.config.stash[MARKERS_KEY]
        for mark in marks:
            if mark not in registered and mark not in CATEGORIES and mark not in SEVERITIES:
                registered.add(mark)
                self.config.addinivalue_line("markers", f"{mark}: workflow or tag of cases")
            self.add_marker(mark)

    def runtest(self) -> None:
        futures = self.stash.get(CALLS_KEY, None)
        if futures is None:
            calls = [self.binding.call(self.case) for _ in range(self.case.trials)]
        else:
            calls = [future.result() for future in futures]
            del self.stash[CALLS_KEY]  # the raw responses go once judged
        with judging.using(self.judges):
            trials = tuple(runner.evaluate(self.case, call, i + 1)
                           for i, call in enumerate(calls))
        result = runner.judge(self.case, trials, settle_trials=self.settle_trials)
        redactor = run_redaction(self.config)
        if redactor is not None:
            # Verdicts are reached on the raw response; what is stored or shown is redacted,
            # of every canary of the run, not only this case's.
            result = redactor.result(result)
        self.stash[RESULT_KEY] = result
        if hasattr(self.config, "workerinput"):  # a pytest-xdist worker: the result travels
            self.user_properties.append((WORKER_RESULT, plain_json({  # to the recorder
                "result": result_to_dict(result), "suite": self.suite_name,
                "retired": self.config.stash[RETIRED_KEY] or None,
                "suite_digest": self.suite_digest, "target": self.spec.name,
                "target_kind": self.spec.kind, "target_digest": self.spec.digest,
            })))  # plain data: what crosses the xdist wire must serialise (no YAML nodes)
        if result.verdict != "pass":
            raise CaseFailed(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, CaseFailed):
            text = explain(excinfo.value.result)
            rerun = f"re-run with: pytest '{self.nodeid}' --harness-target {self.spec.name}"
            return f"{text}\n{rerun}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.case.line - 1, f"{self.case.id} [{self.spec.name}]"


class _YamlFile(pytest.File):
    """Shared by suites and case files: input errors are reported as their message alone."""

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, HarnessError):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def _items(self, suite: Suite, spec: TargetSpec, cases: tuple[Case, ...]) -> Iterator[CaseItem]:
        binding = runner.Binding.of(spec, targets.build(spec, suite.root))
        service = judge_service(self.config, suite)
        settle = suite.gate.get("settle_trials")
        run_cases = self.config.stash[RUN_CASES_KEY]
        run_cases.update({(str(case.path), case.id): case for case in suite.cases})
        retired = self.config.stash[RETIRED_KEY]
        for case in cases:
            if case.retired is not None:
                retired[case.id] = case.retired
                continue
            yield CaseItem.from_parent(self, name=case.id, case=case, binding=binding,
                                       suite=suite.name, suite_digest=suite.digest,
                                       settle_trials=settle, judges=service)


class SuiteFile(_YamlFile):
    """A suite file: its cases, against the chosen target."""

    def collect(self) -> Iterator[CaseItem]:
        preloaded = self.config.stash.get(PRELOADED_KEY, {})
        suite = preloaded.get(self.path.resolve()) or loader.load_suite(self.path)
        spec = loader.choose_target(suite, self.config.getoption("harness_target"))
        loader.import_project_code(suite.cases, suite.root)
        yield from self._items(suite, spec, suite.cases)


class CaseFile(_YamlFile):
    """A case file named directly: run against its suite's target, or replayed."""

    def collect(self) -> Iterator[CaseItem]:
        name = self.config.getoption("harness_target")
        root = loader.cases_root(self.path)
        if name in (None, REPLAY) and not self.config.getoption("harness_suite"):
            shown = loader.display_path(self.path.resolve(), root)
            case = loader.load_case(self.path, display=shown)
            spec = TargetSpec(name=REPLAY, kind="replay", main=True)
            suite = Suite(name=case.workflow, path=self.path, root=root, cases=(case,),
                          targets={REPLAY: spec}, digest=case.digest)
            loader.import_project_code(suite.cases, root)
            yield from self._items(suite, spec, suite.cases)
            return
        suite = self._find_suite(root)
        spec = loader.choose_target(suite, name)
        mine = tuple(case for case in suite.cases if (suite.root / case.path).resolve()
                     == self.path.resolve())
        loader.import_project_code(mine, suite.root)
        yield from self._items(suite, spec, mine)

    def _find_suite(self, root: Path) -> Suite:
        given = self.config.getoption("harness_suite")
        if given:
            return loader.load_suite(Path(given))
        for file in sorted((root / "suites").glob("*.y*ml")):
            suite = loader.load_suite(file)
            if any((suite.root / c.path).resolve() == self.path.resolve() for c in suite.cases):
                return suite
        problem = f"no suite in {root / 'suites'} includes this case; pass --harness-suite"
        raise InputError(problem, path=self.path)


class Recorder:
    """Writes the run record: a header once the items are collected, a line per case.

    With ``resume`` (an interrupted run's record) it appends to that record instead, and the
    cases it already holds are deselected: nothing is lost or counted twice.
    """

    def __init__(self, path: Path, *, header: RunHeader | None = None,
                 resume: RunRecord | None = None, lock: RunLock | None = None) -> None:
        self.path = path
        self.header = header
        self.resume = resume
        self.lock = lock
        self.writer: RunWriter | None = None

    def pytest_collection_modifyitems(self, config: pytest.Config,
                                      items: list[pytest.Item]) -> None:
        if self.resume is None:
            return
        done = {result.case_id for result in self.resume.results}
        finished = [i for i in items if isinstance(i, CaseItem) and i.case.id in done]
        if finished:
            config.hook.pytest_deselected(items=finished)
            items[:] = [i for i in items
                        if not (isinstance(i, CaseItem) and i.case.id in done)]

    def open(self, items: list[pytest.Item]) -> None:
        if self.resume is not None:
            self.writer = RunWriter.resume(self.resume, lock=self.lock)
            return
        header = self.header
        if header is None:
            cases = [item for item in items if isinstance(item, CaseItem)]
            suites = sorted({(item.suite_name, item.suite_digest) for item in cases})
            specs = {item.spec.name: item.spec for item in cases}
            if len(suites) > 1 or len(specs) > 1:
                raise pytest.UsageError(
                    "--harness-record writes one run of one suite against one target; "
                    f"found suites {[s for s, _ in suites]} and targets {sorted(specs)}"
                )
            suite, digest = suites[0] if suites else ("", "")
            spec = next(iter(specs.values()), None)
            folder = Path(cases[0].path).parent if cases else Path.cwd()
            header = RunHeader(
                run_id=new_run_id(), suite=suite, suite_digest=digest,
                target=spec.name if spec else "", target_kind=spec.kind if spec else "",
                target_digest=spec.digest if spec else "", started_at=utc_now(),
                git_commit=git_commit(folder),
                shard=items[0].config.getoption("harness_shard") if items else None,
                retired=(items[0].config.stash[RETIRED_KEY] or None) if items else None,
            )
        self.writer = RunWriter(self.path, header, lock=self.lock)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        # Opened only once collection succeeded: bad input leaves no half-written record.
        collect_only = session.config.option.collectonly
        if self.writer is None and not session.testsfailed and not collect_only:
            if self.header is None and self.resume is None and not session.items:
                return  # pytest-xdist's controller: opened with the first worker result
            self.open(session.items)

    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> None:
        if call.when == "call" and self.writer is not None and RESULT_KEY in item.stash:
            self.writer.add(item.stash[RESULT_KEY])
            del item.stash[RESULT_KEY]  # written: 10,000 results need not stay in memory

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Under pytest-xdist, results arrive with the workers' reports."""
        if report.when != "call":
            return
        sent = next((value for name, value in report.user_properties
                     if name == WORKER_RESULT), None)
        if sent is None:
            return
        if self.writer is None:
            self.writer = (RunWriter.resume(self.resume, lock=self.lock) if self.resume
                           else RunWriter(self.path, self.header or _header_from(sent),
                                          lock=self.lock))
        self.writer.add(result_from_dict(sent["result"]))

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.writer is not None:
            self.writer.close(interrupted=exitstatus == pytest.ExitCode.INTERRUPTED)


def _header_from(sent: dict[str, Any]) -> RunHeader:
    return RunHeader(run_id=new_run_id(), suite=sent["suite"], suite_digest=sent["suite_digest"],
                     target=sent["target"], target_kind=sent["target_kind"],
                     target_digest=sent["target_digest"], started_at=utc_now(),
                     retired=sent.get("retired"))


class JudgeSpending:
    """Collects, once the run is over, what each judge and embedder of the run was asked (in
    this process: under pytest-xdist, the workers ask)."""

    def __init__(self) -> None:
        self.summary: dict[str, dict[str, Any]] = {}

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        for service in config.stash.get(JUDGES_KEY, {}).values():
            if service is not None:
                self.summary.update(service.summary())


class Preloaded:
    """Hands suites the caller already loaded (and validated) to collection."""

    def __init__(self, *suites: Suite) -> None:
        self.suites = {suite.path.resolve(): suite for suite in suites}

    def pytest_configure(self, config: pytest.Config) -> None:
        config.stash[PRELOADED_KEY] = self.suites
