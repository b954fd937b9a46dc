"""The HTML validation report, read as text: what it shows, in which order, its CSP, and that
nothing a workflow answered can run, load or restyle anything in it."""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import re
import subprocess
import sys
import unicodedata
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from harness.compare import Comparison, Transition, compare, wilson_interval
from harness.gate import Decision, GatePolicy, Reason, decide
from harness.model import (
    RESPONSE_FIELDS,
    Approval,
    CaseResult,
    CheckOutcome,
    Source,
    TargetResponse,
    ToolCall,
    Trial,
)
from harness.records import RunHeader, RunRecord, read_run
from harness.report import render_html
from harness.report.html import environment, render_derived
from harness.report.status import SignoffEntry, SignoffPolicyView, Status

ROOT = Path(__file__).resolve().parents[1]
SUITE = Path("suites") / "refund-assistant.yaml"
TARGETS = ("pre-fix", "post-fix", "next-release")
GENERATED_AT = "2026-05-04T09:30:00Z"

# --- the bundled example, run once per session ---------------------------------------------


@functools.cache
def example_runs(folder: Path) -> dict[str, RunRecord]:
    """Run the bundled example suite against each release with the CLI, once per folder."""
    folder.mkdir(parents=True, exist_ok=True)
    records = {}
    for target in TARGETS:
        out = folder / f"{target}.jsonl"
        if not out.exists():
            done = subprocess.run(
                [sys.executable, "-m", "harness", "run", str(SUITE), "--target", target,
                 "--out", str(out)],
                cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
            )
            assert done.returncode in (0, 1), done.stdout + done.stderr
        records[target] = read_run(out)
    return records


def example_report(records: dict[str, RunRecord], baseline: str, candidate: str,
                   **extra: Any) -> tuple[Comparison, Decision, str]:
    comparison = compare(records[baseline], records[candidate])
    decision = decide(comparison)
    page = render_html(comparison, decision, policy=GatePolicy(), generated_at=GENERATED_AT,
                       **extra)
    return comparison, decision, page


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> dict[str, RunRecord]:
    return example_runs(tmp_path_factory.getbasetemp() / "example-runs")


@pytest.fixture(scope="module")
def restore(records):
    return example_report(records, "pre-fix", "post-fix")


@pytest.fixture(scope="module")
def block(records):
    return example_report(records, "post-fix", "next-release")


# --- a hostile run --------------------------------------------------------------------------

PAYLOADS = (
    "<script>alert(1)</script>",
    '<img src=x onerror="window.__pwned=1">',
    "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)>",
    "javascript:alert(1)",
    "</textarea>",
    "{{ 7*7 }}",
    '"><script>window.__pwned=1</script>',
    "</pre></td></tr></tbody></table><script>window.__pwned=1</script>",
    "<style>body{display:none}</style>",
    "<a href=\"https://attacker.example/x\">click</a>",
    "\x00\x07\x08\x1b[31mred\x1b[0m\x7f\x85",
    "\u202egnp.exe \u2066isolate\u2069 \u200f \U000e0041\U000e0042 \ud800",
)
HOSTILE = " ".join(PAYLOADS)
LONG_LINE = "A" * 100_000


def hostile_result(verdict: str, output: str, *, extra_call: bool = False) -> CaseResult:
    calls = [ToolCall(name=HOSTILE, args={"q": HOSTILE}, result={"html": HOSTILE})]
    if extra_call:
        calls.append(ToolCall(name="send_email", args={"body": HOSTILE}))
    response = TargetResponse(
        output=output,
        tool_calls=tuple(calls),
        sources=(Source(id=HOSTILE, title=HOSTILE, url="javascript:alert(1)",
                        updated_at=HOSTILE),),
        approvals=(Approval(step=HOSTILE, status=HOSTILE, approver=HOSTILE, role=HOSTILE,
                            at=HOSTILE),),
        metadata={"note": HOSTILE},
        reported=frozenset(RESPONSE_FIELDS),
    )
    check = CheckOutcome(
        kind="not_contains", verdict=verdict, reason=HOSTILE, expected=HOSTILE,
        obtained=output, evidence={"match": HOSTILE, "long": LONG_LINE, HOSTILE: [HOSTILE]},
        line=7,
    )
    trial = Trial(index=1, verdict=verdict, checks=(check,), response=response,  # type: ignore[arg-type]
                  error=None if verdict != "error" else HOSTILE)
    return CaseResult(
        case_id='INC-"><script>alert(1)</script>', verdict=verdict,  # type: ignore[arg-type]
        trials=(trial,), pass_rate=1.0 if verdict == "pass" else 0.0, min_pass_rate=1.0,
        path="cases/<script>alert(1)</script>.yaml", line=1, workflow=HOSTILE, title=HOSTILE,
        input={"message": HOSTILE, "long": LONG_LINE}, incident=True, category=HOSTILE,
        severity="sev1", owner=HOSTILE, case_digest=HOSTILE,
    )


def hostile_record(result: CaseResult, target: str) -> RunRecord:
    header = RunHeader(
        run_id=HOSTILE, suite="suite </title><script>alert(1)</script>", suite_digest=HOSTILE,
        target=target + HOSTILE, target_kind=HOSTILE, target_digest=HOSTILE,
        started_at=HOSTILE, harness_version=HOSTILE, git_commit=HOSTILE, suite_path=HOSTILE,
        python=HOSTILE,
    )
    return RunRecord(path=Path("runs") / "<script>alert(1)</script>.jsonl", header=header,
                     results=(result,), end={"finished_at": HOSTILE, "interrupted": False})


def hostile_report() -> str:
    """A report in which every field a run, a sign-off or the caller supplies is hostile."""
    baseline = hostile_record(hostile_result("pass", "all fine " + HOSTILE), "baseline")
    candidate = hostile_record(
        hostile_result("fail", HOSTILE + "\n" + LONG_LINE + "\n" + HOSTILE, extra_call=True),
        "candidate",
    )
    comparison = compare(baseline, candidate)
    decision = decide(comparison)
    entry = SignoffEntry(reviewer=HOSTILE, name=HOSTILE, role=HOSTILE, meaning=HOSTILE,
                         decision=HOSTILE, time=HOSTILE, comment=HOSTILE, cases=(HOSTILE,))
    status = Status(decision, signoff_required=True, entries=(entry,), head=(3, HOSTILE))
    policy = SignoffPolicyView(required_roles={"default": (HOSTILE,), HOSTILE: (HOSTILE,)},
                               incidents={HOSTILE: (HOSTILE,)}, fix_authors={HOSTILE: (HOSTILE,)})
    return render_html(comparison, decision, policy=GatePolicy(), generated_at=HOSTILE,
                       status=status, signoff_policy=policy)


# --- reading the document -------------------------------------------------------------------


class Elements(HTMLParser):
    """Every start tag with its attributes, and the raw text of style and script elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.raw: dict[str, list[str]] = {"style": [], "script": []}
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in self.raw:
            self._in = tag
            self.raw[tag].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in:
            self.raw[self._in][-1] += data


def elements(page: str) -> Elements:
    parser = Elements()
    parser.feed(page)
    parser.close()
    return parser


def csp_of(page: str) -> dict[str, str]:
    metas = [attrs for tag, attrs in elements(page).tags
             if tag == "meta" and (attrs.get("http-equiv") or "").lower()
             == "content-security-policy"]
    assert len(metas) == 1
    policy = metas[0]["content"] or ""
    directives = {}
    for part in policy.split(";"):
        name, _, value = part.strip().partition(" ")
        directives[name] = value.strip()
    return directives


def sha256_source(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def case_order(page: str) -> list[tuple[str, str]]:
    """(anchor, kind) of each case row group of the all-cases table, in document order."""
    return [(attrs["id"] or "", attrs["data-kind"] or "") for tag, attrs in elements(page).tags
            if tag == "tbody" and "case" in (attrs.get("class") or "").split()]


def case_block(page: str, case_id: str) -> str:
    """The markup of one case of the all-cases table: its row and its details."""
    start = page.index(f'<tbody id="case-{case_id}"')
    end = page.find('<tbody id="case-', start + 1)
    return page[start:end if end != -1 else page.index('id="provenance"')]


def assert_safe_document(page: str) -> None:
    """One inline style, one inline script, no handlers, no style attributes, no loads."""
    parsed = elements(page)
    assert len(parsed.raw["style"]) == 1
    assert len(parsed.raw["script"]) == 1
    for tag, attrs in parsed.tags:
        assert tag not in ("iframe", "object", "embed", "link", "img", "base", "form", "frame")
        assert "style" not in attrs, (tag, attrs)
        assert not [name for name in attrs if name.startswith("on")], (tag, attrs)
        if tag == "script":
            assert "src" not in attrs
        for name in ("src", "href", "action", "formaction", "xlink:href", "srcset", "poster"):
            value = (attrs.get(name) or "").strip().lower()
            assert not value.startswith(("http:", "https:", "//", "javascript:", "data:")), value
            if tag == "a" and name == "href":
                assert value.startswith("#"), value
    style = parsed.raw["style"][0]
    assert "@import" not in style and "url(" not in style and "@font-face" not in style


# --- the example reports --------------------------------------------------------------------


def test_restore_report_shows_the_decision_and_that_nothing_blocks(restore):
    _, decision, page = restore
    assert decision.outcome == "RESTORE"
    assert page.startswith("<!DOCTYPE html>")
    assert '<h2 id="decision-title">RESTORE</h2>' in page
    assert 'class="banner-head restore"' in page
    assert "The candidate may be restored or deployed" in page
    assert "blocking reasons" not in page
    assert "7 fixed" in page


def test_block_report_names_every_reason_with_case_and_owner(block):
    _, decision, page = block
    assert decision.outcome == "BLOCK"
    assert '<h2 id="decision-title">BLOCK</h2>' in page
    assert 'class="banner-head block"' in page
    text = html.unescape(page)
    banner = text.split('id="summary"')[0]
    assert decision.reasons
    for reason in decision.reasons:
        assert reason.rule in banner
        assert reason.message in banner
        assert reason.case_id in banner
        assert reason.owner in banner
    assert [r.case_id for r in decision.blocking] == ["INC-2026-017"]
    owners = re.search(r'<p class="owners">.*?</p>', page, re.S)
    assert owners and '<span class="owner">li.wei</span>' in owners.group()
    assert 'href="#case-INC-2026-017"' in banner


def test_blocking_reasons_come_before_notes(block):
    comparison, _, _ = block
    note = Reason("removed", "a baseline note about a removed case", blocking=False,
                  case_id="AAA-1")
    stop = Reason("regressed", "the blocking reason itself", blocking=True,
                  case_id="INC-2026-017", owner="li.wei")
    page = render_html(comparison, Decision("BLOCK", (note, stop)), policy=GatePolicy(),
                       generated_at=GENERATED_AT)
    assert page.index("the blocking reason itself") < page.index("a baseline note")
    assert page.index("blocking reasons (1)") < page.index("Notes (1)")


def test_incident_cases_come_before_baseline_cases(block):
    comparison, _, page = block
    order = case_order(page)
    assert [anchor for anchor, _ in order] == [f"case-{c.case_id}" for c in comparison.cases]
    kinds = [kind for _, kind in order]
    assert kinds == sorted(kinds, key=lambda kind: kind != "incident")
    assert kinds.count("incident") == 7 and kinds.count("baseline") == 13
    incidents = page.split('id="incidents"')[1].split('id="all-cases"')[0]
    for case in comparison.cases:
        assert (case.case_id in incidents) == case.incident


def test_incident_table_shows_owner_category_severity_and_both_verdicts(block):
    _, _, page = block
    incidents = page.split('id="incidents"')[1].split('id="all-cases"')[0]
    row = re.search(r"<tr>\s*<th scope=\"row\"><a class=\"case-id\" href=\"#case-INC-2026-017\">"
                    r".*?</tr>", incidents, re.S)
    assert row
    cells = row.group()
    for text in ("Refund over $500 issued without manager approval", "human_review", "sev2",
                 "li.wei", "Regressed", "v-pass", "v-fail", "100%", "0%"):
        assert text in cells, text


def test_counts_match_the_comparison(restore, block):
    for comparison, _, page in (restore, block):
        tiles = dict(re.findall(r'<li class="tile t-(\w+)[^"]*" data-transition="\w+">'
                                r'<span class="n">(\d+)</span>', page))
        assert {name: int(n) for name, n in tiles.items()} == {
            t.value: n for t, n in comparison.counts().items()}
        assert set(tiles) == {t.value for t in Transition}
    assert 'Fixed (7)' in restore[2] and 'Regressed (1)' in block[2]


def test_csp_allows_exactly_the_inline_style_and_script(restore):
    _, _, page = restore
    directives = csp_of(page)
    parsed = elements(page)
    assert directives["default-src"] == "'none'"
    assert directives["img-src"] == "data:"
    assert directives["base-uri"] == "'none'"
    assert directives["form-action"] == "'none'"
    assert directives["style-src"] == sha256_source(parsed.raw["style"][0])
    assert directives["script-src"] == sha256_source(parsed.raw["script"][0])
    assert "unsafe" not in page.split("</head>")[0].split("<style>")[0]
    head = page.split("<style>")[0]
    assert head.index('http-equiv="Content-Security-Policy"') < head.index("<title>")


def test_report_is_self_contained(restore, block):
    for _, _, page in (restore, block):
        assert_safe_document(page)
        assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.I)
        assert " style=" not in page


def test_css_has_print_rules_and_safe_text_wrapping(restore):
    style = elements(restore[2]).raw["style"][0]
    assert "@media print" in style
    print_rules = style.split("@media print")[1]
    assert ".controls" in print_rules and "display: none" in print_rules
    assert "break-inside: avoid" in print_rules
    assert "white-space: pre-wrap" in style and "overflow-wrap: anywhere" in style
    assert "system-ui" in style


def test_case_details_show_input_responses_checks_and_diffs(block):
    comparison, _, page = block
    case = next(c for c in comparison.cases if c.case_id == "INC-2026-017")
    detail = case_block(page, "INC-2026-017")
    text = html.unescape(detail)
    assert "<details open>" in detail  # a blocking case is open for the reviewer
    assert "<del>" in detail and "<ins>" in detail
    assert f"{case.similarity:.1f}" in text
    for name, lines in case.structured_diffs.items():
        assert f"<h5>{name.replace('_', ' ').capitalize()}, what changed</h5>" in detail
        assert lines[0].split("'")[0] in text
    assert '"order_id": "A-1005"' in text  # the input, as JSON
    for check in case.candidate.trials[0].checks:
        assert check.reason in text and check.kind in text
    for change in case.check_changes:
        assert change.reason in text
    assert "issue_refund" in text and "request_approval" in text
    assert "refund_over_threshold" in text  # the baseline's approval step
    for result in (case.baseline, case.candidate):
        assert result.trials[0].response.output in text
    untouched = case_block(page, "BASE-001")
    assert "<details>" in untouched
    assert "Not computed: the case passes in both runs" in untouched


def test_tool_calls_are_aligned_and_a_capped_output_diff_says_so():
    from conftest import make_result, make_run

    tools = tuple({"name": f"step_{n}", "args": {"n": n}} for n in range(10))
    long = "word " * 3_000
    before = make_run(make_result("C", "pass", output=long, tools=tools))
    after = make_run(make_result("C", "fail", output="more " + long, tools=tools[1:]))
    comparison = compare(before, after)
    page = render_html(comparison, decide(comparison), policy=GatePolicy(),
                       generated_at=GENERATED_AT)
    assert_safe_document(page)
    detail = html.unescape(case_block(page, "C"))
    assert "<h5>Tool calls, what changed</h5>" in detail
    assert '1 removed, 9 unchanged\n- #1 step_0 {"n":0}</pre>' in detail
    omitted = comparison.cases[0].output_diff_omitted
    assert f"{omitted:,} characters past the first 2,000 words" in detail


def test_pass_rate_intervals_appear_when_cases_ran_several_trials(records):
    def trials(*verdicts: str) -> CaseResult:
        base = records["post-fix"].results[0]
        runs = tuple(Trial(index=i + 1, verdict=v) for i, v in enumerate(verdicts))  # type: ignore[arg-type]
        passed = verdicts.count("pass") / len(verdicts)
        return CaseResult(case_id=base.case_id, verdict="pass" if passed >= 0.6 else "fail",
                          trials=runs, pass_rate=passed, min_pass_rate=0.6, path=base.path,
                          line=base.line, workflow=base.workflow, title=base.title)

    header = records["post-fix"].header
    before = RunRecord(Path("a.jsonl"), header, (trials("pass", "fail", "fail"),), {"x": 1})
    after = RunRecord(Path("b.jsonl"), header, (trials("pass", "pass", "fail"),), {"x": 1})
    comparison = compare(before, after)
    page = render_html(comparison, decide(comparison), policy=GatePolicy(settle_trials=3),
                       generated_at=GENERATED_AT)
    low, high = wilson_interval(2, 3)
    assert f"95% CI {low * 100:.0f}%\u2013{high * 100:.0f}%" in page
    assert "3 trials settle a flaky case by its verdict" in page


def test_every_transition_and_an_unfinished_run_render(records):
    def result(case_id: str, *verdicts: str, incident: bool = False,
               error: str | None = None) -> CaseResult:
        runs = tuple(
            Trial(index=i + 1, verdict=v, error=error if v == "error" else None,  # type: ignore[arg-type]
                  response=None if v == "error" else TargetResponse(output=f"{case_id} {v}"))
            for i, v in enumerate(verdicts))
        rate = verdicts.count("pass") / len(verdicts)
        verdict = "error" if "error" in verdicts else "pass" if rate >= 0.5 else "fail"
        return CaseResult(case_id=case_id, verdict=verdict, trials=runs, pass_rate=rate,  # type: ignore[arg-type]
                          min_pass_rate=0.5, path=f"cases/{case_id}.yaml", line=1,
                          workflow="demo", title=f"title of {case_id}", incident=incident,
                          category="policy" if incident else None,
                          severity="sev1" if incident else None,
                          owner="ana.ops" if incident else None)

    header = records["post-fix"].header
    before = RunRecord(Path("before.jsonl"), header, (
        result("GONE", "pass"), result("ERR", "pass"), result("FLAKY", "pass"),
        result("INC-STILL", "fail", incident=True), result("INC-FIXED", "fail", incident=True),
        result("SAME", "pass"), result("BROKE", "pass"),
    ), {"finished_at": "2026-05-01T00:00:00Z"})
    after = RunRecord(Path("after.jsonl"), header, (
        result("NEW", "fail"), result("ERR", "error", error="target timed out after 10 s"),
        result("FLAKY", "pass", "fail", "pass"), result("INC-STILL", "fail", incident=True),
        result("INC-FIXED", "pass", incident=True), result("SAME", "pass"),
        result("BROKE", "fail"),
    ), None)
    comparison = compare(before, after)
    assert set(comparison.counts().values()) == {1}
    decision = decide(comparison)
    page = render_html(comparison, decision, policy=GatePolicy(), generated_at=GENERATED_AT)
    assert_safe_document(page)
    text = html.unescape(page)
    for reason in decision.reasons:
        assert reason.message in text
    assert "the candidate run did not finish (no end line)" in text
    assert "did not finish (no end line)" in text.split('id="provenance"')[1]
    assert "target timed out after 10 s" in case_block(text, "ERR")
    assert "No response recorded" in case_block(text, "ERR")
    assert "This case is not in the candidate run." in case_block(text, "GONE")
    assert "This case is not in the baseline run." in case_block(text, "NEW")
    assert "trial 2" in case_block(text, "FLAKY")
    assert [kind for _, kind in case_order(page)][:2] == ["incident", "incident"]


def test_charts_are_inline_svg_with_titles_and_numbers(block):
    page = block[2]
    charts = re.findall(r"<svg class=\"chart-svg\" role=\"img\" aria-label=\"([^\"]+)\".*?</svg>",
                        page, re.S)
    assert len(charts) == 3
    svgs = re.findall(r"<svg class=\"chart-svg\".*?</svg>", page, re.S)
    assert all("<title>" in svg for svg in svgs)
    assert "Regressed: 1" in html.unescape(charts[0])
    assert "human_review: 1 fail" in html.unescape(charts[1])
    assert "sev2: 4: 3 pass, 1 fail" in html.unescape(charts[2])
    assert '<text class="chart-value"' in svgs[0]


def test_provenance_names_both_runs_and_the_policy(block):
    comparison, _, page = block
    provenance = html.unescape(page.split('id="provenance"')[1].split('id="signoff"')[0])
    for record in (comparison.baseline, comparison.candidate):
        header = record.header
        for value in (header.run_id, header.suite, header.suite_digest, header.target,
                      header.target_kind, header.target_digest, header.harness_version,
                      header.started_at, str(record.path), record.end["finished_at"]):
            assert value in provenance, value
        assert header.git_commit is None or header.git_commit in provenance
    assert "all (sev1, sev2, sev3, sev4)" in provenance
    assert "not set: a case whose trials disagree blocks" in provenance
    assert GENERATED_AT in provenance


def test_unsigned_report_says_so_and_shows_the_command(restore):
    signoff = restore[2].split('id="signoff"')[1]
    assert "Not signed off." in signoff
    assert ("harness signoff REPORT --reviewer ID --decision approve|reject"
            in html.unescape(signoff))


ENTRIES = (
    SignoffEntry(reviewer="li.wei", name="Li Wei", role="workflow_owner", meaning="approved",
                 decision="approve", time="2026-05-04T10:00:00Z"),
    SignoffEntry(reviewer="noor.haddad", name="Noor Haddad", role="security",
                 meaning="risk_accepted", decision="approve", time="2026-05-04T10:05:00Z",
                 comment="only the check's wording changed", cases=("INC-2026-011",)),
)


def test_signoffs_and_chain_head_are_listed(records):
    comparison = compare(records["pre-fix"], records["post-fix"])
    status = Status(decide(comparison), signoff_required=True, entries=ENTRIES,
                    head=(2, "ab" * 32))
    _, _, page = example_report(records, "pre-fix", "post-fix", status=status)
    signoff = page.split('id="signoff"')[1]
    assert "Not signed off" not in signoff
    for entry in ENTRIES:
        for value in (entry.reviewer, entry.name, entry.role, entry.meaning, entry.decision,
                      entry.time):
            assert value in signoff
    assert "only the check&#39;s wording changed" in signoff and "INC-2026-011" in signoff
    assert signoff.count('class="verified">verified') == 2
    assert "ab" * 32 in signoff and "Last record of this report" in signoff


def test_the_banner_and_the_signoff_section_are_derived_and_outside_the_signed_body(records):
    """Both derived parts sit between their markers, left out of the signed digest; they hold
    exactly what render_derived gives, and the rest of the page does not depend on them."""
    from harness.gate import SIGNOFF_MISSING
    from harness.report import body

    comparison = compare(records["pre-fix"], records["post-fix"])
    tests = decide(comparison)
    waiting = Decision("AWAITING SIGN-OFF", (Reason(SIGNOFF_MISSING, "no approval in role "
                                                                      "security", True),))
    plain = example_report(records, "pre-fix", "post-fix")[2]
    pages = {}
    for name, status in {
        "restore": Status(tests, signoff_required=True, entries=ENTRIES, head=(2, "c" * 64)),
        "awaiting": Status(waiting, signoff_required=True, head=(0, "0" * 64)),
        "rejected": Status(Decision("BLOCK", (Reason("signoff_rejected", "rejected by noor",
                                                     True),)), signoff_required=True),
    }.items():
        page = example_report(records, "pre-fix", "post-fix", status=status)[2]
        assert body.derived_parts(page) == render_derived(status)
        assert body.report_body_sha256(page) == body.report_body_sha256(plain)
        pages[name] = page
    assert body.read_chain_head(pages["restore"]) == (2, "c" * 64)
    assert '<div class="banner-head await">' in pages["awaiting"]
    assert "AWAITING SIGN-OFF" in pages["awaiting"].split('id="summary"')[0]
    assert '<div class="banner-head block">' in pages["rejected"]
    assert "rejected by noor" in pages["rejected"].split('id="summary"')[0]
    with pytest.raises(ValueError):
        body.read_chain_head(plain)  # nothing pinned without a chain head
    assert body.report_body_sha256(hostile_report())  # payloads cannot fake a marker


def test_the_signoff_policy_is_shown_with_roles_categories_and_fix_authors(records):
    view = SignoffPolicyView(required_roles={"default": ("workflow_owner",),
                                             "data_exposure": ("security",)},
                             incidents={"data_exposure": ("INC-2026-011",)},
                             fix_authors={"li.wei": ("INC-2026-017",)})
    page = example_report(records, "pre-fix", "post-fix", signoff_policy=view)[2]
    policy = html.unescape(page.split("<h3>Sign-off policy</h3>")[1].split("harness:signoff")[0])
    assert "Every validation" in policy and "workflow_owner" in policy
    assert "data_exposure incidents: INC-2026-011" in policy and "security" in policy
    assert "li.wei" in policy and "authored the fix of INC-2026-017" in policy
    unrequired = example_report(records, "pre-fix", "post-fix")[2]
    assert "requires no sign-off" in unrequired


def test_rendering_is_deterministic(records):
    first = example_report(records, "post-fix", "next-release")[2]
    assert first == example_report(records, "post-fix", "next-release")[2]


def test_environment_autoescapes_and_is_strict():
    env = environment()
    assert env.autoescape("report.html.j2") is True  # type: ignore[operator]
    assert env.undefined.__name__ == "StrictUndefined"


# --- hostile content ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile() -> str:
    return hostile_report()


def test_hostile_markup_is_escaped_everywhere(hostile):
    page = hostile
    assert not re.search(r"<script>\s*(alert|window)", page, re.I)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img" not in page and "&lt;img src=x onerror=" in page
    assert "<svg onload" not in page and "&lt;svg onload=alert(1)&gt;" in page
    assert "</textarea>" not in page and "&lt;/textarea&gt;" in page
    assert "<style>body" not in page and "<a href=\"https://" not in page
    assert "onerror=\"window" not in page
    assert_safe_document(page)


def test_hostile_template_syntax_is_shown_literally(hostile):
    assert "{{ 7*7 }}" in hostile
    assert not re.search(r"(?<![\w.-])49(?![\w.%-])", hostile.replace("{{ 7*7 }}", ""))


def test_hostile_javascript_urls_are_text_not_links(hostile):
    assert "javascript:alert(1)" in hostile
    assert not re.search(r"""(?:href|src|action)\s*=\s*["']?\s*javascript:""", hostile, re.I)


def test_control_and_bidi_characters_are_shown_as_escapes(hostile):
    allowed = {"\n", "\t"}
    raw = sorted({char for char in hostile
                  if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn")
                  and char not in allowed})
    assert raw == []
    text = html.unescape(hostile)
    for escaped in ("\\u0000", "\\u0007", "\\u001b", "\\u007f", "\\u0085", "\\u202e",
                    "\\u2066", "\\u2069", "\\u200f", "\\U000e0041"):
        assert escaped in text, escaped
    assert '<span class="ctl">\\u202e</span>' in hostile
    assert "\\ud800" in text
    hostile.encode("utf-8")  # a lone surrogate in a run cannot make the page unwritable


def test_very_long_lines_are_cut_with_a_note(hostile):
    assert "A" * 20_000 in hostile
    assert "A" * 20_001 not in hostile
    assert "more characters not shown" in hostile
    assert len(hostile) < 2_000_000


def test_hostile_case_id_makes_a_safe_anchor(hostile):
    anchors = [anchor for anchor, _ in case_order(hostile)]
    assert len(anchors) == 1
    assert re.fullmatch(r"case-[A-Za-z0-9_.-]+", anchors[0])


def test_an_incidents_references_and_evidence_provenance_are_shown_as_text(records, tmp_path):
    from harness.loader import load_case

    comparison = compare(records["pre-fix"], records["post-fix"])
    source = next(c for c in comparison.cases if c.incident).case_id
    path = tmp_path / f"{source}.yaml"
    text = (ROOT / comparison.latest_path(source)).read_text(encoding="utf-8") if hasattr(
        comparison, "latest_path") else None
    bundled = next((ROOT / "cases").rglob(f"{source}.yaml"))
    text = bundled.read_text(encoding="utf-8")
    text += ("references:\n"
             "  - {title: Ticket SUP-4471, url: 'https://tickets.example/SUP-4471', kind: ticket}\n"
             "  - {title: Postmortem, url: 'javascript:alert(1)'}\n")
    text = text.replace("evidence:\n", "evidence:\n  reconstructed: [approvals]\n", 1)
    path.write_text(text, encoding="utf-8")
    record = load_case(path)
    page = render_html(comparison, decide(comparison), policy=GatePolicy(),
                       generated_at=GENERATED_AT, records={source: record})
    assert_safe_document(page)  # the references link nowhere, whatever they say
    block = case_block(page, source)
    assert "Ticket SUP-4471 <code>https://tickets.example/SUP-4471</code>" in block
    assert "(ticket)" in block and "<code>javascript:alert(1)</code>" in block
    assert "reconstructed after the fact: approvals" in block


# --- a large comparison: what changed in full, the rest by id -------------------------------


def large_report(monkeypatch, limit: int = 4) -> tuple[Decision, str]:
    """More cases than the report details: still passing baseline and incident cases, one
    incident case weakened while passing (its file changed, no strictness recorded), one
    regressed, one fixed, one still failing."""
    from conftest import make_result, make_run

    monkeypatch.setattr("harness.report.html.SUMMARISE_ABOVE", limit)
    before = [make_result(f"OK-{n}", "pass") for n in range(1, 7)]
    after = list(before)
    before += [make_result("INC-OK", "pass", incident=True),
               make_result("INC-WEAK", "pass", incident=True, digest="d1"),
               make_result("INC-BACK", "pass", incident=True),
               make_result("FIXED", "fail"), make_result("STILL", "fail")]
    after += [make_result("INC-OK", "pass", incident=True),
              make_result("INC-WEAK", "pass", incident=True, digest="d2"),
              make_result("INC-BACK", "fail", incident=True),
              make_result("FIXED", "pass"), make_result("STILL", "fail")]
    comparison = compare(make_run(*before), make_run(*after))
    decision = decide(comparison)
    return decision, render_html(comparison, decision, policy=GatePolicy(),
                                 generated_at=GENERATED_AT)


def test_a_large_report_details_what_changed_and_lists_the_rest(monkeypatch):
    _, page = large_report(monkeypatch)
    detailed = {anchor.removeprefix("case-") for anchor, _ in case_order(page)}
    assert detailed == {"INC-WEAK", "INC-BACK", "FIXED", "STILL"}
    listed = page[page.index('<details id="unchanged"'):page.index('id="provenance"')]
    assert "7 more case(s) passed in both runs, 1 of them incident cases" in listed
    for case_id in ("OK-1", "OK-6", "INC-OK"):
        assert f'<li id="case-{case_id}"><code>{case_id}</code>' in listed
    assert "harness compare BASELINE CANDIDATE --case ID" in listed
    assert 'Showing all 4 cases' in page


def test_a_reintroduced_failure_or_a_weakened_case_is_never_summarised(monkeypatch):
    """The attack: bury the case the gate blocks on among thousands that pass. Whatever the
    suite's size, a regressed case, and a passing case a reason names, are shown in full."""
    decision, page = large_report(monkeypatch, limit=0)
    blocking = {reason.case_id for reason in decision.blocking}
    assert {"INC-WEAK", "INC-BACK"} <= blocking
    for case_id in blocking:
        block = case_block(page, case_id)
        assert f"Evidence for {case_id}" in block
        assert f'<li id="case-{case_id}">' not in page


def test_every_incident_stays_in_the_incident_table_and_its_link_lands(monkeypatch):
    _, page = large_report(monkeypatch)
    table = page[page.index('id="incidents"'):page.index('id="all-cases"')]
    for case_id in ("INC-OK", "INC-WEAK", "INC-BACK"):
        assert f'href="#case-{case_id}"' in table
        assert page.count(f'id="case-{case_id}"') == 1  # the link has one place to land


def test_a_report_at_the_limit_details_every_case(monkeypatch):
    _, page = large_report(monkeypatch, limit=11)
    assert len(case_order(page)) == 11
    assert 'id="unchanged"' not in page
