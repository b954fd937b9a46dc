"""The pytest plugin: suite and case files become test items; results become run records.

YAML files are collected when ``--harness-target`` is given or when the file (or a folder above
it) is named on the command line, so a plain ``pytest`` in a project never starts running
its suites by surprise. A file in a ``suites`` folder is a suite; a file below a ``cases``
folder is a case.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from harness import loader, memory
from harness.errors import HarnessError, InputError
from harness.explain import explain
from harness.model import CATEGORIES, SEVERITIES, Case, CaseResult, Suite, TargetSpec
from harness.records import RunHeader, plain_json, result_from_dict, result_to_dict
from harness.run.session import RunOptions, Session

WORKER_RESULT = "harness_result"
SESSION_KEY = pytest.StashKey[Session]()
MARKERS_KEY = pytest.StashKey[set[str]]()
PRELOADED_KEY = pytest.StashKey[dict[Path, Suite]]()
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
    memory.give_back()  # a run before this one, in this process, may be garbage by now
    worker = getattr(config, "workerinput", None)  # under pytest-xdist, the controller records
    run = config.stash.get(SESSION_KEY, None)  # given by harness run and harness validate
    if run is None:
        run = config.stash[SESSION_KEY] = _session(config, worker)
    if run.record is not None and worker is None:
        config.pluginmanager.register(WorkerResults(run), "harness-worker-results")


def _session(config: pytest.Config, worker: dict[str, Any] | None) -> Session:
    """The session of a run begun by a plain ``pytest``, from its options."""
    try:
        options = RunOptions(concurrency=config.getoption("harness_concurrency", 1),
                             shard=config.getoption("harness_shard", None),
                             redact=not config.getoption("harness_no_redact", False),
                             no_cache=config.getoption("harness_no_cache", False))
    except InputError as exc:
        flag = "--harness-" + (exc.field or "").lstrip("-")
        raise pytest.UsageError(f"{flag} {exc.problem}") from None
    path = config.getoption("harness_record", None)
    return Session(options, record=Path(path) if path and worker is None else None,
                   workers=worker.get("workercount", 1) if worker else 1)


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


def session_of(config: pytest.Config) -> Session:
    return config.stash[SESSION_KEY]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Cases of another shard, and cases the resumed record already holds, are deselected."""
    run = session_of(config)
    drop = [item for item in items if isinstance(item, CaseItem) and not run.wanted(item.case)]
    if drop:
        config.hook.pytest_deselected(items=drop)
        dropped = set(map(id, drop))
        items[:] = [item for item in items if id(item) not in dropped]


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    """Once collection succeeded (bad input leaves no half-written record), the record opens
    and the targets of the items to run are called ahead, several at once."""
    config = session.config
    if session.testsfailed or config.option.collectonly:
        return
    run = session_of(config)
    if any(isinstance(item, CaseItem) for item in session.items):
        memory.set_aside()  # what was collected lives until the run ends
    if session.items or run.header is not None or run.resume is not None:
        try:
            run.open()  # pytest-xdist's controller collects nothing: opened by its workers
        except InputError as exc:
            raise pytest.UsageError(f"--harness-record {exc.problem}") from None
    if not hasattr(config, "workerinput"):
        # A pytest-xdist worker learns its items one by one: it calls them as they come.
        run.start(item.case for item in session.items
                  if isinstance(item, CaseItem) and _surely_runs(item))


def _surely_runs(item: pytest.Item) -> bool:
    """Whether nothing marks the item to be skipped: ``skip``, ``skipif`` (its condition is
    weighed only when the item is set up) or ``xfail(run=False)``. Only such items are called
    ahead; the others are called when, and if, they run."""
    for mark in item.iter_markers():
        if mark.name in ("skip", "skipif") or (
                mark.name == "xfail" and not mark.kwargs.get("run", True)):
            return False
    return True


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session_of(session.config).close(interrupted=exitstatus == pytest.ExitCode.INTERRUPTED)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """What a case's target printed (captured stdout, stderr and log) is redacted like its
    result before pytest shows it or writes it to JUnit XML."""
    outcome = yield
    report = outcome.get_result()
    if isinstance(item, CaseItem) and report.sections:
        run = session_of(item.config)
        report.sections = [(title, run.shown(content)) for title, content in report.sections]


class WorkerResults:
    """Under pytest-xdist, results travel with the workers' reports: the controller keeps
    them in the run's record, with the header the first worker built."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        sent = next((value for name, value in report.user_properties
                     if name == WORKER_RESULT), None)
        if not isinstance(sent, dict):
            return
        header = sent.get("header")
        try:
            self.session.open(RunHeader(**header) if header else None)
        except InputError as exc:
            raise pytest.UsageError(f"--harness-record {exc.problem}") from None
        self.session.keep(result_from_dict(sent["result"]))


class CaseFailed(Exception):
    """Raised by a case item whose verdict is not ``pass``; carries the result."""

    def __init__(self, result: CaseResult) -> None:
        self.result = result
        super().__init__(result.case_id)


def _marker_name(text: str) -> str:
    return re.sub(r"\W", "_", text)


class CaseItem(pytest.Item):
    """One case against one target: pytest reports it under the case's id."""

    def __init__(self, *, case: Case, spec: TargetSpec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.spec = spec
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
        run = session_of(self.config)
        result = run.result(self.case)
        if hasattr(self.config, "workerinput"):  # a pytest-xdist worker: the result travels
            self.user_properties.append((WORKER_RESULT, plain_json({  # to the controller
                "result": result_to_dict(result), "header": run.header_for_workers(),
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
        return super().repr_failure(excinfo)  # a collector's takes no style

    def _items(self, suite: Suite, spec: TargetSpec, cases: tuple[Case, ...]) -> list[CaseItem]:
        # Binding builds the target, and the project's code it imports runs with the
        # collector as it found it; the items, thousands living until the run ends, are
        # made with it at rest (the suite was loaded so).
        kept = session_of(self.config).add(suite, spec, cases)
        with memory.building():
            return [CaseItem.from_parent(self, name=case.id, case=case, spec=spec)
                    for case in kept]


class SuiteFile(_YamlFile):
    """A suite file: its cases, against the chosen target."""

    def collect(self) -> list[CaseItem]:
        preloaded = self.config.stash.get(PRELOADED_KEY, {})
        suite = preloaded.get(self.path.resolve()) or loader.load_suite(self.path)
        spec = loader.choose_target(suite, self.config.getoption("harness_target"))
        loader.import_project_code(suite.cases, suite.root)
        return self._items(suite, spec, suite.cases)


class CaseFile(_YamlFile):
    """A case file named directly: run against its suite's target, or replayed."""

    def collect(self) -> list[CaseItem]:
        name = self.config.getoption("harness_target")
        root = loader.cases_root(self.path)
        if name in (None, REPLAY) and not self.config.getoption("harness_suite"):
            shown = loader.display_path(self.path.resolve(), root)
            case = loader.load_case(self.path, display=shown)
            spec = TargetSpec(name=REPLAY, kind="replay", main=True)
            suite = Suite(name=case.workflow, path=self.path, root=root, cases=(case,),
                          targets={REPLAY: spec}, digest=case.digest)
            loader.import_project_code(suite.cases, root)
            return self._items(suite, spec, suite.cases)
        suite = self._find_suite(root)
        spec = loader.choose_target(suite, name)
        mine = tuple(case for case in suite.cases if (suite.root / case.path).resolve()
                     == self.path.resolve())
        loader.import_project_code(mine, suite.root)
        return self._items(suite, spec, mine)

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


class Given:
    """Hands a run begun by the command line to pytest: its session (options, header and
    record chosen before pytest started) and the suite it already loaded and validated."""

    def __init__(self, session: Session, *suites: Suite) -> None:
        self.session = session
        self.suites = {suite.path.resolve(): suite for suite in suites}

    @pytest.hookimpl(tryfirst=True)
    def pytest_configure(self, config: pytest.Config) -> None:
        config.stash[SESSION_KEY] = self.session
        config.stash[PRELOADED_KEY] = self.suites
