"""The HTML validation report in a real browser: it renders, filters and sorts, a hostile report
runs nothing and loads nothing, the report's own style and script satisfy its CSP, and it reads
at 800 px and on a phone: no header collides with another, no id breaks across lines, nothing
but the tables' own scroll boxes is wider than the page.

Needs the playwright package and a Chromium at /usr/bin/chromium (or on PATH); without them
only the check of the README's screenshot runs. Set HARNESS_SCREENSHOTS to write that
screenshot again, reports/screenshots/report-block.png.
"""

from __future__ import annotations

import os
import shutil
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from test_report_html import (
    GENERATED_AT,
    ROOT,
    SUITE,
    example_report,
    example_runs,
    hostile_report,
)

from harness.compare import compare
from harness.gate import GatePolicy, decide
from harness.loader import load_suite
from harness.model import CaseResult
from harness.records import RunRecord
from harness.report import render_html
from harness.report.status import SignoffEntry, Status
from harness.report.writer import policy_view


def _chromium() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


CHROMIUM = _chromium()
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 900}
NARROW = (800, 390)
"""Narrow page widths, in CSS px: a small laptop window, a phone."""

README_SCREENSHOT = ROOT / "reports" / "screenshots" / "report-block.png"
README_VIEWPORT = {"width": 1000, "height": 900}
README_SCALE = 1.6
"""The README's screenshot is laid out 1000 CSS px wide, about the narrowest at which the
incident table needs no sideways scrolling, and taken at 1.6 device pixels per CSS pixel: a
1600 px image, which GitHub shows at most ~880 px wide, so its text keeps ~88% of its size
(and nearly two image pixels per displayed pixel on a 2x screen) in about 400 KB."""


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="the playwright package is not installed")
    if CHROMIUM is None:
        pytest.skip("no Chromium at /usr/bin/chromium or on PATH")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            yield launched
        finally:
            launched.close()


SPANS = (
    ("invoke_agent refund-assistant", 0, 2370.4),
    ("chat support-large/2026-03", 1, 1210.0),
    ("execute_tool lookup_order", 1, 48.2),
    ("GET https://orders.internal.example/v2/customers/C-150/orders/A-1005"
     "?include=items,shipping,payments,refunds,notes", 2, 41.7),
    ("execute_tool issue_refund", 1, 95.1),
    ("payments.refunds.create order_id=A-1005 amount=640.00 currency=USD "
     "idempotency_key=RF-1005-7f3a9c2e", 2, 88.0),
    *((f"retry attempt {depth} of the card network's refund authorisation", depth, 9.5)
      for depth in range(3, 11)),  # deeper than the report indents
)
"""A traced response's span tree: long names, and deeper than the report draws."""


def traced(record: RunRecord, case_id: str) -> RunRecord:
    """``record`` with the response of ``case_id``'s first trial traced by :data:`SPANS`."""
    def with_trace(result: CaseResult) -> CaseResult:
        if result.case_id != case_id:
            return result
        trial = result.trials[0]
        assert trial.response is not None
        trace = {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "status": "complete",
                 "convention": "gen_ai 1.37", "read": ["tool_calls", "approvals"],
                 "spans": [{"name": name, "depth": depth, "kind": "internal",
                            "duration_ms": took} for name, depth, took in SPANS]}
        response = replace(trial.response, metadata={**trial.response.metadata, "trace": trace})
        return replace(result, trials=(replace(trial, response=response), *result.trials[1:]))

    return replace(record, results=tuple(with_trace(result) for result in record.results))


def signed_block_report(records: dict[str, RunRecord]) -> str:
    """The BLOCK report as `harness validate` writes it (the suite's sign-off policy, its
    incidents' records), its regression traced, after two sign-offs."""
    records = {**records, "next-release": traced(records["next-release"], "INC-2026-017")}
    comparison = compare(records["post-fix"], records["next-release"])
    suite = load_suite(ROOT / SUITE)
    view = policy_view({"default": ["workflow_owner"], "data_exposure": ["security"]},
                       comparison, suite)
    entries = (
        SignoffEntry(reviewer="priya.raman", name="Priya Raman", role="workflow_owner",
                     meaning="rejected", decision="reject", time="2026-05-04T10:00:00Z",
                     comment="INC-2026-017 regressed: the refund ran without an approval"),
        SignoffEntry(reviewer="noor.haddad", name="Noor Haddad", role="security",
                     meaning="risk_accepted", decision="approve", time="2026-05-04T10:05:00Z",
                     cases=("INC-2026-011",)),
    )
    decision = decide(comparison)
    status = Status(decision, signoff_required=True, entries=entries, head=(2, "ab" * 32))
    return render_html(comparison, decision, policy=GatePolicy(), generated_at=GENERATED_AT,
                       status=status, signoff_policy=view,
                       records={case.id: case for case in suite.cases})


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The RESTORE (pre-fix -> post-fix) and BLOCK (post-fix -> next-release) reports, the
    BLOCK report signed and traced, and a hostile one, written to files."""
    records = {
        # shown as where `harness run` writes by default, not where this session put them
        target: replace(record, path=Path("reports") / "runs" /
                        f"{record.header.suite}-{target}-{record.header.run_id}.jsonl")
        for target, record in example_runs(tmp_path_factory.getbasetemp() / "example-runs")
        .items()
    }
    folder = tmp_path_factory.mktemp("reports")
    pages = {
        "restore": example_report(records, "pre-fix", "post-fix")[2],
        "block": example_report(records, "post-fix", "next-release")[2],
        "signed": signed_block_report(records),
        "hostile": hostile_report(),
    }
    paths = {}
    for name, page in pages.items():
        paths[name] = folder / f"{name}.html"
        paths[name].write_text(page, encoding="utf-8")
    return paths


@dataclass
class Watched:
    """A page and everything it did: dialogs, console messages, errors, requests."""

    page: object
    dialogs: list[str] = field(default_factory=list)
    console: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def csp_violations(self) -> list[str]:
        return [text for _, text in self.console if "Content Security Policy" in text]

    def console_errors(self) -> list[str]:
        return [text for kind, text in self.console if kind == "error"]


@pytest.fixture
def watched(browser) -> Iterator[Watched]:
    yield from watch(browser, VIEWPORT)


@pytest.fixture(params=NARROW, ids=lambda width: f"{width}px")
def narrow(browser, request) -> Iterator[Watched]:
    yield from watch(browser, {"width": request.param, "height": 900})


def watch(browser: Any, viewport: dict[str, int]) -> Iterator[Watched]:
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    seen = Watched(page)

    def on_dialog(dialog) -> None:
        seen.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda message: seen.console.append((message.type, message.text)))
    page.on("pageerror", lambda error: seen.errors.append(str(error)))
    page.on("request", lambda request: seen.requests.append(request.url))
    try:
        yield seen
    finally:
        context.close()


def open_report(seen: Watched, path: Path, fragment: str = "") -> str:
    url = path.resolve().as_uri()
    seen.page.goto(url + fragment)
    seen.page.wait_for_load_state("load")
    return url


def visible_ids(page) -> list[str]:
    return page.eval_on_selector_all(
        "#cases tbody.case:not([hidden]) .case-id", "cells => cells.map(c => c.textContent)")


def assert_quiet(seen: Watched, url: str) -> None:
    assert seen.dialogs == []
    assert seen.errors == []
    assert seen.csp_violations() == []
    assert seen.console_errors() == []
    assert {request.split("#")[0] for request in seen.requests} <= {url}


def test_report_renders_banner_table_and_charts(watched, reports):
    url = open_report(watched, reports["block"])
    page = watched.page
    banner = page.locator("#decision-title")
    assert banner.is_visible() and banner.inner_text() == "BLOCK"
    reasons = page.locator("#decision .reasons").inner_text()
    assert "INC-2026-017" in reasons and "li.wei" in reasons
    assert page.locator("#cases tbody.case").count() == 20
    assert page.locator("#cases tbody.case").first.is_visible()
    charts = page.locator("svg.chart-svg")
    assert charts.count() == 3
    for index in range(3):
        box = charts.nth(index).bounding_box()
        assert box and box["width"] > 200 and box["height"] > 50
    assert page.locator("#shown-count").inner_text() == "Showing all 20 cases"
    assert page.locator("#case-INC-2026-017 details").get_attribute("open") is not None
    assert "Not signed off" in page.locator("#signoff").inner_text()
    assert_quiet(watched, url)


def test_filter_box_and_transition_select_hide_rows(watched, reports):
    url = open_report(watched, reports["restore"])
    page = watched.page
    page.fill("#filter-text", "li.wei")
    assert visible_ids(page) == ["INC-2026-017"]
    assert page.locator("#shown-count").inner_text() == "Showing 1 of 20 cases"
    page.fill("#filter-text", "human_review")
    assert visible_ids(page) == ["INC-2026-017"]
    page.fill("#filter-text", "")
    page.select_option("#filter-transition", "fixed")
    fixed = visible_ids(page)
    assert len(fixed) == 7 and all(case.startswith("INC-") for case in fixed)
    page.select_option("#filter-transition", "still_passing")
    assert len(visible_ids(page)) == 13
    page.fill("#filter-text", "BASE-001")
    assert visible_ids(page) == ["BASE-001"]
    page.select_option("#filter-transition", "regressed")
    assert visible_ids(page) == []
    page.select_option("#filter-transition", "")
    page.fill("#filter-text", "")
    assert len(visible_ids(page)) == 20
    assert_quiet(watched, url)


def test_clicking_a_header_sorts_and_sets_aria_sort(watched, reports):
    url = open_report(watched, reports["block"])
    page = watched.page
    default = visible_ids(page)
    assert default[0].startswith("INC-") and default[-1].startswith("BASE-")
    header = page.locator("#cases thead th").nth(0)
    header.locator("button").click()
    assert header.get_attribute("aria-sort") == "ascending"
    ascending = visible_ids(page)
    assert ascending == sorted(default)
    header.locator("button").click()
    assert header.get_attribute("aria-sort") == "descending"
    assert visible_ids(page) == sorted(default, reverse=True)
    candidate = page.locator("#cases thead th").nth(7)
    candidate.locator("button").click()
    assert candidate.get_attribute("aria-sort") == "ascending"
    assert header.get_attribute("aria-sort") == "none"
    assert visible_ids(page)[0] == "INC-2026-017"  # the only failing case: 0% first
    transition = page.locator("#cases thead th").nth(5)
    transition.locator("button").click()
    assert visible_ids(page)[0] == "INC-2026-017"  # regressions rank first
    assert_quiet(watched, url)


def test_url_fragment_prefills_and_applies_the_filter(watched, reports):
    url = open_report(watched, reports["restore"], "#q=li.wei")
    page = watched.page
    assert page.input_value("#filter-text") == "li.wei"
    assert visible_ids(page) == ["INC-2026-017"]
    page.goto(url + "#q=BASE&t=still_passing")
    page.wait_for_function("document.getElementById('filter-transition').value "
                           "=== 'still_passing'")
    assert page.input_value("#filter-text") == "BASE"
    assert len(visible_ids(page)) == 13
    page.goto(url + "#t=fixed")
    page.wait_for_function("document.getElementById('filter-transition').value === 'fixed'")
    assert page.input_value("#filter-text") == ""
    assert len(visible_ids(page)) == 7
    page.goto(url + "#case-INC-2026-011")
    page.wait_for_function("document.querySelector('#case-INC-2026-011 details').open")
    assert page.locator("#case-INC-2026-011").is_visible()
    assert_quiet(watched, url)


def test_hostile_report_runs_nothing_and_loads_nothing(watched, reports):
    url = open_report(watched, reports["hostile"])
    page = watched.page
    page.click("#expand-all")
    page.wait_for_timeout(300)
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.evaluate("document.querySelectorAll('img, iframe, object, embed').length") == 0
    assert page.evaluate("document.scripts.length") == 1
    assert page.evaluate("document.querySelectorAll('style').length") == 1
    text = page.locator("#cases").inner_text()
    assert "<script>alert(1)</script>" in text
    assert "{{ 7*7 }}" in text
    assert "\\u202e" in text and "\u202e" not in text
    # a 100 000-character line wraps instead of widening the page
    assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORT["width"]
    page.fill("#filter-text", "<script>")
    assert len(visible_ids(page)) == 1
    assert_quiet(watched, url)


@pytest.mark.parametrize(("name", "outcome"), [("restore", "RESTORE"), ("block", "BLOCK")])
def test_full_page_screenshot(watched, reports, tmp_path, name, outcome):
    url = open_report(watched, reports[name])
    page = watched.page
    assert page.locator("#decision-title").inner_text() == outcome
    target = tmp_path / f"report-{name}.png"
    page.screenshot(path=str(target), full_page=True)
    assert target.read_bytes()[:8] == PNG
    assert_quiet(watched, url)


# --- on a narrow page ----------------------------------------------------------------------

HEADER_COLLISIONS = """() => {
  const found = [];
  for (const table of document.querySelectorAll("table")) {
    const heads = [...table.querySelectorAll("thead th")].map(th => {
      const ink = document.createRange();
      ink.selectNodeContents(th);
      return {text: th.textContent.trim(), cell: th.getBoundingClientRect(),
              ink: ink.getBoundingClientRect()};
    }).filter(head => head.ink.width > 0);
    heads.forEach((a, i) => {
      if (a.ink.left < a.cell.left - 0.5 || a.ink.right > a.cell.right + 0.5) {
        found.push(`${a.text}: wider than its cell`);
      }
      for (const b of heads.slice(i + 1)) {
        if (a.ink.left < b.ink.right - 0.5 && b.ink.left < a.ink.right - 0.5 &&
            a.ink.top < b.ink.bottom - 0.5 && b.ink.top < a.ink.bottom - 0.5) {
          found.push(`${a.text} overlaps ${b.text}`);
        }
      }
    });
  }
  return found;
}"""
"""Every table's header texts, each within its own cell and clear of every other."""

IDS = ".case-id, .case-link, .run-id, .file-name"
"""The elements that show a case id (a case file's name is its id) or a run id."""

BROKEN_IDS = """(selector) => {
  const found = [];
  for (const element of document.querySelectorAll(selector)) {
    const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const range = document.createRange();
      range.selectNodeContents(node);
      const lines = [...range.getClientRects()].filter(rect => rect.width > 0).length;
      if (lines > 1) {
        found.push(`${node.data.trim()} on ${lines} lines`);
      }
    }
  }
  return found;
}"""

SPILLS = """() => {
  const found = [];
  const scrolls = element => getComputedStyle(element).overflowX !== "visible";
  const right = element => {
    const box = element.getBoundingClientRect();
    return scrolls(element) ? box.left + element.clientLeft + element.clientWidth : box.right;
  };
  const name = element => element.tagName.toLowerCase() +
    (element.className ? "." + String(element.className).split(" ").join(".") : "");
  for (const open of document.querySelectorAll(".cases details[open]")) {
    const wrap = open.closest(".table-wrap");
    if (open.getBoundingClientRect().right > right(wrap) + 0.5) {
      found.push(`${open.querySelector("summary").textContent}: wider than the table's view`);
    }
  }
  for (const box of document.querySelectorAll(".banner, .card, .detail")) {
    const edge = box.getBoundingClientRect().right;
    for (const element of box.querySelectorAll("*")) {
      let inside = element.parentElement;
      while (inside !== box && !scrolls(inside)) {
        inside = inside.parentElement;
      }
      const width = element.getBoundingClientRect().width;
      if (inside === box && width > 0 && element.getBoundingClientRect().right > edge + 0.5) {
        found.push(`${name(element)} sticks out of ${name(box)}`);
      }
    }
  }
  return found;
}"""
"""Everything in the banner, a card or an open case within its box, unless a scroll box of its
own holds it; each open case within the visible part of the table it opened in."""


def expand_all(page: Any) -> None:
    page.click("#expand-all")
    page.wait_for_function("[...document.querySelectorAll('#cases details')].every(d => d.open)")


@pytest.mark.parametrize("name", ["restore", "block", "signed"])
def test_on_a_narrow_page_no_header_collides_with_another(narrow, reports, name):
    url = open_report(narrow, reports[name])
    expand_all(narrow.page)
    assert narrow.page.evaluate(HEADER_COLLISIONS) == []
    assert_quiet(narrow, url)


@pytest.mark.parametrize("name", ["restore", "block", "signed"])
def test_on_a_narrow_page_case_and_run_ids_stay_on_one_line(narrow, reports, name):
    url = open_report(narrow, reports[name])
    page = narrow.page
    expand_all(page)
    assert page.evaluate(BROKEN_IDS, IDS) == []
    assert page.locator(".case-id").count() == 27 and page.locator(".run-id").count() == 2
    assert_quiet(narrow, url)


@pytest.mark.parametrize("name", ["restore", "block", "signed", "hostile"])
def test_on_a_narrow_page_only_scroll_boxes_are_wider_than_the_page(narrow, reports, name):
    url = open_report(narrow, reports[name])
    page = narrow.page
    expand_all(page)
    if name == "signed":
        assert page.locator(".spans li").count() == len(SPANS)
        assert page.locator(".turn").count() == 6  # INC-2026-015, three turns in each run
        assert page.locator(".signoffs tbody tr").count() == 2
    width = page.viewport_size["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert page.evaluate(SPILLS) == []
    assert_quiet(narrow, url)


# --- the README's screenshot ----------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n"


def readme_screenshot(browser: Any, report: Path, target: Path) -> None:
    """The README's picture of a blocked release: the decision banner with its reasons, then
    the incident table (the summary between them left out), laid out and scaled as
    :data:`README_VIEWPORT` and :data:`README_SCALE` say."""
    context = browser.new_context(viewport=README_VIEWPORT, device_scale_factor=README_SCALE)
    try:
        page = context.new_page()
        page.goto(report.resolve().as_uri())
        page.wait_for_load_state("load")
        page.evaluate("document.getElementById('summary').hidden = true")
        assert page.evaluate("document.querySelector('.incident-table').scrollWidth <= "
                             "document.querySelector('#incidents .table-wrap').clientWidth")
        top = page.locator("#decision").bounding_box()
        bottom = page.locator("#incidents").bounding_box()
        assert top and bottom
        margin = 16
        page.screenshot(path=str(target), full_page=True, clip={
            "x": 0, "y": top["y"] - margin, "width": README_VIEWPORT["width"],
            "height": bottom["y"] + bottom["height"] - top["y"] + 2 * margin})
    finally:
        context.close()


def test_the_readme_screenshot_can_be_taken(browser, reports, tmp_path):
    """Set HARNESS_SCREENSHOTS to write it where the README shows it."""
    target = (README_SCREENSHOT if os.environ.get("HARNESS_SCREENSHOTS")
              else tmp_path / README_SCREENSHOT.name)
    readme_screenshot(browser, reports["block"], target)
    assert target.read_bytes()[:8] == PNG


def test_the_readme_screenshot_is_there_and_readable_at_readme_width():
    """A PNG of a page ~1000 CSS px wide at 1.6x to 2x: shown at most ~880 px wide, its text
    keeps most of its size; neither a thumbnail nor a full-page capture megabytes large."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"]({README_SCREENSHOT.relative_to(ROOT).as_posix()})" in readme
    data = README_SCREENSHOT.read_bytes()
    assert data[:8] == PNG and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert 1600 <= width <= 2000 and height > 1000
    assert 100_000 < len(data) < 500_000


def test_a_large_report_links_an_incident_to_its_listed_case(watched, monkeypatch, tmp_path):
    """A case listed by id only is where its incident row's link lands: the list opens and
    the case is in view; filtering the detailed table still works beside the list."""
    from test_report_html import large_report

    _, page_text = large_report(monkeypatch)
    path = tmp_path / "large.html"
    path.write_text(page_text, encoding="utf-8")
    url = open_report(watched, path)
    page = watched.page
    assert not page.eval_on_selector("#unchanged", "d => d.open")
    page.click('#incidents a[href="#case-INC-OK"]')
    page.wait_for_function("() => document.querySelector('#unchanged').open")
    assert page.eval_on_selector("#case-INC-OK", """li => {
        const box = li.getBoundingClientRect();
        return box.top >= 0 && box.bottom <= window.innerHeight;
    }""")
    page.fill("#filter-text", "INC-")
    page.wait_for_function(
        "() => document.querySelector('#shown-count').textContent.startsWith('Showing 2 of 4')")
    assert sorted(visible_ids(page)) == ["INC-BACK", "INC-WEAK"]
    assert_quiet(watched, url)
