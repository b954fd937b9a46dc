"""The ``replay`` target: answer with the case's own ``evidence``.

A case is judged against what the workflow did during the incident, without the old workflow:
an incident case must fail on its own evidence, or it does not reproduce its incident.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.errors import TargetError
from harness.model import Case, TargetResponse, TargetSpec
from harness.schema import AnyValue
from harness.targets import Adapter, register

_METADATA = ("prompt_version", "model_route")


class ReplayTarget:
    """Returns the recorded evidence of the case as the response."""

    def call(self, case_input: Any, *, case: Case, timeout_s: float | None) -> TargetResponse:
        evidence = case.evidence
        if not any(key in evidence for key in ("output", "tool_calls", "sources", "approvals")):
            raise TargetError(f"case {case.id} has no evidence to replay")
        response: dict[str, Any] = {
            key: evidence[key]
            for key in ("output", "tool_calls", "sources", "approvals")
            if key in evidence
        }
        metadata = {key: evidence[key] for key in _METADATA if key in evidence}
        if metadata:
            response["metadata"] = metadata
        return TargetResponse.parse(response)


def _build(spec: TargetSpec, root: Path) -> ReplayTarget:
    return ReplayTarget()


ADAPTER = register(
    Adapter(
        name="replay",
        summary="Answer with each case's own evidence (what happened in the incident).",
        main=AnyValue(description="Any value, e.g. true."),
        build=_build,
    )
)
