"""JUnit XML of a validation, for CI servers: one test case per case, failing where the gate
blocks on it, plus one for the run itself when the run blocks (incomplete, empty), and one for
the sign-off when the policy requires it, failing until every required role approved."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from harness.compare import Comparison
from harness.gate import Decision, Reason
from harness.visible import shown

_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _message(reasons: list[Reason]) -> str:
    return shown("; ".join(f"{r.rule}: {r.message}" for r in reasons))


def render_junit(comparison: Comparison, decision: Decision) -> str:
    """The JUnit XML document as text."""
    cand = comparison.candidate.header
    by_case: dict[str | None, list[Reason]] = {}
    for reason in decision.reasons:
        by_case.setdefault(reason.case_id, []).append(reason)
    root = ET.Element("testsuites", name=f"harness.{cand.suite}")
    suite = ET.SubElement(root, "testsuite", name=f"harness.{cand.suite}",
                          timestamp=cand.started_at)
    properties = ET.SubElement(suite, "properties")
    for name, value in (("decision", decision.outcome), ("baseline_run", comparison.baseline.
                        header.run_id), ("candidate_run", cand.run_id),
                        ("candidate_target", cand.target)):
        ET.SubElement(properties, "property", name=name, value=value)
    failures = 0
    total = 0
    run_reasons = by_case.get(None, [])
    signoff_reasons = [r for r in run_reasons if r.rule.startswith("signoff")]
    run_blockers = [r for r in run_reasons if r.blocking and r not in signoff_reasons]
    if signoff_reasons:
        total += 1
        case = ET.SubElement(suite, "testcase", classname=f"harness.{cand.suite}",
                             name="(sign-off)")
        waiting = [r for r in signoff_reasons if r.blocking]
        if waiting:
            failures += 1
            failure = ET.SubElement(case, "failure", message=_message(waiting),
                                    type=decision.outcome)
            failure.text = _message(waiting)
        else:
            ET.SubElement(case, "system-out").text = _message(signoff_reasons)
    if run_blockers:
        total += 1
        failures += 1
        case = ET.SubElement(suite, "testcase", classname=f"harness.{cand.suite}", name="(run)")
        failure = ET.SubElement(case, "failure", message=_message(run_blockers), type="gate")
        failure.text = _message(run_blockers)
    for item in comparison.cases:
        total += 1
        result = item.latest
        case = ET.SubElement(suite, "testcase", classname=f"harness.{result.workflow}",
                             name=item.case_id, file=result.path, line=str(result.line),
                             time=f"{(item.candidate.duration_s if item.candidate else 0):.6f}")
        reasons = by_case.get(item.case_id, [])
        blocking = [r for r in reasons if r.blocking]
        if blocking:
            failures += 1
            failure = ET.SubElement(case, "failure", message=_message(blocking),
                                    type=item.transition.value)
            failure.text = _message(blocking)
        notes = [r for r in reasons if not r.blocking]
        out = ET.SubElement(case, "system-out")
        out.text = f"transition: {item.transition.value}" + (
            f"\n{_message(notes)}" if notes else "")
    for element in (root, suite):
        element.set("tests", str(total))
        element.set("failures", str(failures))
        element.set("errors", "0")
    suite.set("skipped", "0")
    ET.indent(root)
    # Characters XML 1.0 cannot hold (control characters in ids or errors) become U+FFFD.
    return _NOT_XML.sub("\ufffd", ET.tostring(root, encoding="unicode", xml_declaration=True)) \
        + "\n"
