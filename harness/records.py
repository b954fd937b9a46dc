"""Run records: JSON Lines, append-only, one line per finished case.

A record is a ``header`` line (format version first), then one ``case`` line per case as it
finishes (flushed and synced, so an interrupted run keeps every finished case), then an ``end``
line. :func:`read_run` reads what :class:`RunWriter` writes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import json
import os
import platform
import re
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import IO, Any

from harness import __version__
from harness.errors import InputError, TargetError
from harness.git import head_commit
from harness.model import CaseResult, CheckOutcome, Exchange, TargetResponse, Trial

FORMAT_VERSION = 3
VERSIONS = (1, 2, 3)
"""Run record versions this harness reads: version 2 adds each case's ``strictness``, version 3
its ``business_owner`` and, for a multi-turn case, each trial's ``turns`` (the user's message,
the response or the error of every turn that ran) and each per-turn check's ``turn`` (and what
the changelog lists for it)."""


@dataclass(frozen=True, slots=True)
class RunHeader:
    """Who ran what, against what, when: the first line of a run record."""

    run_id: str
    suite: str
    suite_digest: str
    target: str
    target_kind: str
    target_digest: str
    started_at: str
    harness_version: str = __version__
    git_commit: str | None = None
    suite_path: str | None = None
    python: str = field(default_factory=platform.python_version)
    shard: str | None = None
    merged_from: list[str] | None = None
    retired: dict[str, str] | None = None
    """The suite's retired cases (not run): id -> why. The gate names them as retired rather
    than missing."""


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A run as read back: its header, its case results in order, and its end line if any."""

    path: Path
    header: RunHeader
    results: tuple[CaseResult, ...]
    end: Mapping[str, Any] | None = None

    @property
    def complete(self) -> bool:
        """False when the run was interrupted: no end line after its last case, or an end
        line that says it was interrupted."""
        return self.end is not None and not self.end.get("interrupted", False)

    def by_id(self) -> dict[str, CaseResult]:
        return {result.case_id: result for result in self.results}


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus random suffix."""
    now = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{now}-{uuid.uuid4().hex[:8]}"


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def git_commit(folder: Path) -> str | None:
    """The commit checked out in ``folder``, or None outside a git work tree."""
    return head_commit(folder)


# --- writing --------------------------------------------------------------------------------


_LINE = json.JSONEncoder(ensure_ascii=False, default=str)
"""How a record line is written (one encoder for every line of every record)."""


def plain_json(value: Any) -> Any:
    """``value`` as the record stores it: only dicts, lists, strings, numbers, booleans and
    None (YAML nodes, tuples and other objects as a record line would hold them)."""
    return json.loads(_LINE.encode(value))


def _line(kind: str, body: Mapping[str, Any]) -> str:
    return _LINE.encode({"version": FORMAT_VERSION, "type": kind, **body}) + "\n"


def result_to_dict(result: CaseResult) -> dict[str, Any]:
    """The JSON form of a case result, as stored on its record line."""
    body = {name: getattr(result, name) for name in _RESULT_FIELDS}
    body["trials"] = [_trial_to_dict(trial) for trial in result.trials]
    return body


_RESULT_FIELDS = tuple(f.name for f in fields(CaseResult) if f.name != "trials")
_CHECK_FIELDS = tuple(f.name for f in fields(CheckOutcome))


def _check_to_dict(check: CheckOutcome) -> dict[str, Any]:
    """A check outcome's JSON form; ``turn`` only for a per-turn check, so a single-turn
    case's line reads as it did before version 3."""
    return {name: getattr(check, name) for name in _CHECK_FIELDS
            if name != "turn" or check.turn is not None}


def _trial_to_dict(trial: Trial) -> dict[str, Any]:
    body = {
        "index": trial.index,
        "verdict": trial.verdict,
        "duration_s": round(trial.duration_s, 6),
        "attempts": trial.attempts,
        "error": trial.error,
        "response": trial.response.to_dict() if trial.response else None,
        "checks": [_check_to_dict(check) for check in trial.checks],
    }
    if trial.turns:
        body["turns"] = [
            {"user": turn.user, "response": turn.response.to_dict() if turn.response else None,
             "error": turn.error, "duration_s": round(turn.duration_s, 6)}
            for turn in trial.turns]
    return body


SYNC_INTERVAL_S = 0.05
"""Longest time a finished case's line waits to be synced to disk."""


class _Syncer(threading.Thread):
    """Syncs a record's file to disk every :data:`SYNC_INTERVAL_S` while lines were written
    since the last sync, off the thread that writes them (a disk round trip each). A failed
    sync is kept and raised by the writer's next write or its close."""

    def __init__(self, file: IO[str]) -> None:
        super().__init__(name="harness-record-sync", daemon=True)
        self._fd = file.fileno()
        self._stopping = threading.Event()
        self.dirty = False
        self.failure: OSError | None = None

    def run(self) -> None:
        while not self._stopping.wait(SYNC_INTERVAL_S):
            if self.dirty:
                self.dirty = False
                try:
                    os.fsync(self._fd)
                except OSError as exc:
                    self.failure = exc
                    return

    def stop(self) -> None:
        self._stopping.set()
        self.join()


class RunLock:
    """The one claim on writing a run record: an exclusive lock on ``<record>.lock`` beside
    it, which holds who has it (pid, host, since when). A second writer, or a second resume
    of the same record, is refused naming the holder, so two processes never append to one
    record. The lock goes with the process that holds it, even when it is killed.
    """

    def __init__(self, record: Path) -> None:
        self.record = record
        self.path = record.with_name(record.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock, or raise InputError naming its holder."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.read(fd, 200).decode("utf-8", "replace").strip() or "unknown"
                os.close(fd)
                problem = (f"another process is writing this run record ({holder}); wait for "
                           f"it to finish, then resume or start a new run")
                raise InputError(problem, path=self.record) from None
            try:  # the file may have been released and removed between open and lock
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        held = f"pid {os.getpid()} on {platform.node() or 'this host'} since {utc_now()}"
        os.ftruncate(fd, 0)
        os.write(fd, held.encode("utf-8"))
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


class RunWriter:
    """Writes one run record: the header at once, then a line per case, then the end line.

    Every line is flushed as it is written, so it survives the process being killed; a thread
    syncs them to disk (fsync) every :data:`SYNC_INTERVAL_S` while there are new ones, and the
    header and the end line are synced as they are written, so a machine that dies loses at
    most that much of finished work (which ``harness run --resume`` runs again). Syncing every
    line on the writing thread would cost a disk round trip per case. The file is created
    exclusively: an existing record is never overwritten. To resume an interrupted run,
    :meth:`resume` appends to its record instead. The writer holds the record's
    :class:`RunLock` (``lock``, when the caller took it already, else its own).
    """

    def __init__(self, path: Path, header: RunHeader, *, lock: RunLock | None = None,
                 _resumed: RunRecord | None = None) -> None:
        self.path = path
        self.header = header
        self.counts = {"pass": 0, "fail": 0, "error": 0}
        self._syncer: _Syncer | None = None
        self._own_lock = RunLock(path).acquire() if lock is None else None
        if _resumed is not None:
            for result in _resumed.results:
                self.counts[result.verdict] += 1
            self._file: IO[str] = path.open("a", encoding="utf-8")
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._file = path.open("x", encoding="utf-8")
        except FileExistsError:
            self._release()
            raise InputError("run record already exists; choose another --out",
                             path=path) from None
        self._write(_line("header", asdict(header)))

    @classmethod
    def resume(cls, record: RunRecord, *, lock: RunLock | None = None) -> RunWriter:
        """Append to an interrupted run's record. A last line cut short by the interruption
        is dropped first (its case had not finished, so it runs again)."""
        own = RunLock(record.path).acquire() if lock is None else lock
        with record.path.open("rb+") as file:
            data = file.read()
            if data and not data.endswith(b"\n"):
                file.truncate(data.rfind(b"\n") + 1)
        writer = cls(record.path, record.header, lock=own, _resumed=record)
        writer._own_lock = own if lock is None else None
        return writer

    def _release(self) -> None:
        if self._own_lock is not None:
            self._own_lock.release()
            self._own_lock = None

    def _write(self, text: str, *, sync: bool = True) -> None:
        syncer = self._syncer
        if syncer is not None and syncer.failure is not None:
            raise syncer.failure
        self._file.write(text)
        self._file.flush()
        if sync:
            os.fsync(self._file.fileno())
        elif syncer is None:
            self._syncer = syncer = _Syncer(self._file)
            syncer.dirty = True
            syncer.start()
        else:
            syncer.dirty = True

    def _stop_syncing(self) -> None:
        if self._syncer is not None:
            self._syncer.stop()
            failure, self._syncer = self._syncer.failure, None
            if failure is not None:
                raise failure

    def add(self, result: CaseResult) -> None:
        """Append one finished case."""
        self.counts[result.verdict] += 1
        self._write(_line("case", result_to_dict(result)), sync=False)

    def abandon(self) -> None:
        """Close without an end line: the record reads as an interrupted run."""
        try:
            with contextlib.suppress(OSError):  # already failing: the sync below tells
                self._stop_syncing()
            os.fsync(self._file.fileno())
        finally:
            self._file.close()
            self._release()

    def close(self, *, interrupted: bool = False) -> None:
        """Write the end line (with the counts) and close the file. When a line could not
        be synced to disk, the error is raised and no end line is written: the record then
        reads as an interrupted run."""
        if self._file.closed:
            return
        try:
            self._stop_syncing()
            body = {"finished_at": utc_now(), "counts": self.counts, "interrupted": interrupted}
            self._write(_line("end", body))
        finally:
            self._file.close()
            self._release()


# --- reading --------------------------------------------------------------------------------


def _check_from_dict(data: Mapping[str, Any]) -> CheckOutcome:
    return CheckOutcome(**data)


def _response_from_dict(data: Mapping[str, Any] | None) -> TargetResponse | None:
    return TargetResponse.from_dict(data) if data is not None else None


def _exchange_from_dict(data: Mapping[str, Any]) -> Exchange:
    if not isinstance(data.get("user"), str):
        raise ValueError("a turn's user must be a string")
    return Exchange(user=data["user"], response=_response_from_dict(data.get("response")),
                    error=data.get("error"), duration_s=data.get("duration_s", 0.0))


def _trial_from_dict(data: Mapping[str, Any]) -> Trial:
    """A trial as :func:`_trial_to_dict` wrote it; records before version 3 have no turns."""
    return Trial(
        index=data["index"],
        verdict=data["verdict"],
        checks=tuple(_check_from_dict(c) for c in data.get("checks", ())),
        response=_response_from_dict(data.get("response")),
        error=data.get("error"),
        duration_s=data.get("duration_s", 0.0),
        attempts=data.get("attempts", 1),
        turns=tuple(_exchange_from_dict(t) for t in data.get("turns", ())),
    )


VERDICTS = ("pass", "fail", "error")


_STRICTNESS = ("checks", "trials", "min_pass_rate", "input", "settle_trials")


def _check_strictness(value: Any) -> None:
    """A recorded strictness is what :func:`harness.runner.strictness` writes, or absent."""
    if value is None:
        return
    if not isinstance(value, Mapping) or sorted(value) != sorted(_STRICTNESS):
        raise ValueError(f"strictness must be an object with {', '.join(_STRICTNESS)}")
    checks = value["checks"]
    if not isinstance(checks, list) or not all(
            isinstance(c, Mapping) and isinstance(c.get("kind"), str)
            and isinstance(c.get("params"), str) for c in checks):
        raise ValueError("strictness.checks must be a list of {kind, params, line}")
    numbers = [value["trials"], value["min_pass_rate"]]
    if value["settle_trials"] is not None:
        numbers.append(value["settle_trials"])
    if any(isinstance(n, bool) or not isinstance(n, int | float) for n in numbers) or \
            not isinstance(value["input"], str):
        raise ValueError("strictness: trials, min_pass_rate and settle_trials must be numbers, "
                         "input a digest")


def result_from_dict(data: Mapping[str, Any]) -> CaseResult:
    """Read back what :func:`result_to_dict` wrote; a verdict other than pass, fail or error
    (here or in a trial) is refused, so a hand-edited record cannot pass for a passing run."""
    verdicts = [data.get("verdict"), *(t.get("verdict") for t in data.get("trials", ())
                                       if isinstance(t, Mapping))]
    if any(verdict not in VERDICTS for verdict in verdicts):
        raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}")
    if not isinstance(data.get("incident", False), bool):
        raise ValueError("incident must be true or false")
    _check_strictness(data.get("strictness"))
    body = {k: v for k, v in data.items() if k not in ("version", "type", "trials")}
    return CaseResult(trials=tuple(_trial_from_dict(t) for t in data["trials"]), **body)


def read_run(path: Path) -> RunRecord:
    """Read a run record; a malformed file raises :class:`InputError` naming path and line."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise InputError("run record not found", path=path) from None
    except OSError as exc:
        raise InputError(f"cannot read run record: {exc.strerror}", path=path) from None
    header: RunHeader | None = None
    results: list[CaseResult] = []
    seen: dict[str, int] = {}
    end: Mapping[str, Any] | None = None
    with handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            if not raw.endswith(b"\n"):
                break  # a line cut short by an interrupted write: everything before it stands
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(f"not UTF-8 text (byte {exc.start} of the line)", path=path,
                                 line=number) from None
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InputError(f"not a JSON line: {exc.msg}", path=path, line=number) from None
            except RecursionError:
                raise InputError("JSON nested too deeply", path=path, line=number) from None
            if not isinstance(data, dict):
                raise InputError("expected a JSON object", path=path, line=number)
            if type(data.get("version")) is not int or data["version"] not in VERSIONS:
                raise InputError(
                    f"unsupported run record version {data.get('version')!r}; "
                    f"this harness reads versions {', '.join(map(str, VERSIONS))}",
                    path=path, line=number, field="version",
                )
            kind = data.get("type")
            try:
                if kind == "header" and header is None:
                    body = {k: v for k, v in data.items() if k not in ("version", "type")}
                    header = RunHeader(**body)
                elif kind == "case" and header is not None:
                    result = result_from_dict(data)
                    if result.case_id in seen:
                        raise InputError(f"case {result.case_id!r} is recorded twice (first "
                                         f"at line {seen[result.case_id]})", path=path,
                                         line=number, field="case_id")
                    seen[result.case_id] = number
                    results.append(result)
                    end = None  # an end line counts only when nothing follows it
                elif kind == "end" and header is not None:
                    end = data
                else:
                    expected = "a header line" if header is None else "a case or end line"
                    raise InputError(f"expected {expected}, found type {kind!r}",
                                     path=path, line=number, field="type")
            except (TypeError, LookupError, ValueError, AttributeError, TargetError) as exc:
                if isinstance(exc, InputError):
                    raise
                raise InputError(f"malformed {kind} line: {exc}", path=path,
                                 line=number) from None
    if header is None:
        raise InputError("empty run record: no header line", path=path, line=1)
    return RunRecord(path=path, header=header, results=tuple(results), end=end)


def _shards(records: Sequence[RunRecord]) -> tuple[int | None, list[int]]:
    """(N, the shard numbers 1..N missing) of shard records ``K/N``; (None, []) when none of
    the records is a shard. Mixed, malformed, differing N or a shard given twice are refused."""
    given = [record.header.shard for record in records]
    if not any(given):
        return None, []
    seen: dict[int, Path] = {}
    total: int | None = None
    for record, shard in zip(records, given, strict=True):
        found = re.fullmatch(r"(\d+)/(\d+)", shard or "")
        if found is None:
            problem = (f"expected a shard 'K/N' like the other records, found {shard!r}: only "
                       "the shards of one run can be merged")
            raise InputError(problem, path=record.path, field="shard")
        number, count = int(found.group(1)), int(found.group(2))
        if total is not None and count != total:
            problem = f"shard {shard} is of {count} shards, the others of {total}"
            raise InputError(problem, path=record.path, field="shard")
        total = count
        if number in seen:
            problem = f"shard {shard} is given twice (also {seen[number]})"
            raise InputError(problem, path=record.path, field="shard")
        seen[number] = record.path
    assert total is not None
    return total, [k for k in range(1, total + 1) if k not in seen]


def merge_runs(records: Sequence[RunRecord], out: Path) -> RunRecord:
    """Combine the run records of a suite's shards into one run record at ``out``.

    The shards must be runs of the same suite (same digest) against the same target (same
    digest), and no case may appear twice. The merged run is complete only when every shard
    ``1/N`` to ``N/N`` is there, once, and finished: otherwise it gets no end line, so a gate
    reading it blocks (:func:`missing_shards` says which are missing).
    """
    if not records:
        raise InputError("no run records to merge", path=out)
    first = records[0].header
    for record in records[1:]:
        for name in ("suite", "suite_digest", "target", "target_digest"):
            if getattr(record.header, name) != getattr(first, name):
                problem = (f"{name} differs from {records[0].path}'s "
                           f"({getattr(record.header, name)!r} != {getattr(first, name)!r}): "
                           "only shards of one run can be merged")
                raise InputError(problem, path=record.path, field=name)
    _, missing = _shards(records)
    owner: dict[str, Path] = {}
    for record in records:
        for result in record.results:
            if result.case_id in owner:
                problem = f"case {result.case_id!r} is also in {owner[result.case_id]}"
                raise InputError(problem, path=record.path, field="case_id")
            owner[result.case_id] = record.path
    header = dataclasses.replace(
        first, run_id=new_run_id(), started_at=min(r.header.started_at for r in records),
        shard=None, merged_from=[r.header.run_id for r in records],
    )
    writer = RunWriter(out, header)
    for record in records:
        for result in record.results:
            writer.add(result)
    if all(record.complete for record in records) and not missing:
        writer.close()
    else:
        writer.abandon()
    return read_run(out)


def missing_shards(records: Sequence[RunRecord]) -> list[str]:
    """The shards ``K/N`` that a set of shard records lacks (empty when none is a shard)."""
    total, missing = _shards(records)
    return [f"{k}/{total}" for k in missing]
