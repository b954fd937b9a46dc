"""How a check kind declares its parameters: what each takes, whether it is required, its
default and a one-line description.

``harness checks`` prints the descriptions; ``harness schema`` turns the declarations into the
JSON Schema that editors check case files with. The constructors mirror the readers of
:class:`~harness.checks.registry.Params` (``Parameter.texts`` declares what ``params.texts``
reads), so a kind's declaration sits beside the factory that validates the same values. The
factory stays the authority (its messages name the parameter and the problem); the schema says
as much of it as JSON Schema can, and tests hold the two to agreement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

NON_BLANK = r"\S"
"""A JSON Schema ``pattern`` (searched anywhere) for a text that is not only white space."""


@dataclass(frozen=True)
class Parameter:
    """One parameter: its description, the JSON Schema of its value (``{}`` takes any value;
    ``None`` when only the description was given, as a kind registered with a plain string
    has), whether it must be given, and its default (``None``: none worth showing)."""

    description: str
    schema: Mapping[str, Any] | None = None
    required: bool = False
    default: Any = None

    @classmethod
    def text(cls, description: str, *, required: bool = False, default: str | None = None,
             non_empty: bool = False, pattern: str | None = None) -> Parameter:
        """A string; ``non_empty`` refuses ``""``, ``pattern`` must be found in it."""
        return cls(description, _string(non_empty=non_empty, pattern=pattern), required,
                   default)

    @classmethod
    def texts(cls, description: str, *, required: bool = False,
              default: Sequence[str] | None = None, choices: Sequence[str] = (),
              pattern: str | None = None, single: bool = True,
              min_items: int = 1) -> Parameter:
        """A list of non-empty strings (at least ``min_items``), or one string standing for a
        list of one when ``single``; ``choices`` restricts the strings to a set."""
        item = {"enum": list(choices)} if choices else _string(non_empty=True, pattern=pattern)
        many: dict[str, Any] = {"type": "array", "items": item}
        if min_items:
            many["minItems"] = min_items
        schema = {"anyOf": [item, many]} if single else many
        return cls(description, schema, required, list(default) if default else None)

    @classmethod
    def flag(cls, description: str, *, default: bool = False) -> Parameter:
        """True or false."""
        return cls(description, {"type": "boolean"}, default=default)

    @classmethod
    def number(cls, description: str, *, required: bool = False, default: float | None = None,
               minimum: float | None = None, maximum: float | None = None,
               integer: bool = False, odd: bool = False) -> Parameter:
        """A number (a whole one when ``integer``, an odd one when ``odd``), within bounds."""
        schema: dict[str, Any] = {"type": "integer" if integer or odd else "number"}
        if minimum is not None:
            schema["minimum"] = minimum
        if maximum is not None:
            schema["maximum"] = maximum
        if odd:
            schema["not"] = {"multipleOf": 2}
        return cls(description, schema, required, default)

    @classmethod
    def choice(cls, description: str, choices: Sequence[str], *, required: bool = False,
               default: str | None = None) -> Parameter:
        """One of a fixed set of strings."""
        return cls(description, {"enum": list(choices)}, required, default)

    @classmethod
    def value(cls, description: str, *, schema: Mapping[str, Any] | None = None,
              required: bool = False, default: Any = None) -> Parameter:
        """Any value, or one that ``schema`` (JSON Schema) describes."""
        return cls(description, dict(schema or {}), required, default)

    def json_schema(self) -> dict[str, Any]:
        """The schema of the parameter's value in a case file. An optional parameter may also
        be null, which the factories read as not given."""
        schema = self.schema or {}
        body = dict(schema) if self.required else _or_null(schema)
        body["description"] = self.description
        if self.default is not None:
            body["default"] = self.default
        return body


def _string(*, non_empty: bool = False, pattern: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if non_empty:
        schema["minLength"] = 1
    if pattern:
        schema["pattern"] = pattern
    return schema


def _or_null(schema: Mapping[str, Any]) -> dict[str, Any]:
    if not schema:
        return {}
    kind = schema.get("type")
    if isinstance(kind, str) and not {"not", "enum", "const"} & set(schema):
        return {**schema, "type": [kind, "null"]}
    if set(schema) == {"anyOf"}:
        return {"anyOf": [*schema["anyOf"], {"type": "null"}]}
    return {"anyOf": [dict(schema), {"type": "null"}]}


def _not_a_mapping(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` without mappings: a bare mapping after a kind is read as its parameters."""
    kind = schema.get("type")
    kinds = [kind] if isinstance(kind, str) else kind
    if (kinds and "object" not in kinds) or "enum" in schema:
        return dict(schema)
    if "not" in schema:
        return {"allOf": [dict(schema), {"not": {"type": "object"}}]}
    return {**schema, "not": {"type": "object"}}


def kind_schema(
    parameters: Mapping[str, Parameter],
    *,
    description: str,
    shorthand: str | None = None,
    requires_one_of: Sequence[str] = (),
) -> dict[str, Any]:
    """The JSON Schema of what follows a kind's name in a case file: a mapping of its
    parameters; a bare value standing for the ``shorthand`` parameter, when that is all a
    check needs; or nothing (null), when no parameter must be given."""
    mapping: dict[str, Any] = {
        "type": "object",
        "properties": {name: p.json_schema() for name, p in parameters.items()},
        "additionalProperties": False,
    }
    required = [name for name, p in parameters.items() if p.required]
    if required:
        mapping["required"] = required
    if requires_one_of:
        mapping["anyOf"] = [{"required": [name], "properties": {name: {"not": {"type": "null"}}}}
                            for name in requires_one_of]
    forms = [mapping]
    # a bare value gives the shorthand parameter alone: enough only when no other is required
    if shorthand is not None and set(required) <= {shorthand} and (
            not requires_one_of or shorthand in requires_one_of):
        forms.append(_not_a_mapping(parameters[shorthand].schema or {}))
    if not required and not requires_one_of:
        forms.append({"type": "null"})
    if len(forms) == 1:
        return {**mapping, "description": description}
    return {"description": description, "anyOf": forms}
