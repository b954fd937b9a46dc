"""The ``harness`` command: parses arguments, calls the modules that do the work, maps outcomes
to exit codes (0 success, 1 failing cases or a blocked gate, 2 bad input).

Modules are imported inside the commands that need them, so ``harness --help`` starts fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
CATEGORY_ORDER = ("output_quality", "data_exposure", "automation_error", "policy", "retrieval",
                  "human_review", None)


def _parser() -> argparse.ArgumentParser:
    from harness import __version__

    parser = argparse.ArgumentParser(
        prog="harness",
        description="Turn closed AI-workflow incidents into regression cases, run them against "
                    "the workflow, and decide whether it is safe to restore or deploy.",
        epilog="Exit codes: 0 success, 1 failing cases (or a blocked gate), 2 bad input.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser(
        "run", help="run a suite against one target and write a run record",
        description="Run every case of SUITE against TARGET through pytest and write a run "
                    "record (JSON Lines). Exit 0 when every case passes, 1 when any fails or "
                    "errors, 2 on bad input. Arguments after -- go to pytest (e.g. -k, -m, -x).",
        usage="harness run SUITE [--target NAME] [--out PATH] [-- PYTEST_ARGS...]",
    )
    run.add_argument("suite", type=Path, metavar="SUITE", help="suite file (suites/NAME.yaml)")
    run.add_argument("--target", "-t", metavar="NAME",
                     help="target named in the suite (default: the suite's defaults.target)")
    run.add_argument("--out", "-o", type=Path, metavar="PATH",
                     help="run record to write (default: reports/runs/SUITE-TARGET-RUNID.jsonl "
                          "beside the suite's suites/ folder); never overwritten")
    run.set_defaults(handler=_run)

    kinds = commands.add_parser(
        "checks", help="list every check kind with its parameters",
        description="List every available check kind (built-in and from installed "
                    "harness.checks packages) with its one-line description and parameters.",
    )
    kinds.add_argument("--format", choices=("text", "markdown", "json"), default="text",
                       help="text (default), a Markdown table, or JSON")
    kinds.set_defaults(handler=_checks)

    schema = commands.add_parser(
        "schema", help="print the JSON Schema of case and suite files",
        description="Print a JSON Schema for case files, suite files, or both (default), for "
                    "editors to complete and check them.",
    )
    schema.add_argument("which", nargs="?", choices=("all", "case", "suite"), default="all")
    schema.set_defaults(handler=_schema)
    return parser


def _run(args: argparse.Namespace) -> int:
    import pytest

    from harness import loader, plugin, targets
    from harness.records import RunHeader, git_commit, new_run_id, utc_now

    suite = loader.load_suite(args.suite)
    spec = loader.choose_target(suite, args.target)
    targets.build(spec, suite.root)  # import errors and bad options are bad input: exit 2 now
    run_id = new_run_id()
    out = args.out or suite.root / "reports" / "runs" / f"{suite.name}-{spec.name}-{run_id}.jsonl"
    if out.exists():
        from harness.errors import InputError

        raise InputError("run record already exists; choose another --out", path=out)
    header = RunHeader(
        run_id=run_id, suite=suite.name, suite_digest=suite.digest, suite_path=str(args.suite),
        target=spec.name, target_kind=spec.kind, target_digest=spec.digest,
        started_at=utc_now(), git_commit=git_commit(suite.root),
    )
    recorder = plugin.Recorder(out, header=header)
    extra = args.passthrough
    code = pytest.main(
        [str(args.suite), "--harness-target", spec.name, "-p", "no:cacheprovider",
         # harness is imported before pytest starts, so pytest cannot rewrite its asserts
         "-W", "ignore::pytest.PytestAssertRewriteWarning", *extra],
        plugins=[plugin.Preloaded(suite), recorder],
    )
    if recorder.writer is None:
        print("error: no run record was written (see pytest's output above)", file=sys.stderr)
        return EXIT_INTERRUPTED if code == pytest.ExitCode.INTERRUPTED else EXIT_BAD_INPUT
    counts = recorder.writer.counts
    print(f"run record: {out}")
    print(f"{counts['pass']} passed, {counts['fail']} failed, {counts['error']} errors")
    if code == pytest.ExitCode.INTERRUPTED:
        return EXIT_INTERRUPTED
    if code == pytest.ExitCode.NO_TESTS_COLLECTED:
        print("error: no case was selected", file=sys.stderr)
        return EXIT_BAD_INPUT
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        return EXIT_BAD_INPUT
    return EXIT_FAILED if counts["fail"] or counts["error"] else EXIT_OK


def _checks(args: argparse.Namespace) -> int:
    import json

    from harness import checks

    def order(kind: checks.CheckKind) -> tuple[int, str]:
        known = kind.category in CATEGORY_ORDER
        return (CATEGORY_ORDER.index(kind.category) if known else len(CATEGORY_ORDER), kind.name)

    listed = sorted(checks.kinds().values(), key=order)
    if args.format == "json":
        rows = [{"kind": k.name, "category": k.category, "summary": k.summary,
                 "params": dict(k.params), "shorthand": k.shorthand, "example": k.example}
                for k in listed]
        print(json.dumps(rows, indent=2))
    elif args.format == "markdown":
        print("| kind | category | what it checks | parameters | example |")
        print("|---|---|---|---|---|")
        def cell(text: str) -> str:
            return text.replace("|", "\\|")

        for k in listed:
            params = "<br>".join(f"`{name}`: {cell(text)}" for name, text in k.params.items())
            example = f"`{cell(k.example)}`" if k.example else ""
            print(f"| `{k.name}` | {k.category or 'custom'} | {cell(k.summary)} | {params} | "
                  f"{example} |")
    else:
        for k in listed:
            print(f"{k.name}  [{k.category or 'custom'}]")
            print(f"    {k.summary}")
            for name, text in k.params.items():
                marker = " (bare value)" if name == k.shorthand else ""
                print(f"    - {name}{marker}: {text}")
            if k.example:
                print(f"    example: {k.example}")
    return EXIT_OK


def _schema(args: argparse.Namespace) -> int:
    import json

    from harness import loader

    schemas = {"case": loader.CASE_SCHEMA.json_schema(), "suite": loader.SUITE_SCHEMA.json_schema()}
    if args.which == "all":
        document = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "incident-harness case or suite file",
            "$defs": schemas,
            "anyOf": [{"$ref": "#/$defs/case"}, {"$ref": "#/$defs/suite"}],
        }
    else:
        document = {"$schema": "https://json-schema.org/draft/2020-12/schema",
                    "title": f"incident-harness {args.which} file", **schemas[args.which]}
    print(json.dumps(document, indent=2))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``harness`` command; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    passthrough: list[str] = []
    if "--" in argv:  # everything after -- goes to pytest untouched
        at = argv.index("--")
        argv, passthrough = argv[:at], argv[at + 1:]
    args = _parser().parse_args(argv)
    args.passthrough = passthrough
    from harness.errors import HarnessError

    try:
        return int(args.handler(args))
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
