"""Semantic similarity through an embedder, and the budget checks (latency, tokens, cost)."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
from openai_server import openai_server

from harness import judges, judging, loader, runner
from harness.errors import InputError

EMBEDDER = '''
import re

VOCABULARY = ["refund", "refunds", "days", "30", "60", "return", "accepted", "within", "never"]


def embed(text):
    """Counts of a few words: enough to tell answers apart, deterministic."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    return [float(words.count(word)) for word in VOCABULARY]


def broken(text):
    return ["not", "numbers"]
'''

SUITE = """\
name: returns
cases: [cases/returns/*.yaml]
targets:
  app: {{python: wf_returns:respond}}
embedders:
  bow: {{python: wf_embed:embed}}
  broken: {{python: wf_embed:broken}}
  remote:
    openai: {url}
    model: embed-1
    api: embeddings
{extra}"""

CASE = """\
id: RET-1
input: How long do I have to return this?
expect:
  - {check}
"""


def project(root: Path, check: str, *, url: str = "http://127.0.0.1:9/v1",
            extra: str = "", answer: str = "Refunds are accepted within 30 days.",
            metadata: dict | None = None, workflow: str | None = None) -> Path:
    (root / "cases" / "returns").mkdir(parents=True)
    (root / "suites").mkdir()
    (root / "wf_embed.py").write_text(EMBEDDER)
    response = {"output": answer, "metadata": metadata or {}}
    (root / "wf_returns.py").write_text(
        workflow or f"def respond(request):\n    return {response!r}\n")
    (root / "suites" / "returns.yaml").write_text(SUITE.format(url=url, extra=extra))
    (root / "cases" / "returns" / "RET-1.yaml").write_text(CASE.format(check=check))
    return root / "suites" / "returns.yaml"


def run(suite_file: Path, *, no_cache: bool = False):
    # each test's project has modules of the same names: this one's must be imported
    for name in ("wf_returns", "wf_embed"):
        sys.modules.pop(name, None)
    sys.path[:] = [p for p in sys.path if "test_" not in Path(p).name]
    sys.path.insert(0, str(suite_file.parent.parent))
    suite = loader.load_suite(suite_file)
    loader.import_project_code(suite.cases, suite.root)
    (case,) = suite.cases
    from harness import targets

    target = targets.build(suite.targets["app"], suite.root)
    with judging.using(judges.for_suite(suite, no_cache=no_cache)):
        result = runner.run_case(case, target)
    return result.trials[0].checks[0]


@pytest.mark.parametrize(("check", "verdict"), [
    ("semantic_similar: {reference: 'Refunds are accepted within 30 days.', embedder: bow}",
     "pass"),
    ("semantic_similar: {reference: 'Never return it.', embedder: bow, threshold: 0.5}", "fail"),
    ("not_semantic_similar: {reference: 'You have 60 days to return it.', embedder: bow}",
     "pass"),
    ("not_semantic_similar: {reference: 'Refunds accepted within 30 days', embedder: bow}",
     "fail"),
])
def test_semantic_checks_compare_embeddings_by_cosine(tmp_path, check, verdict):
    outcome = run(project(tmp_path, check))
    assert outcome.verdict == verdict, outcome
    assert 0.0 <= outcome.score <= 1.0 + 1e-9


def test_an_embedder_that_does_not_answer_numbers_is_an_error(tmp_path):
    outcome = run(project(tmp_path, "semantic_similar: {reference: x y z, embedder: broken}"))
    assert outcome.verdict == "error" and "list of numbers" in outcome.reason


def test_an_openai_embedder_is_cached_like_a_judge(tmp_path):
    vectors = {"Refunds are accepted within 30 days.": [0.6, 0.8, 0.0],
               "Returns are accepted for 30 days.": [0.8, 0.6, 0.0]}
    with openai_server() as server:
        server.always(lambda request: (200, {}, {"model": "embed-1", "data": [
            {"embedding": vectors[request["input"]]}]}))
        suite = project(tmp_path, "semantic_similar: {reference: 'Returns are accepted for "
                                  "30 days.', embedder: remote, threshold: 0.9}",
                        url=server.url)
        first = run(suite)
        assert first.verdict == "pass" and first.score == pytest.approx(0.96)
        assert server.calls == 2  # the output and the reference
        assert run(suite).verdict == "pass"
        assert server.calls == 2  # both from the cache
        run(suite, no_cache=True)
        assert server.calls == 4
    assert server.requests[0] == ("/v1/embeddings", {"model": "embed-1", "input":
                                                     "Refunds are accepted within 30 days."})


def test_an_unknown_embedder_is_refused_at_the_checks_line(tmp_path):
    suite = project(tmp_path, "semantic_similar: {reference: x, embedder: nope}")
    with pytest.raises(InputError) as caught:
        loader.load_suite(suite)
    assert caught.value.line == 4 and "no embedder named 'nope'" in caught.value.problem


# --- budgets -----------------------------------------------------------------------------


USAGE = {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500}


@pytest.mark.parametrize(("check", "verdict"), [
    ("tokens: 2000", "pass"),
    ("tokens: 1000", "fail"),
    ("tokens: {max: 250, kind: completion}", "fail"),
    ("tokens: {max: 1200, kind: prompt}", "pass"),
    ("cost: 0.01", "pass"),      # 1200 * 2.5 / 1e6 + 300 * 10 / 1e6 = 0.006
    ("cost: 0.005", "fail"),
    ("latency: 60000", "pass"),
])
def test_budget_checks_read_the_usage_the_target_reports(tmp_path, check, verdict):
    suite = project(tmp_path, check, metadata={"model": "gpt-4o", "usage": USAGE},
                    extra="prices:\n  gpt-4o: {input: 2.5, output: 10}\n")
    outcome = run(suite)
    assert outcome.verdict == verdict, outcome


def test_a_budget_nobody_can_check_is_not_kept(tmp_path):
    assert run(project(tmp_path, "tokens: 2000")).verdict == "fail"  # no usage reported
    cost = project(tmp_path / "p", "cost: 1", metadata={"model": "mystery-model",
                                                        "usage": USAGE},
                   extra="prices:\n  gpt-4o: {input: 2.5, output: 10}\n")
    outcome = run(cost)
    assert outcome.verdict == "error" and "no price for model 'mystery-model'" in outcome.reason


def test_latency_is_the_call_as_the_harness_timed_it(tmp_path):
    suite = project(tmp_path, "latency: 50", workflow=textwrap.dedent("""
        import time

        def respond(request):
            time.sleep(0.2)
            return "Refunds are accepted within 30 days."
    """))
    outcome = run(suite)
    assert outcome.verdict == "fail" and outcome.obtained >= 200


def test_a_reported_call_ms_cannot_claim_a_faster_call(tmp_path):
    suite = project(tmp_path, "latency: 50", workflow=textwrap.dedent("""
        import time

        def respond(request):
            time.sleep(0.2)
            return {"output": "ok", "metadata": {"call_ms": 1}}
    """))
    outcome = run(suite)
    assert outcome.verdict == "fail", json.dumps(outcome.evidence)
