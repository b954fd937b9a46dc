"""Bad input through the real command line: exit 2, one message at path:line, nothing written.

Each entry of the corpus is a case file, suite file or run record the harness cannot use, put
into a small project (``suites/``, ``cases/``, a ``replay`` target) and given to ``harness run``,
``harness check`` or ``harness gate`` in a subprocess. The promise under test: exit code 2, a
single ``error:`` message on standard error naming ``path:line`` (only the path when there is no
line to name: a missing or oversized file) and the field where there is one, no traceback, and no
file created or changed (no ``reports/`` folder, no ``--out`` record).

Small bad files are kept in ``tests/samples/bad``; huge, binary, wrongly encoded and deeply nested
ones are generated here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from conftest import make_result, write

from harness import loader, records

SAMPLES = Path(__file__).parent / "samples" / "bad"
BAD_CASE = "cases/demo/BAD.yaml"
SUITE = "suites/demo.yaml"
OUT = "reports/runs/out.jsonl"
RUN = ("run", SUITE, "--target", "replay", "--out", OUT)
CHECK = ("check", ".", "--no-targets")
GATE = ("gate", "good.jsonl", "bad.jsonl")
EXCERPT_LINE = re.compile(r"[> ] +\d+ \| ")
"""A line of the file quoted under the message: ``>   3 | expect: contains hello``."""

VALID_SUITE = """\
name: demo
cases:
  - cases/demo/*.yaml
targets:
  replay:
    replay: true
"""
VALID_CASE = """\
id: INC-1
title: Assistant quoted a 60-day refund window
category: policy
severity: sev3
status: closed
owner: dana.okafor
evidence:
  input: {message: Can I still return my order?}
  output: You have 60 days to return it.
expect:
  - not_contains: "60 days"
"""
CATEGORIES = ("output_quality, data_exposure, automation_error, policy, retrieval, "
              "human_review")


def _header() -> records.RunHeader:
    return records.RunHeader(run_id="20260310T090000Z-0a1b2c3d", suite="demo",
                             suite_digest="d" * 64, target="replay", target_kind="replay",
                             target_digest="e" * 64, started_at="2026-03-10T09:00:00Z")


HEADER_LINE = json.dumps({"version": records.FORMAT_VERSION, "type": "header",
                          **dataclasses.asdict(_header())})


@dataclass(frozen=True)
class Bad:
    """One bad input: where it goes in the project, its bytes (None: the file is absent), the
    commands that read it, and the message expected from each: ``where`` (path or path:line),
    the field (None when the message names none) and the start of the problem."""

    id: str
    place: str
    data: bytes | None
    where: str
    field: str | None
    problem: str
    commands: tuple[tuple[str, ...], ...]

    def message_start(self) -> str:
        field = f"{self.field}: " if self.field else ""
        return f"error: {self.where}: {field}{self.problem}"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def _bad(place: str, commands: tuple[tuple[str, ...], ...], id: str, data: bytes | str | None,
         line: int | None, field: str | None, problem: str, where: str | None) -> Bad:
    shown = where or place
    return Bad(id=id, place=place, data=data.encode() if isinstance(data, str) else data,
               where=shown if line is None else f"{shown}:{line}", field=field, problem=problem,
               commands=commands)


def bad_case(id: str, data: bytes | str, line: int | None, field: str | None, problem: str,
             *, where: str | None = None) -> Bad:
    """A bad file at cases/demo/BAD.yaml, read by ``harness run`` and ``harness check``."""
    return _bad(BAD_CASE, (RUN, CHECK), id, data, line, field, problem, where)


def bad_suite(id: str, data: bytes | str | None, line: int | None, field: str | None,
              problem: str, *, commands: tuple[tuple[str, ...], ...] = (RUN, CHECK)) -> Bad:
    """A bad suites/demo.yaml."""
    return _bad(SUITE, commands, id, data, line, field, problem, None)


def bad_record(id: str, data: bytes | str | None, line: int | None, field: str | None,
               problem: str) -> Bad:
    """A bad candidate run record given to ``harness gate`` beside a valid baseline."""
    return _bad("bad.jsonl", (GATE,), id, data, line, field, problem, None)


def case_text(*lines: str) -> str:
    return "\n".join(lines) + "\n"


BASE = ("input: hi", "expect:", "  - contains: hello")
"""The rest of a valid baseline case; a test puts its bad line(s) first."""
INCIDENT = ("category: policy", "severity: sev2", "status: closed", "owner: dana.okafor")

_png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + random.Random(2026).randbytes(4096)
_deep = 10_000
_huge = (VALID_CASE + "# " + "padding " * (loader.MAX_FILE_BYTES // 8) + "\n").encode()
_libyaml = yaml.__with_libyaml__
# Beyond the YAML parser's own limit the parser refuses the document; the pure-Python parser
# runs out of stack first, which has no line.
_too_deep_line, _too_deep_problem = (
    (2, "invalid YAML: exceeded maximum nesting depth") if _libyaml
    else (None, f"document nested deeper than {loader.MAX_DEPTH} levels"))

CASES = [
    # malformed YAML
    bad_case("bad-indentation", sample("case-files/bad-indentation.yaml"), 3, None,
             "invalid YAML: mapping values are not allowed"),
    # An unclosed quote or bracket is found where the file ends: the line after the last one.
    bad_case("unclosed-quote", sample("case-files/unclosed-quote.yaml"), 5, None,
             "invalid YAML: found unexpected end of stream"),
    bad_case("unclosed-bracket", sample("case-files/unclosed-bracket.yaml"), 4, None,
             "invalid YAML: "),
    bad_case("tab-indentation", sample("case-files/tab-indentation.yaml"), 4, None,
             "invalid YAML: found character"),
    bad_case("stray-colon", sample("case-files/stray-colon.yaml"), 2, None,
             "invalid YAML: mapping values are not allowed"),
    bad_case("two-documents", sample("case-files/two-documents.yaml"), 3, None,
             "invalid YAML: but found another document"),
    bad_case("python-object-tag", sample("case-files/python-object-tag.yaml"), 2, None,
             "invalid YAML: could not determine a constructor for the tag "
             "'tag:yaml.org,2002:python/object/apply:os.system'"),
    bad_case("explicit-tag-mismatch", sample("case-files/explicit-tag-mismatch.yaml"), 3, None,
             "invalid YAML: cannot read this value as !!int"),
    bad_case("integer-of-5000-digits", case_text("input: hi", "trials: 1" + "0" * 5000,
                                                 *BASE[1:]),
             2, None, "invalid YAML: cannot read this value as !!int"),
    bad_case("duplicate-key", sample("case-files/duplicate-key.yaml"), 5, None,
             "duplicate key 'id' (first at line 1)"),
    bad_case("non-string-key", sample("case-files/non-string-key.yaml"), 3, "(top level)",
             "keys must be strings, found a number (2026)"),
    # empty, not a mapping, not text
    bad_case("empty", sample("case-files/empty.yaml"), 1, None,
             "file is empty; expected a mapping of fields"),
    bad_case("only-comments", sample("case-files/only-comments.yaml"), 1, None,
             "file is empty; expected a mapping of fields"),
    bad_case("top-level-list", sample("case-files/top-level-list.yaml"), 1, None,
             "expected a mapping of fields at the top level, found a list"),
    bad_case("binary", _png, 1, None, "not UTF-8 text (byte 0)"),
    bad_case("nul-bytes", b"id: BAD\ninput: \x00\x00\x00\nexpect:\n  - contains: hello\n", 2,
             None, "not a text file (contains a NUL byte)"),
    bad_case("utf-16-with-bom", case_text("id: BAD", *BASE).encode("utf-16"), 1, None,
             "not UTF-8 text (byte 0)"),
    bad_case("latin-1", case_text("id: BAD", "input: Rückerstattung für Café", *BASE[1:])
             .encode("latin-1"), 2, None, "not UTF-8 text (byte 16)"),
    bad_case("huge", _huge, None, None,
             f"file too large: {len(_huge)} bytes, at most {loader.MAX_FILE_BYTES}"),
    # alias bombs and deep nesting
    bad_case("billion-laughs", sample("case-files/billion-laughs.yaml"), 1, None,
             f"document too large: more than {loader.MAX_NODES} values (aliases included)"),
    bad_case("recursive-alias", sample("case-files/recursive-alias.yaml"), 2, None,
             "recursive alias"),
    bad_case("nested-100-lists", sample("case-files/nested-100-lists.yaml"), 2, None,
             f"document nested deeper than {loader.MAX_DEPTH} levels"),
    bad_case("nested-100-mappings", sample("case-files/nested-100-mappings.yaml"), 66, None,
             f"document nested deeper than {loader.MAX_DEPTH} levels"),
    bad_case(f"nested-{_deep}-lists", case_text("id: BAD", "input: " + "[" * _deep + "]" * _deep,
                                                *BASE[1:]),
             _too_deep_line, None, _too_deep_problem),
    bad_case(f"nested-{_deep}-mappings",
             case_text("id: BAD", "input: " + "{a: " * _deep + "1" + "}" * _deep, *BASE[1:]),
             _too_deep_line, None, _too_deep_problem),
    # the schema: unknown fields and kinds, wrong types
    bad_case("unknown-field", sample("case-files/unknown-field.yaml"), 3, "categry",
             "unknown field 'categry' (did you mean 'category'?)"),
    bad_case("unknown-check-kind", sample("case-files/unknown-check-kind.yaml"), 5,
             "expect[1].contanes", "unknown check kind 'contanes'; did you mean 'contains'?"),
    bad_case("expect-is-a-string", sample("case-files/expect-is-a-string.yaml"), 3, "expect",
             "expected a list, found a string ('contains hello')"),
    bad_case("check-with-two-kinds", sample("case-files/check-with-two-kinds.yaml"), 4,
             "expect[0]", "expected a one-key mapping 'kind: params'"),
    bad_case("expect-empty", case_text("input: hi", "expect: []"), 2, "expect",
             "expected at least 1 item(s), found 0"),
    bad_case("no-input", case_text("id: BAD", "expect:", "  - contains: hello"), 1, "input",
             "missing required field 'input' (or evidence.input)"),
    bad_case("trials-text", case_text("trials: three", *BASE), 1, "trials",
             "expected a whole number, found a string ('three')"),
    bad_case("trials-zero", case_text("trials: 0", *BASE), 1, "trials",
             "expected at least 1, found 0"),
    bad_case("min-pass-rate-above-1", case_text("min_pass_rate: 1.5", *BASE), 1,
             "min_pass_rate", "expected at most 1, found 1.5"),
    bad_case("timeout-text", case_text("timeout_s: soon", *BASE), 1, "timeout_s",
             "expected a number, found a string ('soon')"),
    bad_case("as-of-number", case_text("as_of: 20260310", *BASE), 1, "as_of",
             "expected an ISO 8601 date (YYYY-MM-DD), found a number (20260310)"),
    bad_case("as-of-impossible-date", case_text("as_of: 2026-02-30", *BASE), 1, "as_of",
             "expected an ISO 8601 date (YYYY-MM-DD), found '2026-02-30'"),
    bad_case("tags-mapping", case_text("tags: {refunds: true}", *BASE), 1, "tags",
             "expected a list, found a mapping"),
    bad_case("draft-text", case_text("draft: maybe", *BASE), 1, "draft",
             "expected true or false, found a string ('maybe')"),
    bad_case("title-list", case_text("title: [refund, window]", *BASE), 1, "title",
             "expected a string, found a list"),
    bad_case("severity-unknown", case_text(*INCIDENT[:1], "severity: sev9", *INCIDENT[2:],
                                           *BASE),
             2, "severity", "expected one of sev1, sev2, sev3, sev4, found 'sev9'"),
    bad_case("category-unknown", case_text("category: hallucination", *INCIDENT[1:], *BASE), 1,
             "category", f"expected one of {CATEGORIES}, found 'hallucination'"),
    bad_case("owner-missing", case_text(*INCIDENT[:3], *BASE), 1, "owner",
             "missing required field 'owner': a case with incident fields (category, severity, "
             "status) needs category, severity, status, owner"),
    bad_case("timeline-not-a-time", case_text(*INCIDENT, "timeline:", "  detected: yesterday",
                                              *BASE),
             6, "timeline.detected",
             "expected an ISO 8601 date-time (e.g. 2026-03-02T08:15:00Z), found 'yesterday'"),
    bad_case("timeline-out-of-order",
             case_text(*INCIDENT, "timeline:", "  detected: 2026-03-02T09:00:00Z",
                       "  contained: 2026-03-02T08:00:00Z", *BASE),
             7, "timeline.contained",
             "contained (2026-03-02T08:00:00+00:00) is before detected "
             "(2026-03-02T09:00:00+00:00)"),
    bad_case("impact-users-negative", case_text(*INCIDENT, "impact: {users: -3}", *BASE), 5,
             "impact.users", "expected at least 0, found -3"),
    bad_case("tool-calls-text", case_text(*INCIDENT, "evidence:", "  tool_calls: lookup_order",
                                          *BASE),
             6, "evidence.tool_calls", "expected a list, found a string ('lookup_order')"),
    bad_case("source-without-id", case_text(*INCIDENT, "evidence:", "  sources:",
                                            "    - title: Refund policy", *BASE),
             7, "evidence.sources[0].id", "missing required field 'id'"),
    bad_case("regex-unclosed", case_text("input: hi", "expect:", "  - regex: '(30 days'"), 3,
             "expect[0].regex.pattern", "invalid regular expression: missing ) at position 8"),
    bad_case("similar-threshold-text",
             case_text("input: hi", "expect:", "  - similar: {reference: hello, threshold: high}"),
             3, "expect[0].similar.threshold", "expected a number"),
    # the same id in two files: INC-1.yaml is read after BAD.yaml, so it is the one named
    bad_case("duplicate-id-across-files", sample("case-files/duplicate-id.yaml"), 1, "id",
             "duplicate case id 'INC-1'; also used in cases/demo/BAD.yaml:1",
             where="cases/demo/INC-1.yaml"),
]

SUITES = [
    bad_suite("suite-bad-indentation", sample("suite-files/bad-indentation.yaml"), 4, None,
              "invalid YAML: "),
    bad_suite("suite-cases-is-a-mapping", sample("suite-files/cases-is-a-mapping.yaml"), 2,
              "cases[0]", "expected a string, found a mapping"),
    bad_suite("suite-glob-matches-nothing", sample("suite-files/glob-matches-nothing.yaml"), 4,
              "cases[1]", "glob 'cases/refunds/*.yaml' matches no case file under "),
    bad_suite("suite-default-target-unknown", sample("suite-files/default-target-unknown.yaml"),
              8, "defaults.target", "no target named 'post-fix'; targets: replay"),
    # A target is imported when it is used: by `run --target pre-fix`, and by `check` (without
    # --no-targets), which runs every incident case on the suite's pre-fix target.
    bad_suite("suite-target-module-missing", sample("suite-files/target-module-missing.yaml"), 8,
              "targets.pre-fix.python", "cannot import module 'no_such_workflow'",
              commands=(("run", SUITE, "--target", "pre-fix", "--out", OUT), ("check", "."))),
    bad_suite("suite-unknown-adapter", sample("suite-files/unknown-adapter.yaml"), 6,
              "targets.replay", "expected exactly one adapter key (command, http, openai, "
              "python, replay), found none"),
    bad_suite("suite-two-adapters", sample("suite-files/two-adapters.yaml"), 6,
              "targets.replay", "expected exactly one adapter key (command, http, openai, "
              "python, replay), found replay, python"),
    bad_suite("suite-targets-is-a-list", sample("suite-files/targets-is-a-list.yaml"), 4,
              "targets", "expected a mapping, found a list"),
    bad_suite("suite-unknown-field", sample("suite-files/unknown-field.yaml"), 7, "gates",
              "unknown field 'gates' (did you mean 'gate'?)"),
    bad_suite("suite-duplicate-target", sample("suite-files/duplicate-target.yaml"), 7, None,
              "duplicate key 'replay' (first at line 5)"),
    bad_suite("suite-name-is-a-number", sample("suite-files/name-is-a-number.yaml"), 1, "name",
              "expected a string, found a number (2026)"),
    bad_suite("suite-trials-text", sample("suite-files/trials-is-text.yaml"), 8,
              "defaults.trials", "expected a whole number, found a string ('three')"),
    bad_suite("suite-gate-severity-unknown", sample("suite-files/gate-severity-unknown.yaml"), 8,
              "gate.severities[1]", "expected one of sev1, sev2, sev3, sev4, found 'sev5'"),
    bad_suite("suite-command-is-a-number", sample("suite-files/command-is-a-number.yaml"), 6,
              "targets.replay.command", "expected a list, found a number (42)"),
    bad_suite("suite-empty", b"", 1, None, "file is empty; expected a mapping of fields"),
    bad_suite("suite-billion-laughs", sample("case-files/billion-laughs.yaml"), 1, None,
              f"document too large: more than {loader.MAX_NODES} values (aliases included)"),
    bad_suite("suite-missing", None, None, None, "file not found", commands=(RUN,)),
    # check pointed at a folder without cases/
    _bad("elsewhere/README.md", (("check", "elsewhere", "--no-targets"),),
         "cases-folder-missing", "", None, None,
         "no cases folder here; expected cases/<workflow>/<ID>.yaml", "elsewhere/cases"),
]

_case_line = json.dumps({"version": 1, "type": "case", "case_id": "INC-1", "verdict": "pass",
                         "trials": [{"index": 1, "verdict": "pass",
                                     "response": {"tool_calls": "lookup_order"}}],
                         "pass_rate": 1.0, "min_pass_rate": 1.0, "path": "x.yaml", "line": 1,
                         "workflow": "demo"})
RECORDS = [
    bad_record("record-not-json", sample("run-records/not-json.jsonl"), 1, None,
               "not a JSON line: Expecting value"),
    bad_record("record-not-an-object", sample("run-records/not-an-object.jsonl"), 1, None,
               "expected a JSON object"),
    bad_record("record-wrong-version", sample("run-records/wrong-version.jsonl"), 1, "version",
               "unsupported run record version 99; this harness reads versions 1, 2, 3"),
    bad_record("record-case-before-header", sample("run-records/case-before-header.jsonl"), 1,
               "type", "expected a header line, found type 'case'"),
    bad_record("record-header-missing-fields", sample("run-records/header-missing-fields.jsonl"),
               1, None, "malformed header line: "),
    # A last line without its newline is a write the interruption cut short: it is dropped.
    bad_record("record-truncated-header", HEADER_LINE[:80], 1, None,
               "empty run record: no header line"),
    bad_record("record-empty", b"", 1, None, "empty run record: no header line"),
    bad_record("record-case-trials-not-a-list", HEADER_LINE + '\n{"version": 1, "type": "case", '
               '"trials": 5}\n', 2, None, "malformed case line: "),
    bad_record("record-response-wrong-shape", f"{HEADER_LINE}\n{_case_line}\n", 2, None,
               "malformed case line: malformed response: tool_calls must be a list"),
    bad_record("record-nested-json", HEADER_LINE + "\n" + "[" * 100_000 + "]" * 100_000 + "\n", 2,
               None, "JSON nested too deeply"),
    bad_record("record-not-utf8", HEADER_LINE.encode() + b'\n{"case_id": "caf\xe9"}\n', 2, None,
               "not UTF-8 text (byte 16 of the line)"),
    bad_record("record-missing", None, None, None, "run record not found"),
]

CORPUS = CASES + SUITES + RECORDS


def make_project(root: Path, bad: Bad | None = None) -> Path:
    """The valid project (one incident case, a suite with a replay target, a run record), with
    ``bad`` put in (or its file taken out)."""
    write(root / SUITE, VALID_SUITE)
    write(root / "cases" / "demo" / "INC-1.yaml", VALID_CASE)
    writer = records.RunWriter(root / "good.jsonl", _header())
    writer.add(make_result("INC-1", "fail", incident=True))
    writer.close()
    if bad is not None:
        place = root / bad.place
        if bad.data is None:
            place.unlink(missing_ok=True)
        else:
            place.parent.mkdir(parents=True, exist_ok=True)
            place.write_bytes(bad.data)
    return root


def files_in(root: Path) -> dict[str, str]:
    """Every file under ``root`` with the SHA-256 of its bytes."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def harness(command: tuple[str, ...], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *command], cwd=cwd, text=True,
                          errors="replace", capture_output=True, timeout=120, check=False)


def run_each(commands: tuple[tuple[str, ...], ...], roots: list[Path]
             ) -> list[subprocess.CompletedProcess[str]]:
    """Run each command in its own project, at the same time."""
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        return list(pool.map(harness, commands, roots))


@pytest.mark.parametrize("bad", CORPUS, ids=lambda bad: bad.id)
def test_bad_input_exits_2_with_one_message_and_writes_nothing(bad: Bad, tmp_path: Path) -> None:
    roots = [make_project(tmp_path / f"project-{n}", bad) for n in range(len(bad.commands))]
    before = [files_in(root) for root in roots]
    for command, root, files, done in zip(bad.commands, roots, before,
                                          run_each(bad.commands, roots), strict=True):
        shown = f"harness {' '.join(command)}"
        assert "Traceback" not in done.stdout + done.stderr, (shown, done.stderr)
        assert done.returncode == 2, (shown, done.stdout, done.stderr)
        assert done.stdout == "", shown
        first, *rest = done.stderr.splitlines()
        assert first.startswith(bad.message_start()), (shown, first[:300])
        assert all(EXCERPT_LINE.match(line) for line in rest), (shown, done.stderr[:2000])
        assert not (root / OUT).exists(), shown
        assert not (root / "reports").exists(), shown
        assert files_in(root) == files, shown


def test_the_valid_project_runs_checks_and_gates(tmp_path: Path) -> None:
    """Without a bad file the same commands do their work: the failures above are the files'."""
    roots = [make_project(tmp_path / f"project-{n}") for n in range(3)]
    good = roots[2] / "good.jsonl"
    good.with_name("bad.jsonl").write_bytes(good.read_bytes())
    ran, checked, gated = run_each((RUN, CHECK, GATE), roots)
    assert ran.returncode == 1, ran.stderr  # the incident's evidence still fails its check
    assert records.read_run(roots[0] / OUT).complete
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "no findings" in checked.stdout
    assert gated.returncode == 1, gated.stderr  # an incident case still failing blocks
    assert "decision: BLOCK" in gated.stdout


def test_the_corpus_ids_are_unique() -> None:
    ids = [bad.id for bad in CORPUS]
    assert len(ids) == len(set(ids))


def test_schema_is_unaffected_by_bad_files(tmp_path: Path) -> None:
    """``harness schema`` reads no project file: a project full of bad files changes nothing."""
    clean = tmp_path / "clean"
    clean.mkdir()
    messy = make_project(tmp_path / "messy")
    for bad in CASES + SUITES:
        if bad.data is not None:
            (messy / "cases" / "demo" / f"{bad.id}.yaml").write_bytes(bad.data)
    expected, done = run_each((("schema",), ("schema",)), [clean, messy])
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout == expected.stdout
    assert json.loads(done.stdout)["$defs"].keys() == {"case", "suite"}
