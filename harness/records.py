"""Run records: JSON Lines, append-only, one line per finished case.

A record is a ``header`` line (format version first), then one ``case`` line per case as it
finishes (flushed and synced, so an interrupted run keeps every finished case), then an ``end``
line. :func:`read_run` reads what :class:`RunWriter` writes.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from harness import __version__
from harness.errors import InputError
from harness.model import CaseResult, CheckOutcome, TargetResponse, Trial

FORMAT_VERSION = 1


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


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A run as read back: its header, its case results in order, and its end line if any."""

    path: Path
    header: RunHeader
    results: tuple[CaseResult, ...]
    end: Mapping[str, Any] | None = None

    @property
    def complete(self) -> bool:
        """False when the run was interrupted before its end line was written."""
        return self.end is not None

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
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True,
            timeout=5, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else None


# --- writing --------------------------------------------------------------------------------


def _line(kind: str, body: Mapping[str, Any]) -> str:
    return json.dumps({"version": FORMAT_VERSION, "type": kind, **body}, ensure_ascii=False,
                      default=str) + "\n"


def result_to_dict(result: CaseResult) -> dict[str, Any]:
    """The JSON form of a case result, as stored on its record line."""
    body = asdict(result)
    body["trials"] = [_trial_to_dict(trial) for trial in result.trials]
    return body


def _trial_to_dict(trial: Trial) -> dict[str, Any]:
    return {
        "index": trial.index,
        "verdict": trial.verdict,
        "duration_s": round(trial.duration_s, 6),
        "attempts": trial.attempts,
        "error": trial.error,
        "response": trial.response.to_dict() if trial.response else None,
        "checks": [asdict(check) for check in trial.checks],
    }


class RunWriter:
    """Writes one run record: the header at once, then a line per case, then the end line.

    The file is created exclusively: an existing record is never overwritten.
    """

    def __init__(self, path: Path, header: RunHeader) -> None:
        self.path = path
        self.header = header
        self.counts = {"pass": 0, "fail": 0, "error": 0}
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._file: IO[str] = path.open("x", encoding="utf-8")
        except FileExistsError:
            raise InputError("run record already exists; choose another --out",
                             path=path) from None
        self._write(_line("header", asdict(header)))

    def _write(self, text: str) -> None:
        self._file.write(text)
        self._file.flush()
        os.fsync(self._file.fileno())

    def add(self, result: CaseResult) -> None:
        """Append one finished case."""
        self.counts[result.verdict] += 1
        self._write(_line("case", result_to_dict(result)))

    def close(self, *, interrupted: bool = False) -> None:
        """Write the end line (with the counts) and close the file."""
        if self._file.closed:
            return
        body = {"finished_at": utc_now(), "counts": self.counts, "interrupted": interrupted}
        self._write(_line("end", body))
        self._file.close()


# --- reading --------------------------------------------------------------------------------


def _check_from_dict(data: Mapping[str, Any]) -> CheckOutcome:
    return CheckOutcome(**data)


def _trial_from_dict(data: Mapping[str, Any]) -> Trial:
    response = data.get("response")
    return Trial(
        index=data["index"],
        verdict=data["verdict"],
        checks=tuple(_check_from_dict(c) for c in data.get("checks", ())),
        response=TargetResponse.from_dict(response) if response is not None else None,
        error=data.get("error"),
        duration_s=data.get("duration_s", 0.0),
        attempts=data.get("attempts", 1),
    )


def result_from_dict(data: Mapping[str, Any]) -> CaseResult:
    """Read back what :func:`result_to_dict` wrote."""
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
            if not isinstance(data, dict):
                raise InputError("expected a JSON object", path=path, line=number)
            if type(data.get("version")) is not int or data["version"] != FORMAT_VERSION:
                raise InputError(
                    f"unsupported run record version {data.get('version')!r}; "
                    f"this harness reads version {FORMAT_VERSION}",
                    path=path, line=number, field="version",
                )
            kind = data.get("type")
            try:
                if kind == "header" and header is None:
                    body = {k: v for k, v in data.items() if k not in ("version", "type")}
                    header = RunHeader(**body)
                elif kind == "case" and header is not None:
                    results.append(result_from_dict(data))
                elif kind == "end" and header is not None:
                    end = data
                else:
                    expected = "a header line" if header is None else "a case or end line"
                    raise InputError(f"expected {expected}, found type {kind!r}",
                                     path=path, line=number, field="type")
            except (TypeError, KeyError, ValueError) as exc:
                if isinstance(exc, InputError):
                    raise
                raise InputError(f"malformed {kind} line: {exc}", path=path,
                                 line=number) from None
    if header is None:
        raise InputError("empty run record: no header line", path=path, line=1)
    return RunRecord(path=path, header=header, results=tuple(results), end=end)
