"""Imports every module of built-in checks, so that each registers its kinds."""

from harness.checks import automation, custom, output, policy, retrieval, review  # noqa: F401
