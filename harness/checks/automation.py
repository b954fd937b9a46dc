"""Automation-error checks: which tools the workflow called, with which arguments, in which
order, and on which record.

Every check here inspects ``response.tool_calls`` and fails, saying so, when the target does not
report its tool calls. Tool calls are named in reasons and evidence by their position in the
response, ``tool_calls[i]`` (counting from 0).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.checks.outcome import failed, passed
from harness.checks.parameters import Parameter
from harness.checks.registry import Params, register
from harness.checks.toolcalls import (
    MISSING,
    call_dict,
    call_names,
    deepdiff_path,
    diff_args,
    read_path,
    resolve,
    show,
    summarize,
    times,
    unreported_calls,
)
from harness.errors import CheckParamError
from harness.model import Case, Check, CheckOutcome, TargetResponse, plain

CATEGORY = "automation_error"
WRITE_TOOLS = ("issue_refund", "update_record", "cancel_order", "delete_record")
WHICH = ("all", "first", "last", "any")
ARGS = {"type": "object", "minProperties": 1}
"""The JSON Schema of expected arguments: a non-empty mapping of argument names to values."""
TOOL_NAME = Parameter.text("The tool's name.", required=True, non_empty=True)


def _first(lines: Sequence[str]) -> str:
    more = f" (+{len(lines) - 1} more)" if len(lines) > 1 else ""
    return lines[0] + more


def _show_args(args: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={show(value)}" for key, value in args.items())


# --- reading parameters ---------------------------------------------------------------------


def _name(params: Params, name: str) -> str:
    value = params.text(name)
    if not value:
        raise CheckParamError("expected a non-empty tool name", param=name)
    return value


def _whole(params: Params, name: str, default: Any) -> Any:
    value = params.number(name, default, minimum=0)
    if value is not None and not isinstance(value, int):
        raise CheckParamError(f"expected a whole number, found {value!r}", param=name)
    return value


def _args(params: Params, name: str, *, required: bool) -> dict[str, Any] | None:
    value = params.value(name) if required else params.value(name, None)
    if value is None:
        return None
    if not isinstance(value, Mapping) or not value:
        raise CheckParamError(
            f"expected a non-empty mapping of argument names to values, found {value!r}",
            param=name,
        )
    return plain(value)


# --- the kinds ------------------------------------------------------------------------------


@register(
    "tool_called",
    summary="A tool was called at least min (and at most max) times, optionally with given "
            "arguments.",
    params={
        "name": TOOL_NAME,
        "min": Parameter.number("Fewest matching calls required (default 1).", default=1,
                                minimum=0, integer=True),
        "max": Parameter.number("Most matching calls allowed (default: no limit).", minimum=0,
                                integer=True),
        "args": Parameter.value("Count only calls whose arguments include these values "
                                "(compared as tool_args compares them, extra arguments "
                                "allowed; default: any arguments).", schema=ARGS),
    },
    shorthand="name",
    category=CATEGORY,
    example="- tool_called: {name: lookup_order, args: {order_id: A-1001}}",
)
def tool_called(params: Params) -> Check:
    name = _name(params, "name")
    low = _whole(params, "min", 1)
    high = _whole(params, "max", None)
    if high is not None and high < low:
        raise CheckParamError(f"expected at least min ({low}), found {high}", param="max")
    args = _args(params, "args", required=False)
    with_args = " with the expected args" if args is not None else ""
    expected = f"{low} to {high} calls" if high is not None else f"at least {times(low, 'call')}"
    expected += with_args

    def check(response: TargetResponse, case: Case) -> CheckOutcome:
        missing = unreported_calls(response, f"{name} was called")
        if missing:
            return missing
        names = call_names(response)
        named = [(i, c) for i, c in enumerate(response.tool_calls) if c.name == name]
        hits = [i for i, _ in named]
        mismatches: list[dict[str, Any]] = []
        if args is not None:
            hits = []
            for i, call in named:
                lines = diff_args(args, call.args)
                if lines:
                    mismatches.append({"index": i, "args": plain(call.args),
                                       "diff": summarize(lines)})
                else:
                    hits.append(i)
        evidence: dict[str, Any] = {"calls": names, "matched": hits}
        if mismatches:
            evidence["mismatches"] = mismatches
        count = len(hits)
        if count < low:
            if count == 0 and mismatches:
                reason = (f"{name} was called {times(len(named))} but never with the expected "
                          f"args ({mismatches[0]['diff'].split('; ')[0]})")
            elif count == 0:
                reason = f"{name} was never called (calls: {', '.join(names) or 'none'})"
            else:
                reason = f"{name} was called {times(count)}{with_args}, expected at least {low}"
            return failed(reason, expected=expected, obtained=count, **evidence)
        if high is not None and count > high:
            return failed(f"{name} was called {times(count)}{with_args}, expected at most {high}",
                          expected=expected, obtained=count, **evidence)
        return passed(f"{name} was called {times(count)}{with_args}", expected=expected,
                      obtained=count, **evidence)

    return check


@register(
    "tool_not_called",
    summary="None of the named tools was called (optionally: not with given arguments).",
    params={
        "name": Parameter.texts("The forbidden tool's name, or a list of names.",
                                required=True),
        "args": Parameter.value("Forbid only calls whose arguments include these values "
                                "(compared as tool_args compares them; default: any call of "
                                "the tool is forbidden).", schema=ARGS),
    },
    shorthand="name",
    category=CATEGORY,
    example="- tool_not_called: {name: issue_refund, args: {order_id: A-1002}}",
)
def tool_not_called(params: Params) -> Check:
    names = params.texts("name")
    args = _args(params, "args", required=False)
    label = " or ".join(names)
    with_args = f" with {_show_args(args)}" if args is not None else ""
    expected = f"no call to {label}{with_args}"

    def check(response: TargetResponse, case: Case) -> CheckOutcome:
        missing = unreported_calls(response, f"{label} was not called{with_args}")
        if missing:
            return missing
        named = [(i, c) for i, c in enumerate(response.tool_calls) if c.name in names]
        offending = [(i, c) for i, c in named if args is None or not diff_args(args, c.args)]
        if offending:
            index, call = offending[0]
            return failed(f"{call.name} was called{with_args} at tool_calls[{index}]",
                          expected=expected, obtained=call_names(response),
                          call=call_dict(index, call),
                          calls=[call_dict(i, c) for i, c in offending])
        reason = f"{label} was not called{with_args}"
        if named:
            reason += f" ({times(len(named), 'call')} with other arguments)"
        return passed(reason, expected=expected, obtained=call_names(response))

    return check


@register(
    "tool_args",
    summary="Calls of a tool had the expected arguments (deep comparison, with ignored paths, "
            "order and numeric tolerance).",
    params={
        "name": TOOL_NAME,
        "args": Parameter.value("The expected arguments, a mapping.", schema=ARGS,
                                required=True),
        "which": Parameter.choice("Which calls must match: all (default), first, last or any.",
                                  WHICH, default="all"),
        "ignore": Parameter.texts("Argument paths left out of the comparison, e.g. note or "
                                  "items[0].sku (default none)."),
        "ignore_order": Parameter.flag("Compare lists without regard to order (default "
                                       "false)."),
        "tolerance": Parameter.number("Numbers may differ by this much, absolute (default 0); "
                                      "with ignore_order, not applied to numbers inside "
                                      "mappings in lists.", minimum=0),
        "partial": Parameter.flag("Compare only the expected keys, so extra arguments are fine "
                                  "(default true).", default=True),
    },
    category=CATEGORY,
    example="- tool_args: {name: issue_refund, args: {order_id: A-1001, amount: 39.99}, "
            "tolerance: 0.01}",
)
def tool_args(params: Params) -> Check:
    name = _name(params, "name")
    args = _args(params, "args", required=True) or {}
    which = params.choice("which", WHICH, "all")
    ignore = params.texts("ignore", [])
    exclude = [deepdiff_path(read_path("ignore", path)) for path in ignore]
    ignore_order = params.flag("ignore_order")
    tolerance = params.number("tolerance", None, minimum=0)
    partial = params.flag("partial", True)

    def check(response: TargetResponse, case: Case) -> CheckOutcome:
        missing = unreported_calls(response, f"the arguments of {name}")
        if missing:
            return missing
        named = [(i, c) for i, c in enumerate(response.tool_calls) if c.name == name]
        if not named:
            names = ", ".join(call_names(response)) or "none"
            return failed(f"{name} was never called (calls: {names}); no arguments to compare",
                          expected=args, obtained=None, calls=call_names(response))
        chosen = {"first": named[:1], "last": named[-1:]}.get(which, named)
        results = [(i, c, diff_args(args, c.args, partial=partial, exclude=exclude,
                                    ignore_order=ignore_order, tolerance=tolerance))
                   for i, c in chosen]
        good = [(i, c) for i, c, lines in results if not lines]
        bad = [(i, c, lines) for i, c, lines in results if lines]
        mismatches = [{"index": i, "args": plain(c.args), "diff": summarize(lines)}
                      for i, c, lines in bad]
        if (which == "any" and good) or not bad:
            index, call = good[0]
            if len(good) > 1 and which == "all":
                reason = f"all {len(good)} {name} calls have the expected args"
            else:
                reason = f"{name} at tool_calls[{index}] has the expected args"
            return passed(reason, expected=args, obtained=plain(call.args),
                          call=call_dict(index, call))
        index, call, lines = bad[0]
        if which == "any":
            reason = (f"none of the {times(len(bad), 'call')} to {name} has the expected args "
                      f"(tool_calls[{index}]: {_first(lines)})")
        else:
            reason = f"{name} at tool_calls[{index}] has unexpected args: {_first(lines)}"
        return failed(reason, expected=args, obtained=plain(call.args),
                      call=call_dict(index, call), diff=summarize(lines),
                      mismatches=mismatches)

    return check


@register(
    "tool_order",
    summary="Tools were called in this relative order (other calls may come in between).",
    params={"sequence": Parameter.texts("The tool names, in the order they must first appear "
                                        "(two or more).", required=True, single=False,
                                        min_items=2)},
    shorthand="sequence",
    category=CATEGORY,
    example="- tool_order: [lookup_order, request_approval, issue_refund]",
)
def tool_order(params: Params) -> Check:
    sequence = params.texts("sequence")
    if len(sequence) < 2:
        raise CheckParamError("expected at least two tool names (use tool_called for one)",
                              param="sequence")
    claim = " -> ".join(sequence)

    def check(response: TargetResponse, case: Case) -> CheckOutcome:
        missing = unreported_calls(response, f"the order {claim}")
        if missing:
            return missing
        names = call_names(response)
        actual = ", ".join(names) or "none"
        positions: list[int] = []
        start = 0
        for step, tool in enumerate(sequence):
            found = next((j for j in range(start, len(names)) if names[j] == tool), None)
            if found is None:
                if tool not in names:
                    reason = f"{tool} was never called (actual order: {actual})"
                else:
                    before = f"{sequence[step - 1]} at tool_calls[{positions[-1]}]"
                    reason = f"{tool} was not called after {before} (actual order: {actual})"
                return failed(reason, expected=sequence, obtained=names, out_of_order=tool,
                              positions=positions)
            positions.append(found)
            start = found + 1
        return passed(f"called in order {claim}", expected=sequence, obtained=names,
                      positions=positions)

    return check


@register(
    "max_tool_calls",
    summary="The workflow made at most max tool calls (of one tool, or in all).",
    params={
        "max": Parameter.number("Most calls allowed, a whole number >= 0.", required=True,
                                minimum=0, integer=True),
        "name": Parameter.text("Count only calls of this tool (default: count every call).",
                               non_empty=True),
    },
    shorthand="max",
    category=CATEGORY,
    example="- max_tool_calls: {max: 1, name: issue_refund}",
)
def max_tool_calls(params: Params) -> Check:
    limit = _whole(params, "max", None)
    if limit is None:
        raise CheckParamError("missing required parameter", param="max")
    name = params.text("name", None)
    if name == "":
        raise CheckParamError("expected a non-empty tool name", param="name")
    expected = f"at most {times(limit, 'call')}" + (f" to {name}" if name else "")

    def check(response: TargetResponse, case: Case) -> CheckOutcome:
        missing = unreported_calls(response, expected)
        if missing:
            return missing
        names = call_names(response)
        count = len([n for n in names if name is None or n == name])
        what = (f"{name} was called {times(count)}" if name
                else f"the workflow made {times(count, 'tool call')}")
        if count > limit:
            return failed(f"{what}, at most {limit} allowed", expected=expected, obtained=count,
                          calls=names)
        return passed(f"{what} (at most {limit} allowed)", expected=expected, obtained=count,
                      calls=names)

    return check


def _same(obtained: Any, wanted: Any) -> bool:
    """Record ids agree: scalars compare as text (``1001`` equals ``"1001"``), others by value."""
    scalars = (str, int, float)
    if isinstance(obtained, scalars) and isinstance(wanted, scalars):
        return str(obtained) == str(wanted)
    return plain(obtained) == plain(wanted)


def _label(value: Any) -> str:
    return value if isinstance(value, str) else show(plain(value))


@register(
    "record_target",
    summary="Every write call acted on the record the input refers to (e.g. the order named in "
            "the input).",
    params={
        "tools": Parameter.texts("The write tools (default issue_refund, update_record, "
                                 "cancel_order, delete_record).", default=WRITE_TOOLS),
        "arg": Parameter.text("The argument naming the record, a path into the call's args "
                              "(default order_id).", default="order_id", non_empty=True),
        "input_field": Parameter.text("Where the input names the record, a path into the case "
                                      "input (default: same as arg).", non_empty=True),
        "require_write": Parameter.flag("Fail when no write call was made (default false)."),
    },
    shorthand="arg",
    category=CATEGORY,
    example="- record_target: {tools: [issue_refund], arg: order_id}",
)
def record_target(params: Params) -> Check:
    tools = params.texts("tools", list(WRITE_TOOLS))
    arg = params.text("arg", "order_id")
    arg_path = read_path("arg", arg)
    field = params.text("input_field", arg)
    field_path = read_path("input_field", field)
    require_write = params.flag("require_write")
    tool_list = ", ".join(tools)

    def check(response: TargetResponse, case: Case) -> CheckOutcome:
        wanted = resolve(case.input, field_path)
        if wanted is MISSING:
            return failed(f"the input has no {field}; cannot tell which record a write should "
                          f"act on", expected=f"input.{field}", obtained=None,
                          input=plain(case.input))
        target = _label(wanted)
        missing = unreported_calls(response, f"writes acted on {arg} {target}")
        if missing:
            return missing
        writes = [(i, c) for i, c in enumerate(response.tool_calls) if c.name in tools]
        if not writes:
            names = call_names(response)
            if require_write:
                return failed(f"no write call was made ({tool_list}); expected one acting on "
                              f"{arg} {target}", expected=plain(wanted), obtained=None,
                              calls=names)
            return passed(f"no write call was made ({tool_list}); no record to check",
                          expected=plain(wanted), obtained=None, calls=names)
        for index, call in writes:
            got = resolve(call.args, arg_path)
            if got is MISSING:
                return failed(f"{call.name} at tool_calls[{index}] has no {arg} argument; "
                              f"cannot tell which record it acted on", expected=plain(wanted),
                              obtained=None, call=call_dict(index, call))
        wrong = [(i, c, resolve(c.args, arg_path)) for i, c in writes]
        wrong = [(i, c, got) for i, c, got in wrong if not _same(got, wanted)]
        if wrong:
            index, call, got = wrong[0]
            return failed(f"{call.name} acted on {arg} {_label(got)}, but the input refers to "
                          f"{target}", expected=plain(wanted), obtained=plain(got),
                          call=call_dict(index, call),
                          wrong_calls=[call_dict(i, c) for i, c, _ in wrong])
        if len(writes) == 1:
            reason = f"{writes[0][1].name} acted on {arg} {target}, the record the input refers to"
        else:
            reason = (f"all {len(writes)} write calls acted on {arg} {target}, the record the "
                      f"input refers to")
        return passed(reason, expected=plain(wanted), obtained=plain(wanted),
                      calls=[call_dict(i, c) for i, c in writes])

    return check
