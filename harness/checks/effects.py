"""Which tool calls act on something: the one rule that tells a write from a read.

Intake drafts with it (which call did the damage) and checks judge with it
(``no_destructive_calls``, ``approval_required`` with ``writes_only``).

A case drafted from an incident must find the call that did the damage, and judging a tool by
the first verb of its name misses the most dangerous calls of all: ``execute_sql`` with
``DELETE FROM executives``, ``bash`` with ``psql -c 'DROP TABLE users'``. :func:`effect` says
what a call does and why. It is pure, bounded and never raises: a trace holds whatever a
workflow sent.

Rules, the first that decides wins:

1. the project's own list (:class:`WriteRules`): ``read_tools`` is a read, ``write_tools`` a
   write, destructive when the arguments show a destructive statement or method;
2. what the arguments do: SQL statements (:func:`sql_effects`), an HTTP method in an argument
   named ``method``, ``http_method`` or ``verb``, and shell commands (:func:`shell_effects`).
   A write found here decides, whatever the tool's annotations claim: the MCP specification
   calls annotations hints, and a server that marks ``execute_sql`` read-only does not make
   ``DELETE FROM executives`` a read (annotations can only add: ``destructiveHint`` makes a
   write destructive);
3. MCP tool annotations, when they carry ``readOnlyHint`` or ``destructiveHint``:
   ``readOnlyHint: true`` is a read; otherwise a write, destructive unless
   ``destructiveHint: false`` (a hint left out takes the MCP default; a call without these hints
   is unknown here, not destructive);
   a read found in the arguments (``SELECT``, ``GET``) decides only when neither annotations
   nor the name say write, since a tool may select the rows it then acts on;
4. the name's first word against :data:`WRITE_VERBS` and :data:`READ_VERBS` (namespaces such as
   ``functions.``, ``server__`` and ``mcp__server__`` set aside), or a name in
   :data:`harness.checks.automation.WRITE_TOOLS`. A name starting with ``delete``, ``drop`` and
   the like (:data:`DESTRUCTIVE_VERBS`) is destructive. Any other name is unknown: not a write.

SQL is recognised by its grammar (``DELETE FROM <table>``, ``UPDATE <table> SET <col> =``, ...),
so that prose such as "Delete from my account the card ending 1881" is not SQL. A string is
read as SQL when it starts with a statement (after white space and comments) or when its
argument's key or the tool's name says SQL or command (``sql``, ``query``, ``command``, ...);
then every statement counts: after ``;``, in a CTE, in parentheses or quotes.
"""

from __future__ import annotations

import ast
import functools
import json
import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from harness.checks.automation import WRITE_TOOLS
from harness.model import ToolCall

WRITE_VERBS = frozenset({
    "issue", "update", "cancel", "delete", "create", "refund", "charge", "transfer", "void",
    "modify", "remove", "close", "set", "write", "pay", "grant", "revoke", "apply", "send",
    "post", "put", "patch", "insert", "drop", "truncate", "destroy", "purge", "wipe", "deploy",
    "merge", "push", "publish", "approve", "reject", "book", "order", "submit", "upload", "move",
    "rename", "reset", "disable", "enable", "terminate", "kill", "archive",
})
"""The first word of a tool name that acts on something (``issue_refund``, ``cancelOrder``)."""
READ_VERBS = frozenset({
    "get", "list", "search", "read", "fetch", "lookup", "query", "find", "describe", "count",
    "check", "show", "view", "retrieve", "browse", "inspect", "select",
})
"""The first word of a tool name that only reads (``get_order``, ``lookupOrder``)."""
DESTRUCTIVE_VERBS = frozenset({
    "delete", "remove", "drop", "truncate", "destroy", "purge", "wipe",
})
"""Write verbs whose call deletes what it names."""

MAX_TEXT = 100_000
"""Characters of one string argument looked at."""
MAX_NODES = 5_000
"""Values (mappings, lists and leaves) of one call's arguments looked at."""
MAX_CHARS = 1_000_000
"""Characters of all string arguments of one call looked at."""
MAX_DEPTH = 16
"""Nesting of arguments (JSON inside strings included) looked into."""
MAX_STATEMENTS = 200
"""SQL statements looked at in one string."""
STATEMENT_CHARS = 20_000
"""Characters of one SQL statement read to find its WHERE clause."""
MAX_MARKS = 20_000
"""Semicolons, parentheses and quotes stepped over in one string to find where statements end;
past it, an UPDATE's WHERE is not looked for (and the UPDATE counts as destructive)."""
MAX_ARGV = 64
"""Words of a command given as a list (``["bash", "-lc", "..."]``) joined into one line."""
MAX_SHELL_DEPTH = 3
"""Shell commands nested in shell commands (``bash -c "..."``) looked into."""

_SQL_WORDS = frozenset({
    "sql", "query", "statement", "stmt", "command", "cmd", "q", "script", "code", "db",
    "database", "psql", "mysql", "sqlite", "sqlite3", "postgres",
})
_SHELL_WORDS = frozenset({
    "bash", "sh", "zsh", "shell", "terminal", "exec", "execute", "command", "cmd", "console",
    "powershell", "pwsh", "subprocess", "ssh", "script", "argv", "cmdline",
})
_METHOD_KEYS = frozenset({"method", "http_method", "verb", "http_verb", "request_method"})
_HTTP_WRITES = {"POST": False, "PUT": False, "PATCH": False, "DELETE": True}
_HTTP_READS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Effect:
    """What a tool call does, and the one line that says why."""

    write: bool
    """The call changes state: it acts on a record, a table, a file, a resource."""
    destructive: bool
    """It deletes or overwrites (DELETE, DROP, TRUNCATE, HTTP DELETE, rm, destructiveHint)."""
    why: str
    """What decided, as a person reads it: ``SQL DELETE statement in argument 'query'``."""


@dataclass(frozen=True, slots=True)
class WriteRules:
    """A project's own list: tools that write and tools that only read, by exact name."""

    writes: frozenset[str] = frozenset()
    reads: frozenset[str] = frozenset()
    source: str | None = None
    """Where the list came from (a file, a setting), named in messages."""

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str | None = None) -> WriteRules:
        """The list from ``{"write_tools": [...], "read_tools": [...]}``; anything else is a
        ``ValueError`` that names the key."""
        where = f"{source}: " if source else ""
        if not isinstance(data, Mapping):
            problem = (f"{where}expected a mapping with write_tools and read_tools, "
                       f"found {type(data).__name__}")
            raise ValueError(problem)
        lists: dict[str, frozenset[str]] = {"write_tools": frozenset(), "read_tools": frozenset()}
        for key, value in data.items():
            if key not in lists:
                problem = f"{where}{key}: unknown key; expected write_tools or read_tools"
                raise ValueError(problem)
            lists[key] = _tool_names(value, f"{where}{key}")
        both = sorted(lists["write_tools"] & lists["read_tools"])
        if both:
            problem = (f"{where}{', '.join(both)}: listed in both write_tools and read_tools; "
                       f"keep each tool in one list")
            raise ValueError(problem)
        return cls(writes=lists["write_tools"], reads=lists["read_tools"], source=source)


def _tool_names(value: Any, field: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    if not isinstance(value, list | tuple):
        problem = f"{field}: expected a list of tool names, found {value!r}"
        raise ValueError(problem)
    for index, name in enumerate(value):
        if not isinstance(name, str) or not name.strip():
            problem = f"{field}[{index}]: expected a tool name, found {name!r}"
            raise ValueError(problem)
    return frozenset(name.strip() for name in value)


# --- the rule -------------------------------------------------------------------------------


def effect(call: Mapping[str, Any] | ToolCall, rules: WriteRules | None = None) -> Effect:
    """What a call does. ``call`` is a tool call as case files hold them: ``{"name": str,
    "args": mapping, "result": any}``, optionally ``"annotations"`` (MCP tool annotations:
    ``readOnlyHint``, ``destructiveHint``, ``idempotentHint``, ``openWorldHint``); a
    :class:`~harness.model.ToolCall` is read the same way."""
    if isinstance(call, ToolCall):
        call = {"name": call.name, "args": call.args, "annotations": call.annotations}
    if not isinstance(call, Mapping):
        return Effect(False, False, "effect unknown: not a tool call")
    raw = call.get("name")
    name = raw.strip() if isinstance(raw, str) else ""
    args = call.get("args", call.get("arguments"))
    listed = _by_list(name, rules)
    if listed is not None and not listed.write:
        return listed
    shown = _by_arguments(name, args)
    if listed is None:
        hinted = _by_annotations(call.get("annotations"))
        if shown is not None and shown.write:
            if hinted is not None and not hinted.write:
                return Effect(True, shown.destructive, f"{shown.why}, though the tool's "
                                                       f"annotations claim {hinted.why[15:]}")
            if hinted is not None and hinted.destructive and not shown.destructive:
                return Effect(True, True, f"{shown.why}; {hinted.why}")
            return shown
        if hinted is not None:
            return hinted
    if listed is not None:
        if shown is not None and shown.destructive:
            return Effect(True, True, f"{listed.why}; {shown.why}")
        return listed
    if shown is not None and shown.write:
        return shown
    named = _by_name(name)
    return shown if shown is not None and not named.write else named


def is_write(call: Mapping[str, Any] | ToolCall, rules: WriteRules | None = None) -> bool:
    """Whether a call changes state (see :func:`effect`)."""
    return effect(call, rules).write


def _by_list(name: str, rules: WriteRules | None) -> Effect | None:
    if rules is None or not name:
        return None
    where = f" in {rules.source}" if rules.source else ""
    if name in rules.reads:
        return Effect(False, False, f"listed in read_tools{where}")
    if name in rules.writes:
        return Effect(True, False, f"listed in write_tools{where}")
    return None


def _by_annotations(annotations: Any) -> Effect | None:
    if not isinstance(annotations, Mapping):
        return None
    read_only = annotations.get("readOnlyHint")
    destructive = annotations.get("destructiveHint")
    read_only = read_only if isinstance(read_only, bool) else None
    destructive = destructive if isinstance(destructive, bool) else None
    if read_only is None and destructive is None:
        return None
    if read_only:
        return Effect(False, False, "MCP annotation readOnlyHint: true")
    if destructive is None:
        return Effect(True, True,
                      "MCP annotation readOnlyHint: false (destructiveHint defaults to true)")
    if destructive:
        return Effect(True, True, "MCP annotation destructiveHint: true")
    if read_only is None:
        return Effect(True, False,
                      "MCP annotation destructiveHint: false (readOnlyHint defaults to false)")
    return Effect(True, False, "MCP annotation readOnlyHint: false, destructiveHint: false")


def _by_name(name: str) -> Effect:
    if not name:
        return Effect(False, False, "effect unknown: the call names no tool")
    tool = tool_part(name)
    words = _words(tool)
    verb = words[0] if words else ""
    if verb in WRITE_VERBS:
        return Effect(True, verb in DESTRUCTIVE_VERBS, f"name starts with '{verb}'")
    if name in WRITE_TOOLS or tool in WRITE_TOOLS:
        return Effect(True, False, "a known write tool (harness.checks.automation.WRITE_TOOLS)")
    if verb in READ_VERBS:
        return Effect(False, False, f"name starts with '{verb}'")
    return Effect(False, False,
                  f"effect unknown: name starts with '{verb or name}', neither a write nor a "
                  f"read verb")


# --- names ----------------------------------------------------------------------------------

_NAMESPACE = re.compile(r"__|[./:]")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NOT_WORD = re.compile(r"[^a-z0-9]+")


def tool_part(name: str) -> str:
    """The tool in a namespaced name: ``issue_refund`` in ``functions.issue_refund``,
    ``write_file`` in ``mcp__filesystem__write_file``, ``execute`` in ``db.execute``."""
    parts = [part for part in _NAMESPACE.split(name) if part.strip("_- ")]
    return parts[-1] if parts else name


def _words(text: str) -> list[str]:
    return [word for word in _NOT_WORD.split(_CAMEL.sub("_", text).casefold()) if word]


def _singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def _says(text: str, vocabulary: frozenset[str]) -> bool:
    return any(_singular(word) in vocabulary for word in _words(text))


# --- arguments ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Budget:
    nodes: int = MAX_NODES
    chars: int = MAX_CHARS


def _by_arguments(name: str, args: Any) -> Effect | None:
    """The strongest effect the arguments show: the first destructive write, else the first
    write, else the first read; None when they show nothing."""
    tool = tool_part(name)
    name_sql = _says(tool, _SQL_WORDS)
    name_shell = _says(tool, _SHELL_WORDS)
    first_write: Effect | None = None
    first_read: Effect | None = None
    for path, key, text in _leaves(args, "", "", 0, _Budget()):
        where = f"argument '{path}'" if path else "the arguments"
        sqlish = name_sql or _says(key, _SQL_WORDS)
        shell = name_shell or _says(key, _SHELL_WORDS)
        for found in _leaf_effects(key, text, sqlish=sqlish, shell=shell):
            shown = Effect(found.write, found.destructive, f"{found.why} in {where}")
            if shown.destructive:
                return shown
            if shown.write and first_write is None:
                first_write = shown
            if not shown.write and first_read is None:
                first_read = shown
    return first_write or first_read


def _leaves(value: Any, path: str, key: str, depth: int,
            budget: _Budget) -> Iterator[tuple[str, str, str]]:
    """``(path, key, text)`` for each string in ``value``: ``path`` as ``a.b[0]``, ``key`` the
    nearest mapping key. JSON in a string is looked into; a list of strings under a command key
    is one command line."""
    budget.nodes -= 1
    if depth > MAX_DEPTH or budget.nodes < 0:
        return
    if isinstance(value, str):
        text = value[:min(MAX_TEXT, budget.chars)]
        budget.chars -= len(text)
        if not text:
            return
        parsed = _json(text) if len(value) <= len(text) else None
        if parsed is not None:
            yield from _leaves(parsed, path, key, depth + 1, budget)
        else:
            yield path, key, text
    elif isinstance(value, Mapping):
        for child_key, child in value.items():
            child_key = str(child_key)
            child_path = f"{path}.{child_key}" if path else child_key
            yield from _leaves(child, child_path, child_key, depth + 1, budget)
            if budget.nodes < 0:
                return
    elif isinstance(value, list | tuple):
        argv = value[:MAX_ARGV]
        if argv and _says(key, _SHELL_WORDS) and all(isinstance(item, str) for item in argv):
            line = shlex.join(argv)[:min(MAX_TEXT, max(budget.chars, 0))]
            budget.chars -= len(line)
            yield path, key, line
        for index, child in enumerate(value):
            yield from _leaves(child, f"{path}[{index}]", key, depth + 1, budget)
            if budget.nodes < 0:
                return


def _json(text: str) -> Any:
    """The mapping or list a string holds as JSON or as a Python literal (traces often keep
    arguments as ``str(dict)``), else None."""
    stripped = text.strip()
    if not stripped or stripped[0] not in "[{":
        return None
    try:
        parsed = json.loads(stripped)
    except (ValueError, RecursionError):
        try:
            parsed = ast.literal_eval(stripped)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return None
    return parsed if isinstance(parsed, dict | list | tuple) else None


def _leaf_effects(key: str, text: str, *, sqlish: bool, shell: bool) -> Iterator[Effect]:
    """Effects one string argument shows, each ``why`` without its place."""
    if "_".join(_words(key)) in _METHOD_KEYS:
        method = text.strip().upper()
        if method in _HTTP_WRITES:
            yield Effect(True, _HTTP_WRITES[method], f"HTTP method {method}")
        elif method in _HTTP_READS:
            yield Effect(False, False, f"HTTP method {method}")
    yield from shell_effects(text, shell=shell)
    yield from sql_effects(text, sqlish=sqlish)


# --- SQL ------------------------------------------------------------------------------------

_I = re.IGNORECASE
_IDENT = (r"(?:\"[^\"\n]{1,128}\"|`[^`\n]{1,128}`|\[[^\]\n]{1,128}\]|\{\w{1,64}\}"
          r"|[A-Za-z_][\w$]{0,127})")
_QUAL = rf"{_IDENT}(?:\s*\.\s*{_IDENT}){{0,3}}"
_ALIAS = r"(?:\s+(?:AS\s+)?[A-Za-z_]\w{0,63})?"
_QUOTES = "\"'`"
_CLOSE = r"$|[;)\"'`]"
_COND = (rf"(?:NOT\s+)?(?:EXISTS\s*\(|CURRENT\s+OF\b|TRUE\b|\d|\w+\s*\("
         rf"|\(?\s*{_QUAL}\s*(?:[=<>!]|IN\s*\(|IS\s+(?:NOT\s+)?NULL\b"
         rf"|(?:NOT\s+)?I?LIKE\s+['\"$:?%@]|BETWEEN\s+\S+\s+AND\b))")
_PRIV = (r"(?:ALL(?:\s+PRIVILEGES)?|SELECT|INSERT|UPDATE|DELETE|TRUNCATE|REFERENCES|TRIGGER"
         r"|USAGE|EXECUTE|CONNECT|CREATE|TEMP(?:ORARY)?|ALTER|DROP|INDEX|MAINTAIN|OWNERSHIP)"
         r"(?:\s*\([^)]{0,200}\))?")
_PRIVS = rf"{_PRIV}(?:\s*,\s*{_PRIV})*"
_ROLES = rf"{_QUAL}(?:\s*,\s*{_QUAL})*"

_GRAMMAR_SOURCES: dict[str, str] = {
    "DELETE": (rf"DELETE\s+(?:(?:LOW_PRIORITY|QUICK|IGNORE)\s+|TOP\s*\(?\s*\d+\s*\)?\s+)*"
               rf"FROM\s+(?:ONLY\s+)?{_QUAL}{_ALIAS}(?=\s*(?:{_CLOSE}|WHERE\s+{_COND}"
               rf"|USING\b|RETURNING\b|ORDER\s+BY\b|LIMIT\s+\d|OUTPUT\b))"),
    "UPDATE": (rf"UPDATE\s+(?:(?:ONLY|LOW_PRIORITY|IGNORE)\s+)*{_QUAL}{_ALIAS}"
               rf"\s+SET\s+\(?\s*{_QUAL}\s*[=,]"),
    "INSERT": (rf"INSERT\s+(?:(?:OR\s+\w+|IGNORE|LOW_PRIORITY|DELAYED|HIGH_PRIORITY)\s+)*"
               rf"(?:INTO\s+{_QUAL}{_ALIAS}\s*(?:\(|VALUES?\b|SELECT\b|DEFAULT\s+VALUES\b"
               rf"|SET\b|WITH\b|TABLE\b|OVERRIDING\b|FORMAT\b)"
               rf"|(?P<overwrite>OVERWRITE)\s+(?:TABLE\s+)?{_QUAL})"),
    "REPLACE": (rf"REPLACE\s+(?:(?:LOW_PRIORITY|DELAYED)\s+)?INTO\s+{_QUAL}"
                rf"\s*(?:\(|VALUES?\b|SELECT\b|SET\b)"),
    "MERGE": rf"MERGE\s+(?:INTO\s+)?{_QUAL}{_ALIAS}\s+USING\b",
    "DROP": (rf"DROP\s+(?:TEMPORARY\s+)?(?:TABLE|DATABASE|SCHEMA|VIEW|MATERIALIZED\s+VIEW"
             rf"|INDEX|SEQUENCE|FUNCTION|PROCEDURE|TRIGGER|TYPE|ROLE|USER)\s+"
             rf"(?:CONCURRENTLY\s+)?(?:IF\s+EXISTS\s+)?{_QUAL}(?=\s*(?:{_CLOSE}|[,(]"
             rf"|CASCADE\b|RESTRICT\b|PURGE\b|ON\b|FORCE\b|WITH\b))"),
    "TRUNCATE": (rf"TRUNCATE\s+(?:TABLE\s+)?(?:ONLY\s+)?{_QUAL}(?=\s*(?:{_CLOSE}|[,*]"
                 rf"|CASCADE\b|RESTRICT\b|RESTART\b|CONTINUE\b|IMMEDIATE\b|DROP\b"
                 rf"|REUSE\b|PARTITION\b))"),
    "ALTER": (rf"ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?{_QUAL}\s+(?:ADD|DROP|ALTER"
              rf"|RENAME|MODIFY|CHANGE|SET|OWNER|ENABLE|DISABLE|VALIDATE|ATTACH|DETACH"
              rf"|REPLICA|INHERIT|NO|CLUSTER|RESET|TRUNCATE|ALGORITHM|ENGINE|CONVERT"
              rf"|FORCE|DISCARD|IMPORT|AUTO_INCREMENT)\b"),
    "CREATE": (rf"CREATE\s+(?:OR\s+REPLACE\s+)?(?:(?:GLOBAL|LOCAL|TEMP|TEMPORARY|UNLOGGED"
               rf"|UNIQUE|MATERIALIZED|RECURSIVE|EXTERNAL|TRANSIENT|VOLATILE)\s+)*"
               rf"(?:(?:TABLE|DATABASE|SCHEMA|VIEW|SEQUENCE|FUNCTION|PROCEDURE|TRIGGER|TYPE"
               rf"|ROLE|USER|EXTENSION)\s+(?:IF\s+NOT\s+EXISTS\s+)?{_QUAL}"
               rf"(?=\s*(?:{_CLOSE}|[,(]|AS\b|WITH\b|LIKE\b|IDENTIFIED\b|AUTHORIZATION\b"
               rf"|OWNER\b|PARTITION\b|RETURNS\b|BEFORE\b|AFTER\b|INSTEAD\b|LOGIN\b"
               rf"|PASSWORD\b|ENCODING\b|DEFAULT\b|CLONE\b|ON\b))"
               rf"|INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?(?:{_QUAL}\s+)?"
               rf"ON\s+{_QUAL})"),
    "GRANT": (rf"GRANT\s+(?:{_PRIVS}\s+ON\s+[^;]{{1,300}}?\s+TO\s+{_QUAL}"
              rf"|{_ROLES}\s+TO\s+{_QUAL}(?=\s*(?:{_CLOSE}|WITH\b|GRANTED\b)))"),
    "REVOKE": (rf"REVOKE\s+(?:(?:GRANT|ADMIN)\s+OPTION\s+FOR\s+)?"
               rf"(?:{_PRIVS}\s+ON\s+[^;]{{1,300}}?\s+FROM\s+{_QUAL}"
               rf"|{_ROLES}\s+FROM\s+{_QUAL}(?=\s*(?:{_CLOSE}|CASCADE\b|RESTRICT\b)))"),
    "SELECT": (rf"SELECT\s+(?:[^;]{{0,2000}}?\bFROM\s+{_QUAL}|[\d*'\"@(:$?-]"
               rf"|\w+\s*\()"),
    "WITH": (rf"WITH\s+(?:RECURSIVE\s+)?{_IDENT}\s*(?:\([^)]{{0,500}}\)\s*)?AS\s*"
             rf"(?:NOT\s+)?(?:MATERIALIZED\s+)?\("),
}


@functools.cache
def _grammar(keyword: str) -> re.Pattern[str] | None:
    """The compiled grammar of a statement's keyword, compiled on first use: these patterns
    take a tenth of a second to compile, which a run that meets no SQL should not pay."""
    source = _GRAMMAR_SOURCES.get(keyword)
    return None if source is None else re.compile(source, _I)
_DESTRUCTIVE_SQL = frozenset({"DELETE", "DROP", "TRUNCATE"})
_SQL_WORD = re.compile(r"\b(?:DELETE|UPDATE|INSERT|REPLACE|MERGE|DROP|TRUNCATE|ALTER|CREATE"
                       r"|GRANT|REVOKE|SELECT)\b", _I)
_LITERAL = re.compile(r"'[^']*(?:''[^']*)*'")
_COMMENT = re.compile(rf"{_LITERAL.pattern}|--[^\n]*|/\*.*?(?:\*/|\Z)", re.DOTALL)
_START = re.compile(r"(?:^|(?<=[;\n\"'`()]))\s*(?:EXPLAIN\s+ANALY[SZ]E\s+(?:VERBOSE\s+)?)?"
                    r"(?=(?:DELETE|UPDATE|INSERT|REPLACE|MERGE|DROP|TRUNCATE|ALTER|CREATE"
                    r"|GRANT|REVOKE|SELECT|WITH)\b)", _I)
_STOP = re.compile(r"[;()\"'`]")
_KEYWORD = re.compile(r"[A-Za-z]+")
_REST_EMPTY = re.compile(r"\s*\Z")
_WHERE = re.compile(r"\bWHERE\b", _I)
_DROPS = re.compile(r"\b(?:DROP|TRUNCATE)\b", _I)
_THEN_DELETE = re.compile(r"\bTHEN\s+DELETE\b", _I)


@dataclass(frozen=True, slots=True)
class _Statement:
    effect: Effect | None
    """None for a statement that only opens others (``WITH ... AS (``)."""
    bare: bool
    """Nothing follows the statement's grammar: as short as prose ("delete from cart")."""
    upper: bool
    """Its keyword is written in capitals, as SQL is and prose is not."""


@dataclass(slots=True)
class _Marks:
    left: int = MAX_MARKS


def sql_effects(text: str, *, sqlish: bool) -> Iterator[Effect]:
    """Each SQL statement in ``text`` as an effect (``why`` without its place). Unless
    ``sqlish`` (the argument's key or the tool's name says SQL), ``text`` must start with a
    statement that is more than a bare phrase or is written in capitals."""
    if not _SQL_WORD.search(text):
        return
    clean = _COMMENT.sub(_uncomment, text)
    marks = _Marks()
    lead = _START.match(clean)
    if lead is not None and _statement(clean, lead.end(), "", marks) is not None:
        clean = _LITERAL.sub("''", clean)
    for count, start in enumerate(_START.finditer(clean)):
        if count >= MAX_STATEMENTS:
            return
        opener = clean[start.start() - 1] if start.start() > 0 else ""
        statement = _statement(clean, start.end(), opener, marks)
        if count == 0 and not sqlish and (
                start.start() > 0 or statement is None
                or (statement.bare and not statement.upper)):
            return
        if statement is not None and statement.effect is not None:
            yield statement.effect


def _uncomment(found: re.Match[str]) -> str:
    return found.group() if found.group().startswith("'") else " "


def _statement(text: str, pos: int, opener: str, marks: _Marks) -> _Statement | None:
    word = _KEYWORD.match(text, pos)
    keyword = word.group().upper() if word is not None else ""
    grammar = _grammar(keyword)
    match = grammar.match(text, pos) if grammar is not None else None
    if match is None:
        return None
    bare = _REST_EMPTY.match(text, match.end()) is not None
    upper = text[pos:pos + len(keyword)].isupper()
    if keyword == "WITH":
        return _Statement(None, bare, upper)
    if keyword == "SELECT":
        return _Statement(Effect(False, False, "SQL SELECT statement"), bare, upper)
    what, destructive = f"SQL {keyword} statement", keyword in _DESTRUCTIVE_SQL
    if keyword == "INSERT" and match.group("overwrite"):
        what, destructive = "SQL INSERT OVERWRITE statement", True
    elif keyword in ("UPDATE", "ALTER", "MERGE"):
        body = _top_level(text, pos, opener, marks)
        if keyword == "UPDATE" and not _WHERE.search(body):
            what, destructive = "SQL UPDATE statement without WHERE", True
        elif keyword == "ALTER":
            what = "SQL ALTER TABLE statement"
            if _DROPS.search(body):
                what, destructive = "SQL ALTER TABLE ... DROP statement", True
        elif keyword == "MERGE" and _THEN_DELETE.search(body):
            what, destructive = "SQL MERGE statement with THEN DELETE", True
    return _Statement(Effect(True, destructive, what), bare, upper)


def _top_level(text: str, start: int, opener: str, marks: _Marks) -> str:
    """The statement starting at ``start`` without its parenthesised parts and literals: it
    ends at ``;``, at the ``)`` closing what holds it, or at the quote it was written in."""
    parts: list[str] = []
    depth, pos, limit = 0, start, min(len(text), start + STATEMENT_CHARS)
    while (mark := _STOP.search(text, pos, limit)) is not None:
        marks.left -= 1
        if marks.left < 0:
            return " ".join(parts)
        char = mark.group()
        if depth == 0:
            parts.append(text[pos:mark.start()])
        if (char == opener and char in _QUOTES) or (depth == 0 and char in ";)"):
            return " ".join(parts)
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char in _QUOTES:
            close = text.find(char, mark.end(), limit)
            if close < 0:
                return " ".join(parts)
            pos = close + 1
            continue
        pos = mark.end()
    if depth == 0:
        parts.append(text[pos:limit])
    return " ".join(parts)


# --- shell ----------------------------------------------------------------------------------

_SQL_CLIENTS = frozenset({
    "psql", "mysql", "mariadb", "sqlite3", "sqlite", "sqlcmd", "duckdb", "clickhouse-client",
    "snowsql", "cockroach",
})
_DESTROYERS = frozenset({"rm", "git", "kubectl", "terraform", "dropdb"})
_SHELLS = frozenset({
    "sh", "bash", "zsh", "dash", "ksh", "fish", "eval", "su", "ssh", "powershell", "pwsh",
})
_LAUNCHERS = frozenset({
    "sudo", "doas", "env", "nohup", "time", "nice", "ionice", "timeout", "exec", "command",
    "xargs", "watch", "stdbuf", "builtin", "docker", "podman", "nerdctl", "chroot", "flock",
}) | _SHELLS
_KNOWN = _SQL_CLIENTS | _DESTROYERS | _SHELLS | {"curl"}
_PROGRAM = re.compile(r"(?<![\w.-])(?:" + "|".join(sorted(map(re.escape, _KNOWN))) + r")(?![\w-])")
_OPERATORS = frozenset(";&|()\n`")
_ASSIGNMENT = re.compile(r"[A-Za-z_]\w*=")
_OPTION = re.compile(r"^--?[\w-]+=")
_CURL_METHOD = re.compile(r"(?:-X|--request)=?(\w*)$")
_CURL_DATA = frozenset({
    "-d", "--data", "--data-raw", "--data-binary", "--data-urlencode", "--data-ascii", "--json",
    "-F", "--form", "--form-string", "-T", "--upload-file",
})
_GIT_FORCE = re.compile(r"--force(?:-with-lease|-if-includes)?(?:=.*)?|--mirror|--delete"
                        r"|-[A-Za-z]*[fd][A-Za-z]*")


def shell_effects(text: str, *, shell: bool, depth: int = 0) -> Iterator[Effect]:
    """Effects of the command line ``text`` (``why`` without its place): SQL a SQL client runs
    (``psql -c``, ``mysql -e``, ``sqlite3 db '...'``) and ``curl`` writes, wherever a program
    starts; with ``shell`` (a shell tool or a command argument) also ``rm``, ``git push
    --force``, ``kubectl delete``, ``terraform destroy`` and ``dropdb``."""
    if depth > MAX_SHELL_DEPTH or not _PROGRAM.search(text):
        return
    commands = _commands(text)
    clients = [program for program, _ in map(_program, commands) if program in _SQL_CLIENTS]
    if clients:
        for words in commands:
            for word in words:
                for found in sql_effects(_OPTION.sub("", word), sqlish=True):
                    why = f"{found.why} run by {clients[0]}"
                    yield Effect(found.write, found.destructive, why)
    for words in commands:
        program, rest = _program(words)
        if program == "curl":
            yield from _curl(rest)
        elif shell and program in _DESTROYERS:
            yield from _destroyer(program, rest)
        if program in _LAUNCHERS:
            for word in rest:
                if any(space in word for space in " \t\n"):
                    yield from shell_effects(word, shell=shell, depth=depth + 1)


def _commands(text: str) -> list[list[str]]:
    """The simple commands of a command line, each as its words."""
    try:
        lexer = shlex.shlex(text, posix=True, punctuation_chars="".join(_OPERATORS))
        lexer.whitespace = " \t\r"
        lexer.whitespace_split = True
        tokens = list(lexer)
    except ValueError:
        tokens = re.findall(r"[;&|()\n`]+|[^\s;&|()`]+", text)
    commands: list[list[str]] = [[]]
    for token in tokens:
        if token and set(token) <= _OPERATORS:
            commands.append([])
        else:
            commands[-1].append(token)
    return [words for words in commands if words]


def _program(words: list[str]) -> tuple[str, list[str]]:
    """The program a simple command runs, past variable assignments and launchers
    (``sudo -u postgres psql`` runs ``psql``, ``ssh host rm -rf /srv`` runs ``rm``), with its
    arguments."""
    index = 0
    while index < len(words) and _ASSIGNMENT.match(words[index]):
        index += 1
    if index == len(words):
        return "", []
    program = words[index].rsplit("/", 1)[-1]
    if program in _LAUNCHERS or (program == "kubectl" and "exec" in words[index + 1:]):
        for inner in range(index + 1, len(words)):
            name = words[inner].rsplit("/", 1)[-1]
            if name in _KNOWN:
                return name, words[inner + 1:]
    return program, words[index + 1:]


def _curl(args: list[str]) -> Iterator[Effect]:
    for index, word in enumerate(args):
        method = _CURL_METHOD.match(word)
        if method is not None:
            value = method.group(1) or (args[index + 1] if index + 1 < len(args) else "")
            value = value.upper()
            if value in _HTTP_WRITES:
                yield Effect(True, _HTTP_WRITES[value], f"curl -X {value}")
            return
    if "-G" in args or "--get" in args:
        return
    for word in args:
        flag = word.split("=", 1)[0] if word.startswith("--") else word[:2]
        if flag in _CURL_DATA:
            yield Effect(True, False, f"curl {flag}")
            return


def _subcommand(args: list[str], takes_value: frozenset[str]) -> tuple[str, list[str]]:
    index = 0
    while index < len(args) and args[index].startswith("-"):
        index += 2 if args[index] in takes_value else 1
    return (args[index], args[index + 1:]) if index < len(args) else ("", [])


def _destroyer(program: str, args: list[str]) -> Iterator[Effect]:
    if program == "rm":
        flags = [word for word in args if word.startswith("-") and word != "--"][:2]
        yield Effect(True, True, f"shell command {' '.join(['rm', *flags])}")
    elif program == "dropdb":
        yield Effect(True, True, "shell command dropdb")
    elif program == "git":
        sub, rest = _subcommand(args, frozenset({"-C", "-c", "--git-dir", "--work-tree"}))
        if sub == "push":
            for word in rest:
                if _GIT_FORCE.fullmatch(word) or (word.startswith(("+", ":")) and len(word) > 1):
                    yield Effect(True, True, f"shell command git push {word}")
                    return
    elif program == "kubectl":
        sub, _ = _subcommand(args, frozenset({
            "-n", "--namespace", "--context", "--kubeconfig", "--cluster", "--user", "-s",
            "--server",
        }))
        if sub == "delete":
            yield Effect(True, True, "shell command kubectl delete")
    elif program == "terraform":
        sub, rest = _subcommand(args, frozenset())
        if sub == "destroy":
            yield Effect(True, True, "shell command terraform destroy")
        elif sub == "apply" and "-destroy" in rest:
            yield Effect(True, True, "shell command terraform apply -destroy")
