"""The ``harness`` command: exit codes, run records, bad input, the JSON Schema."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_python, write

from harness.records import read_run


def harness(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=120, check=False)


def test_run_exits_0_and_writes_a_record_when_every_case_passes(project):
    done = harness("run", "suites/demo.yaml", "--target", "good", "--out", "run.jsonl",
                   cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed, 0 failed, 0 errors" in done.stdout
    record = read_run(project / "run.jsonl")
    assert record.complete
    assert record.header.suite == "demo" and record.header.target == "good"
    assert {r.case_id: r.verdict for r in record.results} == {"BASE-1": "pass", "INC-1": "pass"}


def test_run_exits_1_when_a_case_fails(project):
    done = harness("run", "suites/demo.yaml", "--target", "bad", "--out", "run.jsonl",
                   cwd=project)
    assert done.returncode == 1
    assert "INC-1 failed" in done.stdout
    assert {r.case_id: r.verdict for r in read_run(project / "run.jsonl").results} == {
        "BASE-1": "pass", "INC-1": "fail"}


def test_run_exits_1_when_the_target_errors(project):
    done = harness("run", "suites/demo.yaml", "--target", "broken", "--out", "run.jsonl",
                   cwd=project)
    assert done.returncode == 1
    results = read_run(project / "run.jsonl").results
    assert [r.verdict for r in results] == ["error", "error"]
    assert "RuntimeError: model route unavailable" in (results[0].trials[0].error or "")


def test_run_default_record_path_is_under_reports_runs(project, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    done = harness("run", str(project / "suites" / "demo.yaml"), "-t", "good", cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    records = list((project / "reports" / "runs").glob("demo-good-*.jsonl"))
    assert len(records) == 1
    assert f"run record: {records[0]}" in done.stdout


def test_run_passes_arguments_after_double_dash_to_pytest(project):
    done = harness("run", "suites/demo.yaml", "-t", "bad", "--out", "run.jsonl", "--",
                   "-k", "BASE", cwd=project)
    assert done.returncode == 0, done.stdout
    assert [r.case_id for r in read_run(project / "run.jsonl").results] == ["BASE-1"]


def test_bad_case_exits_2_with_path_line_no_traceback_and_no_output(project):
    write(project / "cases" / "demo" / "BASE-2.yaml", """
        id: BASE-2
        input: hi
        trials: three
        expect:
          - contains: Hello
    """)
    done = harness("run", "suites/demo.yaml", "-t", "good", cwd=project)
    assert done.returncode == 2
    assert "cases/demo/BASE-2.yaml:3: trials: expected a whole number, found a string" \
        in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not (project / "reports").exists()


def test_unknown_target_exits_2(project):
    done = harness("run", "suites/demo.yaml", "-t", "prod", cwd=project)
    assert done.returncode == 2
    assert "no target named 'prod'" in done.stderr


def test_unimportable_target_exits_2_before_running(project):
    suite = project / "suites" / "demo.yaml"
    suite.write_text(suite.read_text().replace("wf_fixture:respond", "wf_missing:respond", 1))
    done = harness("run", "suites/demo.yaml", "-t", "good", cwd=project)
    assert done.returncode == 2
    assert "suites/demo.yaml:6: targets.good.python: cannot import module 'wf_missing'" \
        in done.stderr
    assert not (project / "reports").exists()


def test_missing_suite_exits_2(project):
    done = harness("run", "suites/nope.yaml", "-t", "good", cwd=project)
    assert done.returncode == 2
    assert "suites/nope.yaml: file not found" in done.stderr


def test_existing_record_is_never_overwritten(project):
    (project / "run.jsonl").write_text("precious\n")
    done = harness("run", "suites/demo.yaml", "-t", "good", "--out", "run.jsonl", cwd=project)
    assert done.returncode == 2
    assert "already exists" in done.stderr
    assert (project / "run.jsonl").read_text() == "precious\n"


def test_selecting_no_case_exits_2(project):
    done = harness("run", "suites/demo.yaml", "-t", "good", "--out", "run.jsonl", "--",
                   "-k", "NOTHING", cwd=project)
    assert done.returncode == 2
    assert "no case was selected" in done.stderr


def test_schema_describes_case_and_suite_files(project):
    done = harness("schema", cwd=project)
    assert done.returncode == 0
    document = json.loads(done.stdout)
    case = document["$defs"]["case"]
    assert case["required"] == ["expect"]
    assert case["properties"]["category"]["enum"][0] == "output_quality"
    assert case["additionalProperties"] is False
    suite = json.loads(harness("schema", "suite", cwd=project).stdout)
    assert set(suite["required"]) == {"name", "cases", "targets"}


REPO = Path(__file__).resolve().parent.parent
BUNDLED = str(REPO / "suites" / "refund-assistant.yaml")


def test_bundled_suite_pre_fix_fails_exactly_the_seven_incident_cases(tmp_path):
    done = harness("run", BUNDLED, "--target", "pre-fix", "--out", str(tmp_path / "pre.jsonl"),
                   cwd=tmp_path)
    assert done.returncode == 1
    results = read_run(tmp_path / "pre.jsonl").results
    failing = sorted(r.case_id for r in results if r.verdict != "pass")
    assert failing == sorted(r.case_id for r in results if r.incident)
    assert len(failing) == 7
    assert {r.category for r in results if r.verdict != "pass"} == {
        "output_quality", "data_exposure", "automation_error", "policy", "retrieval",
        "human_review"}


def test_bundled_suite_post_fix_passes(tmp_path):
    done = harness("run", BUNDLED, "--target", "post-fix", "--out", str(tmp_path / "post.jsonl"),
                   cwd=tmp_path)
    assert done.returncode == 0, done.stdout
    assert all(r.verdict == "pass" for r in read_run(tmp_path / "post.jsonl").results)


def test_bundled_suite_selects_the_data_exposure_case_by_marker(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "pytest", BUNDLED, "--harness-target", "pre-fix",
         "-m", "data_exposure", "-p", "no:cacheprovider"],
        cwd=tmp_path, text=True, capture_output=True, timeout=120, check=False)
    assert done.returncode == 1
    assert "1 failed, 19 deselected" in done.stdout
    assert "FAILED" in done.stdout and "INC-2026-011" in done.stdout


def test_check_on_the_bundled_registry_exits_0():
    done = harness("check", str(REPO), "--no-targets", cwd=REPO)
    assert done.returncode == 0, done.stdout
    assert "no findings" in done.stdout


def test_check_exits_1_naming_a_non_reproducing_case_and_an_orphan(tmp_path):
    import shutil

    shutil.copytree(REPO / "cases", tmp_path / "cases")
    shutil.copytree(REPO / "suites", tmp_path / "suites")
    case = tmp_path / "cases" / "refund-assistant" / "INC-2026-014.yaml"
    text = case.read_text()
    case.write_text(text[: text.index("\nexpect:\n")] + "\nexpect:\n  - contains: Source\n")
    orphan = tmp_path / "cases" / "billing" / "INC-2026-099.yaml"
    orphan.parent.mkdir()
    orphan.write_text(text.replace("id: INC-2026-014", "id: INC-2026-099"))
    done = harness("check", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 1
    assert "INC-2026-014" in done.stdout and "pre-fix" in done.stdout
    assert "cases/billing/INC-2026-099.yaml" in done.stdout and "suite" in done.stdout


def test_check_on_bad_input_exits_2(tmp_path):
    write(tmp_path / "cases" / "w" / "C1.yaml", "id: C1\ninput: x\nexpect: nope\n")
    write(tmp_path / "suites" / "s.yaml", "name: s\ncases: cases/w/*.yaml\n"
                                          "targets: {r: {replay: true}}\n")
    done = harness("check", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 2
    assert "C1.yaml:3: expect: expected a list" in done.stderr


def test_metrics_prints_every_metric(tmp_path):
    done = harness("metrics", str(REPO / "cases"), "--format", "json", cwd=tmp_path)
    assert done.returncode == 0
    figures = json.loads(done.stdout)
    text = json.dumps(figures)
    for name in ("by_workflow", "by_category", "by_severity", "detection", "containment",
                 "users", "records", "repeated", "missing", "bypass"):
        assert name in text, name
    out = tmp_path / "metrics.html"
    assert harness("metrics", str(REPO / "cases"), "--format", "html", "--out", str(out),
                   cwd=tmp_path).returncode == 0
    assert out.read_text().lower().startswith("<!doctype html>")


def test_incident_new_writes_a_loadable_draft_with_derived_severity(tmp_path):
    from harness.loader import load_case

    done = harness("incident", "new", "--root", str(tmp_path), "--workflow", "billing-bot",
                   "--category", "automation_error", "--title", "Credit on the wrong account",
                   "--owner", "dana", "--users", "12", "--records", "12",
                   "--workflow-users", "4000", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "severity: sev2 (derived from the impact)" in done.stdout
    (written,) = (tmp_path / "cases" / "billing-bot").glob("INC-*-001.yaml")
    case = load_case(written)
    assert case.draft and case.incident.severity == "sev2"
    assert any("records" in line for line in case.incident.severity_basis)


def test_incident_new_without_a_terminal_names_the_missing_flags(tmp_path):
    done = harness("incident", "new", "--root", str(tmp_path), "--workflow", "w", cwd=tmp_path)
    assert done.returncode == 2
    assert "pass --category C --title T --owner O" in done.stderr
    assert not (tmp_path / "cases").exists()


def test_case_from_trace_writes_a_draft_that_reproduces_its_incident(tmp_path):
    from harness import runner
    from harness.loader import load_case
    from harness.targets.replay import ReplayTarget

    sample = REPO / "tests" / "samples" / "traces" / "langfuse-refund.json"
    done = harness("case", "from-trace", str(sample), "--category", "human_review",
                   "--id", "INC-2026-101", "--workflow", "refund-assistant", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    case = load_case(tmp_path / "cases" / "refund-assistant" / "INC-2026-101.yaml")
    assert case.draft and case.incident.category == "human_review"
    assert runner.run_case(case, ReplayTarget()).verdict == "fail"
    again = harness("case", "from-trace", str(sample), "--category", "human_review",
                    "--id", "INC-2026-101", "--workflow", "refund-assistant", cwd=tmp_path)
    assert again.returncode == 2 and "exists" in again.stderr


def test_no_artifact_holds_a_planted_canary_in_plaintext(project):
    canaries = ["jane.doe@example.org", "4111 1111 1111 1111", "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
                "+1-555-0142"]
    write(project / "wf_fixture.py", f'''
def respond(request, *, mode="good"):
    leak = {canaries!r}
    return {{"output": "Contact " + leak[0] + ", card " + leak[1],
            "tool_calls": [{{"name": "send_email",
                            "args": {{"to": leak[0], "body": "key " + leak[2] + " tel " + leak[3]}},
                            "result": {{"sent": True}}}}]}}
''')
    write(project / "cases" / "demo" / "BASE-1.yaml", """
        id: BASE-1
        input: {message: hi}
        expect:
          - no_pii: {}
    """)
    done = harness("validate", "suites/demo.yaml", "--baseline", "replay", "--candidate",
                   "good", cwd=project)
    assert done.returncode == 1, done.stdout + done.stderr
    artifacts = [*(project / "reports").rglob("*.*")]
    assert {p.suffix for p in artifacts} >= {".jsonl", ".html", ".md", ".xml", ".json"}
    text = "\n".join(p.read_text(encoding="utf-8") for p in artifacts) + done.stdout
    run = harness("run", "suites/demo.yaml", "-t", "good", "--out", "failing.jsonl",
                  cwd=project)
    text += run.stdout + (project / "failing.jsonl").read_text()
    for canary in canaries:
        assert canary not in text, canary
    assert "[redacted:email]" in text
    raw = harness("run", "suites/demo.yaml", "-t", "good", "--out", "raw.jsonl", "--no-redact",
                  cwd=project)
    assert canaries[0] in raw.stdout + (project / "raw.jsonl").read_text()


@pytest.mark.parametrize("command", [["--help"], ["schema"], ["checks"]])
def test_light_commands_do_not_import_heavy_modules(command):
    probe = (
        "import sys\n"
        "from harness.cli import main\n"
        "try:\n"
        f"    main({command!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in ('pandas', 'numpy', 'deepdiff', 'jinja2', 'pytest',\n"
        "                           'cryptography') if m in sys.modules)\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    done = run_python(probe)
    assert "HEAVY []" in done.stderr, done.stderr


def test_compare_prints_transitions_changed_checks_and_json(tmp_path):
    for target in ("post-fix", "next-release"):
        assert harness("run", BUNDLED, "-t", target, "--out", str(tmp_path / f"{target}.jsonl"),
                       cwd=tmp_path).returncode in (0, 1)
    text = harness("compare", "post-fix.jsonl", "next-release.jsonl", cwd=tmp_path)
    assert text.returncode == 0
    assert "INC-2026-017" in text.stdout and "regressed" in text.stdout
    assert "approval_required (line" in text.stdout and "pass -> fail" in text.stdout
    assert "    output, word by word (similarity " in text.stdout
    assert "      - Refunds over $500 need a manager's sign-off" in text.stdout
    assert "      1 removed, 3 unchanged\n      - #2 request_approval {" in text.stdout
    assert text.stdout.rstrip().endswith("1 regressed, 19 still_passing")
    data = json.loads(harness("compare", "post-fix.jsonl", "next-release.jsonl", "--format",
                              "json", cwd=tmp_path).stdout)
    assert data["counts"]["regressed"] == 1
    (case,) = [c for c in data["cases"] if c["transition"] == "regressed"]
    assert case["case_id"] == "INC-2026-017" and case["incident"]
    assert {c["kind"] for c in case["check_changes"]} >= {"approval_required"}
    assert "tool_calls" in case["structured_diffs"]
    assert case["output_diff_state"] == "changed" and case["output_diff_omitted"] == 0
    assert {part["op"] for part in case["output_diff"]} <= {"equal", "delete", "insert"}
    assert any(part["op"] == "delete" and "manager" in part["text"]
               for part in case["output_diff"])
    assert [(c["op"], c["name"]) for c in case["tool_call_diff"]] == [
        ("unchanged", "lookup_order"), ("removed", "request_approval"),
        ("unchanged", "issue_refund"), ("unchanged", "send_email")]
    passing = next(c for c in data["cases"] if c["transition"] == "still_passing")
    assert passing["output_diff_state"] == "still_passing" and passing["output_diff"] == []
    bad = harness("compare", "post-fix.jsonl", "missing.jsonl", cwd=tmp_path)
    assert bad.returncode == 2 and "missing.jsonl: run record not found" in bad.stderr
    one = harness("compare", "post-fix.jsonl", "next-release.jsonl", "--case", "INC-2026-017",
                  cwd=tmp_path)
    assert one.returncode == 0 and one.stdout.startswith("INC-2026-017")
    assert one.stdout.rstrip().endswith("\n1 regressed")
    shown = json.loads(harness("compare", "post-fix.jsonl", "next-release.jsonl", "--format",
                               "json", "--case", passing["case_id"], cwd=tmp_path).stdout)
    assert [c["case_id"] for c in shown["cases"]] == [passing["case_id"]]
    unknown = harness("compare", "post-fix.jsonl", "next-release.jsonl", "--case", "NOPE",
                      cwd=tmp_path)
    assert unknown.returncode == 2 and "--case: no case 'NOPE' in either run" in unknown.stderr
    assert unknown.stdout == "" and "Traceback" not in unknown.stderr


def test_compare_shows_missing_cases_error_trials_and_caps_huge_outputs(tmp_path):
    from conftest import make_result, make_run

    from harness.records import RunWriter

    words = [f"w{n}" for n in range(3_000)]
    huge = " ".join(words)
    changed = " ".join(f"X{n}" if n % 10 == 0 else word for n, word in enumerate(words))
    runs = {
        "base": (make_result("GONE", "pass"), make_result("ERR", "pass"),
                 make_result("HUGE", "pass", output=huge)),
        "cand": (make_result("NEW", "fail"), make_result("ERR", "error"),
                 make_result("HUGE", "fail", output=changed)),
    }
    for name, results in runs.items():
        writer = RunWriter(tmp_path / f"{name}.jsonl", make_run(*results).header)
        for result in results:
            writer.add(result)
        writer.close()
    text = harness("compare", "base.jsonl", "cand.jsonl", cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    err = lines.index(next(line for line in lines if line.startswith("ERR ")))
    assert lines[err + 1:err + 3] == [
        "    contains (line 7): pass -> absent: was pass",
        "    output: not compared, a run has no response for this case"]
    assert any(line.startswith("GONE ") and "removed" in line for line in lines)
    assert any(line.startswith("NEW ") and "new" in line for line in lines)
    assert "      \u2026 188 more change(s) not shown" in lines  # of 200 in 2,000 words
    assert any(line.startswith("      \u2026 ") and "characters not compared" in line
               for line in lines)
    assert len(lines) < 60
    data = json.loads(harness("compare", "base.jsonl", "cand.jsonl", "--format", "json",
                              cwd=tmp_path).stdout)
    cases = {case["case_id"]: case for case in data["cases"]}
    assert {name: cases[name]["output_diff_state"] for name in cases} == {
        "GONE": "one_run", "NEW": "one_run", "ERR": "no_response", "HUGE": "changed"}
    assert cases["ERR"]["check_changes"] == [{"kind": "contains", "line": 7,
                                              "baseline": "pass", "candidate": None,
                                              "reason": "was pass"}]
    assert cases["HUGE"]["output_diff_omitted"] > 0
    assert sum(part["op"] == "insert" for part in cases["HUGE"]["output_diff"]) == 200


def test_a_reader_that_went_away_ends_the_command_quietly(tmp_path):
    """``harness gate ... | head -2``: standard output closes early; no traceback, and the
    status of a command stopped by SIGPIPE (128 + 13)."""
    import os

    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([sys.executable, "-m", "harness", "checks"], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    finally:
        os.close(write_end)
    assert done.returncode == 141
    assert done.stderr == ""


def test_what_a_run_holds_cannot_steer_the_terminal_or_reorder_what_is_shown(tmp_path):
    """A right-to-left override or a terminal escape in a run record (a case id, a check's
    reason quoting an answer) is shown as an escape by gate, compare, the Markdown summary
    and pytest's failure text."""
    from conftest import make_result, make_run

    from harness.compare import compare
    from harness.explain import explain
    from harness.gate import decide
    from harness.records import RunWriter
    from harness.report.markdown import render_markdown

    hostile = "INC-\u202e1-KCOLB\u202c\x1b[2J"
    runs = []
    for name, verdict in (("base", "pass"), ("cand", "fail")):
        result = make_result(hostile, verdict, incident=True)
        trial = result.trials[0]
        check = dataclasses.replace(trial.checks[0], reason="answer: \u202eenola \x1b[32mok")
        result = dataclasses.replace(result, title="Title \u202e" + name,
                                     trials=(dataclasses.replace(trial, checks=(check,)),))
        run = make_run(result)
        writer = RunWriter(tmp_path / f"{name}.jsonl", run.header)
        writer.add(result)
        writer.close()
        runs.append(run)
    paths = [str(tmp_path / "base.jsonl"), str(tmp_path / "cand.jsonl")]
    shown = {command: subprocess.run([sys.executable, "-m", "harness", command, *paths],
                                     capture_output=True, text=True, timeout=60,
                                     check=False).stdout
             for command in ("compare", "gate")}
    comparison = compare(*runs)
    shown["markdown"] = render_markdown(comparison, decide(comparison))
    shown["failure text"] = explain(runs[1].results[0])
    for where, text in shown.items():
        assert "\u202e" not in text and "\x1b" not in text, where
        assert "\\u202e" in text, where


def test_the_command_line_offers_the_models_words_and_its_catalogue():
    """Choices come from the model's constants and the catalogue from the checks package:
    the command line keeps no copy of either."""
    from harness import cli
    from harness.checks import catalogue
    from harness.model import CATEGORIES

    for argv in (["incident", "new", "--category", "nope"],
                 ["case", "from-trace", "t.json", "--category", "nope"]):
        with pytest.raises(SystemExit):
            cli._parser().parse_args(argv)
    parser = cli._parser()
    commands = next(a for a in parser._actions if a.dest == "command")
    incident = commands.choices["incident"]
    new = next(a for a in incident._actions if a.dest == "incident_command").choices["new"]
    category = next(a for a in new._actions if a.dest == "category")
    assert tuple(category.choices) == CATEGORIES
    assert "CATEGORY" not in Path(cli.__file__).read_text(encoding="utf-8").replace(
        "CATEGORIES", "")
    listed = [kind.name for kind in catalogue.listed()]
    assert listed.index("no_pii") < listed.index("approval_required")  # category order
