"""Run records: what RunWriter writes, read_run reads back; interrupted and malformed records."""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from pathlib import Path

import pytest

from harness import records
from harness.digest import sha256_json
from harness.errors import InputError
from harness.model import (
    Approval,
    CaseResult,
    CheckOutcome,
    Source,
    TargetResponse,
    ToolCall,
    Trial,
)
from harness.records import RunHeader, RunWriter, read_run

HEADER = RunHeader(
    run_id="20260305T101500Z-1a2b3c4d",
    suite="refunds",
    suite_digest="s" * 64,
    target="post-fix",
    target_kind="python",
    target_digest="t" * 64,
    started_at="2026-03-05T10:15:00Z",
    harness_version="0.1.0",
    git_commit="c" * 40,
    suite_path="suites/refunds.yaml",
    python="3.11.9",
)

RESPONSE = TargetResponse(
    output="Refunds are accepted within 30 days — not after.",
    tool_calls=(ToolCall(name="lookup_order", args={"order": "A-1002", "fields": ["date"]},
                         result={"delivered": "2026-01-10"}),),
    sources=(Source(id="policy-7", title="Refund policy", url="https://example.test/p",
                    updated_at="2026-01-01"), Source(id="faq")),
    approvals=(Approval(step="refund", status="rejected", approver="carol", role="lead",
                        at="2026-03-02T09:00:00Z"),),
    metadata={"model_route": "provider/model-a", "tokens": 812},
    # metadata is present but not reported: the record must keep "reported" as written.
    reported=frozenset({"output", "tool_calls", "sources", "approvals"}),
)

SILENT = TargetResponse(output="ok", reported=frozenset({"output", "tool_calls"}))

INCIDENT = CaseResult(
    case_id="INC-7",
    verdict="error",
    trials=(
        Trial(index=1, verdict="pass", duration_s=0.25, response=RESPONSE, checks=(
            CheckOutcome(kind="contains", verdict="pass", reason="output contains '30 days'",
                         expected="'30 days'", obtained=RESPONSE.output,
                         evidence={"match": "within [[30 days]]"}, line=12),
            CheckOutcome(kind="judge", verdict="pass", reason="scored", score=0.875,
                         expected={"min": 0.8}, obtained=[1, 2], line=13),
        )),
        Trial(index=2, verdict="pass", duration_s=0.5, response=SILENT),
        Trial(index=3, verdict="error", duration_s=1.0, error="timed out after 1s\nstderr: -"),
    ),
    pass_rate=2 / 3,
    min_pass_rate=0.5,
    path="cases/refunds/inc-7.yaml",
    line=1,
    workflow="refunds",
    title="Refund promised outside policy",
    input={"question": "Refund after 45 days?", "order": "A-1002"},
    incident=True,
    category="policy",
    severity="sev1",
    owner="alice",
    case_digest="d" * 64,
    duration_s=1.75,
)

BASELINE = CaseResult(
    case_id="BASE-1", verdict="fail", trials=(Trial(index=1, verdict="fail"),), pass_rate=0.0,
    min_pass_rate=1.0, path="cases/refunds/base.yaml", line=3, workflow="refunds",
    input="Can I return this?",
)


def write_run(path: Path, *results: CaseResult, close: bool = True) -> Path:
    writer = RunWriter(path, HEADER)
    for result in results:
        writer.add(result)
    writer.close()
    if not close:  # as if interrupted before the end line: drop it
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        path.write_text("".join(lines[:-1]), encoding="utf-8")
    return path


def read_error(path: Path) -> InputError:
    with pytest.raises(InputError) as info:
        read_run(path)
    return info.value


def json_line(**body: object) -> str:
    return json.dumps(body) + "\n"


# --- round trip -----------------------------------------------------------------------------


def test_round_trip_preserves_every_field(tmp_path: Path) -> None:
    path = write_run(tmp_path / "runs" / "r.jsonl", INCIDENT, BASELINE)
    record = read_run(path)
    assert record.path == path
    assert record.header == HEADER
    assert record.results == (INCIDENT, BASELINE)
    assert record.results[0].trials[0].response == RESPONSE
    assert record.results[0].trials[1].response is not None
    assert record.results[0].trials[1].response.reported == frozenset({"output", "tool_calls"})
    assert record.complete
    assert record.end is not None
    assert record.end["counts"] == {"pass": 0, "fail": 1, "error": 1}
    assert record.end["interrupted"] is False
    assert record.by_id() == {"INC-7": INCIDENT, "BASE-1": BASELINE}


def test_header_line_comes_first_with_version_first(tmp_path: Path) -> None:
    path = write_run(tmp_path / "r.jsonl", BASELINE)
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [line["type"] for line in lines] == ["header", "case", "end"]
    assert all(next(iter(line)) == "version" for line in lines)
    assert lines[0]["version"] == records.FORMAT_VERSION
    assert lines[0]["run_id"] == HEADER.run_id
    assert lines[1]["case_id"] == "BASE-1"


def test_non_ascii_is_written_as_is(tmp_path: Path) -> None:
    path = write_run(tmp_path / "r.jsonl", INCIDENT)
    assert "30 days — not after" in path.read_text(encoding="utf-8")


def test_interrupted_close_is_recorded(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    writer = RunWriter(path, HEADER)
    writer.add(BASELINE)
    writer.close(interrupted=True)
    writer.close()  # a second close writes nothing more
    record = read_run(path)
    assert record.end is not None
    assert record.end["interrupted"] is True
    assert len(path.read_text(encoding="utf-8").splitlines()) == 3


def test_writer_refuses_to_overwrite_a_record(tmp_path: Path) -> None:
    path = write_run(tmp_path / "r.jsonl", BASELINE)
    before = path.read_bytes()
    with pytest.raises(InputError) as info:
        RunWriter(path, HEADER)
    assert str(info.value) == f"{path}: run record already exists; choose another --out"
    assert path.read_bytes() == before


# --- interrupted records --------------------------------------------------------------------


def test_record_without_end_line_is_incomplete_and_keeps_its_cases(tmp_path: Path) -> None:
    path = write_run(tmp_path / "r.jsonl", INCIDENT, BASELINE, close=False)
    record = read_run(path)
    assert not record.complete
    assert record.end is None
    assert record.results == (INCIDENT, BASELINE)


def test_header_only_record_is_incomplete_with_no_results(tmp_path: Path) -> None:
    path = write_run(tmp_path / "r.jsonl", close=False)
    record = read_run(path)
    assert (record.header, record.results, record.complete) == (HEADER, (), False)


def test_final_line_cut_short_is_ignored(tmp_path: Path) -> None:
    path = write_run(tmp_path / "r.jsonl", INCIDENT, BASELINE, close=False)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text(lines[0] + lines[1] + lines[2][:40], encoding="utf-8")
    record = read_run(path)
    assert record.results == (INCIDENT,)
    assert not record.complete


def test_final_line_cut_inside_a_character_is_ignored(tmp_path: Path) -> None:
    path = write_run(tmp_path / "r.jsonl", BASELINE, INCIDENT, close=False)
    data = path.read_bytes()
    cut = data.index("—".encode()) + 1  # in the middle of a three-byte character
    path.write_bytes(data[:cut])
    record = read_run(path)
    assert record.results == (BASELINE,)


def test_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = write_run(tmp_path / "r.jsonl", BASELINE)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join([lines[0], "\n", lines[1], "  \n", lines[2]]), encoding="utf-8")
    assert read_run(path).results == (BASELINE,)


# --- malformed records ----------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    err = read_error(tmp_path / "nope.jsonl")
    assert str(err) == f"{tmp_path / 'nope.jsonl'}: run record not found"


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text("", encoding="utf-8")
    assert str(read_error(path)) == f"{path}:1: empty run record: no header line"


def test_non_json_line(tmp_path: Path) -> None:
    path = write_run(tmp_path / "r.jsonl", BASELINE)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text(lines[0] + "not json\n" + lines[1], encoding="utf-8")
    err = read_error(path)
    assert str(err) == f"{path}:2: not a JSON line: Expecting value"
    assert (err.path, err.line) == (str(path), 2)


def test_json_line_that_is_not_an_object(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text("[1, 2]\n", encoding="utf-8")
    assert str(read_error(path)) == f"{path}:1: expected a JSON object"


def test_non_utf8_line(tmp_path: Path) -> None:
    path = write_run(tmp_path / "r.jsonl", BASELINE)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(lines[0] + b'{"version": 1, "type": "case", "case_id": "\xff"}\n' + lines[1])
    assert str(read_error(path)) == f"{path}:2: not UTF-8 text (byte 43 of the line)"


@pytest.mark.parametrize("version", [4, "1", None])
def test_wrong_version(tmp_path: Path, version: object) -> None:
    path = write_run(tmp_path / "r.jsonl", BASELINE)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    case = json.loads(lines[1])
    case["version"] = version
    path.write_text(lines[0] + json.dumps(case) + "\n", encoding="utf-8")
    err = read_error(path)
    assert str(err) == (
        f"{path}:2: version: unsupported run record version {version!r}; "
        "this harness reads versions 1, 2, 3")


def test_case_line_before_the_header(tmp_path: Path) -> None:
    path = write_run(tmp_path / "r.jsonl", BASELINE)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text(lines[1] + lines[0], encoding="utf-8")
    err = read_error(path)
    assert str(err) == f"{path}:1: type: expected a header line, found type 'case'"
    assert (err.line, err.field) == (1, "type")


def test_second_header_or_unknown_type(tmp_path: Path) -> None:
    path = write_run(tmp_path / "r.jsonl", BASELINE)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text(lines[0] + lines[0], encoding="utf-8")
    assert str(read_error(path)) == (
        f"{path}:2: type: expected a case or end line, found type 'header'")
    path.write_text(lines[0] + json_line(version=1, type="note"), encoding="utf-8")
    assert str(read_error(path)) == (
        f"{path}:2: type: expected a case or end line, found type 'note'")


def test_malformed_header_and_case_lines(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(json_line(version=1, type="header", run_id="x", colour="red"),
                    encoding="utf-8")
    err = read_error(path)
    assert str(err).startswith(f"{path}:1: malformed header line: ")
    assert "colour" in str(err)

    write_run(tmp_path / "ok.jsonl")
    header = (tmp_path / "ok.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)[0]
    path.write_text(header + json_line(version=1, type="case", case_id="C1"), encoding="utf-8")
    err = read_error(path)
    assert str(err) == f"{path}:2: malformed case line: verdict must be one of pass, fail, error"


def test_a_record_with_an_unknown_verdict_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    writer = RunWriter(path, HEADER)
    writer.add(INCIDENT)
    writer.close()
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace('"verdict": "', '"verdict": "PASSED-', 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"run.jsonl:2: malformed case line: verdict must be"):
        read_run(path)


# --- version 2: each case's strictness ------------------------------------------------------


STRICTNESS = {"checks": [{"kind": "not_contains", "params": "ab" * 32, "line": 12}],
              "trials": 3, "min_pass_rate": 1.0, "input": "cd" * 32, "settle_trials": None}


def test_strictness_round_trips(tmp_path: Path) -> None:
    path = write_run(tmp_path / "r.jsonl", dataclasses.replace(BASELINE, strictness=STRICTNESS))
    (result,) = read_run(path).results
    assert result.strictness == STRICTNESS


# --- version 3: each incident case's business owner -----------------------------------------


def test_the_business_owner_round_trips_and_the_record_is_version_3(tmp_path: Path) -> None:
    path = write_run(tmp_path / "r.jsonl",
                     dataclasses.replace(BASELINE, business_owner="Head of Support"))
    assert all(json.loads(line)["version"] == 3 for line in path.read_text().splitlines())
    (result,) = read_run(path).results
    assert result.business_owner == "Head of Support"


def as_version(path: Path, version: int, *dropped: str) -> Path:
    """Rewrite a record as an earlier version wrote it: its number, without ``dropped``."""
    lines = []
    for line in path.read_text().splitlines():
        data = {k: v for k, v in json.loads(line).items() if k not in dropped}
        lines.append(json.dumps({**data, "version": version}))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_version_2_record_still_loads_without_a_business_owner(tmp_path: Path) -> None:
    path = write_run(tmp_path / "r.jsonl", dataclasses.replace(BASELINE, strictness=STRICTNESS))
    (result,) = read_run(as_version(path, 2, "business_owner")).results
    assert result.business_owner is None and result.strictness == STRICTNESS


def test_a_version_1_record_still_loads_without_strictness(tmp_path: Path) -> None:
    path = write_run(tmp_path / "r.jsonl", BASELINE)
    record = read_run(as_version(path, 1, "strictness", "business_owner"))
    assert record.complete and record.results[0].strictness is None


@pytest.mark.parametrize("strictness", [
    "strict", {"checks": []}, {**STRICTNESS, "checks": [{"kind": 1}]},
    {**STRICTNESS, "min_pass_rate": "1.0"}, {**STRICTNESS, "input": None},
])
def test_a_malformed_strictness_is_refused(tmp_path: Path, strictness: object) -> None:
    path = write_run(tmp_path / "r.jsonl", BASELINE)
    lines = path.read_text().splitlines()
    case = json.loads(lines[1])
    case["strictness"] = strictness
    path.write_text("\n".join([lines[0], json.dumps(case), lines[2]]) + "\n")
    err = read_error(path)
    assert str(err).startswith(f"{path}:2: malformed case line: strictness")


def test_the_runner_records_each_checks_kind_parameters_and_the_suites_settling() -> None:
    from harness import checks
    from harness.model import Case, Expectation
    from harness.runner import strictness

    expect = (Expectation("contains", "30 days", checks.build("contains", "30 days"), line=9),)
    case = Case(id="C", path=Path("c.yaml"), line=1, workflow="w", title=None, input={"q": 1},
                expect=expect, trials=2, min_pass_rate=0.5)
    found = strictness(case, settle_trials=4)
    assert found["checks"] == [{"kind": "contains", "params": sha256_json("30 days"),
                                "line": 9}]
    assert (found["trials"], found["min_pass_rate"], found["settle_trials"]) == (2, 0.5, 4)
    assert found["input"] == sha256_json({"q": 1})


def test_case_lines_are_synced_to_disk_off_the_writing_thread(tmp_path, monkeypatch) -> None:
    synced: list[str] = []
    real = os.fsync

    def recording(fd: int) -> None:
        synced.append(threading.current_thread().name)
        real(fd)

    monkeypatch.setattr(os, "fsync", recording)
    writer = RunWriter(tmp_path / "r.jsonl", HEADER)
    assert synced == ["MainThread"]  # the header, as it is written
    for number in range(50):
        writer.add(dataclasses.replace(INCIDENT, case_id=f"C{number}"))
    assert synced == ["MainThread"]  # no case line waits for the disk on this thread
    deadline = time.monotonic() + 5
    while len(synced) < 2 and time.monotonic() < deadline:  # nothing else written meanwhile
        time.sleep(records.SYNC_INTERVAL_S)
    assert synced[1:] == ["harness-record-sync"]
    writer.close()
    assert synced[-1] == "MainThread"  # the end line, as it is written
    assert "harness-record-sync" not in [t.name for t in threading.enumerate()]
    assert len(read_run(tmp_path / "r.jsonl").results) == 50


def test_a_line_that_cannot_be_synced_fails_the_run_and_leaves_it_resumable(
        tmp_path, monkeypatch) -> None:
    path = tmp_path / "r.jsonl"
    writer = RunWriter(path, HEADER)
    real = os.fsync

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    writer.add(INCIDENT)
    deadline = time.monotonic() + 5
    while writer._syncer is not None and writer._syncer.failure is None \
            and time.monotonic() < deadline:
        time.sleep(records.SYNC_INTERVAL_S)
    with pytest.raises(OSError, match="No space left"):
        writer.add(BASELINE)
    monkeypatch.setattr(os, "fsync", real)
    with pytest.raises(OSError, match="No space left"):
        writer.close()
    record = read_run(path)
    assert not record.complete  # no end line: the run reads as interrupted, and resumes
    assert record.results == (INCIDENT,)
    assert not (tmp_path / "r.jsonl.lock").exists()  # and the lock is let go
