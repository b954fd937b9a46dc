"""Checks written in Python, named from a case file: ``- python: "module:function"``.

The function is called as ``function(response, case, **params)`` and returns a
:class:`~harness.model.CheckOutcome` (see :func:`harness.checks.passed` and
:func:`harness.checks.failed`), a bool, or a ``(bool, reason)`` pair. The module must be
importable: installed, or inside the project (the folder holding ``cases/`` and ``suites/`` is
appended to ``sys.path`` when checks run). Like a ``conftest.py``, a case that names a Python
check runs that code, but only when checks run: reading a suite imports nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from harness.checks.outcome import failed, passed
from harness.checks.parameters import Parameter
from harness.checks.registry import Params, register
from harness.errors import CheckParamError
from harness.model import Case, Check, CheckOutcome, TargetResponse
from harness.project import ReferenceProblem, import_reference


class PythonCheck:
    """A check that calls a function of the project, imported when first needed.

    Building the check only reads the reference, so a suite can be read (to decide, to sign
    off) without running any of the project's code. :meth:`load` imports the function; the
    code that runs checks calls it early, so a bad reference is bad input before anything runs.
    """

    def __init__(self, reference: str, kwargs: Mapping[str, Any]) -> None:
        self.reference = reference
        self.kwargs = dict(kwargs)
        self._function: Callable[..., Any] | None = None

    def load(self, root: Path | None = None) -> Callable[..., Any]:
        """Import the function (``root``, the project folder, is appended to ``sys.path``)."""
        if self._function is None:
            try:
                self._function = import_reference(self.reference, root=root, what="function")
            except ReferenceProblem as exc:
                raise CheckParamError(str(exc), param="function") from None
        return self._function

    def __call__(self, response: TargetResponse, case: Case) -> CheckOutcome:
        result = self.load()(response, case, **self.kwargs)
        if isinstance(result, CheckOutcome):
            return result
        if isinstance(result, bool):
            return (passed if result else failed)(f"{self.reference} returned {result}")
        if (isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], bool)
                and isinstance(result[1], str)):
            return (passed if result[0] else failed)(result[1])
        raise TypeError(
            f"{self.reference} returned {type(result).__name__}; expected a CheckOutcome, a "
            "bool or (bool, reason)"
        )


@register(
    "python",
    summary="A check written in Python: function(response, case, **params).",
    params={
        "function": Parameter.text("'package.module:function' returning a CheckOutcome, a bool, "
                                   "or (bool, reason).", required=True,
                                   pattern=r"^[^:]+:[\s\S]"),
        "params": Parameter.value("Keyword arguments for the function.",
                                  schema={"type": "object"}),
    },
    shorthand="function",
    category=None,
    example='- python: {function: "checks.refunds:amount_matches", params: {currency: EUR}}',
)
def python_check(params: Params) -> Check:
    reference = params.text("function")
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise CheckParamError(f"expected 'package.module:function', found {reference!r}",
                              param="function")
    kwargs = params.value("params", {})
    if not isinstance(kwargs, Mapping):
        raise CheckParamError("expected a mapping of keyword arguments", param="params")
    return PythonCheck(reference, kwargs)
