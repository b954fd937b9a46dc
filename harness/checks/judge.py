"""Checks that judge meaning: a model judge with a rubric, and semantic similarity.

Every deterministic check guards an incident's exact words; these guard its meaning, so a
failure reintroduced in other words is caught. A ``judge`` check asks a judge named in the
suite's ``judges:`` section (any target) a rubric's question about the response, ``votes``
times, and passes when the majority of verdicts pass; a judge that fails to answer, or answers
anything but a verdict, makes the check an ``error``, never a pass. ``semantic_similar`` and
``not_semantic_similar`` compare embeddings (an embedder of the suite's ``embedders:``
section) with cosine similarity.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping
from typing import Any

from harness import judging
from harness.checks.outcome import errored, failed, passed
from harness.checks.parameters import NON_BLANK, Parameter
from harness.checks.registry import Params, register
from harness.errors import CheckParamError
from harness.judging import RUBRICS, SEES, JudgeError
from harness.model import Case, CheckOutcome, TargetResponse, plain

NO_SERVICE = ("no judge service: judge and semantic checks run inside a suite run (harness "
              "run, validate or check), which connects them to the suite's judges")


def _text_of(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(plain(value), ensure_ascii=False,
                                                           default=str, indent=1)


class JudgeCheck:
    """A rubric's question, put to a judge ``votes`` times about one response."""

    def __init__(self, *, judge: str, question: str, rubric: str, votes: int,
                 sees: tuple[str, ...], policy: str | None, reference: str | None) -> None:
        self.judge = judge
        self.question = question
        self.rubric = rubric
        self.votes = votes
        self.sees = sees
        self.policy = policy
        self.reference = reference
        self.resources = {"judges": judge}

    def materials(self, response: TargetResponse, case: Case) -> dict[str, str] | str:
        """What the judge is shown, by label; a string says what is missing."""
        shown: dict[str, str] = {}
        for name in self.sees:
            if name == "output":
                shown["output"] = response.output
            elif name == "input":
                shown["input"] = _text_of(case.input)
            elif name == "sources":
                shown["sources"] = _text_of(response.to_dict()["sources"])
            elif name == "tool_calls":
                shown["tool_calls"] = _text_of(response.to_dict()["tool_calls"])
            elif name == "reference":
                reference = self.reference or case.reference
                if reference is None:
                    return ("no reference answer to compare with: give the check a reference "
                            "or the case a reference")
                shown["reference"] = reference
        return shown

    def __call__(self, response: TargetResponse, case: Case) -> CheckOutcome:
        service = judging.current()
        if service is None:
            return errored(NO_SERVICE)
        shown = self.materials(response, case)
        if isinstance(shown, str):
            return errored(shown)
        messages = judging.prompt(self.question, shown, policy=self.policy)
        votes = []
        for index in range(self.votes):
            try:
                votes.append(service.vote(self.judge, messages, rubric=self.rubric,
                                          index=index))
            except JudgeError as exc:
                return errored(f"judge {self.judge} could not answer: {exc}",
                               judge=self.judge, rubric=self.rubric, **exc.details,
                               votes=[_vote_evidence(v) for v in votes])
        evidence = {"judge": self.judge, "rubric": self.rubric,
                    "prompt_version": judging.PROMPT_VERSION, "sees": list(self.sees),
                    "votes": [_vote_evidence(v) for v in votes]}
        failing = [vote for vote in votes if vote.verdict == "fail"]
        passes = len(votes) - len(failing)
        split = f"{passes} of {len(votes)} vote(s) pass"
        evidence["split"] = split
        if passes * 2 > len(votes):
            return passed(f"judge {self.judge} ({self.rubric}): {split}; {votes[0].reason}",
                          score=passes / len(votes), expected="a majority of pass votes",
                          obtained=split, **evidence)
        reason = failing[0].reason if failing else ""
        return failed(f"judge {self.judge} ({self.rubric}): {split}; {reason}",
                      score=passes / len(votes), expected="a majority of pass votes",
                      obtained=split, **evidence)


def _vote_evidence(vote: judging.Vote) -> dict[str, Any]:
    return {"verdict": vote.verdict, "reason": vote.reason, "judge": vote.judge,
            "model": vote.model, "config_digest": vote.config_digest, "cached": vote.cached}


def _rubric_param(params: Params) -> tuple[str, str]:
    """(rubric id, question) from ``rubric``: a built-in name, or a question of its own."""
    value = params.text("rubric").strip()
    if value in RUBRICS:
        return RUBRICS[value].id, RUBRICS[value].question
    if len(value.split()) >= 4:
        return "inline", value
    hint = difflib.get_close_matches(value, list(RUBRICS), n=1)
    tip = f"did you mean {hint[0]!r}? " if hint else ""
    raise CheckParamError(f"unknown rubric {value!r}; {tip}built-in rubrics: "
                          f"{', '.join(RUBRICS)} (or write the question itself)",
                          param="rubric")


@register(
    "judge",
    summary="A model judge (a target named in the suite's judges: section) answers a "
            "rubric's question about the response; passes on a majority of pass votes, and a "
            "judge that does not answer with a verdict is an error, never a pass.",
    params={
        "rubric": Parameter.value(
            "A built-in rubric (unsupported_claim, contradicts_reference, "
            "unauthorised_commitment, discloses_personal_data, violates_policy, "
            "unsafe_advice) or the question itself, answered pass when the response is "
            "acceptable.", required=True,
            # a question is told from a misspelt rubric name by its four words or more
            schema={"anyOf": [{"enum": list(RUBRICS)},
                              {"type": "string", "pattern": r"\S+\s+\S+\s+\S+\s+\S"}]}),
        "judge": Parameter.text("The judge: a name in the suite's judges: section.",
                                required=True, pattern=NON_BLANK),
        "votes": Parameter.number("How many times to ask (odd; default 1); the majority "
                                  "decides.", default=1, minimum=1, odd=True),
        "sees": Parameter.texts("What the judge is shown, from output, input, sources, "
                                "tool_calls, reference (default: what the rubric needs).",
                                choices=SEES),
        "policy": Parameter.text("The policy text, for unauthorised_commitment and "
                                 "violates_policy."),
        "reference": Parameter.text("The reference answer (default: the case's reference)."),
    },
    category="output_quality",
    example="- judge: {rubric: unauthorised_commitment, judge: local, votes: 3, policy: "
            "'Refunds only within 30 days of delivery; no exceptions.'}",
)
def judge(params: Params) -> JudgeCheck:
    rubric, question = _rubric_param(params)
    name = params.text("judge").strip()
    if not name:
        raise CheckParamError("expected a judge's name from the suite's judges:",
                              param="judge")
    votes = params.number("votes", 1, minimum=1)
    if not isinstance(votes, int) or votes % 2 == 0:
        raise CheckParamError(f"expected an odd number of votes (a majority must exist), "
                              f"found {votes}", param="votes")
    built_in = RUBRICS.get(rubric.split("/")[0]) if rubric != "inline" else None
    sees = params.texts("sees", list(built_in.sees) if built_in else ["output", "input"])
    unknown = [item for item in sees if item not in SEES]
    if unknown:
        raise CheckParamError(f"unknown {unknown[0]!r}; expected some of {', '.join(SEES)}",
                              param="sees")
    policy = params.text("policy", None)
    if built_in is not None and "policy" in built_in.needs and not policy:
        raise CheckParamError(f"rubric {built_in.name} needs the policy text", param="policy")
    return JudgeCheck(judge=name, question=question, rubric=rubric, votes=int(votes),
                      sees=tuple(dict.fromkeys(sees)), policy=policy,
                      reference=params.text("reference", None))


# --- semantic similarity ---------------------------------------------------------------------


def cosine(a: list[float], b: list[float]) -> float:
    """The cosine similarity of two vectors (0 when either is all zeros)."""
    if len(a) != len(b):
        problem = f"embeddings of different lengths ({len(a)} and {len(b)})"
        raise JudgeError(problem)
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norms = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norms if norms else 0.0


class SemanticCheck:
    """The output's embedding compared with a reference's, by cosine similarity."""

    def __init__(self, *, embedder: str, reference: str, threshold: float,
                 negate: bool) -> None:
        self.embedder = embedder
        self.reference = reference
        self.threshold = threshold
        self.negate = negate
        self.resources = {"embedders": embedder}

    def __call__(self, response: TargetResponse, case: Case) -> CheckOutcome:
        service = judging.current()
        if service is None:
            return errored(NO_SERVICE)
        try:
            score = cosine(service.embed(self.embedder, response.output),
                           service.embed(self.embedder, self.reference))
        except JudgeError as exc:
            return errored(f"embedder {self.embedder} could not answer: {exc}",
                           embedder=self.embedder, **exc.details)
        similar = score >= self.threshold
        relation = "similar" if similar else "not similar"
        reason = (f"output is {relation} to the reference (cosine {score:.3f}, threshold "
                  f"{self.threshold:g})")
        ok = similar != self.negate
        expected = (f"cosine {'<' if self.negate else '>='} {self.threshold:g}")
        verdict = passed if ok else failed
        return verdict(reason, score=round(score, 6), expected=expected,
                       obtained=round(score, 6), embedder=self.embedder)


def _semantic(params: Params, *, negate: bool) -> SemanticCheck:
    return SemanticCheck(embedder=params.text("embedder"), reference=params.text("reference"),
                         threshold=params.number("threshold", 0.85, minimum=0, maximum=1),
                         negate=negate)


SEMANTIC_PARAMS = {
    "reference": Parameter.text("The reference text.", required=True),
    "threshold": Parameter.number("Cosine similarity, 0 to 1, at which texts count as similar "
                                  "(default 0.85).", default=0.85, minimum=0, maximum=1),
    "embedder": Parameter.text("The embedder: a name in the suite's embedders: section.",
                               required=True),
}


@register(
    "semantic_similar",
    summary="The output means what a reference text means (cosine similarity of embeddings "
            ">= threshold).",
    params=SEMANTIC_PARAMS,
    shorthand="reference",
    category="output_quality",
    example="- semantic_similar: {reference: 'Refunds are accepted within 30 days.', "
            "embedder: mini, threshold: 0.8}",
)
def semantic_similar(params: Params) -> SemanticCheck:
    return _semantic(params, negate=False)


@register(
    "not_semantic_similar",
    summary="The output does not mean what a text means (e.g. the incident's bad answer in "
            "any words: cosine similarity of embeddings < threshold).",
    params=SEMANTIC_PARAMS,
    shorthand="reference",
    category="output_quality",
    example="- not_semantic_similar: {reference: 'You have 60 days to return it.', "
            "embedder: mini}",
)
def not_semantic_similar(params: Params) -> SemanticCheck:
    return _semantic(params, negate=True)


def resources_of(check: Any) -> Mapping[str, str]:
    """The suite resources a check needs, by section (``{"judges": "local"}``)."""
    return dict(getattr(check, "resources", {}) or {})
