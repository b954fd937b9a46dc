"""A run of suites against targets, without pytest.

A :class:`Session` owns what a run does between collecting a case and reporting it: binding
each target once (rate limit, concurrency cap, retries), choosing the cases this run calls
(retired, shard, already recorded by the run it resumes), calling targets ahead of the report
order on a thread pool, the call -> evaluate -> judge -> redact pipeline, the run header and
the record. pytest's plugin drives it the same way whether the run was started by
``harness run``, ``harness validate`` or a plain ``pytest suites/x.yaml``, so the record is the
same whichever way the run began.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import judges, judging, runner, targets
from harness.errors import InputError
from harness.loader import display_path
from harness.model import Case, CaseResult, Suite, TargetSpec
from harness.records import (
    RunHeader,
    RunLock,
    RunRecord,
    RunWriter,
    git_commit,
    new_run_id,
    utc_now,
)
from harness.redact import Redactor, run_redactor
from harness.run.pool import CallPool


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How a run calls and keeps: ``concurrency`` calls at once, shard ``K/N`` only,
    ``redact`` what it keeps and shows, ``no_cache`` to ask judges afresh."""

    concurrency: int = 1
    shard: str | None = None
    redact: bool = True
    no_cache: bool = False

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise InputError(f"expected at least 1, found {self.concurrency}",
                             field="--concurrency")
        if self.shard is not None:
            parse_shard(self.shard)


def parse_shard(text: str) -> tuple[int, int]:
    """``K/N`` -> (K, N) with 1 <= K <= N; anything else is bad input."""
    found = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if not found or not 1 <= int(found.group(1)) <= int(found.group(2)):
        raise InputError(f"expects K/N with 1 <= K <= N, found {text!r}", field="--shard")
    return int(found.group(1)), int(found.group(2))


def shard_of(case_id: str, shards: int) -> int:
    """The shard (1-based) a case belongs to: stable across machines and Python versions."""
    digest = hashlib.sha256(case_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shards + 1


def run_header(suite: Suite, spec: TargetSpec, *, shard: str | None = None,
               run_id: str | None = None) -> RunHeader:
    """The first line of a run of ``suite`` against ``spec``: the one place it is built, so a
    record's provenance does not depend on how the run began. The suite's path is relative to
    its project folder (the one that holds ``suites/``), wherever the run was started from."""
    retired = {case.id: case.retired for case in suite.cases if case.retired is not None}
    return RunHeader(
        run_id=run_id or new_run_id(), suite=suite.name, suite_digest=suite.digest,
        suite_path=display_path(suite.path.resolve(), suite.root.resolve()),
        target=spec.name, target_kind=spec.kind, target_digest=spec.digest,
        started_at=utc_now(), git_commit=git_commit(suite.root),
        shard=shard, retired=retired or None,
    )


@dataclass(frozen=True, slots=True)
class Part:
    """A suite against one target, as a session runs it."""

    suite: Suite
    spec: TargetSpec
    binding: runner.Binding
    judges: judges.Judges | None


class Session:
    """One run: its options, the suites and targets in it, its thread pool and its record.

    ``record`` is where the run is written (a new record, or ``resume``'s: the cases that
    record holds are not run again); ``header`` is given when the caller chose the run's id
    before the session began, else it is built from the one suite and target the run holds
    once collection is over. ``workers`` is how many processes share the judges' budget.
    """

    def __init__(self, options: RunOptions | None = None, *, record: Path | None = None,
                 header: RunHeader | None = None, resume: RunRecord | None = None,
                 lock: RunLock | None = None, workers: int = 1) -> None:
        self.options = options or RunOptions()
        self.record = resume.path if resume is not None else record
        self.header = header
        self.resume = resume
        self.lock = lock
        self.workers = workers
        self.writer: RunWriter | None = None
        self.done = frozenset(r.case_id for r in resume.results) if resume else frozenset()
        self._shard = parse_shard(self.options.shard) if self.options.shard else None
        self._parts: dict[tuple[str, str, str], Part] = {}
        self._judges: dict[tuple[str, str], judges.Judges | None] = {}
        self._case_part: dict[tuple[str, str], Part] = {}
        self._cases: dict[tuple[str, str], Case] = {}
        self._redactor: Redactor | None = None
        self._pool: CallPool[runner.Call] | None = None
        self._calls: dict[tuple[str, str], list[Future[runner.Call]]] = {}
        self._sent_header: dict[str, Any] | None = None

    # --- what the run holds -----------------------------------------------------------------

    def add(self, suite: Suite, spec: TargetSpec, cases: Iterable[Case]) -> list[Case]:
        """Take ``cases`` of ``suite`` into the run against ``spec`` (the target is built
        once per suite and target); returns those not retired. Every case of the suite counts
        for redaction, whether it runs or not."""
        key = (str(suite.path.resolve()), suite.digest, spec.digest + spec.name)
        part = self._parts.get(key)
        if part is None:
            binding = runner.Binding.of(spec, targets.build(spec, suite.root))
            part = self._parts[key] = Part(suite, spec, binding, self._judges_of(suite))
            self._cases.update({(str(case.path), case.id): case for case in suite.cases})
            self._redactor = None
        kept = [case for case in cases if case.retired is None]
        self._case_part.update({(str(case.path), case.id): part for case in kept})
        return kept

    def _judges_of(self, suite: Suite) -> judges.Judges | None:
        """The suite's judges for this run: one service per suite, whatever its target."""
        key = (str(suite.path.resolve()), suite.digest)
        if key not in self._judges:
            self._judges[key] = judges.for_suite(
                suite, no_cache=self.options.no_cache, redactor=self.outgoing_redactor,
                share=self.workers)
        return self._judges[key]

    def wanted(self, case: Case) -> bool:
        """Whether this run calls ``case``: in its shard, and not already in the record it
        resumes."""
        if case.id in self.done:
            return False
        if self._shard is None:
            return True
        number, total = self._shard
        return shard_of(case.id, total) == number

    def part(self, case: Case) -> Part:
        return self._case_part[(str(case.path), case.id)]

    # --- redaction --------------------------------------------------------------------------

    def outgoing_redactor(self) -> Redactor:
        """Every detector and every canary of every case in the run. What is sent to a judge
        is redacted by it even when the run keeps plaintext."""
        if self._redactor is None:
            self._redactor = run_redactor(self._cases.values())
        return self._redactor

    def redactor(self) -> Redactor | None:
        """The redactor of what the run keeps and shows; None when it keeps plaintext."""
        return self.outgoing_redactor() if self.options.redact else None

    def shown(self, text: str) -> str:
        """``text`` as the run may show it (a target's captured output, say)."""
        redactor = self.redactor()
        return text if redactor is None else redactor.text(text)

    # --- calling and judging ----------------------------------------------------------------

    def start(self, cases: Iterable[Case]) -> None:
        """Call the targets of ``cases`` ahead of the order they are reported in, several at
        once (``concurrency``); each result then waits for its own calls. A call that must
        wait before its next attempt (a retry, a Retry-After) lets another call go meanwhile."""
        if self.options.concurrency <= 1:
            return
        if self._pool is None:
            self._pool = CallPool(self.options.concurrency)
        for case in cases:
            binding = self.part(case).binding
            self._calls[(str(case.path), case.id)] = [
                self._pool.submit(binding.steps(case)) for _ in range(case.trials)]

    def result(self, case: Case) -> CaseResult:
        """Run ``case`` (or collect its calls started ahead), judge it, redact what is kept
        and write it to the record; never raises for a failing target or check."""
        part = self.part(case)
        futures = self._calls.pop((str(case.path), case.id), None)
        if futures is None:
            calls = [part.binding.call(case) for _ in range(case.trials)]
        else:
            calls = [future.result() for future in futures]
        with judging.using(part.judges):
            trials = tuple(runner.evaluate(case, call, index)
                           for index, call in enumerate(calls, start=1))
        result = runner.judge(case, trials, settle_trials=part.suite.gate.get("settle_trials"))
        redactor = self.redactor()
        if redactor is not None:
            # Verdicts are reached on the raw response; what is kept or shown is redacted, of
            # every canary of the run, not only this case's.
            result = redactor.result(result)
        self.keep(result)
        return result

    # --- the record -------------------------------------------------------------------------

    def the_header(self) -> RunHeader:
        """The run's header: the one given, else built from the one suite and target run."""
        if self.header is not None:
            return self.header
        parts = {(p.suite.name, p.suite.digest, p.spec.name) for p in self._parts.values()}
        if len(parts) != 1:
            suites = sorted({name for name, _, _ in parts})
            specs = sorted({spec for _, _, spec in parts})
            raise InputError("writes one run of one suite against one target; found suites "
                             f"{suites} and targets {specs}", field="record")
        part = next(iter(self._parts.values()))
        self.header = run_header(part.suite, part.spec, shard=self.options.shard)
        return self.header

    def header_for_workers(self) -> dict[str, Any] | None:
        """The header as plain data, for a worker process to send its controller; None when
        this process's part of the run is not one suite against one target."""
        if self._sent_header is None:
            try:
                self._sent_header = dataclasses.asdict(self.the_header())
            except InputError:
                return None
        return self._sent_header

    def open(self, header: RunHeader | None = None) -> None:
        """Start writing the record (once collection succeeded: bad input leaves none).
        ``header`` is one built elsewhere (by a worker process) when the run has none."""
        if self.record is None or self.writer is not None:
            return
        if self.resume is not None:
            self.writer = RunWriter.resume(self.resume, lock=self.lock)
            return
        if self.header is None and header is not None:
            self.header = dataclasses.replace(header, run_id=new_run_id(), started_at=utc_now())
        self.writer = RunWriter(self.record, self.the_header(), lock=self.lock)

    def keep(self, result: CaseResult) -> None:
        """Write ``result`` to the record, when the run has one open."""
        if self.writer is not None:
            self.writer.add(result)

    def close(self, *, interrupted: bool = False) -> None:
        """Stop calling (calls not begun and calls waiting to retry are dropped) and finish
        the record."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        if self.writer is not None:
            self.writer.close(interrupted=interrupted)

    def spending(self) -> dict[str, dict[str, Any]]:
        """What each judge and embedder of the run was asked, in this process."""
        summary: dict[str, dict[str, Any]] = {}
        for service in self._judges.values():
            if service is not None:
                summary.update(service.summary())
        return summary
