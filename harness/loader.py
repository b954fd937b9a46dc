"""YAML case and suite files -> model objects.

YAML is read with a safe loader that keeps the line of every key and list item, so that every
error names ``path:line``, the field, what was expected and what was found. Timestamps are not
resolved implicitly: dates stay strings until the schema reads them, so inputs and evidence pass
through to targets as plain JSON-compatible data.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import itertools
import marshal
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from harness import checks, memory, schema, targets
from harness.budget import DEFAULT_CHECK_BUDGET_S
from harness.checks.custom import PythonCheck
from harness.checks.effects import WriteRules
from harness.checks.judge import resources_of
from harness.digest import sha256_json, sha256_text
from harness.errors import CheckParamError, HarnessNote, InputError
from harness.files import cache_home, read_text, write_atomic_bytes
from harness.model import (
    TIMELINE_STEPS,
    CallPolicy,
    Case,
    Expectation,
    Incident,
    JudgeSpec,
    Suite,
    TargetSpec,
    Turn,
)

MAX_FILE_BYTES = 5 * 1024 * 1024
"""Case and suite files larger than this are refused."""
MAX_DEPTH = 64
"""Mappings and lists nested deeper than this are refused."""
MAX_NODES = 200_000
"""Documents with more values than this (after expanding aliases) are refused."""

if TYPE_CHECKING:
    # CSafeLoader (PyYAML built with libyaml) shares SafeConstructor and Resolver with
    # SafeLoader, which is all that _Loader uses.
    _BaseLoader = yaml.SafeLoader
else:
    _BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_RESOLVE: Callable[..., str] = _BaseLoader.resolve
"""PyYAML's resolver, which its stubs leave untyped."""


class MarkedDict(dict[Any, Any]):
    """A mapping that remembers its own line and the line of each key."""

    line: int
    lines: dict[Any, int]


class MarkedList(list[Any]):
    """A list that remembers its own line and the line of each item."""

    line: int
    lines: dict[int, int]


class _Loader(_BaseLoader):
    yaml_implicit_resolvers = {  # noqa: RUF012 - PyYAML's class-level table, copied
        first: [r for r in resolvers if r[0] != _TIMESTAMP]
        for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
    }

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.path = "<yaml>"
        self.nodes = 0
        self.anchored = not isinstance(stream, str) or "&" in stream
        """Whether the document may hold anchors (and so aliases)."""

    def _count(self, node: yaml.Node, depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise InputError(
                f"document too large: more than {MAX_NODES} values (aliases included)",
                path=self.path, line=node.start_mark.line + 1,
            )
        if depth > MAX_DEPTH:
            raise InputError(f"document nested deeper than {MAX_DEPTH} levels",
                             path=self.path, line=node.start_mark.line + 1)

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: Any) -> Any:
        # libyaml asks for every scalar's tag; keys and short values repeat from file to file,
        # and a tag depends only on the text and how it was written (plain, quoted).
        if kind is not yaml.ScalarNode or len(value) > _REMEMBERED_SCALAR:
            return _RESOLVE(self, kind, value, implicit)
        key = (value, implicit)
        tag = _TAGS.get(key)
        if tag is None:
            tag = _RESOLVE(self, kind, value, implicit)
            if len(_TAGS) < _REMEMBERED_TAGS:
                _TAGS[key] = tag
        return tag

    def construct_document(self, node: yaml.Node) -> Any:
        if self.anchored:
            self._walk(node, 0, set())
            return super().construct_document(node)
        self._tally(node)
        try:
            return self._plain(node)
        except InputError:
            raise
        except Exception:  # _Unusual, or a value PyYAML's path names the problem of
            return super().construct_document(node)

    def _plain(self, node: yaml.Node) -> Any:
        # Most case files hold only mappings, lists and plain values: these are built here
        # directly, as the constructors below would build them, without PyYAML's bookkeeping
        # for anchors and generators. Anything else (an explicit tag for another type, a merge
        # key, a value that cannot be read) raises, and PyYAML's own path builds the document
        # or names the problem.
        kind, tag = type(node), node.tag
        if kind is yaml.ScalarNode:
            build = _SCALARS.get(tag)
            if build is None:
                raise _Unusual
            return build(self, node)
        if kind is yaml.MappingNode and tag == _MAP:
            data = _marked(MarkedDict(), node)
            for key_node, value_node in node.value:
                key = self._plain(key_node)
                line = self._new_key(data, key, key_node)
                data[key] = self._plain(value_node)
                data.lines[key] = line
            return data
        if kind is yaml.SequenceNode and tag == _SEQ:
            items = _marked(MarkedList(), node)
            for index, item in enumerate(node.value):
                items.append(self._plain(item))
                items.lines[index] = item.start_mark.line + 1
            return items
        raise _Unusual

    def _new_key(self, data: MarkedDict, key: Any, key_node: yaml.Node) -> int:
        """The line of a key about to go into ``data``: one that cannot be a key, or is there
        already, is refused at its line."""
        line = key_node.start_mark.line + 1
        try:
            hash(key)
        except TypeError:
            raise InputError("a mapping key must be a plain value", path=self.path,
                             line=line) from None
        if key in data:
            raise InputError(f"duplicate key {key!r} (first at line {data.lines[key]})",
                             path=self.path, line=line)
        return line

    def _tally(self, root: yaml.Node) -> None:
        # Without anchors there are no aliases: each node is reached once, so counting and
        # measuring depth needs no recursion and no guard against cycles (same order, same
        # errors as the walk).
        stack = [(root, 0)]
        nodes, mapping, sequence = self.nodes, yaml.MappingNode, yaml.SequenceNode
        while stack:
            node, depth = stack.pop()
            nodes += 1
            if nodes > MAX_NODES or depth > MAX_DEPTH:
                self.nodes = nodes - 1
                self._count(node, depth)
            kind = type(node)
            if kind is mapping:
                for key, value in reversed(node.value):
                    stack += ((value, depth + 1), (key, depth + 1))
            elif kind is sequence:
                stack += [(item, depth + 1) for item in reversed(node.value)]
        self.nodes = nodes

    def _walk(self, node: yaml.Node, depth: int, active: set[int]) -> None:
        # Counts values as if aliases were expanded, to refuse alias bombs before building them.
        self._count(node, depth)
        if id(node) in active:
            raise InputError("recursive alias", path=self.path, line=node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            active.add(id(node))
            for key, value in node.value:
                self._walk(key, depth + 1, active)
                self._walk(value, depth + 1, active)
            active.discard(id(node))
        elif isinstance(node, yaml.SequenceNode):
            active.add(id(node))
            for item in node.value:
                self._walk(item, depth + 1, active)
            active.discard(id(node))

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        # Always deep, so that a value that cannot be built (an explicit tag on the wrong value,
        # an integer of too many digits) fails here, where its node and line are known.
        try:
            return super().construct_object(node, deep=True)
        except (InputError, yaml.YAMLError):
            raise
        except (ValueError, TypeError, LookupError, AttributeError):
            problem = f"cannot read this value as !!{node.tag.rsplit(':', 1)[-1]}"
            raise yaml.constructor.ConstructorError(None, None, problem,
                                                    node.start_mark) from None

    def construct_yaml_map(self, node: yaml.MappingNode) -> Any:
        data = _marked(MarkedDict(), node)
        yield data
        self.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            line = self._new_key(data, key, key_node)
            data[key] = self.construct_object(value_node, deep=True)
            data.lines[key] = line

    def construct_yaml_seq(self, node: yaml.SequenceNode) -> Any:
        data = _marked(MarkedList(), node)
        yield data
        for index, item in enumerate(node.value):
            data.append(self.construct_object(item, deep=True))
            data.lines[index] = item.start_mark.line + 1


_Marked = TypeVar("_Marked", MarkedDict, MarkedList)


def _marked(empty: _Marked, node: yaml.Node) -> _Marked:
    """An empty mapping or list that remembers its node's line (and will, its items')."""
    empty.line = node.start_mark.line + 1
    empty.lines = {}
    return empty


_TAGS: dict[tuple[str, Any], str] = {}
"""Short scalar texts (with how they were written) -> their resolved tag."""
_REMEMBERED_SCALAR = 64
_REMEMBERED_TAGS = 8192
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_Loader.add_constructor(_MAP, _Loader.construct_yaml_map)
_Loader.add_constructor(_SEQ, _Loader.construct_yaml_seq)
_SCALARS: dict[str, Any] = {
    "tag:yaml.org,2002:str": lambda loader, node: node.value,
    "tag:yaml.org,2002:null": lambda loader, node: None,
    "tag:yaml.org,2002:bool": lambda loader, node: loader.bool_values[node.value.lower()],
    "tag:yaml.org,2002:int": _Loader.construct_yaml_int,
    "tag:yaml.org,2002:float": _Loader.construct_yaml_float,
}
"""The plain values :meth:`_Loader._plain` builds itself, as SafeConstructor builds them."""


class _Unusual(Exception):
    """A document the direct path does not build: PyYAML's path builds it instead."""


def _excerpt(text: str, line: int, *, around: int = 2) -> str:
    lines = text.splitlines()
    first = max(1, line - around)
    last = min(len(lines), line + around)
    return "\n".join(
        f"{'>' if n == line else ' '} {n:4d} | {lines[n - 1]}" for n in range(first, last + 1)
    )


def read_yaml(file: Path, *, shown: Path | None = None,
              parsed: ParsedFiles | None = None) -> tuple[Any, str]:
    """Parse one YAML file; returns the data (with line marks) and the text.

    ``shown`` is how messages name the file (default: ``file`` itself); ``parsed`` holds the
    files parsed before, by the digest of their text (see :class:`ParsedFiles`).

    Every problem (missing, unreadable, too large, not UTF-8, empty, not YAML) raises
    :class:`InputError` naming the file and, where there is one, the line.
    """
    path = shown or file
    text = read_text(file, limit=MAX_FILE_BYTES, kind="a YAML file", shown=shown)
    if parsed is not None:
        known = parsed.get(text)
        if known is not None:
            return known, text
    data = _parse(text, path)
    if parsed is not None:
        parsed.put(text, data)
    return data, text


def _parse(text: str, path: Path) -> Any:
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise InputError("not a text file (contains a NUL byte)", path=path, line=line)
    loader = _Loader(text)
    loader.path = str(path)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        marked = mark.line + 1 if mark else None
        problem = f"invalid YAML: {exc.problem or exc.context}"
        excerpt = _excerpt(text, marked) if marked else None
        raise InputError(problem, path=path, line=marked, excerpt=excerpt) from None
    except yaml.YAMLError as exc:
        raise InputError(f"invalid YAML: {exc}", path=path) from None
    except RecursionError:
        raise InputError(f"document nested deeper than {MAX_DEPTH} levels", path=path) from None
    finally:
        loader.dispose()
    if data is None:
        raise InputError("file is empty; expected a mapping of fields", path=path, line=1)
    if not isinstance(data, Mapping):
        raise InputError(f"expected a mapping of fields at the top level, found "
                         f"{schema.describe(data)}", path=path, line=getattr(data, "line", 1))
    return data


class ParsedFiles:
    """Case files parsed before, by the digest of their text, kept between runs in a file per
    suite in the cache folder (:func:`harness.files.cache_home`): a run of an unchanged suite
    builds its cases from there instead of parsing the YAML again. Only what the parse gives
    is kept (values and line marks); every case is validated again as it is loaded.

    The cache is outside the project, like the judges' (nobody can plant an entry by committing
    a file), and is keyed by this module's source, PyYAML's and Python's versions: a changed
    loader parses afresh. A cache file that cannot be read is a miss; one that cannot be
    written is skipped, never an error. ``HARNESS_CACHE_DIR`` moves it."""

    def __init__(self, file: Path | None) -> None:
        self.file = file
        self._known: dict[str, Any] | None = None
        self._hits: set[str] = set()
        self._added: dict[str, Any] = {}

    @classmethod
    def of_suite(cls, suite: Path) -> ParsedFiles:
        if _PARSER_KEY is None:
            return cls(None)
        name = sha256_text(f"{_PARSER_KEY}\n{suite.resolve()}")
        return cls(cache_home() / "parsed" / f"{name}.marshal")

    def _stored(self) -> dict[str, Any]:
        """The entries in the cache file (none when it cannot be read or is another
        loader's)."""
        if self.file is None:
            return {}
        try:
            stored = marshal.loads(self.file.read_bytes())
        except (OSError, ValueError, EOFError, TypeError):
            return {}
        if not isinstance(stored, dict) or stored.get("key") != _PARSER_KEY:
            return {}
        entries = stored.get("entries")
        return entries if isinstance(entries, dict) else {}

    def get(self, text: str) -> Any:
        """The data parsed from ``text`` before, or None."""
        if self._known is None:
            self._known = self._stored()
        digest = sha256_text(text)
        stored = self._known.pop(digest, None)  # built once: the stored form is let go
        if stored is None:
            return None
        try:
            data = _unpacked(stored)
        except (ValueError, TypeError, AttributeError):  # not what _packed makes
            return None
        if not isinstance(data, Mapping):
            return None
        self._hits.add(digest)
        return data

    def put(self, text: str, data: Any) -> None:
        try:
            packed = _packed(data)
        except _Unusual:  # a type a plain document does not hold (a date, a set, bytes)
            return
        self._added[sha256_text(text)] = packed

    def save(self) -> None:
        """Keep what this load used: the files parsed now, and those built from the cache
        (read from it again, since their stored form was let go); entries of files no longer
        read are dropped. Nothing is written when nothing changed."""
        if self.file is None or not (self._added or self._known):
            return
        entries = {digest: entry for digest, entry in self._stored().items()
                   if digest in self._hits} if self._hits else {}
        entries.update(self._added)
        with contextlib.suppress(OSError, ValueError):
            write_atomic_bytes(self.file, marshal.dumps({"key": _PARSER_KEY,
                                                         "entries": entries}), sync=False)


def _packed(value: Any) -> Any:
    """A parsed value in a form marshal keeps: ("m", line, key lines, {key: value}) for a
    mapping, ("l", line, item lines, [value, ...]) for a list (keys are plain values)."""
    if isinstance(value, MarkedDict):
        return ("m", value.line, dict(value.lines),
                {key: _packed(item) for key, item in value.items()})
    if isinstance(value, MarkedList):
        return ("l", value.line, dict(value.lines), [_packed(item) for item in value])
    if value is None or type(value) in (str, int, float, bool):
        return value
    raise _Unusual


def _unpacked(value: tuple[str, int, dict[Any, int], Any]) -> Any:
    kind, line, lines, items = value
    data: MarkedDict | MarkedList
    if kind == "m":
        data = MarkedDict({key: _unpacked(item) if type(item) is tuple else item
                           for key, item in items.items()})
    elif kind == "l":
        data = MarkedList([_unpacked(item) if type(item) is tuple else item for item in items])
    else:
        raise ValueError(kind)
    data.line, data.lines = line, lines
    return data


def _parser_key() -> str | None:
    try:
        source = Path(__file__).read_bytes()
    except OSError:  # installed without its source: no way to tell one loader from another
        return None
    return sha256_text(b"\n".join([source, yaml.__version__.encode(), sys.version.encode(),
                                    _BaseLoader.__name__.encode()]))


_PARSER_KEY = _parser_key()
"""What a parsed file depends on besides its text: this module, PyYAML, Python (None:
unknown, and nothing is cached)."""


def _validate(node: schema.Node, data: Any, path: Path, text: str) -> Any:
    try:
        return node.check(data, "", getattr(data, "line", 1))
    except schema.Invalid as exc:
        excerpt = _excerpt(text, exc.line) if exc.line else None
        raise InputError(exc.problem, path=path, line=exc.line, field=exc.field or None,
                         excerpt=excerpt) from None


# --- cases --------------------------------------------------------------------------------


def _build_expectation(entry: Any, where: str, line: int | None) -> Expectation:
    if not isinstance(entry, Mapping) or len(entry) != 1:
        found = f"{len(entry)} keys" if isinstance(entry, Mapping) else schema.describe(entry)
        raise schema.Invalid(
            f"expected a one-key mapping 'kind: params' (e.g. '- contains: refund'), "
            f"found {found}",
            field=where, line=line,
        )
    ((kind, params),) = entry.items()
    line = getattr(entry, "line", line)
    try:
        check = checks.build(str(kind), params)
    except LookupError as exc:
        raise schema.Invalid(str(exc.args[0]), field=f"{where}.{kind}", line=line) from None
    except CheckParamError as exc:
        field = f"{where}.{kind}" + (f".{exc.param}" if exc.param else "")
        raise schema.Invalid(exc.problem, field=field, line=line) from None
    return Expectation(kind=str(kind), params=params, check=check, line=line,
                       bounded=checks.lookup(str(kind)).bounded)


CASE_SCHEMA = schema.case_record(schema.Custom(_build_expectation, schema=checks.json_schema))


def cases_root(path: Path) -> Path:
    """The project folder of a case file: the parent of its nearest ``cases`` folder."""
    for parent in path.resolve().parents:
        if parent.name == "cases":
            return parent.parent
    return path.resolve().parent


def _folder_name(path: Path, folders: dict[str, str] | None) -> str:
    """The name of the folder that really holds ``path`` (symbolic links followed). A file
    that is not a link is where its folder is, so ``folders`` remembers each folder's real
    path, and a suite of thousands of cases resolves each folder once."""
    if folders is None or path.is_symlink():
        return path.resolve().parent.name
    parent = str(path.parent)
    real = folders.get(parent)
    if real is None:
        real = folders[parent] = os.path.realpath(parent)
    return os.path.basename(real)


def load_case(
    path: Path,
    *,
    defaults: Mapping[str, Any] | None = None,
    display: str | None = None,
    folders: dict[str, str] | None = None,
    parsed: ParsedFiles | None = None,
) -> Case:
    """Load and validate one case file; ``defaults`` are the suite's (trials, timeout_s, ...).

    ``display`` is how errors and reports name the file (e.g. relative to the project);
    ``folders`` remembers real folder paths from one case to the next (see
    :func:`_folder_name`); ``parsed`` the files parsed before (see :class:`ParsedFiles`).
    """
    shown = Path(display) if display else path
    data, text = read_yaml(path, shown=shown, parsed=parsed)
    fields = _validate(CASE_SCHEMA, data, shown, text)
    present = [name for name in schema.INCIDENT_FIELDS if name in fields]
    evidence = fields.get("evidence", {})
    incident = None
    if present:
        missing = [name for name in schema.INCIDENT_REQUIRED if name not in fields]
        if missing:
            problem = (
                f"missing required field {missing[0]!r}: a case with incident fields "
                f"({', '.join(present)}) needs {', '.join(schema.INCIDENT_REQUIRED)}"
            )
            raise InputError(problem, path=shown, line=data.line, field=missing[0])
        timeline = fields.get("timeline", {})
        _check_timeline(timeline, data.get("timeline"), shown)
        incident = Incident(
            category=fields["category"],
            severity=fields["severity"],
            status=fields["status"],
            owner=fields["owner"],
            near_miss=fields.get("near_miss", False),
            severity_basis=tuple(fields.get("severity_basis", ())),
            business_owner=fields.get("business_owner"),
            timeline=timeline,
            impact=fields.get("impact", {}),
            root_cause=fields.get("root_cause"),
            fix=fields.get("fix", {}),
            prevention=fields.get("prevention"),
            references=tuple(fields.get("references", ())),
        )
    turns = _turns(fields, data, shown, text)
    if turns:
        case_input = fields.get("context", {})
    elif "input" in fields:
        case_input = fields["input"]
    elif "input" in evidence:
        case_input = evidence["input"]
    else:
        raise InputError("missing required field 'input' (or evidence.input)",
                         path=shown, line=data.line, field="input")
    defaults = defaults or {}
    case = Case(
        id=str(fields.get("id", path.stem)),
        path=shown,
        line=data.lines.get("id", data.line),
        workflow=fields.get("workflow") or _folder_name(path, folders),
        title=fields.get("title"),
        input=case_input,
        expect=tuple(fields["expect"]),
        trials=fields.get("trials", defaults.get("trials", 1)),
        min_pass_rate=fields.get("min_pass_rate", defaults.get("min_pass_rate", 1.0)),
        timeout_s=fields.get("timeout_s", defaults.get("timeout_s")),
        check_budget_s=fields.get("check_budget_s",
                                  defaults.get("check_budget_s", DEFAULT_CHECK_BUDGET_S)),
        as_of=fields.get("as_of"),
        tags=tuple(fields.get("tags", ())),
        incident=incident,
        evidence=evidence,
        draft=fields.get("draft", False),
        digest=sha256_text(text),
        retired=fields["retired"]["reason"] if "retired" in fields else None,
        reference=fields.get("reference"),
        acceptable_outputs=tuple(fields.get("acceptable_outputs", ())),
        turns=turns,
        expect_on=fields.get("expect_on", "final"),
    )
    _issue_notes(case)
    return case


TURN_FIELDS = ("context", "expect_on")
"""Case fields that only mean something beside ``turns``."""
TURN_REQUEST_KEYS = ("message", "messages")
"""Keys of a turn's request the harness fills: ``context`` may not hold them."""


def _turns(fields: Mapping[str, Any], data: Any, path: Path, text: str) -> tuple[Turn, ...]:
    """The case's scripted turns (empty without ``turns``); ``turns`` beside ``input``, or
    ``context`` and ``expect_on`` without ``turns``, are errors at their line."""

    def fail(problem: str, field: str, line: int | None) -> InputError:
        excerpt = _excerpt(text, line) if line else None
        return InputError(problem, path=path, line=line, field=field, excerpt=excerpt)

    if "turns" not in fields:
        for name in TURN_FIELDS:
            if name in fields:
                raise fail(f"{name} applies only to a case with turns", name,
                           data.lines.get(name))
        return ()
    if "input" in fields:
        raise fail("input and turns exclude each other: a case sends one input, or scripts "
                   "a conversation in turns; put what every turn's request carries in context",
                   "input", data.lines.get("input"))
    context = fields.get("context", {})
    for key in TURN_REQUEST_KEYS:
        if key in context:
            line = schema.line_of(data["context"], key, data.lines.get("context"))
            raise fail(f"context may not hold {key!r}: each turn's request gets the turn's "
                       f"message as 'message' and the conversation so far as 'messages'",
                       f"context.{key}", line)
    return tuple(Turn(user=turn["user"], expect=tuple(turn["expect"]), line=turn["line"])
                 for turn in fields["turns"])


def _issue_notes(case: Case) -> None:
    for where, expectation in _placed(case):
        for note in checks.notes_of(expectation.check):
            warnings.warn(HarnessNote(f"{case.path}:{expectation.line}: {where}: {note}"),
                          stacklevel=3)


def _placed(case: Case) -> Iterable[tuple[str, Expectation]]:
    """Every check of the case with the field path that names it in errors: ``expect[0].kind``,
    ``turns[2].expect[0].kind``."""
    for index, expectation in enumerate(case.expect):
        yield f"expect[{index}].{expectation.kind}", expectation
    for number, turn in enumerate(case.turns):
        for index, expectation in enumerate(turn.expect):
            yield f"turns[{number}].expect[{index}].{expectation.kind}", expectation


def _check_timeline(timeline: Mapping[str, Any], raw: Any, path: Path) -> None:
    steps = [step for step in TIMELINE_STEPS if step in timeline]
    for earlier, later in itertools.pairwise(steps):
        if timeline[later] < timeline[earlier]:
            line = schema.line_of(raw, later, getattr(raw, "line", None))
            problem = (
                f"{later} ({timeline[later].isoformat()}) is before "
                f"{earlier} ({timeline[earlier].isoformat()})"
            )
            raise InputError(problem, path=path, line=line, field=f"timeline.{later}")


def check_unique(cases: Iterable[Case]) -> None:
    """Raise :class:`InputError` when two cases share an id, naming both files."""
    seen: dict[str, Case] = {}
    for case in cases:
        if case.id in seen:
            first = seen[case.id]
            problem = f"duplicate case id {case.id!r}; also used in {first.path}:{first.line}"
            raise InputError(problem, path=case.path, line=case.line, field="id")
        seen[case.id] = case


# --- suites -------------------------------------------------------------------------------


def _build_target(entry: Any, where: str, line: int | None) -> TargetSpec:
    name = where.rsplit(".", 1)[-1]
    if not isinstance(entry, Mapping):
        raise schema.Invalid(
            f"expected a mapping with one adapter ({', '.join(targets.ADAPTERS)}), "
            f"found {schema.describe(entry)}", field=where, line=line,
        )
    line = getattr(entry, "line", line)
    kinds = [key for key in entry if key in targets.ADAPTERS]
    if len(kinds) != 1:
        found = ", ".join(map(str, kinds)) if kinds else "none"
        raise schema.Invalid(
            f"expected exactly one adapter key ({', '.join(targets.ADAPTERS)}), found {found}",
            field=where, line=line,
        )
    kind = kinds[0]
    adapter = targets.ADAPTERS[kind]
    main = adapter.main.check(entry[kind], f"{where}.{kind}", schema.line_of(entry, kind, line))
    options_node = schema.Record({**adapter.options, **schema.CALL_OPTIONS},
                                 required=adapter.required)
    options_raw = MarkedDict({k: v for k, v in entry.items() if k != kind})
    options_raw.line = line or 1
    options_raw.lines = {k: v for k, v in getattr(entry, "lines", {}).items() if k != kind}
    checked = options_node.check(options_raw, where, line)
    options = {k: v for k, v in checked.items() if k not in schema.CALL_OPTIONS}
    calls = CallPolicy(**{k: v for k, v in checked.items() if k in schema.CALL_OPTIONS})
    spec_json = {"name": name, "kind": kind, "main": main, "options": options}
    return TargetSpec(name=name, kind=kind, main=main, options=options, line=line,
                      calls=calls, digest=sha256_json(spec_json))


JUDGE_OPTIONS = schema.Record({
    "receives": schema.Text(choices=("redacted", "raw"), description=(
        "What leaves the machine: redacted (default, the run's redaction applied) or raw.")),
    "max_calls": schema.Number(integer=True, minimum=0, description="Most calls per run."),
    "max_cost": schema.Number(minimum=0, description="Most cost per run (prices: table)."),
    "timeout_s": schema.Number(minimum=0.001, description="Seconds one call may take "
                                                          "(default 60)."),
})


def _build_judge(entry: Any, where: str, line: int | None) -> JudgeSpec:
    if not isinstance(entry, Mapping):
        return JudgeSpec(target=_build_target(entry, where, line))
    line = getattr(entry, "line", line)
    own = MarkedDict({k: v for k, v in entry.items() if k in JUDGE_OPTIONS.fields})
    own.line = line or 1
    own.lines = {k: v for k, v in getattr(entry, "lines", {}).items() if k in own}
    rest = MarkedDict({k: v for k, v in entry.items() if k not in JUDGE_OPTIONS.fields})
    rest.line = line or 1
    rest.lines = {k: v for k, v in getattr(entry, "lines", {}).items() if k in rest}
    options = JUDGE_OPTIONS.check(own, where, line)
    target = _build_target(rest, where, line)
    receives = options.get("receives", "redacted")
    return JudgeSpec(target=target, receives=receives, max_calls=options.get("max_calls"),
                     max_cost=options.get("max_cost"), timeout_s=options.get("timeout_s", 60.0),
                     digest=sha256_json({"target": target.digest, "receives": receives}))


_TARGET_ENTRY = schema.Custom(
    _build_target,
    schema={"type": "object",
            "description": "One adapter key (python, command, http, openai, replay) with its "
                           "options."},
)
SUITE_SCHEMA = schema.suite_record(_TARGET_ENTRY, schema.Custom(
    _build_judge,
    schema={"type": "object",
            "description": "A target (one adapter key with its options), with receives, "
                           "max_calls and max_cost."},
))


def suite_root(path: Path) -> Path:
    """The folder that holds ``suites/``: case globs are resolved against it."""
    parent = path.resolve().parent
    return parent.parent if parent.name == "suites" else parent


def display_path(path: Path, root: Path) -> str:
    """How errors and records name a file: relative to the project folder when inside it."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def load_suite(path: Path) -> Suite:
    """Load a suite file and every case it includes; all errors are :class:`InputError`.

    Nothing of the project's code is imported: a ``python:`` check is only named here (see
    :func:`import_project_code`), and a ``python:`` target only when the run builds it.
    """
    with memory.building():
        return _load_suite(path)


def _load_suite(path: Path) -> Suite:
    data, text = read_yaml(path)
    fields = _validate(SUITE_SCHEMA, data, path, text)
    root = suite_root(path)
    specs = {
        name: _with_path(spec, path) for name, spec in fields["targets"].items()
    }
    if not specs:
        raise InputError("expected at least one target", path=path,
                         line=data.lines.get("targets"), field="targets")
    defaults = fields.get("defaults", {})
    if "target" in defaults and defaults["target"] not in specs:
        line = schema.line_of(data["defaults"], "target", None)
        raise InputError(f"no target named {defaults['target']!r}; targets: {', '.join(specs)}",
                         path=path, line=line, field="defaults.target")
    files = _expand_globs(fields["cases"], data["cases"], root, path, data.lines.get("cases"))
    folders: dict[str, str] = {}
    parsed = ParsedFiles.of_suite(path)
    cases = tuple(load_case(file, defaults=defaults, display=display_path(file, root),
                            folders=folders, parsed=parsed) for file in files)
    check_unique(cases)
    judges = {name: dataclasses.replace(judge, target=_with_path(judge.target, path))
              for name, judge in fields.get("judges", {}).items()}
    embedders = {name: dataclasses.replace(spec, target=_with_path(spec.target, path))
                 for name, spec in fields.get("embedders", {}).items()}
    _check_resources(cases, {"judges": judges, "embedders": embedders}, path)
    parsed.save()
    digest = sha256_json({
        "suite": sha256_text(text),
        "cases": [[str(case.path), case.digest] for case in cases],
    })
    return Suite(
        name=fields["name"],
        path=path,
        root=root,
        cases=cases,
        targets=specs,
        description=fields.get("description"),
        gate=fields.get("gate", {}),
        defaults=defaults,
        digest=digest,
        judges=judges,
        embedders=embedders,
        prices={model: dict(price) for model, price in fields.get("prices", {}).items()},
    )


def _check_resources(cases: Iterable[Case], sections: Mapping[str, Mapping[str, Any]],
                     path: Path) -> None:
    """Every judge and embedder a check names must be in the suite: an InputError at the
    check's line otherwise, naming the ones there are."""
    for case in cases:
        for where, expectation in _placed(case):
            for section, name in resources_of(expectation.check).items():
                known = sections.get(section, {})
                if name in known:
                    continue
                listed = ", ".join(known) or f"none: add a {section}: section to {path}"
                problem = f"no {section[:-1]} named {name!r} in the suite; {section}: {listed}"
                raise InputError(problem, path=case.path, line=expectation.line, field=where)


def load_examples(path: Path) -> list[dict[str, Any]]:
    """Labelled examples for judge calibration (see :data:`harness.schema.EXAMPLES`), each with
    the ``line`` it starts at; bad input raises :class:`InputError` naming file, line, field."""
    data, text = read_yaml(path)
    checked = _validate(schema.EXAMPLES, data, path, text)
    raw = data["examples"]
    return [{**example, "line": schema.line_of(raw, index, data.line)}
            for index, example in enumerate(checked["examples"])]


TOOLS_FILE = "tools.yaml"


def load_tool_rules(root: Path) -> WriteRules | None:
    """The project's ``tools.yaml`` (beside ``suites/``), or None when there is none; bad input
    raises :class:`InputError` naming file, line and field."""
    path = root / TOOLS_FILE
    if not path.is_file():
        return None
    data, text = read_yaml(path)
    checked = _validate(schema.TOOLS, data, path, text)
    try:
        return WriteRules.from_mapping(checked, source=str(path))
    except ValueError as exc:
        raise InputError(str(exc).removeprefix(f"{path}: "), path=path) from None


def import_project_code(cases: Iterable[Case], root: Path) -> None:
    """Import the functions the cases' ``python:`` checks name, appending ``root`` to
    ``sys.path``; a bad reference is an :class:`InputError` at the check's line.

    Only the code that runs checks calls this, so that a reference that does not import is bad
    input before the first target call rather than an ``error`` outcome of every case.
    """
    for case in cases:
        for where, expectation in _placed(case):
            if not isinstance(expectation.check, PythonCheck):
                continue
            try:
                expectation.check.load(root)
            except CheckParamError as exc:
                raise InputError(exc.problem, path=case.path, line=expectation.line,
                                 field=f"{where}.{exc.param}") from None


def choose_target(suite: Suite, name: str | None) -> TargetSpec:
    """The suite's target called ``name`` (or its default target); an error lists the names."""
    name = name or suite.defaults.get("target")
    if name is None:
        problem = f"no target chosen: pass a target, one of {', '.join(suite.targets)}"
        raise InputError(problem, path=suite.path)
    if name not in suite.targets:
        problem = f"no target named {name!r}; the suite's targets: {', '.join(suite.targets)}"
        raise InputError(problem, path=suite.path, field="targets")
    return suite.targets[name]


def _with_path(spec: TargetSpec, path: Path) -> TargetSpec:
    return dataclasses.replace(spec, path=path)


def _expand_globs(
    patterns: list[str], raw: Any, root: Path, path: Path, line: int | None
) -> list[Path]:
    files: dict[Path, None] = {}
    for index, pattern in enumerate(patterns):
        # The root is escaped: only the pattern's own wildcards count, not "[" in a folder name.
        # Matches stay strings until they are chosen, and sort as paths do (part by part).
        found = glob.glob(str(Path(glob.escape(str(root))) / pattern), recursive=True)
        matched = [Path(p) for p in sorted(
            (p for p in found
             if os.path.splitext(p)[1] in (".yaml", ".yml") and os.path.isfile(p)),
            key=lambda p: Path(p).parts if os.altsep else p.split(os.sep))]
        if not matched:
            line = schema.line_of(raw, index, line)  # a single glob stands on the cases: line
            problem = f"glob {pattern!r} matches no case file under {root}"
            raise InputError(problem, path=path, line=line, field=f"cases[{index}]")
        files.update(dict.fromkeys(matched))
    return list(files)
