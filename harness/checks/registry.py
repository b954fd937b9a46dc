"""The check registry: a YAML ``kind:`` name -> a factory that validates params and builds a check.

A new kind is added in one place, with :func:`register`, which also declares its parameters
(:class:`~harness.checks.parameters.Parameter`): ``harness checks`` lists them and
:func:`json_schema` gives editors the schema of every kind. Third-party packages add kinds
through the ``harness.checks`` entry-point group (each entry point names a module that registers
its kinds when imported).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.checks.parameters import Parameter, kind_schema
from harness.errors import CheckParamError
from harness.model import Check
from harness.registry import Registry, source_of

Factory = Callable[["Params"], Check]
"""Validates a check's parameters (raising :class:`CheckParamError`) and returns the check."""


@dataclass(frozen=True)
class CheckKind:
    """A registered check kind: how it is built, and how ``harness checks`` and ``harness schema``
    describe it."""

    name: str
    factory: Factory
    summary: str
    parameters: Mapping[str, Parameter] = field(default_factory=dict)
    shorthand: str | None = None
    category: str | None = None
    example: str | None = None
    requires_one_of: tuple[str, ...] = ()
    bounded: bool = False
    """The check's work is linear in the response and its patterns run on the engine that
    stops at the deadline: it cannot run away, so no timer signal guards it."""

    @property
    def params(self) -> dict[str, str]:
        """Each parameter's one-line description."""
        return {name: parameter.description for name, parameter in self.parameters.items()}

    def json_schema(self) -> dict[str, Any]:
        """The JSON Schema of what follows the kind's name in a case file."""
        description = self.summary + (f" Example: {self.example}" if self.example else "")
        return kind_schema(self.parameters, description=description, shorthand=self.shorthand,
                           requires_one_of=self.requires_one_of)


_KINDS: Registry[CheckKind] = Registry("check kind", plural="kinds",
                                       builtins=("harness.checks.builtin",),
                                       group="harness.checks")


def register(
    name: str,
    *,
    summary: str,
    params: Mapping[str, Parameter | str] | None = None,
    shorthand: str | None = None,
    category: str | None = None,
    example: str | None = None,
    requires_one_of: Sequence[str] = (),
    bounded: bool = False,
) -> Callable[[Factory], Factory]:
    """Register ``factory`` as check kind ``name``.

    ``params`` declares each parameter (``Parameter.texts(...)``, ...), or only describes it
    in one line, which lets the schema accept any value for it; ``shorthand`` names the
    parameter that a bare value (``- contains: "refund"``) stands for; ``requires_one_of`` names
    parameters of which at least one must be given; ``bounded`` declares a built-in whose work
    is linear in the response (see :attr:`CheckKind.bounded`).
    """
    parameters = {key: Parameter(value) if isinstance(value, str) else value
                  for key, value in (params or {}).items()}

    def decorate(factory: Factory) -> Factory:
        known = _KINDS.registered(name)
        if known is not None and known.factory is factory:
            return factory
        _KINDS.add(name, CheckKind(name, factory, summary, parameters, shorthand, category,
                                   example, tuple(requires_one_of), bounded),
                   source=source_of(factory))
        return factory

    return decorate


def kinds() -> Mapping[str, CheckKind]:
    """Every known kind: the built-ins and those of installed ``harness.checks`` packages."""
    return _KINDS.entries()


def json_schema() -> dict[str, Any]:
    """The JSON Schema of one ``expect`` entry: a one-key mapping from a known kind (those
    :func:`kinds` knows now, installed packages' included) to its parameters."""
    known = kinds()
    return {
        "type": "object",
        "description": "One check, 'kind: params'; a bare value stands for the kind's main "
                       "parameter. See `harness checks`.",
        "properties": {name: known[name].json_schema() for name in sorted(known)},
        "additionalProperties": False,
        "minProperties": 1,
        "maxProperties": 1,
    }


def lookup(name: str) -> CheckKind:
    """The kind called ``name``; an unknown name raises ``LookupError`` listing the known ones."""
    return _KINDS.lookup(name)


def build(name: str, raw: Any) -> Check:
    """Build a check from its YAML parameters; raises ``LookupError`` or ``CheckParamError``."""
    kind = lookup(name)
    if raw is None:
        raw = {}
    elif not isinstance(raw, Mapping):
        if kind.shorthand is None:
            expected = ", ".join(kind.parameters) or "none"
            raise CheckParamError(f"expected a mapping of parameters ({expected})")
        raw = {kind.shorthand: raw}
    unknown = [key for key in raw if key not in kind.parameters]
    if unknown:
        hint = difflib.get_close_matches(str(unknown[0]), list(kind.parameters), n=1)
        tip = f" (did you mean {hint[0]!r}?)" if hint else ""
        expected = ", ".join(kind.parameters) or "none"
        raise CheckParamError(
            f"unknown parameter {unknown[0]!r}{tip}; expected {expected}", param=str(unknown[0])
        )
    return kind.factory(Params(dict(raw)))


_MISSING: Any = object()


def with_notes(check: Check, notes: Sequence[str]) -> Check:
    """``check`` carrying notes for whoever loads the case: something that works, but is
    better written another way (the loader shows them as :class:`~harness.errors.HarnessNote`)."""
    if notes:
        check.notes = tuple(notes)  # type: ignore[attr-defined]  # read back by notes_of
    return check


def notes_of(check: Check) -> tuple[str, ...]:
    """The notes :func:`with_notes` gave a check (none for most)."""
    return tuple(getattr(check, "notes", ()))


class Params:
    """A check's parameters, read with validation: every problem names its parameter."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw

    def _get(self, name: str, default: Any) -> Any:
        if name in self.raw and self.raw[name] is not None:
            return self.raw[name]
        if default is _MISSING:
            raise CheckParamError("missing required parameter", param=name)
        return default

    def text(self, name: str, default: Any = _MISSING) -> Any:
        value = self._get(name, default)
        if value is not default and not isinstance(value, str):
            raise CheckParamError(f"expected a string, found {type(value).__name__}", param=name)
        return value

    def texts(self, name: str, default: Any = _MISSING) -> Any:
        """A string or a non-empty list of strings, always returned as a list."""
        value = self._get(name, default)
        if value is default:
            return value
        items = value if isinstance(value, list) else [value]
        if not items or not all(isinstance(item, str) and item for item in items):
            raise CheckParamError("expected a non-empty string or list of strings", param=name)
        return items

    def flag(self, name: str, default: bool = False) -> bool:
        value = self._get(name, default)
        if not isinstance(value, bool):
            raise CheckParamError(f"expected true or false, found {value!r}", param=name)
        return value

    def number(
        self,
        name: str,
        default: Any = _MISSING,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> Any:
        value = self._get(name, default)
        if value is default:
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CheckParamError(f"expected a number, found {value!r}", param=name)
        if minimum is not None and value < minimum:
            raise CheckParamError(f"expected at least {minimum}, found {value}", param=name)
        if maximum is not None and value > maximum:
            raise CheckParamError(f"expected at most {maximum}, found {value}", param=name)
        return value

    def choice(self, name: str, choices: tuple[str, ...], default: Any = _MISSING) -> Any:
        value = self._get(name, default)
        if value not in choices:
            raise CheckParamError(
                f"expected one of {', '.join(choices)}, found {value!r}", param=name
            )
        return value

    def value(self, name: str, default: Any = _MISSING) -> Any:
        return self._get(name, default)
