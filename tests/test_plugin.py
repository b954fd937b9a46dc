"""The pytest plugin end to end: collection, selection, failure text, records, input errors."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import pytest
from conftest import make_project, write

pytest_plugins = ["pytester"]


@pytest.fixture
def demo(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    make_project(pytester.path)
    # hypothesis's own pytest plugin re-imports hypothesis in every inline run (seconds each);
    # these runs have no hypothesis tests
    run = pytester.runpytest
    monkeypatch.setattr(pytester, "runpytest",
                        lambda *args, **kwargs: run("-p", "no:hypothesispytest", *args, **kwargs))
    return pytester


def test_suite_items_are_named_by_case_id_and_pass_on_a_good_target(demo):
    result = demo.runpytest("suites/demo.yaml", "--harness-target", "good", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*suites/demo.yaml::BASE-1 PASSED*",
                                 "*suites/demo.yaml::INC-1 PASSED*"])


def test_failure_text_names_file_line_and_every_check(demo):
    result = demo.runpytest("suites/demo.yaml", "--harness-target", "bad")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*INC-1 failed: 0 of 1 trial(s) passed (needs 100%)",
        "cases/demo/INC-1.yaml:1  [[]data_exposure, sev2, owner dana.okafor]",
        "FAIL  not_contains (line 15): output contains '@example.com'",
        "*match: *(contact jane[[][[]@example.com]])",
        "re-run with: pytest 'suites/demo.yaml::INC-1' --harness-target bad",
    ])
    assert "Traceback" not in result.stdout.str()


def test_marker_selects_the_category(demo):
    result = demo.runpytest("suites/demo.yaml", "--harness-target", "bad",
                            "-m", "data_exposure", "--strict-markers")
    result.assert_outcomes(failed=1, deselected=1)


def test_keyword_selects_by_case_id(demo):
    result = demo.runpytest("suites/demo.yaml", "--harness-target", "bad", "-k", "BASE-")
    result.assert_outcomes(passed=1, deselected=1)


def test_workflow_and_baseline_markers(demo):
    result = demo.runpytest("suites/demo.yaml", "--harness-target", "good",
                            "-m", "baseline and demo", "--strict-markers")
    result.assert_outcomes(passed=1, deselected=1)


def test_a_failing_target_is_an_error_outcome_not_a_crash(demo):
    result = demo.runpytest("suites/demo.yaml", "--harness-target", "broken")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*ERROR target: raised RuntimeError: model route unavailable*"])


def test_case_file_named_directly_replays_its_evidence(demo):
    result = demo.runpytest("cases/demo/INC-1.yaml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*INC-1 failed*", "*output contains '@example.com'*"])


def test_case_file_named_directly_uses_its_suites_target(demo):
    result = demo.runpytest("cases/demo/INC-1.yaml", "--harness-target", "good")
    result.assert_outcomes(passed=1)


def test_plain_pytest_does_not_collect_yaml(demo):
    result = demo.runpytest()
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_suite_without_a_target_is_a_clear_collection_error(demo):
    result = demo.runpytest("suites/demo.yaml")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*suites/demo.yaml: no target chosen: pass a target, one of "
                                 "good, bad, broken, replay*"])
    assert "Traceback" not in result.stdout.str()


def test_unknown_target_lists_the_suites_targets(demo):
    result = demo.runpytest("suites/demo.yaml", "--harness-target", "prod")
    result.stdout.fnmatch_lines(["*no target named 'prod'; the suite's targets: good, bad*"])


def test_bad_case_file_is_a_collection_error_at_path_line(demo):
    write(demo.path / "cases" / "demo" / "BASE-2.yaml", """
        id: BASE-2
        input: hi
        expect:
          - contians: Hello
    """)
    result = demo.runpytest("suites/demo.yaml", "--harness-target", "good",
                            "--harness-record", "run.jsonl")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([
        "*cases/demo/BASE-2.yaml:4: expect[[]0].contians: unknown check kind 'contians'; "
        "did you mean 'contains'?*",
    ])
    assert "Traceback" not in result.stdout.str()
    assert not (demo.path / "run.jsonl").exists()


def test_harness_record_writes_one_line_per_case(demo):
    result = demo.runpytest("suites/demo.yaml", "--harness-target", "bad",
                            "--harness-record", "run.jsonl")
    result.assert_outcomes(passed=1, failed=1)
    lines = [json.loads(line) for line in Path(demo.path / "run.jsonl").read_text().splitlines()]
    assert [line["type"] for line in lines] == ["header", "case", "case", "end"]
    assert lines[0]["suite"] == "demo" and lines[0]["target"] == "bad"
    assert {line["case_id"]: line["verdict"] for line in lines[1:3]} == {
        "BASE-1": "pass", "INC-1": "fail"}
    assert lines[-1]["counts"] == {"pass": 1, "fail": 1, "error": 0}


def test_harness_record_refuses_two_suites(demo):
    suite = (demo.path / "suites" / "demo.yaml").read_text()
    write(demo.path / "suites" / "other.yaml", suite.replace("name: demo", "name: other"))
    result = demo.runpytest("suites/", "--harness-target", "good", "--harness-record",
                            "run.jsonl")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--harness-record writes one run of one suite*"])
    assert not (demo.path / "run.jsonl").exists()


def test_harness_suite_option_picks_the_suite_for_case_files(demo):
    write(demo.path / "other" / "alt.yaml", """
        name: alt
        cases: ../cases/demo/*.yaml
        targets:
          only-here: {replay: true}
    """)
    result = demo.runpytest("cases/demo/INC-1.yaml", "--harness-target", "only-here",
                            "--harness-suite", "other/alt.yaml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*INC-1 [[]only-here]*"])


def test_an_unexpected_collection_error_is_reported_not_an_internal_error(demo, monkeypatch):
    """A bug while reading a suite (not a HarnessError) is shown as pytest shows any
    collection error, with its traceback: never an INTERNALERROR that hides it."""
    from harness import loader

    def broken(path):
        raise RuntimeError("the loader broke")

    monkeypatch.setattr(loader, "load_suite", broken)
    result = demo.runpytest("suites/demo.yaml", "--harness-target", "good")
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["*ERROR collecting suites/demo.yaml*",
                                 "*RuntimeError: the loader broke*"])
    assert result.ret == pytest.ExitCode.INTERRUPTED


GC_WORKFLOW = '''
import gc

AT_IMPORT = "on" if gc.isenabled() else "off"


def respond(request):
    """Answers with whether the collector ran while the project's code was imported, and
    what it holds while the case runs."""
    return {"output": f"collector {AT_IMPORT} at import, "
                      f"{'frozen' if gc.get_freeze_count() else 'walked'} while running"}
'''

PLAIN_TEST = '''
import gc


def test_nothing_is_set_aside_in_a_session_of_python_tests():
    assert gc.get_freeze_count() == 0
'''


def test_what_a_run_collected_is_set_aside_while_it_runs_and_given_back_by_the_next(demo):
    """A run's cases and items live until it ends: the collector does not walk them during the
    run, nor when the process ends after it; a next pytest session in the same process gives
    them back (repeated in-process runs keep no more than the last). The project's own code
    is imported with the collector running: its garbage is its own to free."""
    write(demo.path / "wf_gc.py", GC_WORKFLOW)
    write(demo.path / "cases" / "gc" / "G-1.yaml",
          "id: G-1\ninput: 1\nexpect:\n"
          "  - equals: collector on at import, frozen while running\n")
    write(demo.path / "suites" / "gc.yaml",
          "name: gc\ncases: cases/gc/*.yaml\ntargets:\n  t: {python: 'wf_gc:respond'}\n")
    write(demo.path / "test_plain.py", PLAIN_TEST)
    try:
        demo.runpytest("suites/gc.yaml", "--harness-target", "t").assert_outcomes(passed=1)
        assert gc.get_freeze_count() > 0  # still aside: nothing walks or frees it at exit
        demo.runpytest("test_plain.py").assert_outcomes(passed=1)  # the plugin, no case
        assert gc.get_freeze_count() == 0
    finally:
        gc.unfreeze()
