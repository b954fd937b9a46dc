"""Retrieval checks: cited sources, allowlists, freshness at as_of, grounded citations."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from conftest import case_with_check

from harness import checks
from harness.errors import InputError
from harness.loader import load_case
from harness.model import Case, TargetResponse

AS_OF = Case(id="C1", path=Path("c.yaml"), line=1, workflow="w", title=None, input="x",
             expect=(), as_of=dt.date(2026, 3, 10))
CURRENT = {"id": "refund-policy-2026", "title": "Refund policy", "updated_at": "2026-02-01",
           "url": "https://kb.example.com/refunds"}
STALE = {"id": "refund-policy-2024", "title": "Refund policy (2024)", "updated_at": "2024-01-10",
         "url": "https://kb.example.com/refunds-2024"}


def judge(kind, params, *, sources=None, output="", case=AS_OF):
    body = {"output": output}
    if sources is not None:
        body["sources"] = sources
    return checks.build(kind, params)(TargetResponse.parse(body), case)


def test_cites_passes_when_the_source_was_used():
    assert judge("cites", "refund-policy-2026", sources=[CURRENT]).verdict == "pass"


def test_cites_fails_naming_the_missing_source():
    outcome = judge("cites", ["refund-policy-2026", "faq"], sources=[CURRENT])
    assert outcome.verdict == "fail"
    assert outcome.reason == "sources do not include faq"
    assert judge("cites", {"ids": ["refund-policy-2026", "faq"], "require": "any"},
                 sources=[CURRENT]).verdict == "pass"


def test_not_cites_fails_on_the_stale_source_with_its_details():
    outcome = judge("not_cites", "refund-policy-2024", sources=[CURRENT, STALE])
    assert outcome.verdict == "fail"
    assert outcome.reason == "sources include refund-policy-2024"
    assert outcome.evidence["sources"][0]["updated_at"] == "2024-01-10"
    assert judge("not_cites", "refund-policy-2024", sources=[CURRENT]).verdict == "pass"


@pytest.mark.parametrize("kind, params", [
    ("cites", "x"), ("not_cites", "x"), ("sources_allowed", ["*"]), ("source_fresh", 30),
    ("citations_grounded", {}),
])
def test_source_checks_fail_when_the_target_reports_no_sources(kind, params):
    outcome = judge(kind, params)
    assert outcome.verdict == "fail"
    assert "reported no sources" in outcome.reason


def test_sources_allowed_matches_ids_and_url_patterns():
    assert judge("sources_allowed", ["https://kb.example.com/*"],
                 sources=[CURRENT, STALE]).verdict == "pass"
    outcome = judge("sources_allowed", ["refund-policy-2026"], sources=[CURRENT, STALE])
    assert outcome.verdict == "fail"
    assert outcome.reason == "source(s) not on the allowlist: refund-policy-2024"


def test_source_fresh_is_judged_at_as_of_not_today():
    outcome = judge("source_fresh", 365, sources=[CURRENT, STALE])
    assert outcome.verdict == "fail"
    assert outcome.reason == ("refund-policy-2024 is 790 days old "
                              "(at most 365 days at 2026-03-10)")
    assert judge("source_fresh", 365, sources=[CURRENT]).verdict == "pass"
    later = Case(id="C1", path=Path("c.yaml"), line=1, workflow="w", title=None, input="x",
                 expect=(), as_of=dt.date(2027, 6, 1))
    assert judge("source_fresh", 365, sources=[CURRENT], case=later).verdict == "fail"


def test_source_fresh_without_as_of_or_dates_fails_saying_why():
    no_date = Case(id="C1", path=Path("c.yaml"), line=1, workflow="w", title=None, input="x",
                   expect=())
    assert "no as_of date" in judge("source_fresh", 30, sources=[CURRENT], case=no_date).reason
    undated = judge("source_fresh", 30, sources=[{"id": "faq"}])
    assert undated.verdict == "fail"
    assert "faq has no valid updated_at" in undated.reason


def test_source_fresh_with_no_sources_used_passes_saying_so():
    outcome = judge("source_fresh", 30, sources=[])
    assert outcome.verdict == "pass" and outcome.reason == "no sources were used"


def test_citations_grounded_on_urls():
    text = "See https://kb.example.com/refunds."
    assert judge("citations_grounded", {}, sources=[CURRENT], output=text).verdict == "pass"
    made_up = judge("citations_grounded", {}, sources=[CURRENT],
                    output="See https://kb.example.com/secret-policy.")
    assert made_up.verdict == "fail"
    assert made_up.reason == ("output cites https://kb.example.com/secret-policy, "
                              "which was not retrieved")


def test_citations_grounded_on_bracketed_ids_and_required_citation():
    params = {"pattern": r"\[([a-z0-9-]+)\]", "match_on": "id"}
    ok = judge("citations_grounded", params, sources=[CURRENT],
               output="30 days [refund-policy-2026]")
    assert ok.verdict == "pass"
    none = judge("citations_grounded", params, sources=[CURRENT], output="30 days")
    assert none.verdict == "fail" and none.reason == "the output cites no source"
    optional = judge("citations_grounded", {**params, "require_citation": False},
                     sources=[CURRENT], output="30 days")
    assert optional.verdict == "pass"


@pytest.mark.parametrize(("check", "field"), [
    ("cites: []", "cites.ids"),
    ("cites: {ids: x, require: most}", "cites.require"),
    ("not_cites: 3", "not_cites.ids"),
    ("source_fresh: -1", "source_fresh.max_age_days"),
    ("source_fresh: {max_age: 3}", "source_fresh.max_age"),
    ("citations_grounded: {pattern: '(('}", "citations_grounded.pattern"),
    ("citations_grounded: {match_on: title}", "citations_grounded.match_on"),
])
def test_bad_parameters_fail_at_load_naming_path_line_and_param(tmp_path, check, field):
    with pytest.raises(InputError) as caught:
        load_case(case_with_check(tmp_path, check))
    assert f"C1.yaml:4: expect[0].{field}" in str(caught.value)
