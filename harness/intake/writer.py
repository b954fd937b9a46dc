"""The one writer of case files, paired with the loader: what it writes, ``load_case`` reads.

Every case file intake writes (``harness incident new``, ``harness case from-trace``, ``harness
case close``) goes through :func:`write_case`: the text is loaded as a case from a temporary
file first, so a file that would not load is never written, and an existing file is replaced
only when the caller says so. Fields a person must still fill read ``TODO: ...``;
:func:`left_to_fill` lists them, so a draft says exactly what is missing.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from harness.errors import InputError
from harness.loader import load_case, read_yaml
from harness.model import Case

TODO = "TODO"
"""How a field a person must still fill begins."""
UNASSIGNED = "unassigned"
"""The owner of a draft nobody has taken yet."""


class _Dumper(yaml.SafeDumper):
    """Block style with list items indented under their key, multi-line text as ``|``."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value,
                                   style="|" if "\n" in value else None)


_Dumper.add_representer(str, _represent_text)


def plain(value: Any) -> Any:
    """Loaded YAML (marked mappings and lists) as plain dicts and lists, for the writer."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def field(key: str, value: Any, comment: str | None = None) -> str:
    """One top-level field as YAML, with a comment line above it when given."""
    text = yaml.dump({key: plain(value)}, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                     width=96, default_flow_style=False)
    return (f"# {comment}\n" if comment else "") + text


def render(fields: Iterable[tuple[str, Any, str | None]], header: Iterable[str] = ()) -> str:
    """A case file: the ``header`` lines as comments, then each (key, value, comment)."""
    lines = "".join(f"# {line}\n" if line else "#\n" for line in header)
    return lines + "".join(field(key, value, comment) for key, value, comment in fields)


def write_case(path: Path, text: str, *, replace: bool = False) -> Case:
    """Write ``text`` to ``path`` once it loads as a case, atomically; return the case.

    Without ``replace`` an existing file is never overwritten. A text that does not load raises
    the loader's :class:`InputError` (naming ``path``) and nothing is written.
    """
    if path.exists() and not replace:
        raise InputError("a case file with this name already exists; nothing was written",
                         path=path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".yaml")
    temporary = Path(name)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        try:
            load_case(temporary, display=str(path))
        except InputError as exc:
            raise InputError(exc.problem, path=path, line=exc.line, field=exc.field) from None
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return load_case(path)


def next_id(cases: Path, year: int) -> str:
    """``INC-<year>-<n>``, n one more than the highest of that year among the case files under
    ``cases`` (every workflow's folder: ids are unique across a registry), three digits at
    least."""
    pattern = re.compile(rf"INC-{year}-(\d+)\Z")
    numbers = [match.group(1) for file in sorted(cases.rglob("*.y*ml"))
               if file.suffix in (".yaml", ".yml") and (match := pattern.match(file.stem))]
    highest = max((int(n) for n in numbers), default=0)
    width = max([3, *(len(n) for n in numbers)])
    return f"INC-{year}-{highest + 1:0{width}d}"


def _todo_paths(value: Any, where: str) -> Iterable[str]:
    if isinstance(value, str) and value.strip().startswith(TODO):
        yield where
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _todo_paths(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _todo_paths(item, f"{where}[{index}]")


def left_to_fill(data: Mapping[str, Any]) -> list[str]:
    """The fields of a case file's data a person must still fill: every ``TODO: ...`` value
    (by its dotted path), and an owner still ``unassigned``."""
    paths = list(_todo_paths(data, ""))
    if data.get("owner") == UNASSIGNED:
        paths.insert(0, "owner")
    return paths


def left_in_file(path: Path, *, shown: Path | None = None) -> list[str]:
    """:func:`left_to_fill` of a case file."""
    data, _ = read_yaml(path, shown=shown)
    return left_to_fill(data)
