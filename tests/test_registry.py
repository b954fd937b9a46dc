"""The one registry style of check kinds, target adapters and trace formats."""

from __future__ import annotations

import sys

import pytest

from harness import checks, targets
from harness.registry import Registry


def test_an_unknown_name_lists_the_known_ones_with_a_did_you_mean():
    colours: Registry[int] = Registry("colour")
    colours.add("red", 1)
    colours.add("green", 2)
    with pytest.raises(LookupError) as caught:
        colours.lookup("gren")
    assert str(caught.value) == "unknown colour 'gren'; did you mean 'green'? known colours: " \
                                "green, red"
    with pytest.raises(LookupError, match=r"known colours: green, red$"):
        colours["blue"]


def test_a_taken_name_is_refused_unless_it_is_the_same_entry():
    names: Registry[object] = Registry("thing")
    first = object()
    names.add("a", first)
    assert names.add("a", first) is first
    with pytest.raises(ValueError, match="thing 'a' is already registered"):
        names.add("a", object())
    assert names["a"] is first


LATE: Registry[int] = Registry("late entry", builtins=("late_entries",))
"""Filled by a module the test writes: the registry imports it when first read."""


def test_builtins_are_imported_on_the_first_read_only(tmp_path, monkeypatch):
    (tmp_path / "late_entries.py").write_text(
        "from test_registry import LATE\nLATE.add('late', 42)\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "late_entries", raising=False)
    assert "late_entries" not in sys.modules  # nothing imported by making the registry
    assert list(LATE) == ["late"] and LATE["late"] == 42
    assert "late_entries" in sys.modules


def test_iteration_is_sorted_and_the_entries_are_read_only():
    names: Registry[int] = Registry("number")
    for name, value in (("two", 2), ("one", 1), ("three", 3)):
        names.add(name, value)
    assert list(names) == ["one", "three", "two"] and len(names) == 3
    with pytest.raises(TypeError):
        names.entries()["four"] = 4  # type: ignore[index]  # the point: it is read-only


def test_a_copy_changes_apart_from_its_original():
    names: Registry[int] = Registry("number")
    names.add("one", 1)
    twin = names.copy()
    twin.add("two", 2)
    twin.remove("one")
    assert list(names) == ["one"] and list(twin) == ["two"]


def test_checks_and_targets_use_it_and_know_their_built_ins():
    assert {"contains", "no_pii", "approval_required"} <= set(checks.kinds())
    assert list(targets.ADAPTERS) == ["command", "http", "openai", "python", "replay"]
    with pytest.raises(LookupError, match="unknown target adapter 'htp'; did you mean 'http'"):
        targets.ADAPTERS["htp"]
    with pytest.raises(LookupError, match="unknown check kind 'contians'; did you mean "
                                          "'contains'"):
        checks.registry.lookup("contians")
