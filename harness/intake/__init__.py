"""Intake: from an incident to a regression case, and what the registry of cases adds up to.

- :mod:`~harness.intake.new`: ``harness incident new``, a draft case from what is known at once;
- :mod:`~harness.intake.traces`: a workflow's trace (OTel GenAI, OpenInference, LangSmith,
  Langfuse) read as case evidence;
- :mod:`~harness.intake.drafter`: the checks drafted for an incident (one drafter for both
  paths);
- :mod:`~harness.intake.from_trace`: ``harness case from-trace``, a draft from a trace (or a
  trace into a draft);
- :mod:`~harness.intake.writer`: the one writer of case files, paired with the loader;
- :mod:`~harness.intake.close`: ``harness case close``;
- :mod:`~harness.intake.severity`: the severity an incident's impact gives;
- :mod:`~harness.intake.registry_check`: ``harness check``, whether the registry guards what it
  should;
- :mod:`~harness.intake.metrics`: ``harness metrics``.
"""
