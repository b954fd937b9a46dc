"""Imports every module of built-in checks, so that each registers its kinds."""

from harness.checks import (  # noqa: F401 - importing registers the kinds
    automation,
    custom,
    destructive,
    exposure,
    judge,
    output,
    policy,
    retrieval,
    review,
    usage,
)
