"""The ``harness`` command: parses arguments, calls the modules that do the work, maps outcomes
to exit codes (0 success, 1 failing cases or a blocked gate, 2 bad input).

Modules are imported inside the commands that need them, so ``harness --help`` starts fast.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from harness.vocabulary import CATEGORIES

if TYPE_CHECKING:
    from typing import TypeAlias

    from harness.compare import Comparison
    from harness.gate import Decision
    from harness.model import Suite, TargetSpec
    from harness.records import RunLock, RunRecord

    Commands: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]
    """The ``harness`` command's subcommands, to which each command adds its parser."""

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_AWAITING = 3
SIGNOFF_MISSING = "signoff_missing"  # harness.gate's, without importing it for --help
JSON_VERSION = 1
"""The version of the ``--format json`` documents of gate, validate, check and verify."""
EXIT_INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    from harness import __version__

    parser = argparse.ArgumentParser(
        prog="harness",
        description="Turn closed AI-workflow incidents into regression cases, run them against "
                    "the workflow, and decide whether it is safe to restore or deploy.",
        epilog="Exit codes: 0 success, 1 failing cases (or a blocked gate), 2 bad input, "
               "3 awaiting sign-off.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (_run_command, _merge_command, _compare_command, _gate_command,
                _validate_command, _signoff_command, _verify_command, _keygen_command,
                _case_command, _incident_command, _check_command, _judge_command,
                _metrics_command, _checks_command, _schema_command):
        add(commands)  # each command's parser is set up beside its handler
    return parser


def _format_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help="json: one JSON document on stdout, with stable keys (see the "
                             "README); bad input still exits 2 with the error on stderr")


def _notify_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--notify", type=Path, metavar="FILE",
                        help="write who must be told (each blocking case's owner and business "
                             "owner, which cases, why, the report) as JSON, for CI to send")


class _Out:
    """What a deciding command says: lines in text mode, one JSON document in json mode."""

    def __init__(self, fmt: str) -> None:
        self.json = fmt == "json"
        self.said: list[str] = []

    def line(self, text: str) -> None:
        """A line of the text output (kept, not printed, in json mode)."""
        self.said.append(text)
        if not self.json:
            _say(text)

    def document(self, body: Mapping[str, Any]) -> None:
        import json

        if self.json:
            print(json.dumps(body, indent=2, ensure_ascii=False))


def _no_cache_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-cache", action="store_true",
                        help="call judges and embedders afresh, not from their cache")


def _execute(suite: Suite, spec: TargetSpec, *, out: Path | None, pytest_args: Sequence[str],
             quiet: bool = False, concurrency: int = 1, shard: str | None = None,
             resume: RunRecord | None = None, redact: bool = True, no_cache: bool = False,
             lock: RunLock | None = None) -> tuple[int, Path]:
    """Run ``suite`` against ``spec`` through pytest; returns the exit code and record path.

    ``lock`` is the record's lock when the caller holds it (a resume); a new run takes its own
    before pytest starts, so a second writer is refused before anything runs.
    """
    import pytest

    from harness import loader, plugin
    from harness.errors import InputError
    from harness.records import RunLock
    from harness.run.session import RunOptions, Session, run_header

    options = RunOptions(concurrency=concurrency, shard=shard, redact=redact,
                         no_cache=no_cache)
    held: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
    if resume is not None:
        session = Session(options, resume=resume, lock=lock)
        out = resume.path
    else:
        header = run_header(suite, spec, shard=shard)
        out = out or (suite.root / "reports" / "runs"
                      / f"{suite.name}-{spec.name}-{header.run_id}.jsonl")
        if out.exists():
            raise InputError("run record already exists; choose another --out", path=out)
        held = new = RunLock(out)  # taken before pytest starts: a second writer is refused
        session = Session(options, record=out, header=header, lock=new)
    # The project's code is imported here, by the code that runs it, and nowhere else: import
    # errors and bad options are bad input (exit 2) before the first call. The target built
    # here is the one the run calls.
    session.add(suite, spec, suite.cases)
    loader.import_project_code(suite.cases, suite.root)
    flags = ["--harness-concurrency", str(concurrency)]  # what pytest-xdist's workers run by
    if not redact:
        flags.append("--harness-no-redact")
    if no_cache:
        flags.append("--harness-no-cache")
    if shard:
        flags += ["--harness-shard", shard]
    progress: list[object] = []
    if quiet:
        flags += ["-p", "no:terminal"]
        if sys.stderr.isatty():  # a person is watching; a CI log is not a terminal
            progress.append(_Progress(spec.name, sys.stderr))
    with held:
        code = pytest.main(
            [str(suite.path), "--harness-target", spec.name, "-p", "no:cacheprovider",
             # harness is imported before pytest starts, so pytest cannot rewrite its asserts
             "-W", "ignore::pytest.PytestAssertRewriteWarning", *flags, *pytest_args],
            plugins=[plugin.Given(session, suite), *progress],
        )
    if session.writer is None:
        print("error: no run record was written (see pytest's output above)", file=sys.stderr)
        return (EXIT_INTERRUPTED if code == pytest.ExitCode.INTERRUPTED else EXIT_BAD_INPUT), out
    counts = session.writer.counts
    print(f"{spec.name}: {counts['pass']} passed, {counts['fail']} failed, "
          f"{counts['error']} errors; run record: {out}")
    for name, spent in session.spending().items():
        cost = f", cost {spent['cost']:g}" if spent["cost"] else ""
        print(f"  {name}: {spent['calls']} call(s), {spent['cached']} answer(s) from the "
              f"cache, {spent['tokens']} token(s){cost}")
    if code == pytest.ExitCode.INTERRUPTED:
        return EXIT_INTERRUPTED, out
    if code == pytest.ExitCode.NO_TESTS_COLLECTED:
        print("error: no case was selected", file=sys.stderr)
        return EXIT_BAD_INPUT, out
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        return EXIT_BAD_INPUT, out
    return (EXIT_FAILED if counts["fail"] or counts["error"] else EXIT_OK), out


class _Progress:
    """A quiet run's progress on a terminal: one line, rewritten as each case finishes."""

    def __init__(self, name: str, stream: TextIO) -> None:
        self.name, self.stream = name, stream
        self.done = self.total = self.failed = 0

    def _show(self) -> None:
        failed = f", {self.failed} not passing" if self.failed else ""
        self.stream.write(f"\r\033[K{self.name}: {self.done}/{self.total} cases{failed}")
        self.stream.flush()

    def pytest_collection_finish(self, session: Any) -> None:
        self.total = len(session.items)
        self._show()

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.done += 1
            self.failed += not report.passed
            self._show()

    def pytest_sessionfinish(self) -> None:
        self.stream.write("\r\033[K")
        self.stream.flush()


def _run_command(commands: Commands) -> None:
    """``harness run``: its arguments, beside its handler."""
    run = commands.add_parser(
        "run", help="run a suite against one target and write a run record",
        description="Run every case of SUITE against TARGET through pytest and write a run "
                    "record (JSON Lines). Exit 0 when every case passes, 1 when any fails or "
                    "errors, 2 on bad input. Arguments after -- go to pytest (e.g. -k, -m, -x).",
        usage="harness run SUITE [--target NAME] [--out PATH] [--concurrency N] "
              "[--shard K/N] [--resume RUN_FILE] [-- PYTEST_ARGS...]",
    )
    run.add_argument("suite", type=Path, metavar="SUITE", help="suite file (suites/NAME.yaml)")
    run.add_argument("--target", "-t", metavar="NAME",
                     help="target named in the suite (default: the suite's defaults.target)")
    run.add_argument("--out", "-o", type=Path, metavar="PATH",
                     help="run record to write (default: reports/runs/SUITE-TARGET-RUNID.jsonl "
                          "beside the suite's suites/ folder); never overwritten")
    run.add_argument("--concurrency", "-c", type=int, default=1, metavar="N",
                     help="call the target for up to N cases at once (default 1)")
    run.add_argument("--shard", metavar="K/N",
                     help="run only shard K of N, a stable split by case id (merge the shards' "
                          "records with harness merge)")
    run.add_argument("--no-redact", action="store_true",
                     help="keep detected secrets and personal data in the run record and "
                          "failure text (redacted by default)")
    _no_cache_option(run)
    run.add_argument("--resume", type=Path, metavar="RUN_FILE",
                     help="finish an interrupted run: run only the cases its record lacks, "
                          "appending to it")
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from harness import loader
    from harness.records import RunLock

    suite = loader.load_suite(args.suite)
    if args.resume is None:
        spec = loader.choose_target(suite, args.target)
        code, _ = _execute(suite, spec, out=args.out, pytest_args=args.passthrough,
                           concurrency=args.concurrency, shard=args.shard,
                           redact=not args.no_redact, no_cache=args.no_cache)
        return code
    # One writer per record: the lock is taken before the record is read, so a second
    # resume waits for nothing and is refused, naming who holds it.
    with RunLock(args.resume) as lock:
        return _resume(suite, args, lock)


def _resume(suite: Suite, args: argparse.Namespace, lock: RunLock) -> int:
    from harness import loader
    from harness.errors import InputError
    from harness.records import read_run

    resume = read_run(args.resume)
    if args.target not in (None, resume.header.target):
        raise InputError(f"the run was against target {resume.header.target!r}",
                         path=args.resume, field="--target")
    if resume.header.suite_digest != suite.digest:
        raise InputError("the suite or its cases changed since this run started; start "
                         "a new run", path=args.resume, field="suite_digest")
    if resume.complete:
        print(f"nothing to resume: {args.resume} is a finished run")
        counts = {v: sum(r.verdict == v for r in resume.results) for v in ("fail", "error")}
        return EXIT_FAILED if counts["fail"] or counts["error"] else EXIT_OK
    spec = loader.choose_target(suite, resume.header.target)
    if spec.digest != resume.header.target_digest:
        raise InputError(f"target {spec.name!r} changed since this run started; start a new "
                         "run", path=args.resume, field="target_digest")
    code, _ = _execute(suite, spec, out=args.out, pytest_args=args.passthrough,
                       concurrency=args.concurrency, shard=resume.header.shard, resume=resume,
                       redact=not args.no_redact, no_cache=args.no_cache, lock=lock)
    return code


def _merge_command(commands: Commands) -> None:
    """``harness merge``: its arguments, beside its handler."""
    merge = commands.add_parser(
        "merge", help="merge the run records of a suite's shards into one",
        description="Combine shard run records (harness run --shard K/N) of one suite and "
                    "target into one run record that compare, gate and validate accept. The "
                    "merged run is complete only when every shard 1/N to N/N is there, once, "
                    "and finished. Exit 0 complete, 1 incomplete (missing or unfinished "
                    "shards, named), 2 bad input.",
    )
    merge.add_argument("out", type=Path, metavar="OUT", help="the merged record to write")
    merge.add_argument("runs", nargs="+", type=Path, metavar="RUN")
    merge.set_defaults(handler=_merge)


def _merge(args: argparse.Namespace) -> int:
    from harness.records import merge_runs, missing_shards, read_run

    records = [read_run(path) for path in args.runs]
    merged = merge_runs(records, args.out)
    missing = missing_shards(records)
    unfinished = [str(record.path) for record in records if not record.complete]
    if merged.complete:
        state = "complete"
    else:
        why = ([f"shard(s) {', '.join(missing)} missing"] if missing else []) + (
            [f"not finished: {', '.join(unfinished)}"] if unfinished else [])
        state = f"INCOMPLETE ({'; '.join(why)}): a gate given it blocks"
    print(f"merged {len(args.runs)} run(s), {len(merged.results)} cases, {state}: {args.out}")
    return EXIT_OK if merged.complete else EXIT_FAILED


def _say(text: str) -> None:
    """Print what came from a run or a case file: invisible and direction-changing characters
    (a right-to-left override, a terminal escape) as escapes."""
    from harness.visible import shown

    print(shown(text))


def _print_decision(decision: Decision, out: _Out) -> None:
    out.line(f"decision: {decision.outcome}")
    for reason in decision.reasons:
        label = ("await" if reason.rule == SIGNOFF_MISSING else "BLOCK") if reason.blocking \
            else "note "
        who = f"{reason.case_id}: " if reason.case_id else ""
        people = ([f"owner {reason.owner}"] if reason.owner else []) + (
            [f"business owner {reason.business_owner}"] if reason.business_owner else [])
        owner = f" ({', '.join(people)})" if people else ""
        out.line(f"  {label} {who}[{reason.rule}] {reason.message}{owner}")
    if decision.owners():
        out.line(f"owners to notify: {', '.join(decision.owners())}")
    business = sorted({r.person for r in decision.recipients() if r.role == "business_owner"})
    if business:
        out.line(f"business owners to notify: {', '.join(business)}")


def _decided(command: str, decision: Decision, comparison: Comparison, out: _Out, *,
             notify: Path | None, report: Path | None = None,
             written: Mapping[str, Path] | None = None, **facts: Any) -> int:
    """Say the decision (text or JSON), write the notifications, and give the exit code."""
    from harness.files import write_atomic
    from harness.report.notify import notifications

    code = _exit_code(decision)
    runs = {side: {"path": str(record.path), "run_id": record.header.run_id,
                   "target": record.header.target}
            for side, record in (("baseline", comparison.baseline),
                                 ("candidate", comparison.candidate))}
    if notify is not None:
        import json

        body = notifications(decision, suite=comparison.candidate.header.suite,
                             baseline_run=comparison.baseline.header.run_id,
                             candidate_run=comparison.candidate.header.run_id,
                             report=str(report) if report else None)
        write_atomic(notify, json.dumps(body, indent=2, ensure_ascii=False) + "\n")
        out.line(f"notifications: {notify} ({len(body['notifications'])})")
    out.document({
        "version": JSON_VERSION, "command": command, "exit_code": code,
        "decision": decision.outcome, "suite": comparison.candidate.header.suite, **runs,
        "counts": {t.value: n for t, n in comparison.counts().items()},
        **facts, **decision.to_dict(),
        "files": {name: str(path) for name, path in (written or {}).items()},
        "notifications_file": str(notify) if notify else None,
        "said": out.said,
    })
    return code


def _exit_code(decision: Decision) -> int:
    """0 RESTORE, 3 AWAITING SIGN-OFF, 1 BLOCK."""
    if decision.allowed:
        return EXIT_OK
    return EXIT_AWAITING if decision.awaiting else EXIT_FAILED


def _compare_command(commands: Commands) -> None:
    """``harness compare``: its arguments, beside its handler."""
    compare = commands.add_parser(
        "compare", help="compare two run records case by case",
        description="Give each case a transition (fixed, regressed, still_failing, "
                    "still_passing, new, removed, flaky, error) with pass rates, changed checks, "
                    "the output's word diff and the tool-call (aligned by name and arguments), "
                    "source and approval differences.",
    )
    compare.add_argument("baseline", type=Path, metavar="BASELINE_RUN")
    compare.add_argument("candidate", type=Path, metavar="CANDIDATE_RUN")
    compare.add_argument("--format", choices=("text", "json"), default="text")
    compare.add_argument("--case", action="append", default=[], metavar="ID", dest="cases",
                         help="only this case (repeatable): a large report lists the cases "
                              "that pass in both runs by id only; this shows one in full")
    compare.set_defaults(handler=_compare)


def _compare(args: argparse.Namespace) -> int:
    import dataclasses
    import json

    from harness.compare import OutputState, compare
    from harness.diff import output_lines
    from harness.errors import InputError
    from harness.records import read_run

    comparison = compare(read_run(args.baseline), read_run(args.candidate))
    if args.cases:
        known = {case.case_id for case in comparison.cases}
        unknown = [case_id for case_id in args.cases if case_id not in known]
        if unknown:
            raise InputError(f"no case {', '.join(map(repr, unknown))} in either run",
                             field="--case")
        wanted = set(args.cases)
        comparison = dataclasses.replace(
            comparison, cases=tuple(c for c in comparison.cases if c.case_id in wanted))
    if args.format == "json":
        print(json.dumps(comparison.to_dict(), indent=2))
        return EXIT_OK
    for case in comparison.cases:
        before = case.baseline.verdict if case.baseline else "-"
        after = case.candidate.verdict if case.candidate else "-"
        interval = ""
        if case.candidate_interval:
            low, high = case.candidate_interval
            interval = f"  pass rate {case.latest.pass_rate:.0%} (95% CI {low:.0%}-{high:.0%})"
        _say(f"{case.case_id:<24} {case.transition.value:<14} {before:>5} -> {after:<5}{interval}")
        for change in case.check_changes:
            where = "" if change.line is None else f" (line {change.line})"
            reason = next(iter(change.reason.splitlines()), "")
            _say(f"    {change.kind}{where}: {change.baseline or 'absent'} -> "
                 f"{change.candidate or 'absent'}: {reason}")
        if case.output_state is OutputState.CHANGED:
            print(f"    output, word by word (similarity {case.similarity} / 100):")
            _say("\n".join(f"      {line}" for line in output_lines(
                case.output_diff, omitted=case.output_diff_omitted)))
        elif case.output_state is OutputState.NO_RESPONSE:
            print("    output: not compared, a run has no response for this case")
        for name, lines in case.structured_diffs.items():
            print(f"    {name}:")
            _say("\n".join(f"      {line}" for line in lines))
    counts = ", ".join(f"{n} {t.value}" for t, n in comparison.counts().items() if n)
    print(f"\n{counts}")
    return EXIT_OK


def _signoff_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--require-signoff", action="store_true",
                        help="require sign-off even where the suite's policy does not (its "
                             "default roles); a suite with a sign-off policy always requires it")
    parser.add_argument("--ledger", type=Path, metavar="PATH",
                        help="sign-off ledger (default: the validation report's own)")
    parser.add_argument("--reviewers", type=Path, metavar="PATH",
                        help="pinned reviewers (default: reviewers.yaml beside suites/)")
    _since_option(parser)


def _since_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", metavar="REF",
                        help="the git revision every ledger must extend (default: the merge "
                             "base of HEAD with the default branch, in a git work tree); "
                             "'none' checks no history, a weaker check")


def _gate_command(commands: Commands) -> None:
    """``harness gate``: its arguments, beside its handler."""
    gate = commands.add_parser(
        "gate", help="decide RESTORE, AWAITING SIGN-OFF or BLOCK from two run records",
        description="Compare two runs and apply the gate policy: the policy recorded in the "
                    "validation manifest of these runs (found under reports/), else the "
                    "suite's, else the defaults. Where the policy requires sign-off, the "
                    "signed approvals decide too. Exit 0 RESTORE (allow), 1 BLOCK, 2 bad "
                    "input, 3 AWAITING SIGN-OFF. Prints every reason with its case and owner.",
    )
    gate.add_argument("baseline", type=Path, metavar="BASELINE_RUN")
    gate.add_argument("candidate", type=Path, metavar="CANDIDATE_RUN")
    gate.add_argument("--suite", type=Path, metavar="SUITE",
                      help="the suite the candidate ran (its digest must match the run's); "
                           "its gate section is the policy unless a validation manifest "
                           "of these runs is found")
    gate.add_argument("--manifest", type=Path, metavar="PATH",
                      help="the validation manifest of these runs, whose recorded policy "
                           "applies (default: found under reports/)")
    _signoff_options(gate)
    _format_option(gate)
    _notify_option(gate)
    gate.set_defaults(handler=_gate)


def _gate(args: argparse.Namespace) -> int:
    isolated = _isolated(args.argv)
    if isolated is not None:
        return isolated
    from harness import loader
    from harness.calibration import FOLDER as CALIBRATIONS
    from harness.calibration import latest as latest_calibrations
    from harness.compare import compare
    from harness.digest import sha256_file
    from harness.errors import InputError
    from harness.gate import GatePolicy, decide
    from harness.records import read_run
    from harness.report.manifest import find_manifest, load_manifest
    from harness.signoff.history import check as check_history
    from harness.signoff.ledger import ledger_for
    from harness.signoff.policy import SignoffPolicy
    from harness.signoff.status import awaiting, stand

    out = _Out(args.format)
    baseline, candidate = read_run(args.baseline), read_run(args.candidate)
    suite = loader.load_suite(args.suite) if args.suite else None
    if suite is not None and suite.digest != candidate.header.suite_digest:
        problem = (f"the candidate run was made with another version of this suite or its cases "
                   f"(the run's suite digest is {candidate.header.suite_digest}, the suite's "
                   f"is {suite.digest}): gate it with the suite it ran, or run it again")
        raise InputError(problem, path=args.suite, field="--suite")
    folders = [suite.root / "reports"] if suite else []
    folders += [Path("reports"), candidate.path.parent.parent]
    digests = {"baseline": sha256_file(baseline.path), "candidate": sha256_file(candidate.path)}
    manifest = load_manifest(args.manifest) if args.manifest else find_manifest(
        folders, baseline_sha256=digests["baseline"], candidate_sha256=digests["candidate"])
    if manifest is not None:  # its sign-offs are about exactly these two runs, or none
        for side, ref in (("baseline", manifest.baseline_run),
                          ("candidate", manifest.candidate_run)):
            if ref.sha256 != digests[side]:
                problem = (f"{manifest.path} validated another {side} run (sha256 "
                           f"{ref.sha256}, this one's is {digests[side]})")
                raise InputError(problem, path=args.manifest, field="--manifest")
    if manifest is not None and suite is not None and manifest.suite_digest != suite.digest:
        problem = (f"the suite is not the one validated in {manifest.path} (validated suite "
                   f"digest {manifest.suite_digest}, this suite's {suite.digest})")
        raise InputError(problem, path=args.suite, field="--suite")
    if suite is None and manifest is None:
        suite = _suite_of_run(candidate)
    if manifest is not None and manifest.gate_policy is not None:
        source = f"the validation manifest {manifest.path}"
        gate_policy = manifest.gate_policy
        policy = SignoffPolicy.of_manifest(manifest, required=args.require_signoff)
    elif suite is not None:
        source = f"the suite {suite.path}"
        gate_policy = GatePolicy.from_section(suite.gate)
        policy = SignoffPolicy.of_suite(suite, required=args.require_signoff)
    else:
        source = "defaults (no validation manifest or suite found for the candidate run)"
        gate_policy = GatePolicy()
        policy = SignoffPolicy() if args.require_signoff else None
    comparison = compare(baseline, candidate)
    calibrations = latest_calibrations(
        suite.root / CALIBRATIONS if suite is not None
        else (manifest.path.parent if manifest is not None else candidate.path.parent.parent)
        / "calibration")
    decision = decide(comparison, gate_policy, calibrations)
    if policy is not None and manifest is None:
        why = ("no validation report of this candidate against this baseline was found (looked "
               f"in {', '.join(str(f) for f in dict.fromkeys(folders))}; --manifest names one): "
               "run harness validate and have it signed off")
        incidents = [(c.case_id, c.latest.category) for c in comparison.cases if c.incident]
        decision = awaiting(decision, policy, incidents, why=why)
    elif policy is not None and manifest is not None:
        root = suite.root if suite else loader.suite_root(manifest.path.parent /
                                                          manifest.suite_path)
        reviewers = args.reviewers or root / "reviewers.yaml"
        history = check_history(manifest.path.parent, args.since, reviewers=reviewers)
        out.line(f"history: {history.note}")
        ledger = ledger_for(manifest, args.ledger)
        decision = stand(manifest, policy=policy, tests=decision, ledger=ledger,
                         reviewers=reviewers, untrusted=history.problems,
                         accepted=history.accepted(ledger)).decision
    out.line(f"policy: {source}")
    _print_decision(decision, out)
    report = manifest.path.parent / manifest.report if manifest is not None else None
    return _decided("gate", decision, comparison, out, notify=args.notify, report=report,
                    policy=source)


def _suite_of_run(run: RunRecord) -> Suite | None:
    """The suite a run names in its header, when it is still there and unchanged."""
    from harness import loader
    from harness.errors import InputError

    named = run.header.suite_path
    if not named:
        return None
    # Relative to the project folder (to where the run was started, by earlier versions): the
    # folder the command runs in, or one that holds the record.
    found = next((folder / named for folder in (Path.cwd(), *run.path.resolve().parents)
                  if (folder / named).is_file()), None)
    if found is None:
        return None
    try:
        suite = loader.load_suite(found)
    except InputError:
        return None
    return suite if suite.digest == run.header.suite_digest else None


def _run_file(suite: Suite, reference: str, args: argparse.Namespace) -> tuple[int, Path | None]:
    """A run record's path: ``reference`` itself when it is a .jsonl file, else a new run of
    that target (None, with the exit code, when the run could not be made)."""
    from harness import loader

    if reference not in suite.targets and reference.endswith(".jsonl"):
        return EXIT_OK, Path(reference)
    code, path = _execute(suite, loader.choose_target(suite, reference), out=None,
                          pytest_args=(), quiet=True, concurrency=args.concurrency,
                          redact=not args.no_redact, no_cache=args.no_cache)
    if code not in (EXIT_OK, EXIT_FAILED):
        return code, None
    return EXIT_OK, path


def _validate_command(commands: Commands) -> None:
    """``harness validate``: its arguments, beside its handler."""
    validate = commands.add_parser(
        "validate", help="run, compare, gate and write the reports (the main job)",
        description="Run what needs running, compare the candidate with the baseline, apply "
                    "the gate, and write the HTML report, a Markdown summary and JUnit XML. "
                    "Exit 0 RESTORE, 1 BLOCK, 2 bad input, 3 AWAITING SIGN-OFF (the tests "
                    "pass; the suite's policy needs approvals not yet signed).",
    )
    validate.add_argument("suite", type=Path, metavar="SUITE")
    validate.add_argument("--baseline", metavar="TARGET_OR_RUN_FILE",
                          help="a target to run, or an existing run record (.jsonl) "
                               "(default: the suite's gate.baseline)")
    validate.add_argument("--candidate", metavar="TARGET_OR_RUN_FILE",
                          help="the target to validate, or an existing run record (.jsonl) "
                               "(default: the suite's gate.candidate)")
    validate.add_argument("--out-dir", type=Path, metavar="DIR",
                          help="where reports go (default: reports/ beside suites/)")
    validate.add_argument("--concurrency", "-c", type=int, default=1, metavar="N",
                          help="call the targets for up to N cases at once (default 1)")
    _no_cache_option(validate)
    validate.add_argument("--no-redact", action="store_true",
                          help="keep detected secrets and personal data in the run records "
                               "and reports (redacted by default)")
    _signoff_options(validate)
    _format_option(validate)
    _notify_option(validate)
    validate.set_defaults(handler=_validate)


def _validate(args: argparse.Namespace) -> int:
    from harness import loader
    from harness.calibration import FOLDER as CALIBRATIONS
    from harness.calibration import latest as latest_calibrations
    from harness.compare import compare
    from harness.digest import sha256_file
    from harness.errors import InputError
    from harness.gate import GatePolicy, decide
    from harness.records import read_run
    from harness.report.body import ZERO_HASH
    from harness.report.manifest import load_manifest
    from harness.report.status import Status
    from harness.report.writer import paths_for, write_reports
    from harness.signoff.history import check as check_history
    from harness.signoff.ledger import ledger_for
    from harness.signoff.policy import SignoffPolicy
    from harness.signoff.status import awaiting, stand

    out = _Out(args.format)
    if all(str(ref or "").endswith(".jsonl") for ref in (args.baseline, args.candidate)):
        isolated = _isolated(args.argv)  # nothing to run: decide in a clean process at once
        if isolated is not None:
            return isolated
    suite = loader.load_suite(args.suite)
    baseline_ref = args.baseline or suite.gate.get("baseline")
    candidate_ref = args.candidate or suite.gate.get("candidate")
    if not baseline_ref or not candidate_ref:
        problem = ("name the runs to compare: --baseline TARGET_OR_RUN_FILE and --candidate "
                   "TARGET_OR_RUN_FILE (or gate.baseline and gate.candidate); targets: "
                   f"{', '.join(suite.targets)}")
        raise InputError(problem, path=suite.path, field="gate")
    # In json mode what the runs say goes to stderr: stdout carries the one document.
    with contextlib.redirect_stdout(sys.stderr) if out.json else contextlib.nullcontext():
        code, baseline_path = _run_file(suite, baseline_ref, args)
        if baseline_path is None:
            return code
        code, candidate_path = _run_file(suite, candidate_ref, args)
        if candidate_path is None:
            return code
    ran = (baseline_path, candidate_path) != (Path(baseline_ref), Path(candidate_ref))
    # Targets that ran in this process may have changed it: the decision is made in a fresh
    # one, from the records alone.
    isolated = _isolated([*args.argv, "--baseline", str(baseline_path.absolute()),
                          "--candidate", str(candidate_path.absolute())], fresh=ran)
    if isolated is not None:
        return isolated
    baseline, candidate = read_run(baseline_path), read_run(candidate_path)
    if suite.digest != candidate.header.suite_digest:
        problem = (f"the candidate run was made with another version of this suite or its cases "
                   f"(the run's suite digest is {candidate.header.suite_digest}, the suite's "
                   f"is {suite.digest}): run the candidate again")
        raise InputError(problem, path=candidate_path, field="suite_digest")
    gate_policy = GatePolicy.from_section(suite.gate)
    comparison = compare(baseline, candidate)
    calibrations = latest_calibrations(suite.root / CALIBRATIONS)
    tests = decide(comparison, gate_policy, calibrations)
    folder = args.out_dir or suite.root / "reports"
    written = paths_for(folder, suite.name, candidate.header.run_id, baseline.header.run_id)
    earlier = paths_for(folder, suite.name, candidate.header.run_id)  # the former name
    if not written.manifest.exists() and earlier.manifest.exists() and \
            load_manifest(earlier.manifest).baseline_run.sha256 == sha256_file(baseline.path):
        written = earlier  # this very comparison, validated (and perhaps signed) before
    if written.manifest.exists():  # validated before (and perhaps signed): the report is kept
        manifest = load_manifest(written.manifest)
        if manifest.baseline_run.sha256 != sha256_file(baseline.path):
            problem = (f"the validation report {written.html} names this baseline run but "
                       f"another file ({manifest.baseline_run.path}, sha256 "
                       f"{manifest.baseline_run.sha256}): the record changed since; it is kept "
                       f"as it is")
            raise InputError(problem, path=written.manifest)
        policy = (SignoffPolicy.of_manifest(manifest, required=args.require_signoff)
                  if manifest.version >= 2
                  else SignoffPolicy.of_suite(suite, required=args.require_signoff))
    else:
        policy = SignoffPolicy.of_suite(suite, required=args.require_signoff)
        incidents = [(c.case_id, c.latest.category) for c in comparison.cases if c.incident]
        first = Status(awaiting(tests, policy, incidents), signoff_required=policy is not None,
                       head=(0, ZERO_HASH))
        write_reports(comparison, tests, status=first, policy=gate_policy,
                      required_roles=policy.to_roles() if policy else None, suite=suite,
                      folder=folder, calibrations=calibrations)
        manifest = load_manifest(written.manifest)
    decision = tests
    if policy is not None:
        reviewers = args.reviewers or suite.root / "reviewers.yaml"
        history = check_history(folder, args.since, reviewers=reviewers)
        out.line(f"history: {history.note}")
        ledger = ledger_for(manifest, args.ledger)
        decision = stand(manifest, policy=policy, tests=tests, ledger=ledger,
                         reviewers=reviewers, untrusted=history.problems,
                         accepted=history.accepted(ledger)).decision
    counts = ", ".join(f"{n} {t.value}" for t, n in comparison.counts().items() if n)
    out.line(f"{baseline.header.target} -> {candidate.header.target}: {counts}")
    _print_decision(decision, out)
    if decision.awaiting:
        out.line(f"next: each required role signs the report (harness signoff {written.html} "
                 f"--reviewer ID --decision approve), then run this again")
    out.line(f"report: {written.html}")
    out.line(f"summary: {written.markdown}")
    out.line(f"junit: {written.junit}")
    files = {"report": written.html, "summary": written.markdown, "junit": written.junit,
             "manifest": written.manifest}
    return _decided("validate", decision, comparison, out, notify=args.notify,
                    report=written.html, written=files, policy=f"the suite {suite.path}")


def _signoff_command(commands: Commands) -> None:
    """``harness signoff``: its arguments, beside its handler."""
    signoff = commands.add_parser(
        "signoff", help="sign a validation report off (append to the signed ledger)",
        description="Append a signed record to the sign-off ledger: reviewer, role, meaning, "
                    "decision, time, comment, and the SHA-256 of the report, both run records "
                    "and the manifest, chained to the previous record and signed with the "
                    "reviewer's Ed25519 key (pinned in the reviewers file). The report and its "
                    "summary are re-rendered with the sign-offs and the ledger's head. Exit 0 "
                    "signed, 2 refused or bad input.",
    )
    signoff.add_argument("report", type=Path, metavar="REPORT",
                         help="the validation report (reports/validation-*.html)")
    signoff.add_argument("--reviewer", required=True, metavar="ID")
    signoff.add_argument("--decision", required=True, choices=("approve", "reject"))
    signoff.add_argument("--meaning", choices=("reviewed", "approved", "risk_accepted"),
                         help="what the signature means (default: approved for approve, "
                              "reviewed for reject)")
    signoff.add_argument("--comment", default="", metavar="TEXT")
    signoff.add_argument("--role", metavar="ROLE",
                         help="the role signed in (default: the reviewer's only pinned role)")
    signoff.add_argument("--key", type=Path, metavar="PATH",
                         help="your private key (default: $HARNESS_SIGNING_KEY)")
    signoff.add_argument("--reviewers", type=Path, metavar="PATH",
                         help="pinned reviewers (default: reviewers.yaml beside suites/)")
    signoff.add_argument("--case", action="append", metavar="ID",
                         help="with --meaning risk_accepted: a case whose risk is accepted "
                              "(a weakened or retired incident case the gate blocks on); "
                              "repeat for several")
    signoff.add_argument("--ledger", type=Path, metavar="PATH",
                         help="the ledger (default: the report's own, "
                              "REPORT.signoffs.jsonl beside it)")
    signoff.set_defaults(handler=_signoff)


def _signoff(args: argparse.Namespace) -> int:
    isolated = _isolated(args.argv)
    if isolated is not None:
        return isolated
    from harness.signoff.signing import sign_validation

    signed = sign_validation(args.report, reviewer_id=args.reviewer, decision=args.decision,
                             key=args.key, role=args.role, meaning=args.meaning,
                             comment=args.comment, ledger=args.ledger,
                             reviewers=args.reviewers, cases=tuple(args.case or ()))
    record, decision = signed.record, signed.decision
    print(f"signed: record {record['seq']} by {record['reviewer']} ({record['role']}), "
          f"{record['decision']} / {record['meaning']}")
    print(f"ledger: {signed.ledger} ({record['seq']} records, head {record['hash']})")
    print(f"decision now: {decision.outcome}")
    if decision.allowed and signed.required:
        print("restoration: approved by every required role")
    elif not decision.allowed:
        still = [reason.message for reason in decision.blocking]
        print(f"restoration still needs: {'; '.join(still)}")
    return EXIT_OK


def _verify_command(commands: Commands) -> None:
    """``harness verify``: its arguments, beside its handler."""
    verify = commands.add_parser(
        "verify", help="verify reports against their sign-off ledgers",
        description="For each report (default: every validation report under reports/): "
                    "check its ledger's hash chain and every signature against the pinned "
                    "keys, that the report and run records still match what was signed, that "
                    "the ledger still holds the record the report pins, and that the report's "
                    "decision banner and sign-off section are exactly what the ledger says. "
                    "Exit 0 valid, 1 invalid (naming what and where), 2 bad input.",
    )
    verify.add_argument("reports", nargs="*", type=Path, metavar="REPORT",
                        help="reports to check against their ledgers (default: every "
                             "validation report in --reports-dir)")
    verify.add_argument("--ledger", type=Path, metavar="PATH",
                        help="check this ledger (and the reports against it) instead of each "
                             "report's own ledger")
    verify.add_argument("--reports-dir", type=Path, default=Path("reports"), metavar="DIR",
                        help="where reports and ledgers are found (default: reports)")
    verify.add_argument("--suite", type=Path, metavar="SUITE",
                        help="the suite the reports must have validated: a report of another "
                             "version of it (another digest) is refused, exit 2")
    _since_option(verify)
    verify.add_argument("--reviewers", type=Path, default=Path("reviewers.yaml"),
                        metavar="PATH", help="default: reviewers.yaml")
    _format_option(verify)
    verify.set_defaults(handler=_verify)


def _verify(args: argparse.Namespace) -> int:
    isolated = _isolated(args.argv)
    if isolated is not None:
        return isolated
    from harness.errors import InputError
    from harness.loader import load_suite
    from harness.report.manifest import load_manifest
    from harness.signoff.history import check as check_history
    from harness.signoff.keys import load_reviewers
    from harness.signoff.ledger import LEGACY_LEDGER, Verification, ledger_for, verify
    from harness.signoff.status import report_problems

    out = _Out(args.format)
    reviewers = load_reviewers(args.reviewers)
    reports = list(args.reports)
    if not reports and args.ledger is None:
        reports = sorted(args.reports_dir.glob("validation-*.html"))
    problems: list[str] = []
    folders = {report.parent for report in reports} or {args.reports_dir}
    if args.ledger is not None:
        folders.add(args.ledger.parent)
    histories = {}
    for folder in sorted(folders):
        histories[folder.resolve()] = history = check_history(folder, args.since,
                                                              reviewers=args.reviewers)
        problems.extend(history.problems)
        out.line(f"history: {history.note}")
    checked: dict[Path, Verification] = {}

    def ledger_checked(path: Path) -> Verification | None:
        if path.resolve() not in checked and path.exists():
            history = histories.get(path.parent.resolve())
            accepted = history.accepted(path) if history else None
            checked[path.resolve()] = verify(path, reviewers, accepted=accepted)
            problems.extend(checked[path.resolve()].problems)
        return checked.get(path.resolve())

    if args.ledger is not None:
        if not args.ledger.exists():
            raise InputError("ledger not found", path=args.ledger)
        ledger_checked(args.ledger)
    suite = load_suite(args.suite) if args.suite else None
    for report in reports:
        manifest = load_manifest(report.with_suffix(".json"))
        if suite is not None and manifest.suite_digest != suite.digest:
            problem = (f"{report} validated another version of the suite (validated suite "
                       f"digest {manifest.suite_digest}, this suite's {suite.digest})")
            raise InputError(problem, path=args.suite, field="--suite")
        ledger = ledger_for(manifest, args.ledger)
        problems.extend(report_problems(manifest, ledger=ledger, reviewers=reviewers,
                                        verification=ledger_checked(ledger)))
    if not reports and args.ledger is None:
        for ledger in sorted(args.reports_dir.glob(f"*{LEGACY_LEDGER}")):
            ledger_checked(ledger)
    for problem in problems:
        out.line(f"INVALID {problem}")
    for path, verification in checked.items():
        head = verification.head
        state = "valid" if verification.valid else "invalid"
        out.line(f"ledger {path}: {state}, {head['count']} record(s), head {head['last_hash']}")
    state = "valid" if not problems else "INVALID"
    out.line(f"{state}: {len(reports)} report(s), {len(checked)} ledger(s) checked")
    code = EXIT_OK if not problems else EXIT_FAILED
    out.document({
        "version": JSON_VERSION, "command": "verify", "exit_code": code,
        "valid": not problems, "problems": problems,
        "reports": [str(report) for report in reports],
        "ledgers": [{"path": str(path), "valid": verification.valid,
                     "records": verification.head["count"],
                     "head": verification.head["last_hash"]}
                    for path, verification in checked.items()],
        "said": out.said,
    })
    return code


def _keygen_command(commands: Commands) -> None:
    """``harness keygen``: its arguments, beside its handler."""
    keygen = commands.add_parser(
        "keygen", help="make a reviewer's Ed25519 signing key (outside any repository)",
        description="Write a new Ed25519 private key in OpenSSH format (mode 0600; refused "
                    "inside a git work tree) and print the public key line to pin in the "
                    "reviewers file through code review. ssh-keygen -t ed25519 works too.",
    )
    keygen.add_argument("path", type=Path, metavar="PATH")
    keygen.add_argument("--comment", default="", metavar="TEXT")
    keygen.set_defaults(handler=_keygen)


def _keygen(args: argparse.Namespace) -> int:
    from harness.signoff.keys import keygen

    public = keygen(args.path, comment=args.comment)
    print(f"private key: {args.path} (keep it out of every repository)")
    print("public key, to pin in reviewers.yaml:")
    print(public)
    return EXIT_OK


def _case_command(commands: Commands) -> None:
    """``harness case``: its arguments, beside its handler."""
    case = commands.add_parser("case", help="draft incident cases")
    case_actions = case.add_subparsers(dest="case_command", metavar="ACTION", required=True)
    from_trace = case_actions.add_parser(
        "from-trace", help="draft an incident case from a logged trace",
        description="Import a trace (OpenTelemetry GenAI or OpenInference spans as OTLP JSON, "
                    "OTLP protobuf or span lists; LangSmith runs; Langfuse traces) as the "
                    "case's evidence, draft the category's checks, and write a case marked "
                    "draft: true for review: one per trace of the file (or the --trace-id one). "
                    "--into fills an existing draft (from harness incident new) instead. "
                    "Evidence the trace should have had and lacks is listed in "
                    "evidence.missing. Exit 0 written, 2 bad input (nothing written).",
    )
    from_trace.add_argument("trace", type=Path, metavar="FILE")
    from_trace.add_argument("--category", "-c", choices=CATEGORIES,
                            help="required, unless --into names a draft (its category)")
    from_trace.add_argument("--id", metavar="ID",
                            help="default: the registry's next free INC-<year>-<n>; several "
                                 "traces get ID-1, ID-2, ...")
    from_trace.add_argument("--into", type=Path, metavar="CASE_FILE",
                            help="fill this draft's evidence and checks from the trace")
    from_trace.add_argument("--trace-id", metavar="ID",
                            help="the trace to draft, in a file of several")
    from_trace.add_argument("--workflow", "-w", metavar="W",
                            help="default: the trace's service or trace name")
    from_trace.add_argument("--out", "-o", type=Path, metavar="PATH",
                            help="default: cases/<workflow>/<id>.yaml; never overwritten")
    from_trace.add_argument("--format", choices=("otel", "openinference", "langsmith",
                                                 "langfuse"), help="default: detected")
    from_trace.add_argument("--reference", metavar="TEXT",
                            help="the corrected answer (policy, output_quality)")
    from_trace.add_argument("--title", metavar="T")
    from_trace.add_argument("--owner", metavar="O", help="default: unassigned")
    from_trace.add_argument("--severity", choices=("sev1", "sev2", "sev3", "sev4"),
                            help="default: sev3")
    from_trace.set_defaults(handler=_case_from_trace)
    close = case_actions.add_parser(
        "close", help="close a finished draft case",
        description="Close a draft incident case: refused while a field is left to fill "
                    "(TODO, owner unassigned) or while its checks do not fail on its own "
                    "evidence (as harness check requires); otherwise removes draft: true, sets "
                    "status: closed and timeline.closed, keeping the rest of the file. Exit 0 "
                    "closed, 1 not closable (says what is left), 2 bad input.",
    )
    close.add_argument("case_file", type=Path, metavar="CASE_FILE")
    _no_cache_option(close)
    close.set_defaults(handler=_case_close)


def _case_from_trace(args: argparse.Namespace) -> int:
    from harness.errors import InputError
    from harness.intake.from_trace import draft_from_trace, draft_into

    if args.into is not None:
        for flag, value in (("--id", args.id), ("--out", args.out),
                            ("--workflow", args.workflow), ("--title", args.title),
                            ("--owner", args.owner), ("--severity", args.severity)):
            if value is not None:
                raise InputError(f"{flag} does not go with --into: the draft keeps its own "
                                 "record", field=flag)
        drafts = [draft_into(args.trace, args.into, category=args.category, format=args.format,
                             trace_id=args.trace_id, reference=args.reference)]
    else:
        if args.category is None:
            raise InputError("name the incident's category (--category), or fill a draft "
                             "with --into", field="--category")
        drafts = draft_from_trace(args.trace, category=args.category, id=args.id,
                                  workflow=args.workflow, out=args.out, format=args.format,
                                  trace_id=args.trace_id, reference=args.reference,
                                  title=args.title, owner=args.owner, severity=args.severity)
    for drafted in drafts:
        _say("\n".join(drafted.summary()))
    return EXIT_OK


def _case_close(args: argparse.Namespace) -> int:
    from harness.intake.close import NotClosable, close_case

    try:
        close_case(args.case_file, no_cache=args.no_cache)
    except NotClosable as exc:
        _say(f"{exc.path}: not closed:")
        for line in exc.refusal.lines():
            _say(f"  {line}")
        return EXIT_FAILED
    print(f"closed {args.case_file}: status: closed, draft: true removed")
    return EXIT_OK


def _incident_command(commands: Commands) -> None:
    """``harness incident``: its arguments, beside its handler."""
    incident = commands.add_parser("incident", help="record an incident as a draft case")
    actions = incident.add_subparsers(dest="incident_command", metavar="ACTION", required=True)
    new = actions.add_parser(
        "new", help="draft a new incident case; severity derived from the impact",
        description="Write cases/WORKFLOW/ID.yaml (draft: true), asking for missing essentials "
                    "when standard input is a terminal. Severity comes from severity-rules.yaml "
                    "at --root (or --rules, or the defaults) unless --severity is given. Earlier "
                    "incidents of the same workflow and category that read alike are named. "
                    "Exit 0 written, 2 bad input (nothing written).",
    )
    new.add_argument("--workflow", metavar="W")
    new.add_argument("--category", choices=CATEGORIES)
    new.add_argument("--id", metavar="ID", help="default: INC-<year>-<next number>")
    new.add_argument("--title", metavar="T")
    new.add_argument("--owner", metavar="O")
    new.add_argument("--business-owner", metavar="NAME")
    new.add_argument("--severity", choices=("sev1", "sev2", "sev3", "sev4"),
                     help="set by hand (default: derived); warns when lower than derived")
    new.add_argument("--users", type=int, metavar="N")
    new.add_argument("--records", type=int, metavar="N")
    new.add_argument("--workflow-users", type=int, metavar="N",
                     help="all users of the workflow, for the share affected")
    new.add_argument("--data-class", action="append", metavar="X")
    new.add_argument("--impact", action="append", metavar="KEY=VALUE",
                     help="more impact facts: workflow_users, records_modified, customer_data, "
                          "restricted_data, external_destination, commitment_breached, "
                          "high_risk_action, approval_bypassed (true/false or a number)")
    new.add_argument("--summary", metavar="TEXT", help="impact summary")
    new.add_argument("--near-miss", action="store_true")
    new.add_argument("--timeline", action="append", metavar="STEP=TIME",
                     help="e.g. detected=2026-03-19T10:00:00Z")
    new.add_argument("--root-cause", metavar="TEXT")
    new.add_argument("--evidence", type=Path, metavar="FILE",
                     help="YAML with evidence fields (input, output, tool_calls, ...)")
    new.add_argument("--root", type=Path, default=Path("."), metavar="DIR",
                     help="the project folder holding cases/ (default: .)")
    new.add_argument("--rules", type=Path, metavar="PATH", help="severity rules file")
    new.set_defaults(handler=_incident_new)


def _incident_new(args: argparse.Namespace) -> int:
    from harness.intake import new as intake

    values = {k: v for k, v in vars(args).items() if k not in ("handler", "passthrough")}
    intake.new_incident(values, root=args.root, rules_path=args.rules)
    return EXIT_OK


def _check_command(commands: Commands) -> None:
    """``harness check``: its arguments, beside its handler."""
    check = commands.add_parser(
        "check", help="check the case registry (meant for CI)",
        description="Check every case and suite under ROOT: files valid, ids unique, every "
                    "closed incident included by a suite, every incident case failing on its "
                    "own evidence and on the suite's pre-fix (or gate.baseline) target, no "
                    "draft left, and every incident case file of --since REF still here and "
                    "in a suite (or retired, with the retirement signed off). Exit 0 clean, 1 "
                    "findings (each names file:line and what to do), 2 bad input.",
    )
    check.add_argument("root", nargs="?", type=Path, default=Path("."), metavar="ROOT",
                       help="the project folder holding cases/ and suites/ (default: .)")
    check.add_argument("--no-targets", action="store_true",
                       help="do not run incident cases on the pre-fix / gate.baseline target")
    check.add_argument("--no-judges", action="store_true",
                       help="leave out judge and semantic checks (they call the suite's judges "
                            "and embedders, also with --no-targets)")
    _no_cache_option(check)
    _since_option(check)
    _format_option(check)
    check.set_defaults(handler=_check)


def _check(args: argparse.Namespace) -> int:
    from harness.intake import registry_check
    from harness.signoff.status import accepted_retirements

    out = _Out(args.format)
    accepted = accepted_retirements(args.root / "reports", args.root / "reviewers.yaml")
    notes: list[str] = []
    with contextlib.redirect_stdout(sys.stderr) if out.json else contextlib.nullcontext():
        findings = registry_check.check_registry(
            args.root, run_targets=not args.no_targets, since=args.since,
            accepted_retirements=accepted, notes=notes, judges=not args.no_judges,
            no_cache=args.no_cache)
    cases = registry_check.load_cases(args.root / "cases")
    rows = registry_check.completeness(cases)
    for line in registry_check.render_report(findings, rows).splitlines():
        out.line(line)
    for note in notes:
        out.line(note)
    code = EXIT_FAILED if findings else EXIT_OK
    people = {case.id: case.incident for case in cases if case.incident is not None}

    def finding(item: registry_check.Finding) -> dict[str, Any]:
        incident = people.get(item.case_id or "")
        return {"path": item.path, "line": item.line, "case_id": item.case_id,
                "rule": item.rule, "message": item.message, "fix": item.fix,
                "owner": incident.owner if incident else None,
                "business_owner": incident.business_owner if incident else None}

    out.document({
        "version": JSON_VERSION, "command": "check", "exit_code": code,
        "clean": not findings, "findings": [finding(item) for item in findings],
        "completeness": [{"case_id": row.case_id, "present": row.present,
                          "missing": row.missing, "reconstructed": row.reconstructed}
                         for row in rows],
        "notes": notes, "said": out.said,
    })
    return code


def _judge_command(commands: Commands) -> None:
    """``harness judge``: its arguments, beside its handler."""
    judge = commands.add_parser("judge", help="prove the suite's model judges")
    judge_actions = judge.add_subparsers(dest="action", required=True, metavar="ACTION")
    calibrate = judge_actions.add_parser(
        "calibrate", help="measure each judge on answers whose verdict is known",
        description="Run every judge check of SUITE on each incident case's evidence (must be "
                    "judged fail), on each case's reference and acceptable_outputs (must be "
                    "judged pass) and on the labelled --examples; print per judge accuracy, "
                    "false-pass rate, false-fail rate, Cohen's kappa and the examples that "
                    "disagree; write a calibration record per judge. Exit 0 when every judge "
                    "meets gate.judges.max_false_pass_rate (if set) with a verdict on every "
                    "example, 1 otherwise, 2 bad input.",
    )
    calibrate.add_argument("suite", type=Path, metavar="SUITE")
    calibrate.add_argument("--examples", type=Path, metavar="FILE",
                           help="labelled examples (YAML: examples: [{case, output, expected}])")
    calibrate.add_argument("--out-dir", type=Path, metavar="DIR",
                           help="where calibration records go (default: the suite's "
                                "reports/calibration)")
    _no_cache_option(calibrate)
    calibrate.set_defaults(handler=_calibrate)


def _calibrate(args: argparse.Namespace) -> int:
    from harness import calibration, judges, loader
    from harness.errors import InputError
    from harness.redact import run_redactor
    from harness.visible import shown

    suite = loader.load_suite(args.suite)
    examples = calibration.examples_of(suite, calibration.load_examples(args.examples),
                                       args.examples)
    if not examples:
        problem = ("nothing to calibrate: no judge check of the suite has a known-bad or "
                   "known-good answer (incident evidence, reference, acceptable_outputs) or "
                   "a labelled example (--examples)")
        raise InputError(problem, path=suite.path)
    loader.import_project_code(suite.cases, suite.root)
    redactor = run_redactor(suite.cases)
    service = judges.for_suite(suite, no_cache=args.no_cache, redactor=lambda: redactor)
    assert service is not None  # a suite with judge checks has judges (the loader checks)
    rows = calibration.judge(examples, service)
    folder = args.out_dir or suite.root / calibration.FOLDER
    limit = suite.gate.get("judges", {}).get("max_false_pass_rate")
    code = EXIT_OK
    for name, judged in sorted(rows.items()):
        f = calibration.figures(judged)
        spec = suite.judges[name]

        def rate(value: float | None, part: int, whole: int) -> str:
            return "n/a (none)" if value is None else f"{value:.3f} ({part} of {whole})"

        models = sorted({model for row in judged for model in row.models})
        model = ", ".join(models) or spec.target.options.get("model") or spec.target.kind
        print(f"judge {name} ({model}; configuration {spec.digest}):")
        print(f"  {f.examples} example(s): {f.bad} bad, {f.good} good answered, "
              f"{f.errors} without a verdict")
        print(f"  accuracy    {'n/a' if f.accuracy is None else format(f.accuracy, '.3f')}")
        print(f"  false-pass  {rate(f.false_pass_rate, f.false_passes, f.bad)}")
        print(f"  false-fail  {rate(f.false_fail_rate, f.false_fails, f.good)}")
        print(f"  kappa       {'n/a' if f.kappa is None else format(f.kappa, '.3f')}")
        for row in judged:
            if row.agrees:
                continue
            text = row.output if len(row.output) <= 120 else row.output[:117] + "..."
            print(shown(f"  disagrees: {row.source} [{row.rubric}, line {row.line}]: expected "
                        f"{row.expected}, judged {row.verdict}: {text!r}"))
            print(shown(f"    judge: {row.reason}"))
            if row.note:
                print(shown(f"    label: {row.note}"))
        path = calibration.write(folder, suite=suite, judge_name=name, rows=judged)
        print(f"  calibration record: {path}")
        if f.errors or (limit is not None and (f.false_pass_rate is None
                                               or f.false_pass_rate > limit)):
            code = EXIT_FAILED
            why = (f"{f.errors} example(s) got no verdict" if f.errors else
                   f"false-pass rate above the gate's {limit:g}")
            print(f"  NOT ACCEPTED by the gate: {why}")
    return code


def _metrics_command(commands: Commands) -> None:
    """``harness metrics``: its arguments, beside its handler."""
    metrics = commands.add_parser(
        "metrics", help="incident metrics from the case files (and run records)",
        description="Incident counts by workflow, category and severity; time to detection "
                    "and containment (median, p90); affected users and records; repeated "
                    "failure types; missing log rate; human review bypasses; post-fix results "
                    "from the latest runs.",
    )
    metrics.add_argument("cases_dir", nargs="?", type=Path, default=Path("cases"),
                         metavar="CASES_DIR", help="default: cases")
    metrics.add_argument("--runs", type=Path, metavar="DIR",
                         help="run records folder for post-fix results (e.g. reports/runs)")
    metrics.add_argument("--format", choices=("table", "csv", "json", "html"), default="table")
    metrics.add_argument("--out", type=Path, metavar="PATH",
                         help="write to PATH instead of standard output")
    metrics.set_defaults(handler=_metrics)


def _metrics(args: argparse.Namespace) -> int:
    from harness.files import write_atomic
    from harness.intake import metrics
    from harness.intake.registry_check import load_cases

    notes: list[str] = []
    runs = metrics.load_runs(args.runs, notes=notes) if args.runs else []
    figures = metrics.compute_metrics(load_cases(args.cases_dir), runs, notes=notes)
    text = metrics.render(figures, args.format)
    if args.out:
        write_atomic(args.out, text)
        print(f"metrics: {args.out}")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _checks_command(commands: Commands) -> None:
    """``harness checks``: its arguments, beside its handler."""
    kinds = commands.add_parser(
        "checks", help="list every check kind with its parameters",
        description="List every available check kind (built-in and from installed "
                    "harness.checks packages) with its one-line description and parameters.",
    )
    kinds.add_argument("--format", choices=("text", "markdown", "json"), default="text",
                       help="text (default), a Markdown table, or JSON")
    kinds.set_defaults(handler=_checks)


def _checks(args: argparse.Namespace) -> int:
    from harness.checks import catalogue

    print(catalogue.render(args.format))
    return EXIT_OK


def _schema_command(commands: Commands) -> None:
    """``harness schema``: its arguments, beside its handler."""
    schema = commands.add_parser(
        "schema", help="print the JSON Schema of case and suite files",
        description="Print a JSON Schema for case files, suite files, or both (default), for "
                    "editors to complete and check them. It lists every check kind known here "
                    "(the built-in ones and those of installed harness.checks packages) with "
                    "its parameters: print it again after installing such a package.",
    )
    schema.add_argument("which", nargs="?", choices=("all", "case", "suite"), default="all")
    schema.set_defaults(handler=_schema)


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


@contextlib.contextmanager
def _notes_printed() -> Iterator[None]:
    """While a command runs, each :class:`~harness.errors.HarnessNote` is printed once as
    ``note: ...`` on standard error; every other warning is shown as Python shows it."""
    import warnings

    from harness.errors import HarnessNote

    with warnings.catch_warnings():
        warnings.filterwarnings("default", category=HarnessNote)
        shown = warnings.showwarning

        def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: TextIO | None = None, line: str | None = None) -> None:
            if issubclass(category, HarnessNote):
                print(f"note: {message}", file=sys.stderr)
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield


_ISOLATED_MAIN = """\
import importlib.util
import sys
from pathlib import Path

home = sys.argv.pop(1)
spec = importlib.util.find_spec("harness")
found = str(Path(spec.origin).resolve().parent.parent) if spec and spec.origin else None
if found != home:  # the harness that started this one, not another copy
    sys.path.insert(0, home)
import harness

found = str(Path(harness.__file__).resolve().parent.parent)
if found != home:
    print(f"error: the isolated interpreter imports harness from {found}, not {home}",
          file=sys.stderr)
    sys.exit(2)
from harness.cli import main

sys.exit(main(sys.argv[1:]))
"""


def _isolated(argv: Sequence[str], *, fresh: bool = False) -> int | None:
    """Run ``harness ARGV`` in a fresh, isolated interpreter, unless this one is isolated (and
    ``fresh`` does not insist on a new one).

    Returns the child's exit code, or None when this interpreter should go on. A decision
    (gate, validate, verify, sign-off) is made by a process that has imported nothing of the
    project: ``python -I`` puts neither the working folder nor PYTHONPATH on
    ``sys.path``, so a ``deepdiff.py`` beside the suite cannot stand in for the library, and
    a target or check that patched the harness in memory during a run patched another process.
    """
    if sys.flags.isolated and not fresh:
        return None
    import subprocess

    import harness

    home = str(Path(harness.__file__).resolve().parent.parent)
    sys.stdout.flush()
    sys.stderr.flush()
    command = [sys.executable, "-I", "-c", _ISOLATED_MAIN, home, *argv]
    return subprocess.run(command, check=False).returncode


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``harness`` command; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    passthrough: list[str] = []
    if "--" in argv:  # everything after -- goes to pytest untouched
        at = argv.index("--")
        argv, passthrough = argv[:at], argv[at + 1:]
    args = _parser().parse_args(argv)
    args.passthrough = passthrough
    args.argv = argv
    from harness.errors import HarnessError

    try:
        with _notes_printed():
            code = int(args.handler(args))
        sys.stdout.flush()  # here, so a reader gone away is seen while it can be handled
        return code
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return _reader_gone()


def _reader_gone() -> int:
    """The reader of standard output went away (``harness gate ... | head -2``): end quietly
    with the status of a command stopped by SIGPIPE, and keep Python from complaining when it
    flushes standard output on the way out."""
    import os
    import signal

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 128 + signal.SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
