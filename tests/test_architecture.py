"""Data flows one way: a module imports only what stands to its left, and the heavy or
special-purpose libraries stay in the one module that owns them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "harness"

# YAML -> model -> targets and checks -> runner -> records -> compare -> gate -> intake (from
# an incident to a case, and what the registry of cases adds up to) and reports -> sign-off
# (above the report it signs) -> the pytest plugin -> the command line. Equal ranks may not
# import each other.
RANKS = {
    "harness": 0, "harness.errors": 0, "harness.digest": 0, "harness.registry": 0,
    "harness.budget": 0, "harness.memory": 0,
    "harness.vocabulary": 0,
    "harness.files": 1, "harness.model": 1, "harness.project": 1, "harness.git": 1,
    "harness.detectors": 1,
    # the one Jinja environment and CSP of every HTML page (report, metrics)
    "harness.pages": 2,
    "harness.schema": 2, "harness.canaries": 2, "harness.judging": 2, "harness.diff": 2,
    # trace formats: read by intake (case from-trace) and by traced targets during a run
    "harness.intake.traces": 2,
    "harness.checks": 3, "harness.targets": 3, "harness.explain": 3,
    "harness.loader": 4, "harness.runner": 4, "harness.redact": 4,
    "harness.records": 5, "harness.judges": 5,
    "harness.calibration": 5,
    "harness.compare": 6,
    # a run without pytest: binds targets, calls, judges, redacts and records
    "harness.run": 6,
    "harness.gate": 7,
    "harness.intake": 8,
    "harness.report": 8,
    "harness.signoff": 9,
    "harness.plugin": 10,
    "harness.cli": 11, "harness.bench": 11, "harness.__main__": 12,
}
OWNERS = {  # library -> the modules allowed to import it
    "pytest": {"harness.plugin", "harness.cli", "harness.bench"},
    "_pytest": set(),
    "pandas": {"harness.intake.metrics"},
    "jinja2": {"harness.pages"},
    "cryptography": {"harness.signoff.keys", "harness.signoff.ledger"},
    "regex": {"harness.checks.patterns"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def rank(name: str) -> int:
    while name not in RANKS:
        name = name.rsplit(".", 1)[0]
    return RANKS[name]


def group(name: str) -> str:
    """Modules of one subpackage (checks, targets, report, example) may import each other."""
    parts = name.split(".")
    return ".".join(parts[:2])


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            if node.module == "harness":
                found.update(f"harness.{alias.name}" for alias in node.names)
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=[module_name(p) for p in MODULES])
def test_imports_flow_one_way(path):
    me = module_name(path)
    for target in imports(path):
        if not target.startswith("harness") or group(target) == group(me):
            continue
        assert not target.startswith("harness.example"), f"{me} imports the bundled example"
        assert rank(target) < rank(me), f"{me} (rank {rank(me)}) imports {target} " \
                                        f"(rank {rank(target)})"


@pytest.mark.parametrize("path", MODULES, ids=[module_name(p) for p in MODULES])
def test_libraries_stay_with_their_owner(path):
    me = module_name(path)
    for target in imports(path):
        library = target.split(".")[0]
        if library in OWNERS:
            assert me in OWNERS[library], f"{me} imports {library}"


def test_the_bundled_example_depends_on_nothing_of_the_harness():
    for path in (PACKAGE / "example").rglob("*.py"):
        assert not any(t.startswith("harness") for t in imports(path)
                       if t != "harness.example" and not t.startswith("harness.example."))


LOGGING_CHANGES = {"addFilter", "addHandler", "removeHandler", "setLevel", "disable",
                   "basicConfig", "captureWarnings"}


@pytest.mark.parametrize("path", MODULES, ids=[module_name(p) for p in MODULES])
def test_importing_a_module_changes_no_logging(path):
    """Importing the harness must not reconfigure another library's logging: whatever a
    module does to a logger, it does inside a function, for as long as it needs to."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top_level = [node for node in tree.body
                 if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]
    for statement in top_level:
        for node in ast.walk(statement):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                assert node.func.attr not in LOGGING_CHANGES, (
                    f"{module_name(path)}:{node.lineno} calls {node.func.attr} at import")


def test_the_plugin_only_collects_and_reports():
    """pytest's face stays as small as its own non-Python example: collecting, making items
    and reporting. Binding targets, scheduling calls, judging, redacting and recording belong
    to the session (harness.run.session), which runs the same without pytest."""
    used = imports(PACKAGE / "plugin.py")
    engine = {"harness.runner", "harness.targets", "harness.redact", "harness.judges",
              "harness.judging", "concurrent.futures", "threading"}
    assert not used & engine, sorted(used & engine)
    source = (PACKAGE / "plugin.py").read_text(encoding="utf-8")
    for call in ("RunWriter(", ".call(", "run_redactor(", "ThreadPoolExecutor("):
        assert call not in source, call


@pytest.mark.parametrize("path", MODULES, ids=[module_name(p) for p in MODULES])
def test_no_module_imports_below_its_definitions(path):
    """A table is filled where its entries are defined (harness.registry), never by a package
    importing its own modules at its bottom, where an import cycle hides."""
    seen_definition = None
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            seen_definition = seen_definition or node.name
        elif isinstance(node, ast.Import | ast.ImportFrom) and seen_definition:
            raise AssertionError(f"{module_name(path)}:{node.lineno} imports after "
                                 f"{seen_definition}")
