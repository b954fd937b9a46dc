"""Files: written so that a reader never sees half of one (a temporary file, then a rename),
read within a size limit, and where the harness keeps its caches."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

CACHE_ENV = "HARNESS_CACHE_DIR"


def cache_home() -> Path:
    """Where the harness keeps its caches (judge verdicts, embeddings, parsed case files):
    ``$HARNESS_CACHE_DIR``, else ``$XDG_CACHE_HOME/incident-harness``, else
    ``~/.cache/incident-harness``. Never inside a project, so nobody can plant an entry by
    committing a file."""
    given = os.environ.get(CACHE_ENV)
    if given:
        return Path(given)
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "incident-harness"


def write_atomic_bytes(path: Path, data: bytes, *, sync: bool = True) -> None:
    """Write ``data`` to ``path`` atomically: the old file or the new, never a mix. ``sync``
    waits for the disk before the rename (a cache that can be rebuilt need not)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            if sync:
                file.flush()
                os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8): the old file or the new, never a mix."""
    write_atomic_bytes(path, text.encode("utf-8"))


def read_bytes(file: Path, *, limit: int, kind: str, shown: Path | None = None) -> bytes:
    """A file's bytes, at most ``limit`` of them.

    Every problem (missing, a folder, unreadable, too large) raises
    :class:`~harness.errors.InputError` naming the file as ``shown`` (default: ``file``).
    ``kind`` names what was expected ("a trace file").
    """
    from harness.errors import InputError

    path = shown or file
    try:
        with open(file, "rb") as handle:  # one open and one stat, not three stats and an open
            size = os.fstat(handle.fileno()).st_size
            if size > limit:
                raise InputError(f"file too large: {size} bytes, at most {limit}", path=path)
            data = handle.read(size + 1)
            if len(data) > size:  # a device, or a file that grew: read on, up to the limit
                data += handle.read(limit + 1 - len(data))
    except IsADirectoryError:
        raise InputError(f"expected {kind}, found a folder", path=path) from None
    except FileNotFoundError:
        raise InputError("file not found", path=path) from None
    except OSError as exc:
        if file.is_dir():  # where opening a folder is refused as a permission
            raise InputError(f"expected {kind}, found a folder", path=path) from None
        raise InputError(f"cannot read file: {exc.strerror}", path=path) from None
    if len(data) > limit:
        raise InputError(f"file too large: more than {limit} bytes", path=path)
    return data


def read_text(file: Path, *, limit: int, kind: str, shown: Path | None = None) -> str:
    """A UTF-8 text file (a BOM allowed) of at most ``limit`` bytes.

    Every problem (missing, a folder, unreadable, too large, not UTF-8) raises
    :class:`~harness.errors.InputError` naming the file as ``shown`` (default: ``file``), with
    the line of a byte that is not UTF-8. ``kind`` names what was expected ("a YAML file").
    """
    from harness.errors import InputError

    path = shown or file
    raw = read_bytes(file, limit=limit, kind=kind, shown=shown)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(f"not UTF-8 text (byte {exc.start})", path=path, line=line) from None
