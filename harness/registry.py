"""One small registry style for check kinds, target adapters and trace formats.

A :class:`Registry` maps names to entries. Entries are added where they are defined (a
decorator or a call at import time); the built-in ones live in modules the registry imports the
first time it is read, and third-party ones in packages of an entry-point group, loaded at the
same moment. So no package imports its own modules at its bottom to fill a table, and an
unknown name is a ``LookupError`` that lists the known ones, with a did-you-mean.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterator, Mapping, Sequence
from importlib.metadata import entry_points
from types import MappingProxyType
from typing import Generic, TypeVar

T = TypeVar("T")


def source_of(definition: object) -> str | None:
    """``module:qualified name`` of the function or class that adds an entry, the ``source``
    :meth:`Registry.add` knows it by; None for one that has neither name (a partial, say),
    whose entry then never replaces another."""
    module = getattr(definition, "__module__", None)
    name = getattr(definition, "__qualname__", None)
    return f"{module}:{name}" if module and name else None


class Registry(Generic[T]):
    """Named entries of one kind (``what``, e.g. "check kind"), filled by :meth:`add`.

    ``builtins`` are modules that add the built-in entries when imported; ``group`` is the
    entry-point group whose packages add more. Both are imported once, on the first read.
    """

    def __init__(self, what: str, *, plural: str | None = None, builtins: Sequence[str] = (),
                 group: str | None = None) -> None:
        self.what = what
        self.plural = plural or f"{what}s"
        self._builtins = tuple(builtins)
        self._group = group
        self._entries: dict[str, T] = {}
        self._sources: dict[str, str | None] = {}
        self._loaded = not (self._builtins or group)

    def add(self, name: str, entry: T, *, source: str | None = None) -> T:
        """Add ``entry`` under ``name``; another entry under a taken name is a ``ValueError``
        (adding the same entry again is harmless). ``source`` names the definition adding it
        (``module:qualified name``): a module that runs again (reloaded, or imported afresh
        after pytester's in-process run put ``sys.modules`` back) replaces the entries its
        definitions added before, while two definitions claiming one name still clash."""
        taken = self._entries.get(name, entry)
        if taken is not entry and (source is None or self._sources.get(name) != source):
            raise ValueError(f"{self.what} {name!r} is already registered")
        self._entries[name] = entry
        self._sources[name] = source
        return entry

    def registered(self, name: str) -> T | None:
        """The entry added under ``name`` so far, without loading the built-ins (for a module
        that is adding its own while the registry loads)."""
        return self._entries.get(name)

    def remove(self, name: str) -> None:
        """Forget ``name`` (a plugin's entries, in tests); unknown names are ignored."""
        self._entries.pop(name, None)
        self._sources.pop(name, None)

    def copy(self) -> Registry[T]:
        """A registry with the same entries, loaded, that changes apart from this one."""
        twin: Registry[T] = Registry(self.what, plural=self.plural)
        twin._entries = dict(self.entries())
        twin._sources = dict(self._sources)
        return twin

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True  # before importing: the modules read the registry as they add
        for module in self._builtins:
            importlib.import_module(module)
        if self._group is not None:
            for entry in entry_points(group=self._group):
                entry.load()

    def entries(self) -> Mapping[str, T]:
        """Every entry by name, read-only."""
        self._load()
        return MappingProxyType(self._entries)

    def lookup(self, name: str) -> T:
        """The entry called ``name``; an unknown name raises ``LookupError`` listing the
        known ones."""
        known = self.entries()
        if name in known:
            return known[name]
        hint = difflib.get_close_matches(name, list(known), n=1)
        tip = f"did you mean {hint[0]!r}? " if hint else ""
        raise LookupError(f"unknown {self.what} {name!r}; {tip}known {self.plural}: "
                          f"{', '.join(sorted(known))}")

    def values(self) -> list[T]:
        """The entries, in the order of their sorted names."""
        known = self.entries()
        return [known[name] for name in sorted(known)]

    def __getitem__(self, name: str) -> T:
        return self.lookup(name)

    def __contains__(self, name: object) -> bool:
        return name in self.entries()

    def __iter__(self) -> Iterator[str]:
        """The names, sorted: what modules happened to be imported first does not show."""
        return iter(sorted(self.entries()))

    def __len__(self) -> int:
        return len(self.entries())
