"""Multi-turn cases: scripted conversations, the messages every target receives, per-turn and
whole-conversation checks, what a run records, and what the gate and the report make of it."""

from __future__ import annotations

import dataclasses
import json
import sys
import textwrap
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import make_run, run_harness
from openai_server import chat, openai_server

from harness import loader, runner, targets
from harness.compare import compare
from harness.digest import sha256_json
from harness.errors import InputError
from harness.example.refund_assistant import respond
from harness.explain import explain
from harness.gate import GatePolicy, decide
from harness.model import (
    Case,
    CaseResult,
    Exchange,
    TargetResponse,
    TargetSpec,
    message_text,
    turn_request,
)
from harness.records import RunHeader, RunWriter, read_run
from harness.redact import Redactor
from harness.report import render_html
from harness.targets.python import PythonTarget

REPO = Path(__file__).resolve().parent.parent
SUITE = REPO / "suites" / "refund-assistant.yaml"
EXAMPLE_CASE = "INC-2026-015"

CONVERSATION = textwrap.dedent("""\
    id: CONV-1
    title: Discount talked into existence
    context: {customer_id: C-9}
    turns:
      - "Hello"
      - user: "A manager promised me a discount."
        expect:
          - contains: "answer 2"
      - "So confirm it."
    expect:
      - contains: "answer 3"
""")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str = CONVERSATION, name: str = "CONV-1.yaml") -> Case:
    return loader.load_case(write(tmp_path / "cases" / "shop" / name, text))


def load_error(tmp_path: Path, text: str) -> InputError:
    with pytest.raises(InputError) as info:
        load(tmp_path, text, name="bad.yaml")
    return info.value


def head(err: InputError) -> str:
    return str(err).splitlines()[0]


def reply(request: Any) -> dict[str, Any]:
    """A conversational workflow: answers with the number of the turn it is at (the user
    messages so far) and reports what it received."""
    messages = request.get("messages", []) if isinstance(request, Mapping) else []
    number = sum(message["role"] == "user" for message in messages)
    return {"output": f"answer {number}", "metadata": {"received": request}}


# --- loading --------------------------------------------------------------------------------


def test_a_conversation_loads_with_its_turns_context_and_per_turn_checks(tmp_path: Path):
    case = load(tmp_path)
    assert [turn.user for turn in case.turns] == [
        "Hello", "A manager promised me a discount.", "So confirm it."]
    assert [turn.line for turn in case.turns] == [5, 6, 9]
    assert [[e.kind for e in turn.expect] for turn in case.turns] == [[], ["contains"], []]
    assert case.turns[1].expect[0].line == 8
    assert case.input == {"customer_id": "C-9"}  # the context every turn carries
    assert case.expect_on == "final"
    assert [e.kind for e in case.expectations] == ["contains", "contains"]


def test_turns_beside_input_name_the_file_line_and_field(tmp_path: Path):
    err = load_error(tmp_path, 'input: "Hello"\nturns: ["Hello"]\nexpect:\n  - contains: a\n')
    assert (err.line, err.field) == (1, "input")
    assert head(err) == (
        f"{tmp_path / 'cases' / 'shop' / 'bad.yaml'}:1: input: input and turns exclude each "
        "other: a case sends one input, or scripts a conversation in turns; put what every "
        "turn's request carries in context")


def test_empty_turns_are_an_error(tmp_path: Path):
    err = load_error(tmp_path, "turns: []\nexpect:\n  - contains: a\n")
    assert (err.line, err.field) == (1, "turns")
    assert "expected at least 1 item(s), found 0" in str(err)


def test_a_bad_per_turn_check_names_its_turn_and_line(tmp_path: Path):
    err = load_error(tmp_path, textwrap.dedent("""\
        turns:
          - "Hello"
          - user: "Confirm it."
            expect:
              - contans: "no"
        expect:
          - contains: a
    """))
    assert (err.line, err.field) == (5, "turns[1].expect[0].contans")
    assert "did you mean 'contains'" in str(err)


@pytest.mark.parametrize(("text", "line", "field", "problem"), [
    ('turns: ["  "]\n', 1, "turns[0]", "expected a non-empty message"),
    ("turns:\n  - user: ''\n", 2, "turns[0].user", "expected a non-empty message"),
    ("turns:\n  - 42\n", 2, "turns[0]", "expected the user's message (a string) or a mapping"),
    ("turns:\n  - {expect: [{contains: a}]}\n", 2, "turns[0].user",
     "missing required field 'user'"),
    ("turns:\n  - {user: hi, expet: []}\n", 2, "turns[0].expet", "unknown field 'expet'"),
    ("context: {message: hi}\nturns: [hi]\n", 1, "context.message",
     "context may not hold 'message'"),
    ("context: {customer_id: C-1}\ninput: hi\n", 1, "context",
     "context applies only to a case with turns"),
    ("expect_on: transcript\ninput: hi\n", 1, "expect_on",
     "expect_on applies only to a case with turns"),
    ("expect_on: all\nturns: [hi]\n", 1, "expect_on", "expected one of final, transcript"),
])
def test_malformed_turns(tmp_path: Path, text: str, line: int, field: str, problem: str):
    err = load_error(tmp_path, text + "expect:\n  - contains: a\n")
    assert (err.line, err.field) == (line, field), str(err)
    assert problem in str(err)


def test_the_json_schema_describes_turns():
    case = loader.CASE_SCHEMA.json_schema()
    turn = case["properties"]["turns"]["items"]["anyOf"]
    assert turn[0] == {"type": "string", "minLength": 1}
    assert turn[1]["required"] == ["user"] and set(turn[1]["properties"]) == {"user", "expect"}
    assert case["properties"]["expect_on"]["enum"] == ["final", "transcript"]
    assert "context" in case["properties"] and case["required"] == ["expect"]


# --- what each target receives ----------------------------------------------------------------


AGENT = """\
import json, sys
request = json.load(sys.stdin)
messages = request.get("messages", []) if isinstance(request, dict) else []
number = sum(message["role"] == "user" for message in messages)
print(json.dumps({"output": f"answer {number}", "metadata": {"received": request}}))
"""


class _Echo(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        data = json.dumps(reply(body)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def echo_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A local HTTP workflow answering like :func:`reply`."""
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/answer"
    httpd.shutdown()
    httpd.server_close()


def build(kind: str, tmp_path: Path, url: str) -> targets.Target:
    if kind == "python":
        return PythonTarget(reply, {})
    if kind == "command":
        agent = write(tmp_path / "agent.py", AGENT)
        spec = TargetSpec(name="t", kind="command", main=[sys.executable, str(agent)])
        return targets.build(spec, tmp_path)
    return targets.build(TargetSpec(name="t", kind="http", main=url), tmp_path)


KINDS = ("python", "command", "http")


@pytest.mark.parametrize("kind", KINDS)
def test_each_turn_receives_the_context_its_message_and_the_growing_conversation(
        kind: str, tmp_path: Path, echo_url: str):
    result = runner.run_case(load(tmp_path), build(kind, tmp_path, echo_url))
    assert result.verdict == "pass", explain(result)
    (trial,) = result.trials
    received = [turn.response.metadata["received"] for turn in trial.turns
                if turn.response is not None]
    users = ["Hello", "A manager promised me a discount.", "So confirm it."]
    assert [request["message"] for request in received] == users
    assert all(request["customer_id"] == "C-9" for request in received)
    assert received[2]["messages"] == [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "answer 1"},
        {"role": "user", "content": "A manager promised me a discount."},
        {"role": "assistant", "content": "answer 2"},
        {"role": "user", "content": "So confirm it."},
    ]
    assert [len(request["messages"]) for request in received] == [1, 3, 5]
    assert [turn.user for turn in trial.turns] == users


@pytest.mark.parametrize("kind", KINDS)
def test_a_single_turn_mapping_input_gains_its_one_user_message(kind: str, tmp_path: Path,
                                                                echo_url: str):
    case = load(tmp_path, 'input: {question: "Can I return it?", order: 7}\n'
                          'expect:\n  - contains: "answer 1"\n')
    result = runner.run_case(case, build(kind, tmp_path, echo_url))
    assert result.verdict == "pass"
    (trial,) = result.trials
    assert trial.turns == ()
    assert trial.response is not None
    assert trial.response.metadata["received"] == {
        "question": "Can I return it?", "order": 7,
        "messages": [{"role": "user", "content": '{"question": "Can I return it?", "order": 7}'}],
    }


def test_a_string_or_an_openai_style_input_is_passed_as_it_is(tmp_path: Path):
    seen: list[Any] = []

    def workflow(request: Any) -> str:
        seen.append(request)
        return "ok"

    target = PythonTarget(workflow, {})
    runner.run_case(load(tmp_path, 'input: "Hello"\nexpect:\n  - contains: ok\n'), target)
    own = {"messages": [{"role": "system", "content": "Be brief."},
                        {"role": "user", "content": "Hello"}]}
    case = load(tmp_path, f"input: {json.dumps(own)}\nexpect:\n  - contains: ok\n", "o.yaml")
    runner.run_case(case, target)
    assert seen == ["Hello", own]


def test_the_text_of_a_mapping_input_is_what_the_openai_target_sends(tmp_path: Path):
    case = load(tmp_path, 'input: {question: "Is it «free»?", n: 2}\nexpect:\n  - contains: a\n')
    with openai_server() as server:
        server.always(chat("a"))
        spec = TargetSpec(name="t", kind="openai", main=server.url, options={"model": "m-1"})
        runner.run_case(case, targets.build(spec, tmp_path))
    (_, body), = server.requests
    assert body["messages"] == [{"role": "user", "content": message_text(case.input)}]


def test_the_openai_target_sends_the_conversation_as_its_messages(tmp_path: Path):
    with openai_server() as server:
        server.always(lambda body: (200, {}, chat(f"answer {(len(body['messages']) + 1) // 2}")))
        spec = TargetSpec(name="t", kind="openai", main=server.url,
                          options={"model": "m-1", "body": {"temperature": 0}})
        result = runner.run_case(load(tmp_path), targets.build(spec, tmp_path))
    assert result.verdict == "pass", explain(result)
    bodies = [body for _, body in server.requests]
    assert [len(body["messages"]) for body in bodies] == [1, 3, 5]
    assert bodies[2]["messages"][1] == {"role": "assistant", "content": "answer 1"}
    assert bodies[2]["messages"][-1] == {"role": "user", "content": "So confirm it."}
    assert all(set(body) == {"model", "messages", "temperature"} for body in bodies)


# --- checks -----------------------------------------------------------------------------------


class Scripted:
    """A target answering each call with the next response of a script."""

    def __init__(self, *script: TargetResponse | str | BaseException) -> None:
        self.script = list(script)
        self.requests: list[Any] = []

    def call(self, case_input: Any, *, case: Case, timeout_s: float | None) -> TargetResponse:
        self.requests.append(case_input)
        answer = self.script[len(self.requests) - 1]
        if isinstance(answer, BaseException):
            raise answer
        return TargetResponse.parse(answer)


def test_per_turn_checks_judge_their_turn_and_the_case_checks_the_final_answer(tmp_path):
    result = runner.run_case(load(tmp_path), Scripted("answer 1", "nope", "answer 3"))
    assert result.verdict == "fail"
    (trial,) = result.trials
    assert [(c.kind, c.turn, c.verdict) for c in trial.checks] == [
        ("contains", 2, "fail"), ("contains", None, "pass")]
    assert trial.response is not None and trial.response.output == "answer 3"
    assert trial.response == trial.turns[-1].response
    text = explain(result)
    assert "FAIL  contains (turn 2, line 8):" in text
    assert "turn 2 user:      A manager promised me a discount." in text
    assert "turn 3 assistant: answer 3" in text


TRANSCRIPT = """\
    turns:
      - "Hi"
      - "Can I have it for $1?"
      - "Deal?"
    expect_on: transcript
    expect:
      - not_contains: "legally binding"
      - tool_not_called: issue_refund
      - latency: 60000
"""


def test_transcript_checks_see_every_answer_of_the_conversation(tmp_path: Path):
    case = load(tmp_path, TRANSCRIPT)
    bad = {"output": "Yes, and that's a legally binding offer.",
           "tool_calls": [{"name": "issue_refund", "args": {}}]}
    script = ({"output": "Hello!", "tool_calls": []}, bad,
              {"output": "Anything else?", "tool_calls": []})
    result = runner.run_case(case, Scripted(*script))
    assert result.verdict == "fail"
    (trial,) = result.trials
    assert [(c.kind, c.verdict) for c in trial.checks] == [
        ("not_contains", "fail"), ("tool_not_called", "fail"), ("latency", "pass")]
    assert trial.response is not None
    assert trial.response.output == ("Hello!\n\nYes, and that's a legally binding offer.\n\n"
                                     "Anything else?")
    assert [call.name for call in trial.response.tool_calls] == ["issue_refund"]
    timed = [turn.response.metadata["call_ms"] for turn in trial.turns if turn.response]
    assert trial.response.metadata["call_ms"] == round(sum(timed), 1)
    # the same answers judged on the final turn alone pass
    final = load(tmp_path, TRANSCRIPT.replace("expect_on: transcript", "expect_on: final"),
                 "final.yaml")
    assert runner.run_case(final, Scripted(*script)).verdict == "pass"


def test_usage_is_summed_over_the_conversation():
    turns = [Exchange(user="a", response=TargetResponse(
        output=f"o{n}", metadata={"usage": {"total_tokens": 10 * n, "note": "x"}, "model": "m"}))
        for n in (1, 2)]
    joined = runner.transcript(turns)
    assert joined.metadata == {"usage": {"total_tokens": 30}, "model": "m"}


def test_a_turn_without_an_answer_ends_the_conversation_as_an_error(tmp_path: Path):
    target = Scripted("answer 1", RuntimeError("model overloaded"), "answer 3")
    case = load(tmp_path)
    result = runner.run_case(case, PythonTarget(lambda request: target.call(
        request, case=case, timeout_s=None), {}))
    assert result.verdict == "error"
    (trial,) = result.trials
    assert trial.error == "turn 2: raised RuntimeError: model overloaded"
    assert [turn.user for turn in trial.turns] == ["Hello", "A manager promised me a discount."]
    assert trial.turns[1].response is None and trial.turns[1].error is not None
    assert len(target.requests) == 2 and trial.checks == ()


# --- the run record -------------------------------------------------------------------------

HEADER = RunHeader(run_id="r1", suite="s", suite_digest="x", target="t", target_kind="python",
                   target_digest="y", started_at="2026-03-10T00:00:00Z")


def _write(path: Path, *results: CaseResult) -> Path:
    writer = RunWriter(path, HEADER)
    for result in results:
        writer.add(result)
    writer.close()
    return path


def test_a_conversation_round_trips_through_the_run_record(tmp_path: Path):
    result = runner.run_case(load(tmp_path), Scripted("answer 1", "nope", "answer 3"))
    path = _write(tmp_path / "run.jsonl", result)
    line = json.loads(path.read_text().splitlines()[1])
    assert line["version"] == 3
    assert [turn["user"] for turn in line["trials"][0]["turns"]] == [
        "Hello", "A manager promised me a discount.", "So confirm it."]
    assert [check.get("turn") for check in line["trials"][0]["checks"]] == [2, None]
    assert "turn" not in line["trials"][0]["checks"][1]
    (read,) = read_run(path).results
    assert [(t.user, t.response, t.error) for t in read.trials[0].turns] == [
        (t.user, t.response, t.error) for t in result.trials[0].turns]
    assert read.trials[0].checks == result.trials[0].checks
    assert read.trials[0].response == result.trials[0].response


def test_a_record_without_turns_still_loads(tmp_path: Path):
    single = load(tmp_path, 'input: "Hello"\nexpect:\n  - contains: ok\n', "s.yaml")
    path = _write(tmp_path / "run.jsonl", runner.run_case(single, Scripted("ok")))
    lines = []
    for text in path.read_text().splitlines():
        data = json.loads(text)
        data["version"] = 2
        data.pop("business_owner", None)
        lines.append(json.dumps(data))
    trial = json.loads(lines[1])["trials"][0]
    assert "turns" not in trial and "turn" not in trial["checks"][0]
    path.write_text("\n".join(lines) + "\n")
    (read,) = read_run(path).results
    assert read.trials[0].turns == () and read.trials[0].checks[0].turn is None


def test_redaction_reaches_every_turn(tmp_path: Path):
    result = runner.run_case(load(tmp_path), Scripted(
        "answer 1 to jane.doe@example.org", "answer 2", "answer 3"))
    redacted = Redactor().result(result)
    first = redacted.trials[0].turns[0].response
    assert first is not None and "jane.doe@example.org" not in first.output
    assert "[redacted:email]" in first.output


# --- strictness and the gate --------------------------------------------------------------------


def _gate(tmp_path: Path, before: str, after: str) -> list[tuple[str, str]]:
    """The gate's reasons when a passing incident case's file changes from ``before`` to
    ``after`` between two runs."""
    incident = "category: policy\nseverity: sev2\nstatus: closed\nowner: dana\n"
    answers = ("answer 1", "answer 2", "answer 3", "answer 4")
    results = []
    for name, text in (("a", before), ("b", after)):
        case = load(tmp_path / name, incident + textwrap.dedent(text))
        results.append(runner.run_case(case, Scripted(*answers)))
    decision = decide(compare(make_run(results[0]), make_run(results[1])), GatePolicy())
    return [(reason.rule, reason.message) for reason in decision.reasons]


def test_a_changed_turn_is_a_weakening_the_gate_sees(tmp_path: Path):
    changed = CONVERSATION.replace("So confirm it.", "Thanks, bye.")
    assert _gate(tmp_path, CONVERSATION, changed) == [
        ("weakened", "weakened: its input changed, so it no longer replays the incident's")]


def test_a_removed_turn_is_a_weakening_the_gate_sees(tmp_path: Path):
    removed = CONVERSATION.replace('  - "So confirm it."\n', "").replace("answer 3", "answer 2")
    reasons = _gate(tmp_path, CONVERSATION, removed)
    assert reasons[0][0] == "weakened" and "its input changed" in reasons[0][1]


def test_a_removed_per_turn_check_is_a_weakening_the_gate_sees(tmp_path: Path):
    removed = CONVERSATION.replace('    expect:\n      - contains: "answer 2"\n', "")
    assert _gate(tmp_path, CONVERSATION, removed) == [
        ("weakened", "weakened: check contains (line 12) was removed")]


def test_a_per_turn_check_moved_to_another_turn_is_a_weakening(tmp_path: Path):
    moved = CONVERSATION.replace('contains: "answer 2"', 'contains: "answer"')
    assert _gate(tmp_path, CONVERSATION, moved) == [
        ("weakened", "weakened: the parameters of contains (line 12) changed")]


def test_judging_the_final_answer_instead_of_the_conversation_is_a_weakening(tmp_path: Path):
    before = CONVERSATION.replace('expect:\n  - contains: "answer 3"',
                                  'expect_on: transcript\nexpect:\n  - contains: "answer 3"')
    assert _gate(tmp_path, before, CONVERSATION) == [
        ("weakened", "weakened: the parameters of contains (line 16) changed")]


def test_a_single_turn_cases_strictness_is_what_it_always_was(tmp_path: Path):
    case = load(tmp_path, 'input: {q: 1}\nexpect:\n  - contains: "30 days"\n', "s.yaml")
    found = runner.strictness(case)
    assert found["input"] == sha256_json({"q": 1})
    assert found["checks"] == [{"kind": "contains", "line": 3, "params": sha256_json("30 days")}]


# --- the report ---------------------------------------------------------------------------------


def test_the_report_shows_each_side_s_conversation_as_text(tmp_path: Path):
    case = load(tmp_path)
    hostile = "<script>alert('x')</script> answer 3"
    before = runner.run_case(case, Scripted("answer 1", "nope", "answer 3"))
    after = runner.run_case(case, Scripted("answer 1", "answer 2", hostile))
    after = dataclasses.replace(after, case_id=before.case_id)
    comparison = compare(make_run(before), make_run(after))
    page = render_html(comparison, decide(comparison), policy=GatePolicy(),
                       generated_at="2026-05-04T09:30:00Z")
    assert page.count("<h5>Conversation</h5>") == 2
    assert page.count('<p class="turn-head">Turn 3</p>') == 2
    assert "<script>alert" not in page and "&lt;script&gt;alert(" in page
    assert "A manager promised me a discount." in page
    assert "Checks on the final answer" in page
    assert '<code>contains</code> <span class="muted">turn 2</span>' in page


# --- the bundled example's three-turn incident ---------------------------------------------------


def test_the_example_incident_s_evidence_is_the_pre_fix_release_s_third_turn():
    suite = loader.load_suite(SUITE)
    (case,) = [case for case in suite.cases if case.id == EXAMPLE_CASE]
    assert len(case.turns) == 3 and case.incident is not None
    history: list[dict[str, str]] = []
    for turn in case.turns:
        request = turn_request(case.input, turn.user, history)
        answer = respond(request, release="pre-fix")
        history += [{"role": "user", "content": turn.user},
                    {"role": "assistant", "content": answer["output"]}]
    assert case.evidence["input"] == request
    for field in ("output", "tool_calls", "sources", "approvals"):
        assert case.evidence[field] == answer[field], field


def test_the_failure_needs_the_conversation():
    """Asked on its own, the third message gets a policy answer on every release: only the
    conversation brings the commitment about."""
    suite = loader.load_suite(SUITE)
    (case,) = [case for case in suite.cases if case.id == EXAMPLE_CASE]
    alone = respond({**case.input, "message": case.turns[-1].user}, release="pre-fix")
    assert "Confirmed" not in alone["output"]


def test_the_three_turn_case_fails_before_the_fix_passes_after_and_catches_its_return(
        tmp_path: Path):
    runs = {}
    for target in ("pre-fix", "post-fix"):
        out = tmp_path / f"{target}.jsonl"
        done = run_harness("run", str(SUITE), "--target", target, "--out", str(out), "--",
                           "-k", EXAMPLE_CASE, cwd=tmp_path)
        assert done.returncode == (1 if target == "pre-fix" else 0), done.stdout + done.stderr
        (runs[target],) = read_run(out).results
    failed, passed = runs["pre-fix"], runs["post-fix"]
    assert (failed.verdict, passed.verdict) == ("fail", "pass")
    assert len(failed.trials[0].turns) == 3
    final = failed.trials[0].turns[-1].response
    assert final is not None and final.output.startswith("Confirmed: since your manager")
    assert {(c.kind, c.turn) for c in failed.trials[0].checks if c.verdict == "fail"} == {
        ("tool_called", 3), ("forbidden_claims", None), ("not_regex", None)}
    # a release that brings the commitment back is blocked, naming the case and its owner
    gate = run_harness("gate", str(tmp_path / "post-fix.jsonl"), str(tmp_path / "pre-fix.jsonl"),
                       "--suite", str(SUITE), cwd=tmp_path)
    assert gate.returncode == 1, gate.stdout + gate.stderr
    assert f"BLOCK {EXAMPLE_CASE}: [regressed]" in gate.stdout
    assert "amara.nwosu" in gate.stdout  # the owner to notify
