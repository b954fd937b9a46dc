"""The loader: valid case and suite files, and every way a file can be wrong."""

from __future__ import annotations

import datetime as dt
import gc
import marshal
import textwrap
from pathlib import Path

import pytest

from harness import loader
from harness.digest import sha256_text
from harness.errors import InputError
from harness.model import Case, Suite, TargetResponse


def write(path: Path, text: str | bytes) -> Path:
    """Write a file (YAML text is dedented), creating its folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def case_error(path: Path, text: str | bytes) -> InputError:
    """Write a case file, load it, and return the InputError it raises."""
    write(path, text)
    with pytest.raises(InputError) as info:
        loader.load_case(path)
    return info.value


def suite_error(path: Path, text: str) -> InputError:
    write(path, text)
    with pytest.raises(InputError) as info:
        loader.load_suite(path)
    return info.value


def head(err: InputError) -> str:
    """The message without its excerpt: ``path:line: field: problem``."""
    return str(err).splitlines()[0]


CASE_A = textwrap.dedent("""\
    input: {question: "Can I return this?"}
    expect:
      - contains: "30 days"
""")

FULL_CASE = textwrap.dedent("""\
    id: INC-2041
    title: Refund promised outside policy
    workflow: refunds
    category: policy
    severity: sev2
    status: closed
    near_miss: false
    owner: alice
    business_owner: bob
    timeline:
      impact_started: 2026-03-02T08:00:00Z
      detected: 2026-03-02T09:15:00+01:00
      contained: 2026-03-02T09:00:00
      resolved: 2026-03-03T12:00:00Z
      closed: 2026-03-04T10:00:00Z
    impact:
      users: 3
      records: 12
      data_classes: [contact_details]
      summary: Three customers were promised full refunds.
      region: eu
    root_cause: The prompt did not state the 30-day window.
    fix:
      kind: prompt
      ref: 1234
      summary: State the window.
    prevention: Regression case on every prompt change.
    evidence:
      input: {order: A-1002, question: "Refund after 45 days?"}
      prompt_version: 7
      model_route: provider/model-a
      sources:
        - {id: 17, title: Refund policy, url: "https://example.test/p", updated_at: 2026-01-01}
      tool_calls:
        - {name: issue_refund, args: {order: A-1002}, result: ok}
      approvals:
        - {step: refund, status: approved, approver: carol, role: lead, at: 2026-03-02}
      output: You will get a full refund.
      missing: [trace]
      notes: Reconstructed from logs.
    input: {order: A-1002, question: "Refund after 45 days?", channel: chat}
    as_of: 2026-03-05
    expect:
      - contains: "30 days"
      - not_regex: {pattern: "full refund", ignore_case: true}
    trials: 3
    min_pass_rate: 0.5
    timeout_s: 2.5
    tags: [refunds, 2026]
""")


# --- valid cases ----------------------------------------------------------------------------


def test_incident_case_keeps_every_record_field(tmp_path: Path) -> None:
    path = write(tmp_path / "cases" / "refunds" / "inc.yaml", FULL_CASE)
    case = loader.load_case(path)

    assert (case.id, case.title, case.workflow, case.line) == (
        "INC-2041", "Refund promised outside policy", "refunds", 1)
    assert case.path == path
    assert case.is_incident
    incident = case.incident
    assert incident is not None
    assert (incident.category, incident.severity, incident.status) == ("policy", "sev2", "closed")
    assert (incident.owner, incident.business_owner, incident.near_miss) == ("alice", "bob", False)
    assert incident.impact == {"users": 3, "records": 12, "data_classes": ["contact_details"],
                               "summary": "Three customers were promised full refunds.",
                               "region": "eu"}
    assert incident.root_cause == "The prompt did not state the 30-day window."
    assert incident.fix == {"kind": "prompt", "ref": "1234", "summary": "State the window."}
    assert incident.prevention == "Regression case on every prompt change."
    assert case.evidence["prompt_version"] == "7"
    assert case.evidence["sources"] == [{"id": "17", "title": "Refund policy",
                                         "url": "https://example.test/p",
                                         "updated_at": "2026-01-01"}]
    assert case.evidence["tool_calls"] == [
        {"name": "issue_refund", "args": {"order": "A-1002"}, "result": "ok"}]
    assert case.evidence["approvals"][0]["at"] == "2026-03-02"
    assert case.evidence["missing"] == ["trace"]
    assert case.input == {"order": "A-1002", "question": "Refund after 45 days?",
                          "channel": "chat"}
    assert case.as_of == dt.date(2026, 3, 5)
    first = FULL_CASE.splitlines().index('  - contains: "30 days"') + 1
    assert [(e.kind, e.line) for e in case.expect] == [
        ("contains", first), ("not_regex", first + 1)]
    assert case.expect[1].params == {"pattern": "full refund", "ignore_case": True}
    assert (case.trials, case.min_pass_rate, case.timeout_s) == (3, 0.5, 2.5)
    assert case.tags == ("refunds", "2026")
    assert case.digest == sha256_text(path.read_text(encoding="utf-8"))


def test_timeline_is_parsed_to_aware_datetimes(tmp_path: Path) -> None:
    case = loader.load_case(write(tmp_path / "inc.yaml", FULL_CASE))
    assert case.incident is not None
    timeline = case.incident.timeline
    assert list(timeline) == ["impact_started", "detected", "contained", "resolved", "closed"]
    assert all(moment.tzinfo is not None for moment in timeline.values())
    assert timeline["impact_started"] == dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
    # An explicit offset is kept; a date-time without one is taken as UTC.
    assert timeline["detected"].utcoffset() == dt.timedelta(hours=1)
    assert timeline["detected"] == dt.datetime(2026, 3, 2, 8, 15, tzinfo=dt.UTC)
    assert timeline["contained"] == dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def test_input_defaults_to_evidence_input(tmp_path: Path) -> None:
    path = write(tmp_path / "inc.yaml", """\
        category: retrieval
        severity: sev3
        status: closed
        owner: dana
        evidence:
          input: {question: "What is the limit?"}
          output: The limit is 500.
        expect:
          - contains: "1000"
    """)
    case = loader.load_case(path)
    assert case.input == {"question": "What is the limit?"}
    assert case.evidence["output"] == "The limit is 500."


def test_id_and_workflow_default_to_file_stem_and_folder(tmp_path: Path) -> None:
    path = write(tmp_path / "cases" / "billing" / "late-fee.yaml", CASE_A)
    case = loader.load_case(path)
    assert (case.id, case.workflow) == ("late-fee", "billing")
    assert case.line == 1  # no id key: the case stands at the top of its file
    assert (case.title, case.as_of, case.tags, case.evidence) == (None, None, (), {})


def test_suite_defaults_apply_and_the_case_overrides_them(tmp_path: Path) -> None:
    defaults = {"trials": 4, "min_pass_rate": 0.75, "timeout_s": 9}
    plain = loader.load_case(write(tmp_path / "a.yaml", CASE_A), defaults=defaults)
    assert (plain.trials, plain.min_pass_rate, plain.timeout_s) == (4, 0.75, 9)

    own = write(tmp_path / "b.yaml", CASE_A + "trials: 2\nmin_pass_rate: 1\ntimeout_s: 0.5\n")
    case = loader.load_case(own, defaults=defaults)
    assert (case.trials, case.min_pass_rate, case.timeout_s) == (2, 1, 0.5)

    bare = loader.load_case(tmp_path / "a.yaml")
    assert (bare.trials, bare.min_pass_rate, bare.timeout_s) == (1, 1.0, None)


def test_baseline_case_has_no_incident(tmp_path: Path) -> None:
    path = write(tmp_path / "cases" / "refunds" / "normal.yaml", """\
        id: BASE-1
        title: An ordinary return
        input: "Can I return shoes after 10 days?"
        expect:
          - regex: "30 (calendar )?days"
    """)
    case = loader.load_case(path)
    assert case.incident is None
    assert not case.is_incident
    assert (case.id, case.line, case.input) == ("BASE-1", 1, "Can I return shoes after 10 days?")
    assert [e.kind for e in case.expect] == ["regex"]


def test_display_names_the_file_in_the_case_and_in_errors(tmp_path: Path) -> None:
    path = write(tmp_path / "a.yaml", CASE_A)
    assert loader.load_case(path, display="cases/a.yaml").path == Path("cases/a.yaml")
    write(path, "input: a\n")
    with pytest.raises(InputError) as info:
        loader.load_case(path, display="cases/a.yaml")
    assert head(info.value) == "cases/a.yaml:1: expect: missing required field 'expect'"


def test_read_yaml_keeps_dates_as_strings(tmp_path: Path) -> None:
    path = write(tmp_path / "d.yaml", """\
        day: 2026-03-02
        moment: 2026-03-02T08:15:00Z
        plain: [1, 1.5, true, null, text]
    """)
    data, text = loader.read_yaml(path)
    assert data == {"day": "2026-03-02", "moment": "2026-03-02T08:15:00Z",
                    "plain": [1, 1.5, True, None, "text"]}
    assert text.startswith("day: 2026-03-02\n")
    assert data.lines == {"day": 1, "moment": 2, "plain": 3}


# --- valid suites ---------------------------------------------------------------------------

SUITE = textwrap.dedent("""\
    name: refunds
    description: Refund incidents.
    cases:
      - cases/refunds/*.yaml
      - cases/**/a.yaml
    targets:
      post-fix:
        python: harness.example.refund_assistant:respond
        params: {release: post-fix}
      cli:
        command: [python, agent.py, 3]
        cwd: tools
        env: {MODE: test, LEVEL: 2}
        max_output_bytes: 1000
      incident:
        replay: true
    defaults:
      trials: 2
      timeout_s: 5
      target: post-fix
    gate:
      severities: [sev1, sev2]
      settle_trials: 5
""")


def make_project(root: Path, suite: str = SUITE) -> Path:
    write(root / "cases" / "refunds" / "a.yaml", CASE_A)
    write(root / "cases" / "refunds" / "b.yaml", CASE_A + "trials: 5\n")
    return write(root / "suites" / "refunds.yaml", suite)


def test_suite_loads_cases_targets_defaults_and_gate(tmp_path: Path) -> None:
    path = make_project(tmp_path / "project")
    suite = loader.load_suite(path)

    assert isinstance(suite, Suite)
    assert (suite.name, suite.description, suite.path) == ("refunds", "Refund incidents.", path)
    assert suite.root == (tmp_path / "project").resolve()
    # a.yaml matches both globs but is loaded once, in the order first matched.
    assert [str(case.path) for case in suite.cases] == [
        "cases/refunds/a.yaml", "cases/refunds/b.yaml"]
    assert [(case.id, case.workflow) for case in suite.cases] == [
        ("a", "refunds"), ("b", "refunds")]
    assert [(case.trials, case.timeout_s) for case in suite.cases] == [(2, 5), (5, 5)]
    assert suite.defaults == {"trials": 2, "timeout_s": 5, "target": "post-fix"}
    assert suite.gate == {"severities": ["sev1", "sev2"], "settle_trials": 5}
    assert suite.digest


def test_suite_target_specs_carry_kind_main_options_and_place(tmp_path: Path) -> None:
    path = make_project(tmp_path)
    targets = loader.load_suite(path).targets
    assert list(targets) == ["post-fix", "cli", "incident"]

    python = targets["post-fix"]
    assert (python.name, python.kind, python.main) == (
        "post-fix", "python", "harness.example.refund_assistant:respond")
    assert python.options == {"params": {"release": "post-fix"}}
    assert (python.path, python.line) == (path, 8)

    cli = targets["cli"]
    assert (cli.kind, cli.main) == ("command", ["python", "agent.py", "3"])
    assert cli.options == {"cwd": "tools", "env": {"MODE": "test", "LEVEL": "2"},
                           "max_output_bytes": 1000}
    assert (targets["incident"].kind, targets["incident"].options) == ("replay", {})
    assert len({spec.digest for spec in targets.values()}) == 3


def test_suite_globs_resolve_against_the_project_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make_project(tmp_path / "project")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert [case.id for case in loader.load_suite(path).cases] == ["a", "b"]

    monkeypatch.chdir(tmp_path / "project" / "suites")
    suite = loader.load_suite(Path("refunds.yaml"))
    assert [str(case.path) for case in suite.cases] == [
        "cases/refunds/a.yaml", "cases/refunds/b.yaml"]


def test_suite_beside_its_cases_and_glob_chars_in_the_folder_name(tmp_path: Path) -> None:
    root = tmp_path / "team [refunds]"
    write(root / "cases" / "refunds" / "a.yaml", CASE_A)
    path = write(root / "suite.yaml", """\
        name: s
        cases: cases/**/*.yaml
        targets:
          r: {replay: true}
    """)
    suite = loader.load_suite(path)
    assert suite.root == root.resolve()
    assert [str(case.path) for case in suite.cases] == ["cases/refunds/a.yaml"]


def test_a_globs_matches_come_in_path_order_not_text_order(tmp_path: Path) -> None:
    # "w-x/C1.yaml" sorts before "w/C2.yaml" as text ("-" < "/") but after it as a path:
    # the order a suite's cases run and its digest is computed in must not change
    for folder, name in [("w-x", "C1"), ("w", "C2"), ("w.y", "C3"), ("w", "C0")]:
        write(tmp_path / "cases" / folder / f"{name}.yaml",
              f"id: {name}\ninput: hi\nexpect:\n  - contains: a\n")
    path = write(tmp_path / "suites" / "s.yaml",
                 "name: s\ncases: cases/**/*.yaml\ntargets: {r: {replay: true}}\n")
    suite = loader.load_suite(path)
    assert [str(case.path) for case in suite.cases] == [
        "cases/w/C0.yaml", "cases/w/C2.yaml", "cases/w-x/C1.yaml", "cases/w.y/C3.yaml"]
    assert [str(case.path) for case in suite.cases] == sorted(
        (str(case.path) for case in suite.cases), key=lambda text: Path(text).parts)


def test_a_cases_workflow_is_the_folder_that_really_holds_it(tmp_path: Path) -> None:
    body = "id: {}\ninput: hi\nexpect:\n  - contains: a\n"
    write(tmp_path / "cases" / "refunds" / "C1.yaml", body.format("C1"))
    write(tmp_path / "shared" / "billing" / "C2.yaml", body.format("C2"))
    write(tmp_path / "shared" / "payments" / "C3.yaml", body.format("C3"))
    (tmp_path / "cases" / "refunds" / "C2.yaml").symlink_to(
        tmp_path / "shared" / "billing" / "C2.yaml")
    (tmp_path / "cases" / "linked").symlink_to(tmp_path / "shared" / "payments",
                                               target_is_directory=True)
    path = write(tmp_path / "suites" / "s.yaml",
                 "name: s\ncases: [cases/refunds/*.yaml, cases/linked/*.yaml]\n"
                 "targets: {r: {replay: true}}\n")
    suite = loader.load_suite(path)
    found = [(str(case.path), case.workflow) for case in suite.cases]
    assert found == [("cases/refunds/C1.yaml", "refunds"),  # where it is
                     ("cases/refunds/C2.yaml", "billing"),  # a link to a file elsewhere
                     ("cases/linked/C3.yaml", "payments")]  # in a folder linked elsewhere
    alone = [loader.load_case(tmp_path / "cases" / "refunds" / "C2.yaml").workflow,
             loader.load_case(tmp_path / "cases" / "linked" / "C3.yaml").workflow]
    assert alone == ["billing", "payments"]


def test_suite_digest_changes_when_a_case_file_changes(tmp_path: Path) -> None:
    path = make_project(tmp_path)
    first = loader.load_suite(path).digest
    assert loader.load_suite(path).digest == first
    write(tmp_path / "cases" / "refunds" / "b.yaml", CASE_A + "trials: 6\n")
    assert loader.load_suite(path).digest != first


def test_choose_target_by_name_default_or_error(tmp_path: Path) -> None:
    path = make_project(tmp_path)
    suite = loader.load_suite(path)
    assert loader.choose_target(suite, "cli").kind == "command"
    assert loader.choose_target(suite, None).name == "post-fix"
    with pytest.raises(InputError) as info:
        loader.choose_target(suite, "pre-fix")
    assert str(info.value) == (
        f"{path}: targets: no target named 'pre-fix'; the suite's targets: "
        "post-fix, cli, incident")
    assert info.value.field == "targets"


def test_choose_target_without_name_or_default(tmp_path: Path) -> None:
    path = make_project(tmp_path, SUITE.replace("  target: post-fix\n", ""))
    suite = loader.load_suite(path)
    with pytest.raises(InputError) as info:
        loader.choose_target(suite, None)
    assert str(info.value) == (
        f"{path}: no target chosen: pass a target, one of post-fix, cli, incident")


# --- reading files: errors ------------------------------------------------------------------


def test_unparsable_yaml_names_the_line_and_marks_it(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    err = case_error(path, "id: x\ninput: [a, b\nexpect: []\n")
    lines = str(err).splitlines()
    assert lines[0] == f"{path}:3: invalid YAML: did not find expected ',' or ']'"
    assert (err.path, err.line) == (str(path), 3)
    assert lines[1:] == ["     1 | id: x", "     2 | input: [a, b", ">    3 | expect: []"]


@pytest.mark.parametrize("text", ["", "# only a comment\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "c.yaml"
    err = case_error(path, text)
    assert str(err) == f"{path}:1: file is empty; expected a mapping of fields"


def test_top_level_list_or_scalar(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    err = case_error(path, "# cases\n- contains: a\n- contains: b\n")
    assert str(err) == f"{path}:2: expected a mapping of fields at the top level, found a list"
    err = case_error(path, "just text\n")
    assert str(err) == (
        f"{path}:1: expected a mapping of fields at the top level, found a string ('just text')")


def test_binary_file_with_nul_byte(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    err = case_error(path, b"id: x\ninput: a\x00b\n")
    assert str(err) == f"{path}:2: not a text file (contains a NUL byte)"


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    err = case_error(path, b"id: x\ntitle: caf\xe9\n")
    assert str(err) == f"{path}:2: not UTF-8 text (byte 16)"


def test_file_too_large(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "c.yaml", CASE_A)
    size = path.stat().st_size
    monkeypatch.setattr(loader, "MAX_FILE_BYTES", size - 1)
    with pytest.raises(InputError) as info:
        loader.load_case(path)
    assert str(info.value) == f"{path}: file too large: {size} bytes, at most {size - 1}"
    monkeypatch.setattr(loader, "MAX_FILE_BYTES", size)
    assert loader.load_case(path).id == "c"


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        loader.read_yaml(tmp_path / "nope.yaml")
    assert str(info.value) == f"{tmp_path / 'nope.yaml'}: file not found"
    with pytest.raises(InputError) as info:
        loader.read_yaml(tmp_path)
    assert str(info.value) == f"{tmp_path}: expected a YAML file, found a folder"


BOMB = textwrap.dedent("""\
    a: &a [x, x, x, x]
    b: &b [*a, *a, *a, *a]
    c: &c [*b, *b, *b, *b]
    d: [*c, *c, *c, *c]
""")


def test_alias_bomb_is_refused_counting_expanded_aliases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "bomb.yaml", BOMB)
    data, _ = loader.read_yaml(path)  # about 450 values expanded: within the real limit
    assert len(data["d"]) == 4
    # The file holds fewer than 20 distinct nodes; the limit counts them expanded.
    monkeypatch.setattr(loader, "MAX_NODES", 100)
    with pytest.raises(InputError) as info:
        loader.read_yaml(path)
    assert str(info.value) == (
        f"{path}:1: document too large: more than 100 values (aliases included)")


def test_recursive_alias(tmp_path: Path) -> None:
    path = write(tmp_path / "loop.yaml", "a: 1\nb: &x [*x]\n")
    with pytest.raises(InputError) as info:
        loader.read_yaml(path)
    assert str(info.value) == f"{path}:2: recursive alias"


def test_too_deep_nesting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "MAX_DEPTH", 3)
    assert loader.read_yaml(write(tmp_path / "ok.yaml", "a:\n  b:\n    c: 1\n"))[0] == {
        "a": {"b": {"c": 1}}}
    path = write(tmp_path / "deep.yaml", "a:\n  b:\n    c:\n      d: 1\n")
    with pytest.raises(InputError) as info:
        loader.read_yaml(path)
    assert str(info.value) == f"{path}:4: document nested deeper than 3 levels"


def test_deep_flow_nesting_under_the_real_limit(tmp_path: Path) -> None:
    path = write(tmp_path / "deep.yaml", "x: " + "[" * 200 + "]" * 200 + "\n")
    with pytest.raises(InputError) as info:
        loader.read_yaml(path)
    assert str(info.value) == f"{path}:1: document nested deeper than {loader.MAX_DEPTH} levels"


def test_duplicate_key(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    err = case_error(path, "id: x\ninput: a\nexpect:\n  - contains: a\nid: y\n")
    assert str(err) == f"{path}:5: duplicate key 'id' (first at line 1)"


def test_duplicate_nested_key(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    err = case_error(path, "input:\n  q: a\n  q: b\nexpect:\n  - contains: a\n")
    assert str(err) == f"{path}:3: duplicate key 'q' (first at line 2)"


# --- case files: errors ---------------------------------------------------------------------


def test_unknown_field_suggests_the_close_one(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    err = case_error(path, CASE_A + "trails: 3\n")
    assert head(err).startswith(
        f"{path}:4: trails: unknown field 'trails' (did you mean 'trials'?); expected one of id, ")
    assert (err.line, err.field) == (4, "trails")
    assert ">    4 | trails: 3" in str(err)


def test_wrong_type(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    err = case_error(path, CASE_A + 'trials: "three"\n')
    assert head(err) == f"{path}:4: trials: expected a whole number, found a string ('three')"


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("min_pass_rate: 1.5", "min_pass_rate: expected at most 1, found 1.5"),
        ("min_pass_rate: -0.1", "min_pass_rate: expected at least 0, found -0.1"),
        ("trials: 0", "trials: expected at least 1, found 0"),
        ("timeout_s: true", "timeout_s: expected a number, found a boolean (True)"),
    ],
)
def test_number_out_of_range_or_not_a_number(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "c.yaml"
    err = case_error(path, CASE_A + line + "\n")
    assert head(err) == f"{path}:4: {problem}"


def test_bad_enum_suggests_the_close_one(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    err = case_error(path, textwrap.dedent("""\
        severity: sev2
        category: data_exposur
        status: closed
        owner: o
    """) + CASE_A)
    assert head(err) == (
        f"{path}:2: category: expected one of output_quality, data_exposure, automation_error, "
        "policy, retrieval, human_review, found 'data_exposur' (did you mean 'data_exposure'?)")


INCIDENT_HEAD = textwrap.dedent("""\
    category: policy
    severity: sev2
    status: closed
    owner: o
""")


def test_bad_timestamp(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    err = case_error(path, INCIDENT_HEAD + "timeline:\n  detected: yesterday\n" + CASE_A)
    assert head(err) == (
        f"{path}:6: timeline.detected: expected an ISO 8601 date-time "
        "(e.g. 2026-03-02T08:15:00Z), found 'yesterday'")


def test_bad_as_of_date(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    err = case_error(path, CASE_A + "as_of: 2026-02-30\n")
    assert head(err) == (
        f"{path}:4: as_of: expected an ISO 8601 date (YYYY-MM-DD), found '2026-02-30'")


def test_timeline_out_of_order(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    err = case_error(path, INCIDENT_HEAD + textwrap.dedent("""\
        timeline:
          impact_started: 2026-03-02T08:00:00Z
          detected: 2026-03-02T10:00:00Z
          contained: 2026-03-02T09:00:00Z
    """) + CASE_A)
    assert str(err) == (
        f"{path}:8: timeline.contained: contained (2026-03-02T09:00:00+00:00) is before "
        "detected (2026-03-02T10:00:00+00:00)")


def test_timeline_order_compares_instants_across_offsets(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", INCIDENT_HEAD + textwrap.dedent("""\
        timeline:
          detected: 2026-03-02T10:00:00+02:00
          contained: 2026-03-02T09:00:00Z
    """) + CASE_A)
    assert loader.load_case(path).incident is not None


def test_incident_fields_without_owner(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    err = case_error(path, "category: policy\nseverity: sev2\nstatus: closed\n" + CASE_A)
    assert str(err) == (
        f"{path}:1: owner: missing required field 'owner': a case with incident fields "
        "(category, severity, status) needs category, severity, status, owner")
    assert (err.line, err.field) == (1, "owner")


def test_missing_expect(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    err = case_error(path, "id: x\ninput: a\n")
    assert head(err) == f"{path}:1: expect: missing required field 'expect'"


def test_empty_expect_list(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    err = case_error(path, "id: x\ninput: a\nexpect: []\n")
    assert head(err) == f"{path}:3: expect: expected at least 1 item(s), found 0"


def test_missing_input_and_evidence_input(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    err = case_error(path, "title: t\nexpect:\n  - contains: a\n")
    assert str(err) == f"{path}:1: input: missing required field 'input' (or evidence.input)"
    err = case_error(path, INCIDENT_HEAD + "evidence:\n  output: x\nexpect:\n  - contains: a\n")
    assert str(err) == f"{path}:1: input: missing required field 'input' (or evidence.input)"


@pytest.mark.parametrize(
    ("entry", "found"),
    [
        ("  - contains: a\n    regex: b\n", "2 keys"),
        ("  - contains\n", "a string ('contains')"),
        ("  - [contains, a]\n", "a list"),
        ("  - {}\n", "0 keys"),
    ],
)
def test_expect_entry_not_a_one_key_mapping(tmp_path: Path, entry: str, found: str) -> None:
    path = tmp_path / "c.yaml"
    err = case_error(path, "input: a\nexpect:\n  - contains: a\n" + entry)
    assert head(err) == (
        f"{path}:4: expect[1]: expected a one-key mapping 'kind: params' "
        f"(e.g. '- contains: refund'), found {found}")


def test_unknown_check_kind_suggests_the_close_one(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    err = case_error(path, "input: a\nexpect:\n  - contians: a\n")
    assert head(err).startswith(
        f"{path}:3: expect[0].contians: unknown check kind 'contians'; "
        "did you mean 'contains'? known kinds: ")
    assert "equals" in head(err)
    assert err.field == "expect[0].contians"


def test_unknown_check_parameter(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    err = case_error(path, "input: a\nexpect:\n  - equals: x\n  - contains: {txt: a}\n")
    assert head(err) == (
        f"{path}:4: expect[1].contains.txt: unknown parameter 'txt' (did you mean 'text'?); "
        "expected text, require, ignore_case")


def test_invalid_regex_parameter(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    err = case_error(path, "input: a\nexpect:\n  - regex: '(('\n")
    assert head(err) == (
        f"{path}:3: expect[0].regex.pattern: invalid regular expression: "
        "missing ) at position 2")


def test_wrong_type_for_ignore_case(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    err = case_error(path, """\
        input: a
        expect:
          - contains:
              text: a
              ignore_case: "yes"
    """)
    assert head(err) == (
        f"{path}:3: expect[0].contains.ignore_case: expected true or false, found 'yes'")


# --- suite files: errors --------------------------------------------------------------------


def test_duplicate_case_ids_name_both_files(tmp_path: Path) -> None:
    write(tmp_path / "cases" / "refunds" / "a.yaml", "id: R-1\n" + CASE_A)
    write(tmp_path / "cases" / "billing" / "b.yaml", "title: t\nid: R-1\n" + CASE_A)
    path = tmp_path / "suites" / "s.yaml"
    err = suite_error(path, """\
        name: s
        cases: [cases/refunds/*.yaml, cases/billing/*.yaml]
        targets:
          r: {replay: true}
    """)
    assert str(err) == (
        "cases/billing/b.yaml:2: id: duplicate case id 'R-1'; also used in cases/refunds/a.yaml:1")


def test_case_error_inside_a_suite_names_the_case_file(tmp_path: Path) -> None:
    write(tmp_path / "cases" / "w" / "a.yaml", CASE_A + "trails: 3\n")
    path = tmp_path / "suites" / "s.yaml"
    err = suite_error(path, "name: s\ncases: cases/**/*.yaml\ntargets:\n  r: {replay: true}\n")
    assert head(err).startswith("cases/w/a.yaml:4: trails: unknown field 'trails'")


def test_glob_matching_nothing_names_its_item(tmp_path: Path) -> None:
    make_project(tmp_path)
    path = tmp_path / "suites" / "s.yaml"
    err = suite_error(path, """\
        name: s
        cases:
          - cases/refunds/*.yaml
          - cases/nothing/*.yaml
        targets:
          r: {replay: true}
    """)
    assert str(err) == (
        f"{path}:4: cases[1]: glob 'cases/nothing/*.yaml' matches no case file under "
        f"{tmp_path.resolve()}")


def test_single_glob_matching_nothing_names_the_cases_line(tmp_path: Path) -> None:
    path = tmp_path / "suites" / "s.yaml"
    err = suite_error(path, "name: s\ncases: cases/*.yaml\ntargets:\n  r: {replay: true}\n")
    assert str(err) == (
        f"{path}:2: cases[0]: glob 'cases/*.yaml' matches no case file under "
        f"{tmp_path.resolve()}")


def test_suite_without_targets(tmp_path: Path) -> None:
    make_project(tmp_path)
    path = tmp_path / "suites" / "s.yaml"
    err = suite_error(path, "name: s\ncases: cases/**/*.yaml\n")
    assert head(err) == f"{path}:1: targets: missing required field 'targets'"
    err = suite_error(path, "name: s\ncases: cases/**/*.yaml\ntargets: {}\n")
    assert str(err) == f"{path}:3: targets: expected at least one target"


@pytest.mark.parametrize(
    ("target", "found"),
    [
        ("  r:\n    cwd: tools\n", "none"),
        ("  r:\n    replay: true\n    python: m:f\n", "replay, python"),
    ],
)
def test_target_needs_exactly_one_adapter_key(tmp_path: Path, target: str, found: str) -> None:
    make_project(tmp_path)
    path = tmp_path / "suites" / "s.yaml"
    err = suite_error(path, "name: s\ncases: cases/**/*.yaml\ntargets:\n" + target)
    assert head(err) == (
        f"{path}:5: targets.r: expected exactly one adapter key "
        f"(command, http, openai, python, replay), found {found}")


def test_target_that_is_not_a_mapping(tmp_path: Path) -> None:
    make_project(tmp_path)
    path = tmp_path / "suites" / "s.yaml"
    err = suite_error(path, "name: s\ncases: cases/**/*.yaml\ntargets:\n  r: replay\n")
    assert head(err) == (
        f"{path}:4: targets.r: expected a mapping with one adapter "
        "(command, http, openai, python, replay), found a string ('replay')")


def test_unknown_target_option(tmp_path: Path) -> None:
    make_project(tmp_path)
    path = tmp_path / "suites" / "s.yaml"
    err = suite_error(path, """\
        name: s
        cases: cases/**/*.yaml
        targets:
          r:
            python: m:f
            parms: {release: x}
    """)
    assert head(err) == (
        f"{path}:6: targets.r.parms: unknown field 'parms' (did you mean 'params'?); "
        "expected one of params, trace, trace_wait_s, trace_port, max_concurrency, rate_limit, "
        "retries, retry_backoff_s")


def test_bad_target_main_argument(tmp_path: Path) -> None:
    make_project(tmp_path)
    path = tmp_path / "suites" / "s.yaml"
    err = suite_error(path, "name: s\ncases: cases/**/*.yaml\ntargets:\n  c:\n    command: []\n")
    assert head(err) == f"{path}:5: targets.c.command: expected at least 1 item(s), found 0"


def test_default_target_naming_no_target(tmp_path: Path) -> None:
    make_project(tmp_path)
    path = tmp_path / "suites" / "s.yaml"
    err = suite_error(path, """\
        name: s
        cases: cases/**/*.yaml
        targets:
          r: {replay: true}
          p: {python: "m:f"}
        defaults:
          trials: 2
          target: q
    """)
    assert str(err) == f"{path}:8: defaults.target: no target named 'q'; targets: r, p"


def test_loaded_objects_are_cases(tmp_path: Path) -> None:
    suite = loader.load_suite(make_project(tmp_path))
    assert all(isinstance(case, Case) for case in suite.cases)


def test_unknown_gate_field_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    path = make_project(tmp_path, SUITE.replace("settle_trials: 5", "settle_trails: 5"))
    with pytest.raises(InputError) as caught:
        loader.load_suite(path)
    assert "gate.settle_trails: unknown field 'settle_trails' (did you mean 'settle_trials'?)" \
        in str(caught.value)


# --- parsed case files, kept between runs ---------------------------------------------------


def _described(suite: Suite) -> list[tuple]:
    """What a loaded suite holds, in a form that compares (checks are closures)."""
    return [(c.id, str(c.path), c.line, c.workflow, c.input, c.trials, c.digest,
             [(e.kind, e.params, e.line, e.bounded) for e in c.expect]) for c in suite.cases]


def test_a_suite_loads_the_same_from_the_cache_of_parsed_files(
        tmp_path: Path, judge_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_project(tmp_path / "project")
    first = loader.load_suite(path)
    stored = list((judge_cache / "parsed").glob("*.marshal"))
    assert len(stored) == 1  # one file per suite, in the cache folder
    assert not [p for p in (tmp_path / "project").rglob("*") if p.suffix == ".marshal"]
    parses: list[str] = []
    real = loader._parse
    monkeypatch.setattr(loader, "_parse",
                        lambda text, where: parses.append(str(where)) or real(text, where))
    again = loader.load_suite(path)
    assert parses == [str(path)]  # the suite file only: every case file from the cache
    assert _described(again) == _described(first)
    assert again.digest == first.digest
    said = [case.expect[0].evaluate(TargetResponse(output="30 days"), case).reason
            for case in (first.cases[0], again.cases[0])]
    assert said[0] == said[1]


def test_a_changed_case_file_is_parsed_again(tmp_path: Path) -> None:
    path = make_project(tmp_path)
    loader.load_suite(path)
    write(tmp_path / "cases" / "refunds" / "b.yaml", CASE_A + "trials: 6\n")
    suite = loader.load_suite(path)
    assert [case.trials for case in suite.cases] == [2, 6]
    write(tmp_path / "cases" / "refunds" / "b.yaml", CASE_A + "trials: [6\n")
    with pytest.raises(InputError, match="invalid YAML"):  # a parse error is never kept
        loader.load_suite(path)
    with pytest.raises(InputError, match="invalid YAML"):
        loader.load_suite(path)


def test_a_damaged_or_foreign_cache_file_is_a_miss(tmp_path: Path, judge_cache: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_project(tmp_path)
    first = _described(loader.load_suite(path))
    (stored,) = (judge_cache / "parsed").glob("*.marshal")
    for damage in (b"", b"\x00garbage", stored.read_bytes()[:40]):
        stored.write_bytes(damage)
        assert _described(loader.load_suite(path)) == first
    # entries of another loader (another version of this module) are not used
    loader.load_suite(path)
    monkeypatch.setattr(loader, "_PARSER_KEY", "another loader")
    parses: list[str] = []
    real = loader._parse
    monkeypatch.setattr(loader, "_parse",
                        lambda text, where: parses.append(str(where)) or real(text, where))
    assert _described(loader.load_suite(path)) == first
    assert len(parses) == 3  # the suite and both cases, parsed afresh


def test_an_entry_that_is_not_a_parsed_file_is_a_miss(tmp_path: Path) -> None:
    parsed = loader.ParsedFiles(tmp_path / "p.marshal")
    text = "id: a\ninput: hi\n"
    parsed._known = {loader.sha256_text(text): ("x", 1, {}, {})}
    assert parsed.get(text) is None
    parsed._known = {loader.sha256_text(text): ("m", 1, {}, "not a mapping")}
    assert parsed.get(text) is None


def test_a_cache_that_cannot_be_written_is_skipped(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_project(tmp_path / "project")
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder would be")
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(blocked))
    assert [case.id for case in loader.load_suite(path).cases] == ["a", "b"]


def test_values_a_plain_document_does_not_hold_are_not_kept(tmp_path: Path) -> None:
    parsed = loader.ParsedFiles(tmp_path / "p.marshal")
    text = "a: !!binary aGk=\n"
    data, _ = loader.read_yaml(write(tmp_path / "c.yaml", text), parsed=parsed)
    assert data["a"] == b"hi"
    parsed.save()
    assert not (tmp_path / "p.marshal").exists()  # nothing new to keep


def test_the_cache_keeps_what_the_last_load_used(tmp_path: Path, judge_cache: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_project(tmp_path)
    loader.load_suite(path)
    write(tmp_path / "cases" / "refunds" / "b.yaml", CASE_A + "trials: 6\n")
    loader.load_suite(path)  # a.yaml from the cache, b.yaml parsed afresh: both kept
    parses: list[str] = []
    real = loader._parse
    monkeypatch.setattr(loader, "_parse",
                        lambda text, where: parses.append(str(where)) or real(text, where))
    assert [case.trials for case in loader.load_suite(path).cases] == [2, 6]
    assert parses == [str(path)]
    (stored,) = (judge_cache / "parsed").glob("*.marshal")
    assert len(marshal.loads(stored.read_bytes())["entries"]) == 2
    (tmp_path / "cases" / "refunds" / "b.yaml").unlink()
    loader.load_suite(path)  # b.yaml's entry goes with it
    assert len(marshal.loads(stored.read_bytes())["entries"]) == 1
    written = stored.stat().st_mtime_ns
    loader.load_suite(path)  # nothing changed: nothing written
    assert stored.stat().st_mtime_ns == written


def test_a_loader_that_cannot_read_its_own_source_caches_nothing(
        tmp_path: Path, judge_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # without its source it cannot tell its entries from another version's: none are kept
    monkeypatch.setattr(loader, "_PARSER_KEY", None)
    path = make_project(tmp_path)
    assert [case.id for case in loader.load_suite(path).cases] == ["a", "b"]
    assert not (judge_cache / "parsed").exists()


# --- the garbage collector rests while a suite is built --------------------------------------


@pytest.mark.parametrize("bad", [False, True], ids=["loaded", "bad-input"])
def test_the_collector_rests_while_a_suite_loads_and_wakes_after(tmp_path: Path, monkeypatch,
                                                                 bad: bool) -> None:
    path = make_project(tmp_path)
    if bad:
        write(tmp_path / "cases" / "refunds" / "c.yaml", "id: [\n")
    seen: list[bool] = []
    load_case = loader.load_case

    def watched(*args, **kwargs):
        seen.append(gc.isenabled())
        return load_case(*args, **kwargs)

    monkeypatch.setattr(loader, "load_case", watched)
    assert gc.isenabled()
    if bad:
        with pytest.raises(InputError):
            loader.load_suite(path)
    else:
        loader.load_suite(path)
    assert seen and not any(seen)  # paused while the cases were built
    assert gc.isenabled()  # and running again after, whether the suite loaded or not


def test_a_collector_paused_by_the_caller_stays_paused(tmp_path: Path) -> None:
    path = make_project(tmp_path)
    gc.disable()
    try:
        loader.load_suite(path)
        assert not gc.isenabled()
    finally:
        gc.enable()
