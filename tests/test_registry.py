"""The one registry style of check kinds, target adapters and trace formats."""

from __future__ import annotations

import sys

import pytest
from conftest import run_python

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


def test_a_module_that_runs_again_replaces_its_own_entries_only():
    names: Registry[object] = Registry("thing")
    first, again = object(), object()
    names.add("a", first, source="plugin_mod:make_a")
    assert names.add("a", again, source="plugin_mod:make_a") is again  # the module ran again
    assert names["a"] is again
    with pytest.raises(ValueError, match="thing 'a' is already registered"):
        names.add("a", object(), source="plugin_mod:make_b")  # another definition
    with pytest.raises(ValueError, match="thing 'a' is already registered"):
        names.add("a", object(), source="another_mod:make_a")
    with pytest.raises(ValueError, match="thing 'a' is already registered"):
        names.add("a", object())
    assert names["a"] is again


@pytest.mark.parametrize("module", ["harness.targets.replay", "harness.checks.output",
                                    "harness.intake.traces"])
def test_a_built_in_module_imported_afresh_does_not_break_its_registry(module):
    """pytester's in-process runs put sys.modules back as they found it: a module the run
    imported (as a registry loads its built-ins) is imported afresh by the next test that
    names it, and adds its entries again (in a process of its own: the registry keeps the
    entries of the module run last)."""
    probe = (
        "import importlib, sys\n"
        "from harness import checks, targets\n"
        "targets.ADAPTERS.values(); checks.kinds()\n"
        f"importlib.import_module({module!r})\n"
        f"del sys.modules[{module!r}]\n"
        f"again = importlib.import_module({module!r})\n"
        "from harness.intake import traces\n"
        "assert targets.ADAPTERS['replay'].build.__module__ == 'harness.targets.replay'\n"
        "assert checks.lookup('contains').name == 'contains'\n"
        "assert sorted(traces.FORMAT_MODULES) == ['langfuse', 'langsmith', 'openinference', "
        "'otel']\n"
        "print('OK')\n"
    )
    done = run_python(probe)
    assert done.stdout.strip() == "OK", done.stderr[-2000:]


def test_a_definition_without_names_never_replaces_an_entry():
    import functools

    from harness.registry import source_of

    def make(kind):
        return kind

    assert source_of(make) == f"{__name__}:{make.__qualname__}"
    first, second = functools.partial(make, 1), functools.partial(make, 2)
    assert source_of(first) is None
    names: Registry[object] = Registry("thing")
    names.add("a", first, source=source_of(first))
    with pytest.raises(ValueError, match="thing 'a' is already registered"):
        names.add("a", second, source=source_of(second))  # no shared "None:None" to match
