"""``harness metrics``: figures from the bundled incident records, computed here independently
from the YAML, and the table, CSV, JSON and HTML renderings."""

from __future__ import annotations

import base64
import csv
import dataclasses
import datetime as dt
import hashlib
import html
import io
import json
import re
import shutil
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml
from conftest import make_result, make_run, write

from harness.errors import InputError
from harness.intake.metrics import (
    compute_metrics,
    incident_frame,
    load_runs,
    long_rows,
    render,
    to_csv,
    to_html,
    to_json,
    to_table,
)
from harness.intake.registry_check import load_cases
from harness.model import CATEGORIES, EVIDENCE_FIELDS, SEVERITIES

ROOT = Path(__file__).parents[1]
CASE_014 = Path("refund-assistant/INC-2026-014.yaml")


def records() -> list[dict]:
    """The bundled incident records, read with plain YAML (every scalar a string)."""
    files = sorted((ROOT / "cases" / "refund-assistant").glob("INC-*.yaml"))
    return [yaml.load(file.read_text(encoding="utf-8"), Loader=yaml.BaseLoader) for file in files]


def hours(record: dict, start: str, end: str) -> float:
    timeline = record["timeline"]
    delta = (dt.datetime.fromisoformat(timeline[end])
             - dt.datetime.fromisoformat(timeline[start]))
    return delta.total_seconds() / 3600


def p90(values: list[float]) -> float:
    """The 90th percentile, interpolating linearly between the closest ranks."""
    ordered = sorted(values)
    position = 0.9 * (len(ordered) - 1)
    below = int(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


@pytest.fixture(scope="module")
def bundled():
    return compute_metrics(load_cases(ROOT / "cases"))


@pytest.fixture
def cases_dir(tmp_path: Path) -> Path:
    """A copy of the bundled cases folder, to plant records in."""
    shutil.copytree(ROOT / "cases", tmp_path / "cases")
    return tmp_path / "cases"


def copy_case(cases_dir: Path, source: Path, new_id: str, *edits: tuple[str, str]) -> Path:
    text = (cases_dir / source).read_text(encoding="utf-8")
    text = text.replace(f"id: {source.stem}", f"id: {new_id}", 1)
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    return write(cases_dir / source.parent / f"{new_id}.yaml", text)


# --- the incident frame ---------------------------------------------------------------------


def test_the_frame_has_one_row_per_incident_case():
    frame = incident_frame(load_cases(ROOT / "cases"))
    expected = records()
    assert list(frame["id"]) == [r["id"] for r in expected]
    assert list(frame["category"]) == [r["category"] for r in expected]
    assert list(frame["users"]) == [int(r["impact"]["users"]) for r in expected]
    assert frame["detected"].iloc[0] == dt.datetime.fromisoformat(
        expected[0]["timeline"]["detected"])
    assert list(frame["evidence_missing"]) == [0] * 7
    assert list(frame["id"][frame["approval_bypassed"]]) == ["INC-2026-017"]
    assert not frame["near_miss"].any()


def test_baseline_cases_give_an_empty_frame_and_empty_metrics():
    baselines = [c for c in load_cases(ROOT / "cases") if c.incident is None]
    assert len(incident_frame(baselines)) == 0
    metrics = compute_metrics(baselines)
    assert metrics.incidents == 0
    assert metrics.detection.median_hours is None and metrics.missing_log_rate is None
    assert "no incident cases" in metrics.notes[0]
    assert "  median     n/a\n" in to_table(metrics)


# --- figures from the bundled records -------------------------------------------------------


def test_counts_by_workflow_category_and_severity(bundled):
    expected = records()
    assert bundled.incidents == 7
    assert dict(bundled.by_workflow) == dict(Counter(r["workflow"] for r in expected))
    by_category = Counter(r["category"] for r in expected)
    assert dict(bundled.by_category) == {c: by_category[c] for c in CATEGORIES}
    by_severity = Counter(r["severity"] for r in expected)
    assert dict(bundled.by_severity) == {s: by_severity[s] for s in SEVERITIES}
    assert by_severity == {"sev2": 4, "sev3": 3}


def test_time_to_detection_and_containment(bundled):
    detection = [hours(r, "impact_started", "detected") for r in records()]
    containment = [hours(r, "detected", "contained") for r in records()]
    assert bundled.detection.median_hours == pytest.approx(statistics.median(detection))
    assert bundled.detection.median_hours == pytest.approx(550.5, abs=1e-3)
    assert bundled.detection.p90_hours == pytest.approx(p90(detection))
    assert bundled.containment.median_hours == pytest.approx(statistics.median(containment))
    assert bundled.containment.p90_hours == pytest.approx(p90(containment))
    assert bundled.detection.measured == bundled.containment.measured == 7
    assert bundled.detection.excluded == ()


def test_affected_users_and_records(bundled):
    expected = records()
    assert bundled.users == sum(int(r["impact"]["users"]) for r in expected) == 151
    assert bundled.records == sum(int(r["impact"]["records"]) for r in expected) == 51
    users_by_category: Counter[str] = Counter()
    for r in expected:
        users_by_category[r["category"]] += int(r["impact"]["users"])
    assert dict(bundled.users_by_category) == dict(users_by_category)
    assert bundled.records_by_category["retrieval"] == 0


def test_one_repeat_no_missing_logs_and_one_bypass_in_the_bundled_records(bundled):
    # two policy incidents: the final-sale refund and the refund confirmed in conversation
    assert [(r.workflow, r.category, r.ids) for r in bundled.repeated] == [
        ("refund-assistant", "policy", ("INC-2026-015", "INC-2026-016"))]
    assert bundled.missing_log_rate == 0.0
    assert dict(bundled.missing_by_field) == dict.fromkeys(EVIDENCE_FIELDS, 0.0)
    assert bundled.bypasses == ("INC-2026-017",)
    assert bundled.post_fix == ()


# --- planted records ------------------------------------------------------------------------


def test_a_second_incident_of_the_same_kind_is_a_repeated_failure(cases_dir):
    copy_case(cases_dir, CASE_014, "INC-2026-099")
    metrics = compute_metrics(load_cases(cases_dir))
    assert ("refund-assistant", "output_quality", ("INC-2026-014", "INC-2026-099")) in [
        (r.workflow, r.category, r.ids) for r in metrics.repeated]


def test_missing_log_rate_counts_absent_and_listed_fields(cases_dir):
    path = cases_dir / CASE_014
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("  model_route: support-large/2026-01\n", "", 1)
                    .replace("  approvals: []\n", "  approvals: []\n  missing: [approvals]\n", 1),
                    encoding="utf-8")
    copy_case(cases_dir, Path("refund-assistant/INC-2026-009.yaml"), "INC-2026-098",
              ("  prompt_version: v13\n", ""))
    metrics = compute_metrics(load_cases(cases_dir))
    assert metrics.incidents == 8
    assert metrics.missing_log_rate == pytest.approx(2 / 8)
    assert metrics.missing_by_field["model_route"] == pytest.approx(1 / 8)
    assert metrics.missing_by_field["approvals"] == pytest.approx(1 / 8)
    assert metrics.missing_by_field["prompt_version"] == pytest.approx(1 / 8)
    assert metrics.missing_by_field["output"] == 0.0


def test_a_failing_approval_check_on_the_evidence_is_a_bypass(cases_dir):
    # a policy incident whose evidence ran issue_refund with no approval on record
    copy_case(cases_dir, Path("refund-assistant/INC-2026-016.yaml"), "INC-2026-097",
              ("expect:\n", "expect:\n  - approval_not_bypassed: "
                            "{step: refund_over_threshold, tools: [issue_refund]}\n"))
    metrics = compute_metrics(load_cases(cases_dir))
    assert metrics.bypasses == ("INC-2026-017", "INC-2026-097")
    # INC-2026-016 itself refunds without approvals too, but demands none: not a bypass


def test_an_incident_without_a_timeline_is_left_out_of_the_timing_but_counted(cases_dir):
    write(cases_dir / "refund-assistant" / "INC-2026-096.yaml", """
        id: INC-2026-096
        category: retrieval
        severity: sev4
        status: open
        owner: kenji.watanabe
        evidence:
          input: {message: "Do you ship to Canada?"}
          output: "We ship worldwide."
        expect:
          - not_contains: worldwide
    """)
    metrics = compute_metrics(load_cases(cases_dir))
    assert metrics.incidents == 8
    assert metrics.by_category["retrieval"] == 2
    assert metrics.detection.measured == 7
    assert metrics.detection.excluded == ("INC-2026-096",)
    detection = [hours(r, "impact_started", "detected") for r in records()]
    assert metrics.detection.median_hours == pytest.approx(statistics.median(detection))
    assert metrics.containment.excluded == ("INC-2026-096",)
    assert ("time to detection: 1 incident without both impact_started and detected left out "
            "(INC-2026-096)") in metrics.notes
    assert ("impact.users not recorded for 1 incident; left out of the sums (INC-2026-096)"
            in metrics.notes)
    assert metrics.users == 151
    table = to_table(metrics)
    assert "  measured   7 of 8\n" in table
    assert "  left out   INC-2026-096\n" in table


# --- renderings -----------------------------------------------------------------------------


def test_reconstructed_evidence_and_references_are_the_evidence_quality(cases_dir):
    path = cases_dir / CASE_014
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("  approvals: []\n",
                                 "  approvals: []\n  reconstructed: [approvals, tool_calls]\n", 1)
                    + "references:\n  - {title: Postmortem PM-77, url: 'https://wiki.example/PM-77'"
                      ", kind: postmortem}\n", encoding="utf-8")
    copy_case(cases_dir, Path("refund-assistant/INC-2026-009.yaml"), "INC-2026-098",
              ("evidence:\n", "evidence:\n  reconstructed: true\n"))
    metrics = compute_metrics(load_cases(cases_dir))
    assert metrics.incidents == 8
    assert metrics.reconstructed_rate == pytest.approx(2 / 8)
    assert metrics.reconstructed_by_field["approvals"] == pytest.approx(2 / 8)
    assert metrics.reconstructed_by_field["input"] == pytest.approx(1 / 8)
    assert metrics.referenced_rate == pytest.approx(1 / 8)
    assert metrics.missing_log_rate == 0.0  # reconstructed evidence is not missing evidence
    rows = {(metric, key): value for metric, key, value in long_rows(metrics)}
    assert rows[("reconstructed_rate", "any")] == "0.2500"
    assert rows[("referenced_rate", "any")] == "0.1250"
    assert "Evidence quality" in to_table(metrics)
    assert "of incidents hold evidence rebuilt after the fact" in to_html(metrics)


def test_the_table_has_every_section(bundled):
    table = to_table(bundled)
    assert table.startswith("Incident metrics: 7 incidents, 0 near misses\n")
    for heading in ("Incidents by workflow", "Incidents by category", "Incidents by severity",
                    "Time to detection (impact_started -> detected)",
                    "Time to containment (detected -> contained)", "Affected users and records",
                    "Repeated failure types", "Missing log rate", "Human review bypasses: 1",
                    "Post-fix results"):
        assert f"\n{heading}" in table, heading
    assert "  median     550.50\n" in table
    assert "  total               151       51\n" in table
    assert "  refund-assistant          7\n" in table
    assert "  no run records given\n" in table


def test_the_csv_is_long_format_with_every_metric(bundled):
    rows = list(csv.reader(io.StringIO(to_csv(bundled))))
    assert rows[0] == ["metric", "key", "value"]
    table = {(metric, key): value for metric, key, value in rows[1:]}
    assert table[("incidents", "all")] == "7"
    assert table[("by_workflow", "refund-assistant")] == "7"
    assert table[("by_category", "human_review")] == "1"
    assert table[("by_severity", "sev2")] == "4"
    assert table[("time_to_detection_hours", "median")] == "550.50"
    assert table[("time_to_containment_hours", "p90")] == f"{bundled.containment.p90_hours:.2f}"
    assert table[("affected_users", "total")] == "151"
    assert table[("affected_records", "policy")] == "23"
    assert table[("missing_log_rate", "any")] == "0.0000"
    assert table[("missing_log_rate", "approvals")] == "0.0000"
    assert table[("human_review_bypasses", "count")] == "1"
    assert table[("human_review_bypasses", "ids")] == "INC-2026-017"
    assert {metric for metric, _ in table} >= {
        "near_misses", "affected_records", "time_to_detection_hours"}


def test_the_json_has_every_metric(bundled):
    data = json.loads(to_json(bundled))
    assert data["incidents"] == 7
    assert data["by_workflow"] == {"refund-assistant": 7}
    assert data["by_category"]["retrieval"] == 1
    assert data["by_severity"]["sev3"] == 3
    assert data["detection"]["median_hours"] == pytest.approx(bundled.detection.median_hours)
    assert data["containment"]["measured"] == 7
    assert data["users"] == 151 and data["records"] == 51
    assert data["users_by_category"]["retrieval"] == 58
    assert [entry["category"] for entry in data["repeated"]] == ["policy"]
    assert data["missing_log_rate"] == 0.0
    assert set(data["missing_by_field"]) == set(EVIDENCE_FIELDS)
    assert data["bypasses"] == ["INC-2026-017"]
    assert data["post_fix"] == [] and data["notes"] == []


def test_the_html_allows_only_its_own_style_by_hash_and_has_no_script(bundled):
    page = to_html(bundled)
    styles = re.findall(r"<style>(.*?)</style>", page, flags=re.S)
    assert len(styles) == 1
    digest = base64.b64encode(hashlib.sha256(styles[0].encode("utf-8")).digest()).decode()
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', page)
    assert csp is not None
    policy = dict(part.strip().split(" ", 1) for part in html.unescape(csp.group(1)).split(";"))
    assert policy == {"default-src": "'none'", "img-src": "data:",
                      "style-src": f"'sha256-{digest}'", "base-uri": "'none'",
                      "form-action": "'none'"}  # and no script-src: no script may run
    assert "<script" not in page.lower()
    assert " style=" not in page.lower()
    assert "@media print" in styles[0]
    assert page.count("<svg") == 3
    assert "550.50" in page and "INC-2026-017" in page


def test_the_html_escapes_what_the_case_files_say(cases_dir):
    copy_case(cases_dir, CASE_014, "INC-2026-095",
              ("workflow: refund-assistant", 'workflow: "<img src=x onerror=alert(1)>"'))
    page = to_html(compute_metrics(load_cases(cases_dir)))
    assert "<img" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_render_picks_the_format_and_refuses_others(bundled):
    assert render(bundled, "csv") == to_csv(bundled)
    with pytest.raises(InputError) as info:
        render(bundled, "xml")
    assert str(info.value) == "--format: unknown format 'xml'; expected one of table, csv, " \
                              "json, html"


# --- run records ----------------------------------------------------------------------------


def run_post_fix(out: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "harness", "run", "suites/refund-assistant.yaml", "--target",
         "post-fix", "--out", str(out)],
        cwd=ROOT, text=True, capture_output=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_post_fix_results_count_the_latest_run_per_suite_and_target(tmp_path, bundled):
    runs_dir = tmp_path / "runs"
    run_post_fix(runs_dir / "first.jsonl")
    run_post_fix(runs_dir / "second.jsonl")
    write(runs_dir / "broken.jsonl", "not json\n")
    notes: list[str] = []
    runs = load_runs(runs_dir, notes=notes)
    assert len(runs) == 2
    assert notes == [f"skipped unreadable run record {runs_dir / 'broken.jsonl'}:1: "
                     "not a JSON line: Expecting value"]
    metrics = compute_metrics(load_cases(ROOT / "cases"), runs, notes=notes)
    latest = max(runs, key=lambda r: (r.header.started_at, r.header.run_id))
    (result,) = metrics.post_fix
    assert (result.suite, result.target, result.run_id) == (
        "refund-assistant", "post-fix", latest.header.run_id)
    assert (result.passed, result.failed, result.errored) == (7, 0, 0)
    assert result.complete and result.not_passing == ()
    assert metrics.notes == tuple(notes)
    table = to_table(metrics)
    assert f"  refund-assistant  post-fix     7     0      0  {latest.header.run_id}" in table
    rows = {tuple(row) for row in csv.reader(io.StringIO(to_csv(metrics)))}
    assert ("post_fix_results", "refund-assistant/post-fix/pass", "7") in rows
    assert json.loads(to_json(metrics))["post_fix"][0]["passed"] == 7


def test_an_older_run_does_not_count(bundled):
    old = make_run(make_result("INC-1", "fail", incident=True),
                   make_result("BASE-1", "pass"), suite="s")
    new = make_run(make_result("INC-1", "pass", incident=True),
                   make_result("INC-2", "error", incident=True),
                   make_result("BASE-1", "fail"), suite="s", complete=False)
    new = dataclasses.replace(new, header=dataclasses.replace(
        new.header, run_id="r2", started_at="2026-03-11T00:00:00Z"))
    metrics = compute_metrics([], [new, old])
    (result,) = metrics.post_fix
    assert (result.run_id, result.passed, result.failed, result.errored) == ("r2", 1, 0, 1)
    assert result.not_passing == ("INC-2",)
    assert "run r2 (s, t) did not finish; its finished cases are counted" in metrics.notes


def test_load_runs_needs_a_folder(tmp_path):
    with pytest.raises(InputError) as info:
        load_runs(tmp_path / "nowhere")
    assert str(info.value) == f"{tmp_path / 'nowhere'}: runs folder not found"


def test_the_html_shows_control_and_bidi_characters_as_escapes(cases_dir):
    """A right-to-left override in a name a case file gives would reverse what a reader of
    the metrics page sees, as it would in the validation report: both pages show it as an
    escape."""
    copy_case(cases_dir, CASE_014, "INC-2026-096",
              ("workflow: refund-assistant", 'workflow: "refund\\u202egnp.exe\\u0007"'))
    page = to_html(compute_metrics(load_cases(cases_dir)))
    assert "\u202e" not in page and "\u0007" not in page
    assert "refund\\u202egnp.exe\\u0007" in page
