"""Targets: adapters that call the workflow under test and return its :class:`TargetResponse`.

A suite names its targets; each is one adapter (``python``, ``command``, ``http``, ``openai``,
``replay``)
whose key holds the main argument, beside the adapter's options::

    targets:
      post-fix:
        python: harness.example.refund_assistant:respond
        params: {release: post-fix}

A target raises :class:`~harness.errors.TargetError` when the workflow fails; the runner records
that as the case's ``error`` outcome and goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harness.model import Case, TargetResponse, TargetSpec
from harness.registry import Registry, source_of
from harness.schema import Node


class Target(Protocol):
    """Calls the workflow under test once for one case."""

    def call(self, case_input: Any, *, case: Case, timeout_s: float | None) -> TargetResponse:
        """Return the workflow's response, or raise TargetError with the reason."""
        ...


Builder = Callable[[TargetSpec, Path], Target]
"""Builds a target from its validated spec and the suite's root folder."""


@dataclass(frozen=True)
class Adapter:
    """A kind of target: how its spec is declared and how a target is built from it."""

    name: str
    summary: str
    main: Node
    build: Builder
    options: Mapping[str, Node] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    """Options a target of this kind must set."""


ADAPTERS: Registry[Adapter] = Registry(
    "target adapter", builtins=tuple(f"harness.targets.{name}" for name in
                                     ("command", "http", "openai", "python", "replay")))
"""The adapters suites may name; the built-in ones are added by their modules."""


def register(adapter: Adapter) -> Adapter:
    """Make ``adapter`` available to suites under its name."""
    return ADAPTERS.add(adapter.name, adapter, source=source_of(adapter.build))


def build(spec: TargetSpec, root: Path) -> Target:
    """Build the target a suite declares (its spec was validated when the suite loaded);
    with ``trace: otlp``, traced (:mod:`harness.targets.tracing`)."""
    from harness.targets import tracing

    if spec.options.get("trace") == "otlp":  # listening before the workflow is imported
        tracing.receiver(int(spec.options.get("trace_port", 0)))
    target: Target = tracing.traced(ADAPTERS[spec.kind].build(spec, root), spec.options)
    return target
