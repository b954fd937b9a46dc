"""Imports every module of built-in checks, so that each registers its kinds."""

from harness.checks import custom, output, policy, retrieval  # noqa: F401
