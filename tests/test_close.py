"""``closed_text``: how closing rewrites a case file's text."""

from __future__ import annotations

import pytest
import yaml

from harness.intake.close import closed_text

MOMENT = "2026-03-20T09:00:00Z"


@pytest.mark.parametrize("timeline", [
    "timeline:\n  detected: 2026-03-19T10:00:00Z\n",
    "timeline:\n\n  detected: 2026-03-19T10:00:00Z\n",
    "timeline:\n    detected: 2026-03-19T10:00:00Z\n\n    contained: 2026-03-19T11:00:00Z\n\n",
])
def test_closed_goes_into_the_timeline_at_its_indent(timeline: str) -> None:
    text = f"id: INC-1\nstatus: open\n{timeline}owner: ops\n"
    closed = closed_text(text, MOMENT)
    data = yaml.safe_load(closed)
    assert "closed" not in data
    assert "closed" in data["timeline"]
    assert (data["status"], data["owner"]) == ("closed", "ops")
    indent = timeline.split("detected")[0].rsplit("\n", 1)[1]
    assert f"\n{indent}closed: {MOMENT}\n" in closed


def test_a_timeline_without_steps_gets_the_default_indent() -> None:
    closed = closed_text("id: INC-1\ntimeline:\n\nowner: ops\n", MOMENT)
    assert f"timeline:\n  closed: {MOMENT}\n" in closed
