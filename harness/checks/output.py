"""Output-quality checks: what the workflow's answer text says."""

from __future__ import annotations

import difflib
import re

from harness.checks.outcome import excerpt, failed, passed
from harness.checks.parameters import NON_BLANK, Parameter
from harness.checks.patterns import compile_pattern, search
from harness.checks.registry import Params, register
from harness.errors import CheckParamError
from harness.model import Case, Check, CheckOutcome, TargetResponse

DIFF_LINES = 40

IGNORE_CASE = Parameter.flag("Compare without regard to case (default false).")


def _diff(expected: str, obtained: str) -> str:
    lines = list(
        difflib.unified_diff(
            expected.splitlines(), obtained.splitlines(), "expected", "obtained", lineterm=""
        )
    )
    if len(lines) > DIFF_LINES:
        lines = [*lines[:DIFF_LINES], f"... ({len(lines) - DIFF_LINES} more diff lines)"]
    return "\n".join(lines)


@register(
    "equals",
    bounded=True,
    summary="The whole output equals a value (after trimming surrounding white space).",
    params={"value": Parameter.value("The expected output.", required=True,
                                     schema={"type": ["string", "number"]}),
            "ignore_case": IGNORE_CASE},
    shorthand="value",
    category="output_quality",
    example='- equals: "Your order A-1001 has shipped."',
)
def equals(params: Params) -> Check:
    expected = params.value("value")
    if not isinstance(expected, str | int | float) or isinstance(expected, bool):
        raise CheckParamError("expected a string or a number", param="value")
    expected = str(expected)
    ignore_case = params.flag("ignore_case")

    def check(response: TargetResponse, case: Case) -> CheckOutcome:
        obtained = response.output.strip()
        want = expected.strip()
        same = obtained.casefold() == want.casefold() if ignore_case else obtained == want
        if same:
            return passed("output equals the expected text", expected=want, obtained=obtained)
        return failed("output differs from the expected text", expected=want,
                      obtained=obtained, diff=_diff(want, obtained))

    return check


def _find(text: str, needle: str, ignore_case: bool) -> tuple[int, int]:
    """The span of ``needle`` in ``text`` as indexes of ``text``, or (-1, -1)."""
    if not ignore_case:
        at = text.find(needle)
        return (at, at + len(needle)) if at >= 0 else (-1, -1)
    # Case folding can change a text's length ("ß" -> "ss"): map folded indexes back.
    origin = [i for i, char in enumerate(text) for _ in char.casefold()]
    folded_needle = needle.casefold()
    at = text.casefold().find(folded_needle)
    if at < 0:
        return -1, -1
    return origin[at], origin[at + len(folded_needle) - 1] + 1


def _contains_check(params: Params, *, negate: bool) -> Check:
    texts = params.texts("text")
    require = "all" if negate else params.choice("require", ("all", "any"), "all")
    ignore_case = params.flag("ignore_case")
    wanted = texts[0] if len(texts) == 1 else texts
    expected = f"not {wanted!r}" if negate else (
        repr(wanted) if require == "all" else f"any of {texts!r}")

    def check(response: TargetResponse, case: Case) -> CheckOutcome:
        output = response.output
        spans = {text: _find(output, text, ignore_case) for text in texts}
        found = [text for text, (at, _) in spans.items() if at >= 0]
        missing = [text for text in texts if text not in found]
        matches = [excerpt(output, *spans[text]) for text in found]
        shown = {"match": matches[0]} if len(matches) == 1 else (
            {"matches": matches} if matches else {})
        if negate:
            if found:
                return failed(f"output contains {_listing(found)}", expected=expected,
                              obtained=output, **shown)
            return passed(f"output does not contain {_listing(texts, 'or')}",
                          expected=expected, obtained=output)
        if (require == "any" and found) or not missing:
            return passed(f"output contains {_listing(found)}", expected=expected,
                          obtained=output, **shown)
        joiner = "or" if require == "any" else "and"
        return failed(f"output does not contain {_listing(missing, joiner)}",
                      expected=expected, obtained=output, **shown)

    return check


def _listing(texts: list[str], joiner: str = "and") -> str:
    quoted = [repr(text) for text in texts]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} {joiner} {quoted[-1]}"


@register(
    "contains",
    bounded=True,
    summary="The output contains a text (or all, or any, of a list of texts).",
    params={"text": Parameter.texts("A text, or a list of texts, to find.", required=True),
            "require": Parameter.choice("all (default): every text; any: at least one.",
                                        ("all", "any"), default="all"),
            "ignore_case": IGNORE_CASE},
    shorthand="text",
    category="output_quality",
    example='- contains: {text: "30 days", ignore_case: true}',
)
def contains(params: Params) -> Check:
    return _contains_check(params, negate=False)


@register(
    "not_contains",
    bounded=True,
    summary="The output contains none of the given texts.",
    params={"text": Parameter.texts("A text, or a list of texts, that must not appear.",
                                    required=True),
            "ignore_case": IGNORE_CASE},
    shorthand="text",
    category="output_quality",
    example='- not_contains: ["full refund", "60 days"]',
)
def not_contains(params: Params) -> Check:
    return _contains_check(params, negate=True)


def _regex_check(params: Params, *, negate: bool) -> Check:
    source = params.text("pattern")
    pattern = compile_pattern(source, param="pattern", ignore_case=params.flag("ignore_case"))

    def check(response: TargetResponse, case: Case) -> CheckOutcome:
        output = response.output
        found = search(pattern, output)
        expected = f"no match of /{source}/" if negate else f"a match of /{source}/"
        if found is None:
            verdict = passed if negate else failed
            return verdict(f"output does not match /{source}/", expected=expected,
                           obtained=output)
        span = excerpt(output, found.start(), found.end())
        verdict = failed if negate else passed
        return verdict(f"output matches /{source}/ at {found.group(0)!r}", expected=expected,
                       obtained=output, match=span)

    return check


@register(
    "regex",
    bounded=True,
    summary="The output matches a regular expression (Python syntax, searched anywhere).",
    params={"pattern": Parameter.text("The regular expression.", required=True),
            "ignore_case": IGNORE_CASE},
    shorthand="pattern",
    category="output_quality",
    example='- regex: {pattern: "within 30 (calendar )?days", ignore_case: true}',
)
def regex(params: Params) -> Check:
    return _regex_check(params, negate=False)


@register(
    "not_regex",
    bounded=True,
    summary="The output does not match a regular expression.",
    params={"pattern": Parameter.text("The regular expression that must not match.",
                                      required=True),
            "ignore_case": IGNORE_CASE},
    shorthand="pattern",
    category="output_quality",
    example='- not_regex: "refunded .* A-1002"',
)
def not_regex(params: Params) -> Check:
    return _regex_check(params, negate=True)


# --- similarity -------------------------------------------------------------------------------

SIMILARITY_SCORERS = ("ratio", "partial_ratio", "token_sort_ratio", "token_set_ratio")


def _similarity_check(params: Params, *, negate: bool) -> Check:
    from rapidfuzz import fuzz, utils

    reference = params.text("reference")
    if not reference.strip():
        raise CheckParamError("expected a non-empty text", param="reference")
    scorer_name = params.choice("scorer", SIMILARITY_SCORERS, "token_set_ratio")
    threshold = params.number("threshold", 80, minimum=0, maximum=100)
    scorer = getattr(fuzz, scorer_name)
    processor = None if params.flag("exact_case") else utils.default_process

    def check(response: TargetResponse, case: Case) -> CheckOutcome:
        score = round(scorer(reference, response.output, processor=processor), 1)
        close = score >= threshold
        relation = ">=" if close else "<"
        reason = (f"output is {'similar' if close else 'not similar'} to the reference "
                  f"({scorer_name} {score:g} {relation} {threshold:g})")
        verdict = (failed if close else passed) if negate else (passed if close else failed)
        return verdict(reason, score=score, expected=reference, obtained=response.output)

    return check


SIMILAR_PARAMS = {
    "reference": Parameter.text("The reference text.", required=True, pattern=NON_BLANK),
    "scorer": Parameter.choice("rapidfuzz scorer: ratio, partial_ratio, token_sort_ratio or "
                               "token_set_ratio (default).", SIMILARITY_SCORERS,
                               default="token_set_ratio"),
    "threshold": Parameter.number("Score 0-100 at which texts count as similar (default 80).",
                                  default=80, minimum=0, maximum=100),
    "exact_case": Parameter.flag("Compare case and punctuation as they are (default false: "
                                 "both ignored)."),
}


@register(
    "similar",
    summary="The output is similar to a reference text (rapidfuzz score >= threshold).",
    params=SIMILAR_PARAMS,
    shorthand="reference",
    category="output_quality",
    example='- similar: {reference: "Returns are accepted within 30 days.", threshold: 70}',
)
def similar(params: Params) -> Check:
    return _similarity_check(params, negate=False)


@register(
    "not_similar",
    summary="The output is not similar to a text (e.g. the incident's bad answer).",
    params={**SIMILAR_PARAMS, "reference": Parameter.text(
        "The text the output must not resemble.", required=True, pattern=NON_BLANK)},
    shorthand="reference",
    category="output_quality",
    example='- not_similar: {reference: "You have 60 days to return it.", threshold: 85}',
)
def not_similar(params: Params) -> Check:
    return _similarity_check(params, negate=True)


# --- structured output ----------------------------------------------------------------------

_FENCE = re.compile(r"```(?:json)?\s*\n(.*?)```", re.DOTALL)


def _parse_json(output: str, extract: bool) -> tuple[object, str | None]:
    """The JSON value of the output (or of its first ```json block when ``extract``)."""
    import json

    text = output
    if extract:
        fenced = _FENCE.search(output)
        if fenced:
            text = fenced.group(1)
        else:
            starts = [i for i in (output.find("{"), output.find("[")) if i >= 0]
            if starts:
                try:
                    value, _ = json.JSONDecoder().raw_decode(output[min(starts):])
                    return value, None
                except json.JSONDecodeError:
                    pass
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"{exc.msg} at line {exc.lineno} column {exc.colno}"


@register(
    "json",
    summary="The output is JSON and, when expected is given, matches it (deepdiff).",
    params={
        "expected": Parameter.value("The expected value (optional: without it only parsing is "
                                    "checked)."),
        "partial": Parameter.flag("Compare only the keys that expected names (default false)."),
        "ignore_order": Parameter.flag("Lists may come in any order (default false)."),
        "exclude": Parameter.texts("Paths left out of the comparison, e.g. [meta.request_id, "
                                   "items[0].sku].", single=False, min_items=0),
        "tolerance": Parameter.number("Absolute tolerance for numbers (default exact).",
                                      minimum=0),
        "extract": Parameter.flag("Read the first ```json block or JSON value inside the text "
                                  "(default false)."),
    },
    category="output_quality",
    example="- json: {expected: {status: refunded, amount: 39.99}, partial: true}",
)
def json_check(params: Params) -> Check:
    from harness.checks.toolcalls import deepdiff_path, diff_args, read_path

    expected = params.value("expected", None)
    partial = params.flag("partial")
    ignore_order = params.flag("ignore_order")
    extract = params.flag("extract")
    tolerance = params.number("tolerance", None, minimum=0)
    raw_exclude = params.value("exclude", [])
    if not isinstance(raw_exclude, list):
        raise CheckParamError("expected a list of paths", param="exclude")
    exclude = [deepdiff_path(read_path("exclude", path)) for path in raw_exclude]

    def check(response: TargetResponse, case: Case) -> CheckOutcome:
        value, problem = _parse_json(response.output, extract)
        if problem is not None:
            return failed(f"output is not JSON: {problem}", obtained=response.output)
        if expected is None:
            return passed("output is valid JSON", obtained=value)
        if partial and not isinstance(expected, dict | list):
            differences = [] if value == expected else [f"output: expected {expected!r}"]
        else:
            differences = diff_args({"_": expected}, {"_": value}, partial=partial,
                                    exclude=[p.replace("root", "root['_']", 1) for p in exclude],
                                    ignore_order=ignore_order, tolerance=tolerance,
                                    label="output")
            differences = [line.replace("output['_']", "output", 1) for line in differences]
        if differences:
            return failed(f"output JSON differs: {differences[0]}"
                          + (f" (+{len(differences) - 1} more)" if len(differences) > 1 else ""),
                          expected=expected, obtained=value, diff="\n".join(differences[:40]))
        return passed("output JSON matches the expected value", expected=expected,
                      obtained=value)

    return check


_NUMBER = compile_pattern(r"[-+]?\d[\d,]*(?:\.\d+)?|[-+]?\.\d+", param="pattern")


@register(
    "number",
    summary="A figure in the output equals a value within a tolerance.",
    params={
        "value": Parameter.number("The expected number.", required=True),
        "tolerance": Parameter.number("Largest allowed absolute difference (default 0).",
                                      default=0, minimum=0),
        "pattern": Parameter.text("Regular expression whose group 1 (or whole match) holds the "
                                  "figure (default: the first number in the output)."),
    },
    shorthand="value",
    category="output_quality",
    example="- number: {value: 39.99, pattern: 'refunded \\$([\\d.,]+)', tolerance: 0.01}",
)
def number(params: Params) -> Check:
    expected = params.number("value")
    tolerance = params.number("tolerance", 0, minimum=0)
    source = params.text("pattern", None)
    pattern = compile_pattern(source, param="pattern") if source else _NUMBER

    def check(response: TargetResponse, case: Case) -> CheckOutcome:
        found = search(pattern, response.output)
        if found is None:
            where = f"/{source}/" if source else "a number"
            return failed(f"output has no figure matching {where}", expected=expected,
                          obtained=response.output)
        text = found.group(1) if pattern.groups else found.group(0)
        try:
            figure = float(text.replace(",", ""))
        except ValueError:
            return failed(f"{text!r} is not a number", expected=expected, obtained=text)
        span = excerpt(response.output, *found.span(1 if pattern.groups else 0))
        difference = abs(figure - expected)
        verdict = passed if difference <= tolerance else failed
        return verdict(f"figure {figure:g} {'is' if difference <= tolerance else 'is not'} "
                       f"{expected:g} ± {tolerance:g}", expected=expected, obtained=figure,
                       match=span)

    return check


@register(
    "length",
    bounded=True,
    summary="The output's length (characters or words) lies between min and max.",
    params={"min": Parameter.number("Shortest allowed length.", minimum=0),
            "max": Parameter.number("Longest allowed length.", minimum=0),
            "unit": Parameter.choice("chars (default) or words.", ("chars", "words"),
                                     default="chars")},
    requires_one_of=("min", "max"),
    category="output_quality",
    example="- length: {max: 600}",
)
def length(params: Params) -> Check:
    low = params.number("min", None, minimum=0)
    high = params.number("max", None, minimum=0)
    unit = params.choice("unit", ("chars", "words"), "chars")
    if low is None and high is None:
        raise CheckParamError("give min, max or both", param="min")
    if low is not None and high is not None and low > high:
        raise CheckParamError(f"min ({low}) is greater than max ({high})", param="min")

    def check(response: TargetResponse, case: Case) -> CheckOutcome:
        size = len(response.output.split()) if unit == "words" else len(response.output)
        bounds = f"{low if low is not None else 0}..{high if high is not None else '∞'}"
        inside = (low is None or size >= low) and (high is None or size <= high)
        verdict = passed if inside else failed
        return verdict(f"output is {size} {unit} ({'within' if inside else 'outside'} {bounds})",
                       expected=bounds, obtained=size)

    return check
