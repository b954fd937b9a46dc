"""Retrieval checks: which sources the workflow used and cited, and how fresh they were.

Source checks read the response's ``sources`` (what was retrieved and cited). A target that does
not report sources fails these checks, saying so: nothing can be confirmed about them.
Freshness is judged at the case's ``as_of`` date, never today, so a case gives the same verdict
next year.
"""

from __future__ import annotations

import datetime as dt
import fnmatch

from harness.checks.outcome import failed, passed
from harness.checks.parameters import Parameter
from harness.checks.patterns import compile_pattern, finditer
from harness.checks.registry import Params, register
from harness.model import Case, Check, CheckOutcome, Source, TargetResponse

NOT_REPORTED = "the target reported no sources: cannot confirm which sources were used"
URL = r"https?://[^\s<>\"')\]]+"


def _source_ids(response: TargetResponse) -> list[str]:
    return [source.id for source in response.sources]


def _describe(source: Source) -> dict[str, str | None]:
    return {"id": source.id, "title": source.title, "url": source.url,
            "updated_at": source.updated_at}


@register(
    "cites",
    summary="The response's sources include the given source id(s).",
    params={"ids": Parameter.texts("A source id or a list of them.", required=True),
            "require": Parameter.choice("all (default): every id; any: at least one.",
                                        ("all", "any"), default="all")},
    shorthand="ids",
    category="retrieval",
    example="- cites: refund-policy-2026",
)
def cites(params: Params) -> Check:
    ids = params.texts("ids")
    require = params.choice("require", ("all", "any"), "all")

    def check(response: TargetResponse, case: Case) -> CheckOutcome:
        if "sources" not in response.reported:
            return failed(NOT_REPORTED, expected=ids)
        used = _source_ids(response)
        missing = [i for i in ids if i not in used]
        enough = len(missing) < len(ids) if require == "any" else not missing
        if enough:
            return passed(f"sources include {', '.join(i for i in ids if i in used)}",
                          expected=ids, obtained=used)
        return failed(f"sources do not include {', '.join(missing)}", expected=ids,
                      obtained=used)

    return check


@register(
    "not_cites",
    summary="The response's sources include none of the given source id(s) (e.g. a stale one).",
    params={"ids": Parameter.texts("A source id or a list of them.", required=True)},
    shorthand="ids",
    category="retrieval",
    example="- not_cites: refund-policy-2024",
)
def not_cites(params: Params) -> Check:
    ids = params.texts("ids")

    def check(response: TargetResponse, case: Case) -> CheckOutcome:
        if "sources" not in response.reported:
            return failed(NOT_REPORTED, expected=f"none of {ids}")
        offending = [s for s in response.sources if s.id in ids]
        if offending:
            return failed(f"sources include {', '.join(s.id for s in offending)}",
                          expected=f"none of {ids}", obtained=_source_ids(response),
                          sources=[_describe(s) for s in offending])
        return passed(f"sources include none of {', '.join(ids)}", obtained=_source_ids(response))

    return check


@register(
    "sources_allowed",
    summary="Every source used is on an allowlist (ids or URLs, with * wildcards).",
    params={"allow": Parameter.texts("Patterns matched against each source's id and URL "
                                     "(fnmatch: * and ?).", required=True)},
    shorthand="allow",
    category="retrieval",
    example='- sources_allowed: ["refund-policy-2026", "https://kb.example.com/*"]',
)
def sources_allowed(params: Params) -> Check:
    patterns = params.texts("allow")

    def allowed(source: Source) -> bool:
        return any(
            fnmatch.fnmatchcase(value, pattern)
            for pattern in patterns
            for value in (source.id, source.url or "")
            if value
        )

    def check(response: TargetResponse, case: Case) -> CheckOutcome:
        if "sources" not in response.reported:
            return failed(NOT_REPORTED, expected=patterns)
        outside = [s for s in response.sources if not allowed(s)]
        if outside:
            return failed(f"source(s) not on the allowlist: {', '.join(s.id for s in outside)}",
                          expected=patterns, obtained=_source_ids(response),
                          sources=[_describe(s) for s in outside])
        return passed(f"all {len(response.sources)} source(s) are on the allowlist",
                      obtained=_source_ids(response))

    return check


def _updated(source: Source) -> dt.date | None:
    if not source.updated_at:
        return None
    try:
        return dt.date.fromisoformat(source.updated_at[:10])
    except ValueError:
        return None


@register(
    "source_fresh",
    summary="Every source used was updated at most max_age_days before the case's as_of date.",
    params={"max_age_days": Parameter.number("Largest allowed age in days, measured at the "
                                             "case's as_of date.", required=True, minimum=0)},
    shorthand="max_age_days",
    category="retrieval",
    example="- source_fresh: {max_age_days: 365}",
)
def source_fresh(params: Params) -> Check:
    max_age = params.number("max_age_days", minimum=0)

    def check(response: TargetResponse, case: Case) -> CheckOutcome:
        if case.as_of is None:
            return failed("the case has no as_of date: freshness is judged at as_of so that the "
                          "verdict does not change with the day it runs")
        if "sources" not in response.reported:
            return failed(NOT_REPORTED)
        stale, unknown = [], []
        for source in response.sources:
            updated = _updated(source)
            if updated is None:
                unknown.append(source)
            elif (case.as_of - updated).days > max_age:
                stale.append((source, (case.as_of - updated).days))
        if stale or unknown:
            parts = [f"{s.id} is {age} days old" for s, age in stale]
            parts += [f"{s.id} has no valid updated_at" for s in unknown]
            return failed(
                f"{'; '.join(parts)} (at most {max_age:g} days at {case.as_of.isoformat()})",
                expected=f"updated within {max_age:g} days of {case.as_of.isoformat()}",
                obtained={s.id: s.updated_at for s in response.sources},
                sources=[_describe(s) for s, _ in stale] + [_describe(s) for s in unknown],
            )
        if not response.sources:
            return passed("no sources were used")
        return passed(f"all {len(response.sources)} source(s) updated within {max_age:g} days "
                      f"of {case.as_of.isoformat()}",
                      obtained={s.id: s.updated_at for s in response.sources})

    return check


@register(
    "citations_grounded",
    summary="Every citation in the output is among the sources actually retrieved.",
    params={
        "pattern": Parameter.text("Regular expression finding citations in the output; group 1 "
                                  "(or the whole match) is the citation. Default: URLs.",
                                  default=URL),
        "match_on": Parameter.choice("url (default) or id: which source field a citation "
                                     "names.", ("url", "id"), default="url"),
        "require_citation": Parameter.flag("Fail when the output cites nothing (default true).",
                                           default=True),
    },
    category="retrieval",
    example="- citations_grounded: {pattern: '\\[([a-z0-9-]+)\\]', match_on: id}",
)
def citations_grounded(params: Params) -> Check:
    source = params.text("pattern", URL)
    pattern = compile_pattern(source, param="pattern")
    match_on = params.choice("match_on", ("url", "id"), "url")
    require = params.flag("require_citation", True)

    def check(response: TargetResponse, case: Case) -> CheckOutcome:
        if "sources" not in response.reported:
            return failed(NOT_REPORTED)
        cited = []
        for found in finditer(pattern, response.output):
            text = found.group(1) if pattern.groups else found.group(0)
            cited.append(text.rstrip(".,;:"))
        known = {(s.url if match_on == "url" else s.id) for s in response.sources} - {None}
        ungrounded = [c for c in cited if c not in known]
        if ungrounded:
            return failed(f"output cites {', '.join(ungrounded)}, which was not retrieved",
                          expected=sorted(known), obtained=cited)
        if not cited:
            verdict = failed if require else passed
            return verdict("the output cites no source", obtained=response.output)
        return passed(f"all {len(cited)} citation(s) are among the retrieved sources",
                      obtained=cited)

    return check
