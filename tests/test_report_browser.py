"""The HTML validation report in a real browser: it renders, filters and sorts, a hostile report
runs nothing and loads nothing, and the report's own style and script satisfy its CSP.

Needs the playwright package and a Chromium at /usr/bin/chromium (or on PATH). Set
HARNESS_SCREENSHOTS to write reports/screenshots/report-restore.png and report-block.png.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from test_report_html import ROOT, example_report, example_runs, hostile_report

sync_api = pytest.importorskip("playwright.sync_api",
                               reason="the playwright package is not installed")


def _chromium() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


CHROMIUM = _chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None,
                                reason="no Chromium at /usr/bin/chromium or on PATH")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 900}


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The RESTORE (pre-fix -> post-fix) and BLOCK (post-fix -> next-release) reports, and a
    hostile one, written to files."""
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
    context = browser.new_context(viewport=VIEWPORT)
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
    assert page.locator("#cases tbody.case").count() == 19
    assert page.locator("#cases tbody.case").first.is_visible()
    charts = page.locator("svg.chart-svg")
    assert charts.count() == 3
    for index in range(3):
        box = charts.nth(index).bounding_box()
        assert box and box["width"] > 200 and box["height"] > 50
    assert page.locator("#shown-count").inner_text() == "Showing all 19 cases"
    assert page.locator("#case-INC-2026-017 details").get_attribute("open") is not None
    assert "Not signed off" in page.locator("#signoff").inner_text()
    assert_quiet(watched, url)


def test_filter_box_and_transition_select_hide_rows(watched, reports):
    url = open_report(watched, reports["restore"])
    page = watched.page
    page.fill("#filter-text", "li.wei")
    assert visible_ids(page) == ["INC-2026-017"]
    assert page.locator("#shown-count").inner_text() == "Showing 1 of 19 cases"
    page.fill("#filter-text", "human_review")
    assert visible_ids(page) == ["INC-2026-017"]
    page.fill("#filter-text", "")
    page.select_option("#filter-transition", "fixed")
    fixed = visible_ids(page)
    assert len(fixed) == 6 and all(case.startswith("INC-") for case in fixed)
    page.select_option("#filter-transition", "still_passing")
    assert len(visible_ids(page)) == 13
    page.fill("#filter-text", "BASE-001")
    assert visible_ids(page) == ["BASE-001"]
    page.select_option("#filter-transition", "regressed")
    assert visible_ids(page) == []
    page.select_option("#filter-transition", "")
    page.fill("#filter-text", "")
    assert len(visible_ids(page)) == 19
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
    assert len(visible_ids(page)) == 6
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
    if os.environ.get("HARNESS_SCREENSHOTS"):
        folder = ROOT / "reports" / "screenshots"
        folder.mkdir(exist_ok=True)
    else:
        folder = tmp_path
    target = folder / f"report-{name}.png"
    page.screenshot(path=str(target), full_page=True)
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert_quiet(watched, url)
