"""Policy checks: claims the workflow must never make, phrases it must always include.

Phrases are matched fuzzily with rapidfuzz, so small rewordings ("a full refund" / "full
refunds") are caught; list each paraphrase a reviewer worries about, each with its own
threshold if it needs one. Matching folds case and collapses white space.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from harness.checks.outcome import excerpt, failed, passed
from harness.checks.parameters import NON_BLANK, Parameter
from harness.checks.registry import Params, register
from harness.errors import CheckParamError
from harness.model import Case, Check, CheckOutcome, TargetResponse

SCORERS = ("partial_ratio", "partial_token_sort_ratio", "partial_token_set_ratio")
"""rapidfuzz's scorers a phrase may be compared with (rapidfuzz is imported by the check that
uses it, as by ``similar_to``: a run without fuzzy checks does not load it)."""
SCORER_PARAM = Parameter.choice(
    "How phrases are compared: partial_ratio (default; the best-matching stretch of the "
    "output), partial_token_sort_ratio or partial_token_set_ratio (word order ignored).",
    tuple(SCORERS), default="partial_ratio")
_PHRASE = {"anyOf": [
    {"type": "string", "pattern": NON_BLANK},
    {"type": "object", "properties": {
        "text": {"type": "string", "pattern": NON_BLANK},
        "threshold": {"type": "number", "exclusiveMinimum": 0, "maximum": 100}},
     "required": ["text"], "additionalProperties": False},
]}
PHRASES = {"anyOf": [_PHRASE, {"type": "array", "items": _PHRASE, "minItems": 1}]}
"""The JSON Schema of a phrase list: a phrase, or a non-empty list of them, each a string or
``{text, threshold}``."""


@dataclass(frozen=True)
class Phrase:
    text: str
    threshold: float


@dataclass(frozen=True)
class Match:
    phrase: Phrase
    score: float
    span: str | None


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def _phrases(params: Params, name: str, default_threshold: float) -> list[Phrase]:
    raw = params.value(name)
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise CheckParamError("expected at least one phrase", param=name)
    phrases = []
    for index, item in enumerate(items):
        where = f"{name}[{index}]"
        if isinstance(item, str) and item.strip():
            phrases.append(Phrase(item, default_threshold))
        elif isinstance(item, dict) and set(item) <= {"text", "threshold"} and "text" in item:
            text, threshold = item["text"], item.get("threshold", default_threshold)
            if not isinstance(text, str) or not text.strip():
                raise CheckParamError("expected a non-empty text", param=f"{where}.text")
            if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not (
                0 < threshold <= 100
            ):
                raise CheckParamError(f"expected a number in (0, 100], found {threshold!r}",
                                      param=f"{where}.threshold")
            phrases.append(Phrase(text, float(threshold)))
        else:
            raise CheckParamError("expected a phrase or {text, threshold}", param=where)
    return phrases


def _best(phrase: Phrase, normalised: str, scorer: str) -> Match:
    from rapidfuzz import fuzz

    needle = _normalise(phrase.text)
    if scorer == "partial_ratio":
        found = fuzz.partial_ratio_alignment(needle, normalised)
        if found is None:
            return Match(phrase, 0.0, None)
        span = excerpt(normalised, found.dest_start, found.dest_end)
        return Match(phrase, round(found.score, 1), span)
    return Match(phrase, round(getattr(fuzz, scorer)(needle, normalised), 1), None)


def _settings(params: Params, name: str) -> tuple[list[Phrase], str]:
    threshold = params.number("threshold", 90, minimum=1, maximum=100)
    scorer = params.choice("scorer", tuple(SCORERS), "partial_ratio")
    return _phrases(params, name, float(threshold)), scorer


def _match_info(match: Match) -> dict[str, Any]:
    info: dict[str, Any] = {"phrase": match.phrase.text, "score": match.score,
                            "threshold": match.phrase.threshold}
    if match.span:
        info["match"] = match.span
    return info


@register(
    "forbidden_claims",
    summary="The output makes none of the listed claims (fuzzy: paraphrases close enough fail).",
    params={
        "claims": Parameter.value("Phrases, each a string or {text, threshold}.",
                                  schema=PHRASES, required=True),
        "threshold": Parameter.number("Similarity 1-100 at which a claim counts as made "
                                      "(default 90).", default=90, minimum=1, maximum=100),
        "scorer": SCORER_PARAM,
    },
    shorthand="claims",
    category="policy",
    example='- forbidden_claims: ["full refund on final-sale items", "we waive the fee"]',
)
def forbidden_claims(params: Params) -> Check:
    claims, scorer = _settings(params, "claims")

    def check(response: TargetResponse, case: Case) -> CheckOutcome:
        normalised = _normalise(response.output)
        matches = [_best(claim, normalised, scorer) for claim in claims]
        made = [m for m in matches if m.score >= m.phrase.threshold]
        top = max(matches, key=lambda m: m.score)
        if made:
            first = made[0]
            return failed(
                f"output makes the forbidden claim {first.phrase.text!r} "
                f"(similarity {first.score:g} >= {first.phrase.threshold:g})",
                score=first.score, expected="none of the forbidden claims",
                obtained=response.output, claims=[_match_info(m) for m in made],
            )
        return passed(
            f"no forbidden claim made (closest: {top.phrase.text!r} at {top.score:g})",
            score=top.score, claims=[_match_info(m) for m in matches],
        )

    return check


@register(
    "required_phrases",
    summary="The output includes the listed phrases (e.g. a disclaimer), matched fuzzily.",
    params={
        "phrases": Parameter.value("Phrases, each a string or {text, threshold}.",
                                   schema=PHRASES, required=True),
        "threshold": Parameter.number("Similarity 1-100 at which a phrase counts as present "
                                      "(default 90).", default=90, minimum=1, maximum=100),
        "require": Parameter.choice("all (default): every phrase; any: at least one.",
                                    ("all", "any"), default="all"),
        "scorer": SCORER_PARAM,
    },
    shorthand="phrases",
    category="policy",
    example='- required_phrases: ["refunds are issued to the original payment method"]',
)
def required_phrases(params: Params) -> Check:
    phrases, scorer = _settings(params, "phrases")
    require = params.choice("require", ("all", "any"), "all")

    def check(response: TargetResponse, case: Case) -> CheckOutcome:
        normalised = _normalise(response.output)
        matches = [_best(phrase, normalised, scorer) for phrase in phrases]
        present = [m for m in matches if m.score >= m.phrase.threshold]
        missing = [m for m in matches if m.score < m.phrase.threshold]
        enough = bool(present) if require == "any" else not missing
        info = [_match_info(m) for m in matches]
        if enough:
            return passed(f"required phrase(s) present ({len(present)} of {len(matches)})",
                          phrases=info)
        if require == "any":
            reason = "none of the required phrases is present"
        else:
            worst = min(missing, key=lambda m: m.score)
            reason = (f"required phrase {worst.phrase.text!r} is missing "
                      f"(best similarity {worst.score:g} < {worst.phrase.threshold:g})")
        return failed(reason, expected=[m.phrase.text for m in missing],
                      obtained=response.output, phrases=info)

    return check
