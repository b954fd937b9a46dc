"""Incident intake: ``harness incident new`` writes the first draft of an incident case.

An incident is easiest to turn into a regression case while it is fresh, so intake asks only for
what is known at once (workflow, category, title, owner, how many users and records), derives the
severity from that impact (:mod:`harness.intake.severity`), and writes
``cases/<workflow>/<ID>.yaml``:

- marked ``draft: true``, with ``evidence.missing`` naming the evidence not yet collected;
- with one ``expect`` check fit for the category, built from the evidence when it is given (the
  incident's own output, sources or tool calls), otherwise a ``not_contains`` placeholder that
  says what to write, so the file loads and says honestly that it is not finished;
- with ``severity_basis`` saying which rules gave the severity, and a warning when a severity
  set by hand is lower than the rules give.

It also looks for repeated failures: earlier incidents of the same workflow and category whose
title, root cause and output read alike (:func:`similar_incidents`), and warns with their ids.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TextIO

from harness import schema
from harness.errors import InputError
from harness.intake import writer
from harness.intake.drafter import PLACEHOLDER, drafted
from harness.intake.severity import (
    IMPACT_COUNTS,
    IMPACT_KEYS,
    Derivation,
    ImpactFacts,
    Rules,
    check_explicit,
    derive,
    rules_for,
)
from harness.loader import load_case, load_tool_rules, read_yaml
from harness.model import CATEGORIES, EVIDENCE_FIELDS, SEVERITIES, TIMELINE_STEPS, Case

ESSENTIALS: tuple[tuple[str, str, str], ...] = (
    ("workflow", "--workflow W", "Workflow (its folder under cases/)"),
    ("category", "--category C", "Category"),
    ("title", "--title T", "Title (one line: what went wrong)"),
    ("owner", "--owner O", "Owner (who owns the fix)"),
    ("users", "--users N", "Users affected"),
    ("records", "--records N", "Records affected"),
)
"""What intake needs before it can write a case: field, flag, prompt."""

TODO_CHECK = PLACEHOLDER
TODO_INPUT = "TODO: the input that triggered the incident"
SIMILARITY_WEIGHTS: Mapping[str, float] = {"title": 0.4, "root_cause": 0.4, "output": 0.2}
_LABELS = {"title": "title", "root_cause": "root cause", "output": "output"}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
HEADER = (
    "Drafted by `harness incident new`. Before this case counts:",
    "  - collect what evidence.missing lists (the replay target answers with the evidence),",
    "    or fill it from the trace: harness case from-trace TRACE --into <this file>,",
    "  - make expect catch the failure: it should fail on the incident's own evidence,",
    "  - fill every TODO (`harness check` lists what is left),",
    "  - then close it: harness case close <this file>.",
)


@dataclass(frozen=True, slots=True)
class Scaffold:
    """A written draft case: where, what it holds, and how its severity was reached."""

    path: Path
    case: Case
    fields: Mapping[str, Any]
    derivation: Derivation
    warning: str | None = None


class Similar(NamedTuple):
    """An earlier incident that reads like the new one: its id, score (0-100) and why."""

    id: str
    score: float
    why: str


# --- asking for what is missing ------------------------------------------------------------


def _text_answer(answer: str) -> tuple[Any, str | None]:
    return (answer, None) if answer else (None, "an answer is needed")


def _name_answer(answer: str) -> tuple[Any, str | None]:
    if _NAME.match(answer):
        return answer, None
    return None, "use letters, digits, '.', '_' and '-' (a folder name)"


def _category_answer(answer: str) -> tuple[Any, str | None]:
    if answer.isdigit() and 1 <= int(answer) <= len(CATEGORIES):
        return CATEGORIES[int(answer) - 1], None
    if answer in CATEGORIES:
        return answer, None
    return None, f"answer 1-{len(CATEGORIES)} or one of {', '.join(CATEGORIES)}"


def _count_answer(answer: str) -> tuple[Any, str | None]:
    if answer.isdigit():
        return int(answer), None
    return None, "a whole number >= 0 is needed"


_ANSWERS: Mapping[str, Callable[[str], tuple[Any, str | None]]] = {
    "workflow": _name_answer,
    "category": _category_answer,
    "title": _text_answer,
    "owner": _text_answer,
    "users": _count_answer,
    "records": _count_answer,
}


def ask_missing(
    values: Mapping[str, Any],
    *,
    input_fn: Callable[[str], str] = input,
    output: TextIO = sys.stderr,
    interactive: bool | None = None,
) -> dict[str, Any]:
    """``values`` with every missing essential filled in by asking, one prompt each.

    Asks only when ``interactive`` (default: standard input is a terminal); otherwise a missing
    essential raises :class:`InputError` naming the flags to pass. Prompts go to ``output`` so
    that standard output carries only results.
    """
    answers = dict(values)
    missing = [entry for entry in ESSENTIALS if answers.get(entry[0]) in (None, "")]
    if not missing:
        return answers
    if interactive is None:
        interactive = sys.stdin.isatty()
    if not interactive:
        flags = " ".join(flag for _, flag, _ in missing)
        problem = (f"missing {', '.join(name for name, _, _ in missing)}: pass {flags} "
                   f"(standard input is not a terminal, so nothing was asked)")
        raise InputError(problem)
    for name, flag, prompt in missing:
        if name == "category":
            choices = "  ".join(f"{n}) {c}" for n, c in enumerate(CATEGORIES, 1))
            output.write(f"{choices}\n")
        while True:
            output.write(f"{prompt}: ")
            output.flush()
            try:
                answer = input_fn("").strip()
            except EOFError:
                output.write("\n")
                raise InputError(f"no answer for {name}: pass {flag}") from None
            value, complaint = _ANSWERS[name](answer)
            if complaint is None:
                answers[name] = value
                break
            output.write(f"  {complaint}\n")
    return answers


# --- writing the case ----------------------------------------------------------------------


def _check_name(value: str, field: str) -> None:
    if not isinstance(value, str) or not _NAME.match(value):
        problem = (f"expected a name of letters, digits, '.', '_' and '-' (it becomes a file "
                   f"name), found {value!r}")
        raise InputError(problem, field=field)


def _check_text(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"expected a non-empty text, found {value!r}", field=field)
    return value.strip()


def _checked(node: schema.Node, value: Any, field: str, path: Path | None = None) -> Any:
    try:
        return node.check(value, field, getattr(value, "line", None))
    except schema.Invalid as exc:
        raise InputError(exc.problem, path=path, line=exc.line, field=exc.field) from None


def _timeline(timeline: Mapping[str, Any]) -> dict[str, str]:
    moments: dict[str, dt.datetime] = {}
    for step, value in timeline.items():
        if step not in TIMELINE_STEPS:
            problem = f"unknown step {step!r}; expected one of {', '.join(TIMELINE_STEPS)}"
            raise InputError(problem, field=f"timeline.{step}")
        if isinstance(value, dt.datetime):
            moments[step] = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        else:
            moments[step] = _checked(schema.Timestamp(), value, f"timeline.{step}")
    steps = [step for step in TIMELINE_STEPS if step in moments]
    for earlier, later in itertools.pairwise(steps):
        if moments[later] < moments[earlier]:
            problem = (f"{later} ({moments[later].isoformat()}) is before "
                       f"{earlier} ({moments[earlier].isoformat()})")
            raise InputError(problem, field=f"timeline.{later}")
    return {step: moments[step].isoformat().replace("+00:00", "Z") for step in steps}


def scaffold_case(
    *,
    root: Path,
    workflow: str,
    category: str,
    title: str,
    owner: str,
    id: str | None = None,
    severity: str | None = None,
    impact: Mapping[str, Any] | None = None,
    near_miss: bool = False,
    timeline: Mapping[str, Any] | None = None,
    evidence: Mapping[str, Any] | None = None,
    root_cause: str | None = None,
    business_owner: str | None = None,
    rules: Rules | None = None,
    now: dt.datetime | None = None,
) -> Scaffold:
    """Write a draft incident case ``cases/<workflow>/<ID>.yaml`` under ``root``.

    The id defaults to the next ``INC-<year>-<n>`` of the workflow's folder. The severity is
    derived from the impact unless given; ``Scaffold.warning`` says when a given severity is
    lower than the derived one. An existing file is never overwritten. Every bad value raises
    :class:`InputError` naming its field before anything is written.
    """
    _check_name(workflow, "workflow")
    if category not in CATEGORIES:
        raise InputError(f"expected one of {', '.join(CATEGORIES)}, found {category!r}",
                         field="category")
    if severity is not None and severity not in SEVERITIES:
        raise InputError(f"expected one of {', '.join(SEVERITIES)}, found {severity!r}",
                         field="severity")
    title = _check_text(title, "title")
    owner = _check_text(owner, "owner")
    folder = root / "cases" / workflow
    case_id = id or writer.next_id(root / "cases", (now or dt.datetime.now(dt.UTC)).year)
    _check_name(case_id, "id")
    path = folder / f"{case_id}.yaml"
    if path.exists():
        raise InputError("a case file with this id already exists; nothing was written "
                         "(choose another --id)", path=path, field="id")

    impact = writer.plain(_checked(schema.INCIDENT_FIELDS["impact"], impact or {}, "impact"))
    derivation = derive(ImpactFacts.from_record(
        {"category": category, "near_miss": near_miss, "impact": impact}), rules)
    warning = check_explicit(severity, derivation) if severity else None
    basis = list(derivation.basis)
    if severity and severity != derivation.severity:
        basis.insert(0, f"set by hand to {severity}; the rules give {derivation.severity}")
    evidence = writer.plain(_checked(schema.EVIDENCE, evidence or {}, "evidence"))
    draft = drafted(category, evidence, strict=False, rules=load_tool_rules(root))
    evidence = draft.evidence
    missing = [name for name in EVIDENCE_FIELDS if name not in evidence]
    evidence["missing"] = list(dict.fromkeys([*evidence.get("missing", []), *missing]))

    fields: dict[str, Any] = {
        "id": case_id,
        "title": title,
        "workflow": workflow,
        "category": category,
        "severity": severity or derivation.severity,
        "severity_basis": basis,
        "status": "open",
        "near_miss": near_miss,
        "owner": owner,
    }
    if business_owner:
        fields["business_owner"] = _check_text(business_owner, "business_owner")
    if timeline:
        fields["timeline"] = _timeline(timeline)
    fields["impact"] = impact
    fields["root_cause"] = (_check_text(root_cause, "root_cause") if root_cause
                            else "TODO: why it happened")
    fields["fix"] = {"summary": "TODO: what was changed, with a reference"}
    fields["prevention"] = "TODO: what keeps it from happening again"
    fields["evidence"] = evidence
    if "input" not in evidence:
        fields["input"] = TODO_INPUT
    fields["expect"] = draft.expect
    fields["draft"] = True

    comments = {"expect": f"placeholder: {draft.problem}" if draft.placeholder
                else "drafted from the evidence, so that the case fails on it"}
    text = writer.render(((key, value, comments.get(key)) for key, value in fields.items()),
                         HEADER)
    case = writer.write_case(path, text)
    return Scaffold(path=path, case=case, fields=fields, derivation=derivation,
                    warning=warning)


# --- repeated failures ---------------------------------------------------------------------


def _comparable(title: Any, root_cause: Any, output: Any) -> dict[str, str]:
    texts = {"title": title, "root_cause": root_cause, "output": output}
    return {name: text for name, text in texts.items()
            if isinstance(text, str) and text.strip() and not text.startswith("TODO")}


def similar_incidents(
    new_case_fields: Mapping[str, Any],
    existing_cases: Iterable[Case],
    *,
    threshold: float = 70,
) -> list[Similar]:
    """Earlier incidents of the same workflow and category that read like the new one.

    Title, root cause and evidence output are compared with rapidfuzz's ``token_set_ratio``
    (case and punctuation ignored) and weighted 0.4, 0.4 and 0.2; a field missing on either
    side is skipped and the remaining weights are renormalised. Returns those scoring at least
    ``threshold``, best first.
    """
    from rapidfuzz import fuzz, utils

    evidence = new_case_fields.get("evidence") or {}
    mine = _comparable(new_case_fields.get("title"), new_case_fields.get("root_cause"),
                       evidence.get("output"))
    found: list[Similar] = []
    for case in existing_cases:
        incident = case.incident
        if (incident is None or case.workflow != new_case_fields.get("workflow")
                or incident.category != new_case_fields.get("category")):
            continue
        theirs = _comparable(case.title, incident.root_cause, case.evidence.get("output"))
        scores = {
            name: fuzz.token_set_ratio(mine[name], theirs[name], processor=utils.default_process)
            for name in SIMILARITY_WEIGHTS if name in mine and name in theirs
        }
        if not scores:
            continue
        weight = sum(SIMILARITY_WEIGHTS[name] for name in scores)
        score = sum(SIMILARITY_WEIGHTS[name] * value for name, value in scores.items()) / weight
        if score >= threshold:
            why = ", ".join(f"{_LABELS[name]} {value:.0f}" for name, value in scores.items())
            found.append(Similar(id=case.id, score=round(score, 1), why=why))
    return sorted(found, key=lambda match: (-match.score, match.id))


def workflow_cases(root: Path, workflow: str) -> tuple[list[Case], list[str]]:
    """The cases in ``cases/<workflow>/`` under ``root``, and a note for each file that does
    not load (intake goes on without it)."""
    folder = root / "cases" / workflow
    cases: list[Case] = []
    problems: list[str] = []
    for file in sorted(itertools.chain(folder.glob("*.yaml"), folder.glob("*.yml"))):
        try:
            cases.append(load_case(file))
        except InputError as exc:
            problems.append(str(exc).splitlines()[0])
    return cases, problems


# --- the command ---------------------------------------------------------------------------


def _pairs(items: Iterable[str], flag: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"expected KEY=VALUE, found {item!r}", field=flag)
        pairs[key.strip()] = value.strip()
    return pairs


def _impact_value(key: str, text: str) -> int | bool:
    if key not in IMPACT_KEYS:
        problem = f"unknown impact fact {key!r}; expected one of {', '.join(IMPACT_KEYS)}"
        raise InputError(problem, field="--impact")
    if key in IMPACT_COUNTS:
        if not text.isdigit():
            raise InputError(f"{key}: expected a whole number >= 0, found {text!r}",
                             field="--impact")
        return int(text)
    flags = {"true": True, "yes": True, "false": False, "no": False}
    if text.lower() not in flags:
        raise InputError(f"{key}: expected true or false, found {text!r}", field="--impact")
    return flags[text.lower()]


def read_evidence(path: Path) -> dict[str, Any]:
    """An evidence file: a YAML mapping with the fields of a case's ``evidence``."""
    data, _ = read_yaml(path)
    return writer.plain(_checked(schema.EVIDENCE, data, "", path))


def new_incident(
    values: Mapping[str, Any],
    *,
    root: Path,
    rules_path: Path | None = None,
    input_fn: Callable[[str], str] = input,
    stdout: TextIO = sys.stdout,
    stderr: TextIO = sys.stderr,
    interactive: bool | None = None,
    now: dt.datetime | None = None,
) -> Scaffold:
    """``harness incident new``: ask for missing essentials, write the draft, report it.

    ``values`` holds the command's options by name: workflow, category, id, title, owner,
    severity, users, records, data_class (list), workflow_users, impact (KEY=VALUE list),
    summary, near_miss, timeline (STEP=TIME list), root_cause, evidence (a file), business_owner.
    """
    rules = rules_for(root, rules_path)
    evidence = read_evidence(values["evidence"]) if values.get("evidence") else None
    timeline = _pairs(values.get("timeline") or (), "--timeline")
    extra = {key: _impact_value(key, text)
             for key, text in _pairs(values.get("impact") or (), "--impact").items()}
    values = ask_missing(values, input_fn=input_fn, output=stderr, interactive=interactive)
    impact: dict[str, Any] = {"users": values["users"], "records": values["records"],
                              "data_classes": list(values.get("data_class") or ())}
    if values.get("workflow_users") is not None:
        impact["workflow_users"] = values["workflow_users"]
    impact.update(extra)
    if values.get("summary"):
        impact["summary"] = values["summary"]
    _check_name(values["workflow"], "workflow")
    earlier, problems = workflow_cases(root, values["workflow"])
    scaffold = scaffold_case(
        root=root, workflow=values["workflow"], category=values["category"],
        title=values["title"], owner=values["owner"], id=values.get("id"),
        severity=values.get("severity"), impact=impact, near_miss=bool(values.get("near_miss")),
        timeline=timeline, evidence=evidence, root_cause=values.get("root_cause"),
        business_owner=values.get("business_owner"), rules=rules, now=now,
    )
    shown = scaffold.path.relative_to(root) if scaffold.path.is_relative_to(root) else scaffold.path
    derived = scaffold.derivation.severity
    explicit = scaffold.fields["severity"] if values.get("severity") else None
    print(f"wrote {shown} (draft)", file=stdout)
    if explicit:
        print(f"severity: {explicit} (set by hand; the impact gives {derived})", file=stdout)
    else:
        print(f"severity: {derived} (derived from the impact)", file=stdout)
    for line in scaffold.derivation.basis:
        print(f"  - {line}", file=stdout)
    print(f"rules: {rules.source}", file=stdout)
    missing = scaffold.fields["evidence"]["missing"]
    if missing:
        print(f"evidence missing: {', '.join(missing)}", file=stdout)
    print("next: collect the missing evidence (or harness case from-trace TRACE --into the "
          "file), make expect fail on it, then harness case close the file",
          file=stdout)
    if scaffold.warning:
        print(f"warning: {scaffold.warning}", file=stderr)
    similar = similar_incidents(scaffold.fields, earlier)
    if similar:
        print(f"warning: a repeated failure? earlier {values['workflow']} "
              f"{values['category']} incidents read alike:", file=stderr)
        for match in similar:
            print(f"  {match.id} (score {match.score:g}: {match.why})", file=stderr)
    for problem in problems:
        print(f"note: not compared, does not load: {problem}", file=stderr)
    return scaffold
