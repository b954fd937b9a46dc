"""The fixed words of an incident record: categories, severities, statuses, fix kinds,
timeline steps and evidence fields. The model uses them, and the command line offers them as
choices without importing the model (``harness --help`` stays light)."""

from __future__ import annotations

CATEGORIES = (
    "output_quality",
    "data_exposure",
    "automation_error",
    "policy",
    "retrieval",
    "human_review",
)
SEVERITIES = ("sev1", "sev2", "sev3", "sev4")
STATUSES = ("open", "closed")
FIX_KINDS = ("prompt", "permission", "source", "evaluation", "review_rule", "policy")
TIMELINE_STEPS = ("impact_started", "detected", "contained", "resolved", "closed")
EVIDENCE_FIELDS = (
    "input",
    "prompt_version",
    "model_route",
    "sources",
    "tool_calls",
    "approvals",
    "output",
)
