"""Budget checks: how long a call took, and what it consumed. A runaway agent (a loop of tool
calls, a context that grows without end) is an incident too.

``latency`` reads the call's duration as the harness measured it (``metadata.call_ms``);
``tokens`` and ``cost`` read the usage the target reported (``metadata.usage``: the
OpenAI-compatible ``prompt_tokens``, ``completion_tokens`` and ``total_tokens``), and ``cost``
prices it with the suite's ``prices:`` table for the model the target reported. Missing usage,
or a model with no price, fails the check: a budget nobody can check is not kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness import judging
from harness.checks.outcome import errored, failed, passed
from harness.checks.parameters import Parameter
from harness.checks.registry import Params, register
from harness.model import Case, Check, CheckOutcome, TargetResponse

CATEGORY = "automation_error"
TOKEN_KINDS = {"total": "total_tokens", "prompt": "prompt_tokens",
               "completion": "completion_tokens"}


def _usage(response: TargetResponse) -> Mapping[str, Any] | None:
    usage = response.metadata.get("usage")
    return usage if isinstance(usage, Mapping) else None


@register(
    "latency",
    summary="The target answered within max_ms milliseconds (as the harness measured the "
            "call, retries included).",
    params={"max_ms": Parameter.number("Longest allowed call, in milliseconds.", required=True,
                                       minimum=0)},
    shorthand="max_ms",
    category=CATEGORY,
    example="- latency: 4000",
)
def latency(params: Params) -> Check:
    limit = params.number("max_ms", minimum=0)

    def check(response: TargetResponse, case: Case) -> CheckOutcome:
        took = response.metadata.get("call_ms")
        if not isinstance(took, int | float):
            return failed("the call's duration was not measured", expected=f"<= {limit} ms",
                          obtained=None)
        verdict = passed if took <= limit else failed
        return verdict(f"the call took {took:g} ms (limit {limit:g} ms)",
                       expected=f"<= {limit:g} ms", obtained=took)

    return check


@register(
    "tokens",
    summary="The call used at most max tokens (total, prompt or completion), as the target "
            "reported its usage.",
    params={"max": Parameter.number("Most tokens allowed.", required=True, minimum=0),
            "kind": Parameter.choice("total (default), prompt or completion.",
                                     tuple(TOKEN_KINDS), default="total")},
    shorthand="max",
    category=CATEGORY,
    example="- tokens: {max: 4000, kind: total}",
)
def tokens(params: Params) -> Check:
    limit = params.number("max", minimum=0)
    field = TOKEN_KINDS[params.choice("kind", tuple(TOKEN_KINDS), "total")]

    def check(response: TargetResponse, case: Case) -> CheckOutcome:
        usage = _usage(response)
        used = usage.get(field) if usage is not None else None
        if not isinstance(used, int | float):
            return failed(f"the target reported no {field}", expected=f"<= {limit:g}",
                          obtained=None)
        verdict = passed if used <= limit else failed
        return verdict(f"{field}: {used:g} (limit {limit:g})", expected=f"<= {limit:g}",
                       obtained=used)

    return check


def call_cost(usage: Mapping[str, Any], price: Mapping[str, float]) -> float:
    """The cost of one call: prompt and completion tokens at the price per million tokens."""
    prompt = float(usage.get("prompt_tokens") or 0)
    completion = float(usage.get("completion_tokens") or 0)
    return (prompt * price.get("input", 0.0) + completion * price.get("output", 0.0)) / 1e6


@register(
    "cost",
    summary="The call cost at most max (in the currency of the suite's prices: table, per "
            "million tokens by model), from the usage the target reported.",
    params={"max": Parameter.number("Most a call may cost.", required=True, minimum=0)},
    shorthand="max",
    category=CATEGORY,
    example="- cost: 0.02",
)
def cost(params: Params) -> Check:
    limit = params.number("max", minimum=0)

    def check(response: TargetResponse, case: Case) -> CheckOutcome:
        usage = _usage(response)
        model = response.metadata.get("model")
        if usage is None or not isinstance(model, str):
            return failed("the target reported no usage and model to price",
                          expected=f"<= {limit:g}", obtained=None)
        service = judging.current()
        price = service.price(model) if service is not None else None
        if price is None:
            return errored(f"no price for model {model!r} in the suite's prices:")
        spent = call_cost(usage, price)
        verdict = passed if spent <= limit else failed
        return verdict(f"the call cost {spent:.6f} ({model}; limit {limit:g})",
                       expected=f"<= {limit:g}", obtained=round(spent, 6), model=model)

    return check
