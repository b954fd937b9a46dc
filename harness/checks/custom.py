"""Checks written in Python, named from a case file: ``- python: "module:function"``.

The function is called as ``function(response, case, **params)`` and returns a
:class:`~harness.model.CheckOutcome` (see :func:`harness.checks.passed` and
:func:`harness.checks.failed`), a bool, or a ``(bool, reason)`` pair. The module must be
importable: installed, or inside the project (the folder holding ``cases/`` and ``suites/`` is
put on ``sys.path``). Like a ``conftest.py``, a case that names a Python check runs that code.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from harness.checks.outcome import failed, passed
from harness.checks.registry import Params, register
from harness.errors import CheckParamError
from harness.model import Case, Check, CheckOutcome, TargetResponse


def _resolve(reference: str) -> Callable[..., Any]:
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise CheckParamError(f"expected 'package.module:function', found {reference!r}",
                              param="function")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:  # any failure to import is a problem with the case's parameters
        raise CheckParamError(f"cannot import module {module_name!r}: {exc}",
                              param="function") from None
    for part in attribute.split("."):
        if not hasattr(obj, part):
            raise CheckParamError(f"module {module_name!r} has no attribute {attribute!r}",
                                  param="function")
        obj = getattr(obj, part)
    if not callable(obj):
        raise CheckParamError(f"{reference!r} is not callable", param="function")
    return obj


@register(
    "python",
    summary="A check written in Python: function(response, case, **params).",
    params={
        "function": "'package.module:function' returning a CheckOutcome, a bool, or "
                    "(bool, reason).",
        "params": "Keyword arguments for the function.",
    },
    shorthand="function",
    category=None,
    example='- python: {function: "checks.refunds:amount_matches", params: {currency: EUR}}',
)
def python_check(params: Params) -> Check:
    reference = params.text("function")
    function = _resolve(reference)
    kwargs = params.value("params", {})
    if not isinstance(kwargs, Mapping):
        raise CheckParamError("expected a mapping of keyword arguments", param="params")

    def check(response: TargetResponse, case: Case) -> CheckOutcome:
        result = function(response, case, **kwargs)
        if isinstance(result, CheckOutcome):
            return result
        if isinstance(result, bool):
            return (passed if result else failed)(f"{reference} returned {result}")
        if (isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], bool)
                and isinstance(result[1], str)):
            return (passed if result[0] else failed)(result[1])
        raise TypeError(
            f"{reference} returned {type(result).__name__}; expected a CheckOutcome, a bool or "
            "(bool, reason)"
        )

    return check
