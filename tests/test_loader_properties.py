"""Properties of the readers: whatever a file holds, the answer is a value or a HarnessError.

The loader and the run-record reader face files people edit by hand, paste into, save in the
wrong encoding or truncate. Generated inputs (arbitrary bytes, YAML-ish text assembled from the
real schema's keys, scalars, lists, nesting, anchors and aliases, arbitrary JSON lines) must give
either a loaded value or an :class:`~harness.errors.HarnessError` that names the file: never
another exception, never a traceback. The size, depth and value-count limits are checked at
their edges.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from harness import checks, loader, records, schema, targets
from harness.errors import HarnessError, InputError
from harness.model import Case, Suite

FAST = settings(max_examples=200, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
T = TypeVar("T")

VALID_CASE = """\
id: INC-1
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


def _names(record: schema.Record) -> set[str]:
    """Every key a record declares, nested records included."""
    names = set(record.fields)
    for node in record.fields.values():
        if isinstance(node, schema.ListOf):
            node = node.item
        if isinstance(node, schema.Record):
            names |= _names(node)
    return names


KINDS = sorted(checks.kinds())
CASE_KEYS = sorted(_names(loader.CASE_SCHEMA) | set(KINDS)
                   | {param for kind in checks.kinds().values() for param in kind.params})
SUITE_KEYS = sorted(_names(loader.SUITE_SCHEMA) | set(targets.ADAPTERS)
                    | {name for adapter in targets.ADAPTERS.values() for name in adapter.options}
                    | {"replay", "pre-fix", "post-fix"})
SCALARS = [
    "~", "null", "true", "no", "yes", "0", "-1", "1.5", ".nan", ".inf", "-.inf", "0x1F", "0o17",
    "0b101", "1e3", "1_000", "1:30", "12345678901234567890123456789", "2026-03-02",
    "2026-03-02T08:15:00Z", "2026-13-45", "''", '""', "'it''s'", '"\\x41"', "sev1", "sev9",
    "policy", "closed", "open", "*a", "*b", "!!int 7", "!!str 7", "!!binary aGk=", "[]", "{}",
    "cases/w/*.yaml", "cases/**/*.yaml", "cases/nothing/*.yaml", "no_such_module:respond",
    "harness.example.refund_assistant:respond", "http://127.0.0.1:9/", "[python, wf.py]",
    "(unclosed", "sha256:00:zz", "{users: -1}",
]
"""Scalars that parse (an alias may name an anchor that is not there)."""
BREAKERS = [
    "[", "]", "{", "}", ":", "-", "? x", "|", ">", "#", "%", "@", "`", "&a", "!!int", "!!int x",
    "!!binary @", "!!timestamp x", "!!timestamp 2026-02-30", "!!map x", "!!seq x", "!!set {a}",
    "!!omap [a]", "!!float x", "!!bool x", "!!python/name:os.getcwd", "!local x", "<<: *a", "---",
    "...", "[a, b", "{a: 1", "a: b", "'unclosed", '"unclosed', '"\\q"', "\t", "\x85",
    "\u2028", "\ufeff", "1" + "0" * 5000,
]
"""Tokens that break or bend the YAML around them; drawn now and then."""


@dataclass(frozen=True)
class Scalar:
    text: str


@dataclass(frozen=True)
class Seq:
    items: tuple
    flow: bool
    anchor: str | None


@dataclass(frozen=True)
class Map:
    pairs: tuple
    flow: bool
    anchor: str | None


def _inline(node: Scalar | Seq | Map) -> str:
    if isinstance(node, Scalar):
        return node.text
    mark = f"&{node.anchor} " if node.anchor else ""
    if isinstance(node, Seq):
        return mark + "[" + ", ".join(_inline(item) for item in node.items) + "]"
    return mark + "{" + ", ".join(f"{key}: {_inline(value)}" for key, value in node.pairs) + "}"


def _on_one_line(node: Scalar | Seq | Map) -> bool:
    return isinstance(node, Scalar) or node.flow or not (
        node.items if isinstance(node, Seq) else node.pairs)


def _block(node: Seq | Map, indent: int) -> list[str]:
    """The lines of a block list or mapping at ``indent``."""
    pad = " " * indent
    entries = ([("-", item) for item in node.items] if isinstance(node, Seq)
               else [(f"{key}:", value) for key, value in node.pairs])
    lines = []
    for lead, value in entries:
        if _on_one_line(value):
            lines.append(f"{pad}{lead} {_inline(value)}")
        else:
            anchor = f" &{value.anchor}" if value.anchor else ""
            lines.append(f"{pad}{lead}{anchor}")
            lines.extend(_block(value, indent + 2))
    return lines


def _trees(keys: list[str]) -> st.SearchStrategy[Scalar | Seq | Map]:
    """Nested values: mostly scalars that parse, quoted free text, keys from ``keys``."""
    scalar = st.one_of(
        st.sampled_from(SCALARS * 8 + BREAKERS),
        st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=10).map(
            lambda text: json.dumps(text, ensure_ascii=False)),
    ).map(Scalar)
    anchor = st.sampled_from([None] * 12 + ["a", "b"])
    key = st.sampled_from(keys)
    return st.recursive(
        scalar,
        lambda children: st.one_of(
            st.builds(Seq, st.lists(children, max_size=3).map(tuple), st.booleans(), anchor),
            st.builds(Map, st.lists(st.tuples(key, children), max_size=3).map(tuple),
                      st.booleans(), anchor),
        ),
        max_leaves=10,
    )


def _document(required: st.SearchStrategy[tuple], keys: list[str]) -> st.SearchStrategy[str]:
    """A top-level mapping: the usual fields (each may be left out) and others from ``keys``;
    now and then one line dropped, repeated, shifted or given a stray character."""
    tree = _trees(keys)
    top = st.builds(
        lambda usual, more: Map(tuple(usual) + tuple(more), False, None),
        required, st.lists(st.tuples(st.sampled_from(keys), tree), max_size=3))
    edit = st.tuples(st.sampled_from(["drop", "repeat", "indent", "dedent", "stray"]),
                     st.integers(0, 200), st.sampled_from([":", "-", "\t", "'", "[", "&a", "*a"]))
    return st.builds(_edited, top, st.lists(edit, max_size=1))


def _edited(top: Map, edits: list[tuple[str, int, str]]) -> str:
    lines = [_inline(top)] if _on_one_line(top) else _block(top, 0)
    for op, at, char in edits:
        at %= len(lines)
        if op == "drop" and len(lines) > 1:
            del lines[at]
        elif op == "repeat":
            lines.insert(at, lines[at])
        elif op == "indent":
            lines[at] = " " + lines[at]
        elif op == "dedent":
            lines[at] = lines[at][1:]
        elif op == "stray":
            lines[at] = lines[at] + char
    return "\n".join(lines) + "\n"


def _maybe(pair: st.SearchStrategy[tuple]) -> st.SearchStrategy[tuple]:
    """The pair (as a one-item tuple) two times in three, else nothing: a field left out."""
    return st.one_of(pair.map(lambda p: (p,)), pair.map(lambda p: (p,)), st.just(()))


def case_texts() -> st.SearchStrategy[str]:
    """YAML-ish case files: an input and checks of real kinds with odd parameters."""
    tree = _trees(CASE_KEYS)
    check = st.builds(lambda kind, params: Map(((kind, params),), False, None),
                      st.sampled_from(KINDS), tree)
    usual = st.tuples(
        _maybe(st.tuples(st.just("input"), tree)),
        _maybe(st.tuples(st.just("expect"), st.builds(Seq, st.lists(check, min_size=1, max_size=3)
                                                      .map(tuple), st.booleans(), st.none()))),
    ).map(lambda parts: parts[0] + parts[1])
    return _document(usual, sorted(loader.CASE_SCHEMA.fields))


def suite_texts() -> st.SearchStrategy[str]:
    """YAML-ish suite files: a name, case globs and targets of real adapters."""
    tree = _trees(SUITE_KEYS)
    target = st.builds(
        lambda adapter, main, options: Map(((adapter, main), *options), False, None),
        st.sampled_from(sorted(targets.ADAPTERS)), tree,
        st.lists(st.tuples(st.sampled_from(SUITE_KEYS), tree), max_size=2))
    usual = st.tuples(
        _maybe(st.tuples(st.just("name"), st.just(Scalar("demo")) | tree)),
        _maybe(st.tuples(st.just("cases"), st.sampled_from(
            ["cases/w/*.yaml", "[cases/**/*.yaml]", "[cases/w/*.yaml, cases/w/*.yml]"]).map(
                Scalar) | tree)),
        _maybe(st.tuples(st.just("targets"), st.builds(
            Map, st.lists(st.tuples(st.sampled_from(["replay", "pre-fix", "post-fix"]), target),
                          max_size=3).map(tuple), st.booleans(), st.none()))),
    ).map(lambda parts: parts[0] + parts[1] + parts[2])
    return _document(usual, sorted(loader.SUITE_SCHEMA.fields))


def _loads_or_names_the_file(load: Callable[[], T], path: Path, *names: Path) -> T | None:
    """``load()``'s value, or None when it raised a HarnessError naming one of the files."""
    try:
        return load()
    except HarnessError as exc:
        assert isinstance(exc, InputError), repr(exc)
        shown = {str(p) for p in (path, *names)}
        assert exc.path in shown, str(exc)
        assert str(exc).startswith(exc.path), str(exc)
        return None


@pytest.fixture
def case_file(tmp_path: Path) -> Path:
    path = tmp_path / "cases" / "refunds" / "C-1.yaml"
    path.parent.mkdir(parents=True)
    return path


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with one valid case; loading a suite puts the project on sys.path."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    case = tmp_path / "cases" / "w" / "INC-1.yaml"
    case.parent.mkdir(parents=True)
    case.write_text(VALID_CASE, encoding="utf-8")
    (tmp_path / "suites").mkdir()
    return tmp_path


def _case_bytes() -> st.SearchStrategy[bytes]:
    valid = VALID_CASE.encode()
    flipped = st.tuples(st.integers(0, len(valid) - 1), st.integers(0, 255)).map(
        lambda flip: valid[:flip[0]] + bytes([flip[1]]) + valid[flip[0] + 1:])
    encoded = st.tuples(st.text(max_size=200), st.sampled_from(["utf-8", "utf-16", "utf-32"])).map(
        lambda pair: pair[0].encode(pair[1], errors="surrogatepass"))
    return st.one_of(st.binary(max_size=2000), flipped, encoded,
                     st.binary(max_size=50).map(lambda tail: valid + tail))


@FAST
@given(data=_case_bytes())
def test_any_bytes_as_a_case_file_load_or_raise_a_harness_error(case_file: Path,
                                                                data: bytes) -> None:
    case_file.write_bytes(data)
    case = _loads_or_names_the_file(lambda: loader.load_case(case_file), case_file)
    assert case is None or isinstance(case, Case)


@FAST
@given(text=case_texts())
def test_yamlish_case_text_loads_or_raises_a_harness_error(case_file: Path, text: str) -> None:
    case_file.write_text(text, encoding="utf-8")
    case = _loads_or_names_the_file(lambda: loader.load_case(case_file), case_file)
    assert case is None or isinstance(case, Case)


def _marked(value: object) -> object:
    """A loaded value with every line mark, in a form that compares (NaN included)."""
    if isinstance(value, loader.MarkedDict):
        return ("map", value.line, [(_marked(key), value.lines[key], _marked(item))
                                    for key, item in value.items()])
    if isinstance(value, loader.MarkedList):
        return ("list", value.line, [(value.lines[index], _marked(item))
                                     for index, item in enumerate(value)])
    return (type(value).__name__, repr(value))


def _built(text: str, *, direct: bool) -> tuple[str, object]:
    """What the loader builds from ``text``, or the error it gives; ``direct=False`` takes
    PyYAML's own path, as a document with anchors does."""
    reader = loader._Loader(text)
    reader.path = "c.yaml"
    reader.anchored = reader.anchored or not direct
    try:
        return "value", _marked(reader.get_single_data())
    except (InputError, yaml.YAMLError) as exc:
        return "error", str(exc)
    finally:
        reader.dispose()


@FAST
@given(text=st.one_of(case_texts(), suite_texts()))
@example(text="a: !!int 7\nb: !!str 7\nc: [yes, No, ~, 0x1F, 1_000, 1:30, .inf, 2026-03-02]\n")
@example(text="a: {b: 1}\n<<: {c: 2}\n")
@example(text="a: 1\nb: [x, {c: 2, c: 3}]\n")
@example(text="a: !!map [1]\nb: !!float x\nc: !!binary aGk=\n")
@example(text="a: [[1], {b: 2}]\n? [1, 2]\n: 3\n")
def test_the_direct_path_builds_what_pyyamls_path_builds(text: str) -> None:
    assert _built(text, direct=True) == _built(text, direct=False)


def test_a_remembered_tag_is_the_one_pyyaml_resolves(monkeypatch: pytest.MonkeyPatch) -> None:
    # tags are remembered by text and by how it was written: "yes" plain is a bool, quoted a
    # string, and a remembered answer must be the same as the first
    monkeypatch.setattr(loader, "_TAGS", {})
    reader = loader._Loader("")
    texts = [*SCALARS, "yes", "No", "1.0", "0x1F", "null", "2026-03-02", "abc", "", "="]
    for _ in range(2):
        for text in texts:
            for implicit in ((True, False), (False, True), (False, False)):
                expected = loader._RESOLVE(reader, yaml.ScalarNode, text, implicit)
                assert reader.resolve(yaml.ScalarNode, text, implicit) == expected, text
    assert reader.resolve(yaml.ScalarNode, "yes", (True, False)) == "tag:yaml.org,2002:bool"
    assert reader.resolve(yaml.ScalarNode, "yes", (False, True)) == "tag:yaml.org,2002:str"
    assert reader.resolve(yaml.ScalarNode, "2026-03-02", (True, False)).endswith(":str")
    reader.dispose()


@FAST
@given(text=suite_texts())
def test_yamlish_suite_text_loads_or_raises_a_harness_error(project: Path, text: str) -> None:
    path = project / "suites" / "s.yaml"
    path.write_text(text, encoding="utf-8")
    suite = _loads_or_names_the_file(lambda: loader.load_suite(path), path,
                                     Path("cases/w/INC-1.yaml"))
    assert suite is None or isinstance(suite, Suite)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=10,
)
_HEADER = {"run_id": "r", "suite": "s", "suite_digest": "d", "target": "t", "target_kind": "replay",
           "target_digest": "e", "started_at": "2026-03-10T09:00:00Z"}
_TRIAL = {"index": 1, "verdict": "pass", "duration_s": 0.1, "attempts": 1, "error": None,
          "response": {"output": "ok"},
          "checks": [{"kind": "contains", "verdict": "pass", "reason": "found", "line": 3}]}
_CASE = {"case_id": "INC-1", "verdict": "pass", "pass_rate": 1.0, "min_pass_rate": 1.0,
         "path": "c.yaml", "line": 1, "workflow": "w", "trials": [_TRIAL]}
_FIELDS = sorted({*_HEADER, *_CASE, *_TRIAL, "version", "type", "output", "tool_calls",
                  "sources", "approvals", "metadata", "reported", "kind", "reason", "counts",
                  "interrupted"})
_RESPONSE_FIELDS = ["output", "tool_calls", "sources", "approvals", "metadata", "reported"]


def _line(kind: str, body: dict, changes: dict) -> bytes:
    return json.dumps({"version": 1, "type": kind, **body, **changes}).encode()


def _case_line(changes: dict, trial_changes: dict, response_changes: dict) -> bytes:
    """A case line whose first trial (and its response) has some fields changed."""
    trial = {**_TRIAL, "response": {"output": "ok", **response_changes}, **trial_changes}
    return _line("case", {**_CASE, "trials": [trial]}, changes)


HEADER_LINE = _line("header", _HEADER, {})


def _record_lines() -> st.SearchStrategy[bytes]:
    changes = st.dictionaries(st.sampled_from(_FIELDS), _json, max_size=3)
    return st.one_of(
        st.builds(_line, st.just("header"), st.just(_HEADER), changes),
        st.builds(_line, st.just("case"), st.just(_CASE), changes),
        st.builds(_case_line, changes, st.dictionaries(st.sampled_from(sorted(_TRIAL)), _json,
                                                       max_size=2),
                  st.dictionaries(st.sampled_from(_RESPONSE_FIELDS), _json, max_size=2)),
        st.builds(_line, st.just("end"), st.just({"counts": {}}), changes),
        _json.map(lambda value: json.dumps(value).encode()),
        st.binary(max_size=60).map(lambda raw: raw.replace(b"\n", b"")),
        st.sampled_from([b"", b"  ", b"[" * 5000, b'{"version": 1, "type": "case"',
                         b"\xef\xbb\xbf{}"]),
    )


@FAST
@given(lines=st.lists(_record_lines(), max_size=6), newline_at_end=st.booleans())
@example(lines=[HEADER_LINE, b"[" * 5000], newline_at_end=True)
@example(lines=[HEADER_LINE, _case_line({}, {"response": 5}, {})], newline_at_end=True)
@example(lines=[HEADER_LINE, _case_line({}, {}, {"tool_calls": "lookup"})], newline_at_end=True)
def test_any_lines_as_a_run_record_read_or_raise_a_harness_error(
        tmp_path: Path, lines: list[bytes], newline_at_end: bool) -> None:
    path = tmp_path / "run.jsonl"
    path.write_bytes(b"\n".join(lines) + (b"\n" if newline_at_end else b""))
    record = _loads_or_names_the_file(lambda: records.read_run(path), path)
    assert record is None or isinstance(record, records.RunRecord)


def test_the_unedited_parts_load(tmp_path: Path, case_file: Path) -> None:
    """The generators start from a case and record lines the readers accept: what fails above
    is what the generators changed."""
    path = tmp_path / "run.jsonl"
    path.write_bytes(b"\n".join([HEADER_LINE, _case_line({}, {}, {}),
                                  _line("end", {"counts": {}}, {})]) + b"\n")
    record = records.read_run(path)
    assert record.complete and [r.case_id for r in record.results] == ["INC-1"]
    case_file.write_text(VALID_CASE, encoding="utf-8")
    assert loader.load_case(case_file).id == "INC-1"


# --- the limits, at their edges -------------------------------------------------------------


def _nested_input(depth: int) -> str:
    """A case whose input holds lists ``depth`` levels below the top-level mapping."""
    return f"input: {'[' * depth}{']' * depth}\nexpect:\n  - contains: x\n"


def test_nesting_up_to_max_depth_loads_and_one_level_more_is_refused(case_file: Path) -> None:
    case_file.write_text(_nested_input(loader.MAX_DEPTH), encoding="utf-8")
    assert loader.load_case(case_file).input is not None
    case_file.write_text(_nested_input(loader.MAX_DEPTH + 1), encoding="utf-8")
    with pytest.raises(InputError) as info:
        loader.load_case(case_file)
    assert str(info.value) == (
        f"{case_file}:1: document nested deeper than {loader.MAX_DEPTH} levels")


def test_files_up_to_max_file_bytes_load_and_one_byte_more_is_refused(case_file: Path) -> None:
    body = "input: hi\nexpect:\n  - contains: x\n#"
    case_file.write_text(body + " " * (loader.MAX_FILE_BYTES - len(body)), encoding="utf-8")
    assert loader.load_case(case_file).input == "hi"
    with case_file.open("a", encoding="utf-8") as file:
        file.write(" ")
    with pytest.raises(InputError) as info:
        loader.load_case(case_file)
    assert str(info.value) == (f"{case_file}: file too large: {loader.MAX_FILE_BYTES + 1} "
                               f"bytes, at most {loader.MAX_FILE_BYTES}")


def _aliased_input(copies: int) -> str:
    """A case whose input is ``copies`` aliases of one list of 1000 values."""
    return ("input:\n  - &items [" + ", ".join(["x"] * 1000) + "]\n"
            + "  - *items\n" * (copies - 1) + "expect:\n  - contains: x\n")


def test_aliases_count_as_the_values_they_expand_to(case_file: Path) -> None:
    below = loader.MAX_NODES // 1000 - 1
    case_file.write_text(_aliased_input(below), encoding="utf-8")
    case = loader.load_case(case_file)
    assert len(case.input) == below and case.input[0] is case.input[-1]
    case_file.write_text(_aliased_input(below + 2), encoding="utf-8")
    with pytest.raises(InputError) as info:
        loader.load_case(case_file)
    assert str(info.value).startswith(f"{case_file}:")
    assert str(info.value).endswith(
        f"document too large: more than {loader.MAX_NODES} values (aliases included)")
