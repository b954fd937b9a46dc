"""Judges through the commands a team runs: validate, check, judge calibrate, gate.

The judge is the scripted OpenAI-compatible server on 127.0.0.1 (see ``openai_server``),
answering from what it is shown; the incident is the bereavement-fare one of ``test_judges``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_harness
from openai_server import openai_server, rule_judge, status, verdict
from test_judges import BAD_MARKERS, CHATBOT, PARAPHRASE, fares_project

from harness.records import read_run

EXAMPLES = f"""\
examples:
  - case: INC-2022-011
    output: "{PARAPHRASE}"
    expected: fail
    note: the same promise in other words
  - case: INC-2022-011
    output: "Sorry for your loss. You may apply for the bereavement fare afterwards."
    expected: fail
    note: a retroactive claim, said without a deadline
  - case: INC-2022-011
    output: "Bereavement fares are only available when booked before travel."
    expected: pass
"""


def judge_votes(record: Path) -> list[dict]:
    votes = []
    for result in read_run(record).results:
        for trial in result.trials:
            for check in trial.checks:
                votes += check.evidence.get("votes") or []
    return votes


def records(root: Path) -> list[Path]:
    return sorted((root / "reports" / "runs").glob("*.jsonl"), key=lambda p: p.stat().st_mtime)


def test_validate_end_to_end_with_a_judge_then_from_the_cache(tmp_path):
    with openai_server() as server:
        root = fares_project(tmp_path, server.url)
        server.always(rule_judge(*BAD_MARKERS))
        done = run_harness("validate", "suites/fares.yaml", cwd=root)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "decision: RESTORE" in done.stdout
        # the deterministic check missed the paraphrase; the judge caught it on the pre-fix run
        assert server.calls == 2
        baseline, candidate = records(root)
        (before,) = judge_votes(baseline)
        assert before["verdict"] == "fail" and before["cached"] is False
        assert "within three months" in before["reason"]
        (after,) = judge_votes(candidate)
        assert (after["verdict"], after["model"], after["cached"]) == ("pass", "judge-1", False)
        report = next((root / "reports").glob("validation-*.html")).read_text()
        assert 'id="judges"' in report and "not calibrated" in report
        assert "uncalibrated" in done.stdout  # a note while the gate does not require one
        assert done.stdout.count("judges.local: 1 call(s), 0 answer(s) from the cache, "
                                 "120 token(s)") == 2

        done = run_harness("validate", "suites/fares.yaml", cwd=root)
        assert done.returncode == 0, done.stdout + done.stderr
        assert server.calls == 2  # the second validation asked the judge nothing
        assert done.stdout.count("judges.local: 0 call(s), 1 answer(s) from the cache") == 2
        assert [v["cached"] for r in records(root)[2:] for v in judge_votes(r)] == [True, True]

        done = run_harness("run", "suites/fares.yaml", "-t", "fixed", "--no-cache", "--out",
                           "fresh.jsonl", cwd=root)
        assert done.returncode == 0, done.stderr
        assert server.calls == 3
        assert [v["cached"] for v in judge_votes(root / "fresh.jsonl")] == [False]


def test_a_judge_error_makes_its_case_an_error_and_the_gate_blocks(tmp_path):
    with openai_server() as server:
        root = fares_project(tmp_path, server.url)
        server.always(status(500))
        done = run_harness("validate", "suites/fares.yaml", cwd=root)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "decision: BLOCK" in done.stdout
    assert "[error]" in done.stdout
    result = read_run(records(root)[-1]).results[0]
    assert result.verdict == "error"
    (judged,) = [c for c in result.trials[0].checks if c.kind == "judge"]
    assert judged.verdict == "error" and "status 500" in judged.reason


def test_check_flags_a_judge_check_that_passes_on_its_incidents_evidence(tmp_path):
    with openai_server() as server:
        root = fares_project(tmp_path, server.url)
        server.always(verdict("pass", "looks fine"))  # a judge that sees no problem
        done = run_harness("check", ".", "--no-targets", cwd=root)
        assert done.returncode == 1, done.stdout + done.stderr
        # the case as a whole fails on its evidence (not_contains "within 90 days" catches
        # it), and still the judge check is a finding: it would not have caught the incident
        assert "cases/fares/INC-2022-011.yaml:19: INC-2022-011: judge check passes on the " \
               "incident's own evidence" in done.stdout
        assert "[judge_passes_on_evidence]" in done.stdout
        assert "[passes_on_evidence]" not in done.stdout
        asked = server.calls
        assert asked == 1
        assert CHATBOT in server.requests[0][1]["messages"][-1]["content"]

        done = run_harness("check", ".", "--no-targets", "--no-judges", cwd=root)
        assert done.returncode == 0, done.stdout + done.stderr
        assert server.calls == asked  # --no-judges: not asked

        server.always(rule_judge(*BAD_MARKERS))
        done = run_harness("check", ".", "--no-cache", cwd=root)
        assert done.returncode == 0, done.stdout + done.stderr  # evidence and pre-fix both fail


def test_calibrate_prints_the_figures_and_the_gate_holds_judges_to_them(tmp_path):
    with openai_server() as server:
        root = fares_project(tmp_path, server.url,
                             gate="  judges: {max_false_pass_rate: 0.25}\n")
        server.always(rule_judge(*BAD_MARKERS))
        done = run_harness("validate", "suites/fares.yaml", cwd=root)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "[judge_uncalibrated] judge local" in done.stdout

        (root / "examples.yaml").write_text(EXAMPLES, encoding="utf-8")
        done = run_harness("judge", "calibrate", "suites/fares.yaml", "--examples",
                           "examples.yaml", cwd=root)
        # evidence (bad), reference and acceptable output (good), three labelled examples:
        # the rule judge misses "apply for the bereavement fare afterwards"
        assert done.returncode == 1, done.stdout + done.stderr
        out = done.stdout
        assert "6 example(s): 3 bad, 3 good answered, 0 without a verdict" in out
        assert "accuracy    0.833" in out
        assert "false-pass  0.333 (1 of 3)" in out
        assert "false-fail  0.000 (0 of 3)" in out
        # chance agreement: 0.5 * (4/6) + 0.5 * (2/6) = 0.5; (5/6 - 0.5) / 0.5 = 0.667
        assert "kappa       0.667" in out
        assert "disagrees: examples.yaml:6 [unauthorised_commitment/1, line 19]: expected " \
               "fail, judged pass" in out
        assert "label: a retroactive claim, said without a deadline" in out
        assert "NOT ACCEPTED by the gate" in out
        (record,) = (root / "reports" / "calibration").glob("local-*.json")
        data = json.loads(record.read_text())
        assert data["figures"]["false_pass_rate"] == 0.333333
        assert len(data["config_digest"]) == 64
        assert PARAPHRASE not in record.read_text()  # digests of the answers, not the answers

        done = run_harness("validate", "suites/fares.yaml", "--out-dir", "reports/second",
                           cwd=root)
        assert done.returncode == 1
        assert "[judge_miscalibrated] judge local" in done.stdout
        assert "false-pass rate 0.333333" in done.stdout

        # a calibration that satisfies the gate, written by hand, is not taken on trust
        data["figures"]["false_pass_rate"] = 0.0
        record.write_text(json.dumps(data))
        done = run_harness("validate", "suites/fares.yaml", "--out-dir", "reports/third",
                           cwd=root)
        assert done.returncode == 1
        assert "[judge_uncalibrated]" in done.stdout

        (root / "examples.yaml").write_text(EXAMPLES.replace("expected: fail\n    note: a "
                                                             "retroactive", "expected: pass\n"
                                                             "    note: a retroactive"))
        done = run_harness("judge", "calibrate", "suites/fares.yaml", "--examples",
                           "examples.yaml", cwd=root)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "false-pass  0.000 (0 of 2)" in done.stdout
        done = run_harness("validate", "suites/fares.yaml", "--out-dir", "reports/fourth",
                           cwd=root)
        assert done.returncode == 0, done.stdout + done.stderr
        report = next((root / "reports" / "fourth").glob("validation-*.html")).read_text()
        assert "false-pass 0.000" in report and "calibration required" in report


def test_calibrate_refuses_bad_examples_with_file_line_and_field(tmp_path):
    with openai_server() as server:
        root = fares_project(tmp_path, server.url)
        (root / "examples.yaml").write_text(
            "examples:\n  - case: INC-2022-011\n    output: ok\n    expected: maybe\n")
        done = run_harness("judge", "calibrate", "suites/fares.yaml", "--examples",
                           "examples.yaml", cwd=root)
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert done.stderr.startswith("error: examples.yaml:4: examples[0].expected:")
        (root / "examples.yaml").write_text(
            "examples:\n  - case: INC-404\n    output: ok\n    expected: pass\n")
        done = run_harness("judge", "calibrate", "suites/fares.yaml", "--examples",
                           "examples.yaml", cwd=root)
        assert done.returncode == 2
        assert "examples.yaml:2" in done.stderr and "no case 'INC-404'" in done.stderr
    assert server.calls == 0
    assert not (root / "reports" / "calibration").exists()


def test_the_judges_policy_travels_with_the_validation(tmp_path):
    from harness.errors import InputError
    from harness.report.manifest import load_manifest

    with openai_server() as server:
        root = fares_project(tmp_path, server.url,
                             gate="  judges: {max_false_pass_rate: 0.25}\n")
        server.always(rule_judge(*BAD_MARKERS))
        done = run_harness("validate", "suites/fares.yaml", cwd=root)
        assert done.returncode == 1 and "[judge_uncalibrated]" in done.stdout
        (manifest_file,) = (root / "reports").glob("validation-*.json")
        manifest = load_manifest(manifest_file)
        assert manifest.version == 4 and manifest.gate_policy is not None
        assert manifest.gate_policy.max_false_pass_rate == 0.25
        # the gate, given the two runs, applies the policy recorded with the validation
        baseline, candidate = records(root)
        suite_file = root / "suites" / "fares.yaml"
        suite_file.write_text(suite_file.read_text().replace("max_false_pass_rate: 0.25",
                                                             "max_false_pass_rate: 1"))
        done = run_harness("gate", str(baseline), str(candidate), cwd=root)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "[judge_uncalibrated]" in done.stdout
    # a version 2 manifest cannot have held the judges policy
    data = json.loads(manifest_file.read_text())
    data["version"] = 2
    manifest_file.write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"gate_policy\.judges: unknown field 'judges'"):
        load_manifest(manifest_file)
    del data["gate_policy"]["judges"]
    manifest_file.write_text(json.dumps(data))
    assert load_manifest(manifest_file).gate_policy.max_false_pass_rate is None


def test_a_judge_gets_redacted_content_also_when_the_run_keeps_it_raw(tmp_path):
    with openai_server() as server:
        root = fares_project(tmp_path, server.url)
        workflow = root / "wf_fares.py"
        workflow.write_text(workflow.read_text().replace(
            "return ANSWERS[mode]",
            "return ANSWERS[mode] + ' Ask jane.doe@example.com; door code ALDER-7731.'"))
        case_file = root / "cases" / "fares" / "INC-2022-011.yaml"
        case_file.write_text(case_file.read_text().replace(
            "expect:\n", "expect:\n  - no_leak: [ALDER-7731]\n"))
        server.always(verdict("pass"))
        done = run_harness("run", "suites/fares.yaml", "-t", "fixed", "--no-redact", "--out",
                           "raw.jsonl", cwd=root)
        assert done.returncode == 1, done.stdout + done.stderr  # no_leak fails, as it should
    # the run keeps what the workflow said, as asked; the judge was sent the redacted text:
    # detectors' findings and the run's canaries alike
    kept = (root / "raw.jsonl").read_text()
    assert "jane.doe@example.com" in kept and "ALDER-7731" in kept
    (request,) = [body for _, body in server.requests]
    assert "jane.doe@example.com" not in json.dumps(request)
    assert "ALDER-7731" not in json.dumps(request)
    assert "[redacted:email]" in request["messages"][-1]["content"]
