"""Proving a judge before trusting it (``harness judge calibrate``).

Every ``judge`` check of a suite is run on answers whose right verdict is known:

- **known bad**: an incident case's evidence (what the workflow did during the incident) must
  be judged ``fail``;
- **known good**: a case's ``reference`` and ``acceptable_outputs`` must be judged ``pass``
  (shown with the evidence's sources, without its tool calls and approvals);
- **labelled examples** from a file (:data:`harness.schema.EXAMPLES`), judged by the judge
  checks of the case each names.

Per judge: accuracy, false-pass rate (a bad answer judged pass: the failure that lets an
incident back in), false-fail rate, Cohen's kappa between the labels and the verdicts, and
every example that disagrees. An example the judge gave no verdict on is counted apart
(``errors``); a calibration with errors is incomplete, and the gate does not accept it.

The result is a calibration record (JSON, under ``reports/calibration/``) bound to the judge's
configuration digest and the prompt version: change the judge's model, URL, body or what it
receives, or the harness's prompt, and the judge must be calibrated again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import judging, loader
from harness.digest import sha256_json, sha256_text
from harness.errors import InputError, TargetError
from harness.judging import PROMPT_VERSION
from harness.model import Case, CaseResult, Expectation, Suite, TargetResponse
from harness.targets.replay import ReplayTarget

FORMAT = "harness-calibration"
VERSION = 1
FOLDER = Path("reports") / "calibration"


@dataclass(frozen=True, slots=True)
class Example:
    """One answer whose right verdict is known, for one judge check of one case."""

    source: str
    """Where the answer comes from: ``path:line (evidence)``, ``(reference)``, an examples
    file's ``path:line``."""
    case: Case
    check: Expectation
    response: TargetResponse
    expected: str
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Row:
    """A judged example: what was expected, what the judge said."""

    source: str
    case_id: str
    line: int | None
    rubric: str
    judge: str
    expected: str
    verdict: str
    reason: str
    output: str
    note: str | None = None
    models: tuple[str, ...] = ()

    @property
    def agrees(self) -> bool:
        return self.verdict == self.expected

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "case": self.case_id, "line": self.line,
                "rubric": self.rubric, "expected": self.expected, "verdict": self.verdict,
                "agrees": self.agrees, "reason": self.reason,
                "output_sha256": sha256_text(self.output), "note": self.note}


@dataclass(frozen=True, slots=True)
class Figures:
    """How well a judge's verdicts match the labels."""

    examples: int
    bad: int
    good: int
    errors: int
    accuracy: float | None
    false_pass_rate: float | None
    false_fail_rate: float | None
    kappa: float | None
    false_passes: int = 0
    false_fails: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def figures(rows: Sequence[Row]) -> Figures:
    """The figures of a judge's rows; rates are over the examples it gave a verdict on."""
    answered = [row for row in rows if row.verdict in ("pass", "fail")]
    bad = [row for row in answered if row.expected == "fail"]
    good = [row for row in answered if row.expected == "pass"]
    false_passes = sum(row.verdict == "pass" for row in bad)
    false_fails = sum(row.verdict == "fail" for row in good)
    n = len(answered)
    agree = n - false_passes - false_fails
    kappa = None
    if n:
        expected_pass = len(good) / n
        judged_pass = sum(row.verdict == "pass" for row in answered) / n
        chance = expected_pass * judged_pass + (1 - expected_pass) * (1 - judged_pass)
        if chance < 1:
            kappa = round((agree / n - chance) / (1 - chance), 6)
    return Figures(examples=len(rows), bad=len(bad), good=len(good),
                   errors=len(rows) - n, accuracy=_ratio(agree, n),
                   false_pass_rate=_ratio(false_passes, len(bad)),
                   false_fail_rate=_ratio(false_fails, len(good)), kappa=kappa,
                   false_passes=false_passes, false_fails=false_fails)


# --- the examples ----------------------------------------------------------------------------


def judge_checks(case: Case) -> list[Expectation]:
    """The case's ``judge`` checks."""
    return [expectation for expectation in case.expect if expectation.kind == "judge"]


def _evidence_response(case: Case) -> TargetResponse | None:
    try:
        return ReplayTarget().call(case.input, case=case, timeout_s=None)
    except TargetError:
        return None


def _good_response(case: Case, text: str, sources: Any = None) -> TargetResponse:
    evidence = _evidence_response(case)
    shown: dict[str, Any] = {"output": text}
    if sources is not None:
        shown["sources"] = sources
    elif evidence is not None:
        return dataclasses.replace(evidence, output=text, tool_calls=(), approvals=())
    return TargetResponse.parse(shown)


def examples_of(suite: Suite, extra: Sequence[Mapping[str, Any]] = (),
                extra_path: Path | None = None) -> list[Example]:
    """Every known-bad and known-good answer of the suite's cases, and the labelled
    ``extra`` examples (from ``extra_path``), each once per judge check it applies to."""
    found: list[Example] = []
    by_id = {case.id: case for case in suite.cases}
    for case in suite.cases:
        checks = judge_checks(case)
        if not checks or case.retired is not None:
            continue
        evidence = _evidence_response(case) if case.incident is not None else None
        answers: list[tuple[str, TargetResponse, str]] = []
        if evidence is not None:
            answers.append((f"{case.path}:{case.line} (evidence)", evidence, "fail"))
        goods = ([case.reference] if case.reference else []) + list(case.acceptable_outputs)
        for number, text in enumerate(goods):
            label = "reference" if case.reference and number == 0 else "acceptable_outputs"
            answers.append((f"{case.path}:{case.line} ({label})", _good_response(case, text),
                            "pass"))
        found += [Example(source, case, check, response, expected)
                  for source, response, expected in answers for check in checks]
    for example in extra:
        where = f"{extra_path}:{example['line']}" if extra_path else f"line {example['line']}"
        named = by_id.get(example["case"])
        if named is None:
            raise InputError(f"no case {example['case']!r} in suite {suite.name}",
                             path=extra_path, line=example["line"], field="case")
        checks = judge_checks(named)
        if not checks:
            raise InputError(f"case {named.id} has no judge check to calibrate",
                             path=extra_path, line=example["line"], field="case")
        response = _good_response(named, example["output"], example.get("sources"))
        found += [Example(where, named, check, response, example["expected"],
                          example.get("note")) for check in checks]
    return found


# --- judging them ----------------------------------------------------------------------------


def judge(examples: Iterable[Example], service: judging.JudgeService) -> dict[str, list[Row]]:
    """Each example's verdict under its judge check, by judge name."""
    rows: dict[str, list[Row]] = {}
    with judging.using(service):
        for example in examples:
            outcome = example.check.evaluate(example.response, example.case)
            evidence = outcome.evidence
            name = str(evidence.get("judge") or getattr(example.check.check, "judge", "?"))
            votes = evidence.get("votes") or []
            models = tuple(sorted({v["model"] for v in votes if v.get("model")}))
            rows.setdefault(name, []).append(Row(
                source=example.source, case_id=example.case.id, line=example.check.line,
                rubric=str(evidence.get("rubric") or getattr(example.check.check, "rubric",
                                                              "?")),
                judge=name, expected=example.expected, verdict=outcome.verdict,
                reason=outcome.reason, output=example.response.output, note=example.note,
                models=models))
    return rows


# --- records -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Calibration:
    """A calibration record as read back: which judge configuration, and its figures."""

    path: Path
    judge: str
    config_digest: str
    prompt_version: str
    created_at: str
    figures: Figures
    models: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return self.figures.errors == 0 and self.figures.examples > 0


def _stamp(now: dt.datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%S%fZ")


def write(folder: Path, *, suite: Suite, judge_name: str, rows: Sequence[Row],
          now: dt.datetime | None = None) -> Path:
    """Write the judge's calibration record (a new file each time: earlier ones are kept)."""
    spec = suite.judges[judge_name]
    now = now or dt.datetime.now(dt.UTC)
    result = figures(rows)
    record = {
        "format": FORMAT, "version": VERSION, "judge": judge_name,
        "config_digest": spec.digest, "prompt_version": PROMPT_VERSION,
        "target": {"kind": spec.target.kind, "model": spec.target.options.get("model")},
        "models": sorted({model for row in rows for model in row.models}),
        "suite": suite.name, "suite_digest": suite.digest,
        "created_at": now.isoformat().replace("+00:00", "Z"),
        "figures": result.to_dict(), "examples": [row.to_dict() for row in rows],
        "rows_digest": sha256_json([row.to_dict() for row in rows]),
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{judge_name}-{spec.digest.removeprefix('sha256:')[:12]}-{_stamp(now)}.json"
    handle, name = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump(record, out, indent=1, ensure_ascii=False)
        out.write("\n")
    os.replace(name, path)
    return path


def _read(path: Path) -> Calibration | None:
    """A calibration record, or None for a file that is not one, or one whose figures do not
    follow from its rows (edited by hand)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    try:
        rows = [Row(source=e["source"], case_id=e["case"], line=e["line"],
                    rubric=e["rubric"], judge=data["judge"], expected=e["expected"],
                    verdict=e["verdict"], reason=e["reason"], output="")
                for e in data["examples"]]
        stated = Figures(**data["figures"])
        if figures(rows) != stated or sha256_json(data["examples"]) != data["rows_digest"]:
            return None
        return Calibration(path=path, judge=str(data["judge"]),
                           config_digest=str(data["config_digest"]),
                           prompt_version=str(data["prompt_version"]),
                           created_at=str(data["created_at"]), figures=stated,
                           models=tuple(data.get("models") or ()))
    except (KeyError, TypeError, ValueError):
        return None


def latest(folder: Path) -> dict[str, Calibration]:
    """The newest readable calibration record of each judge configuration in ``folder``
    (records of another prompt version are left out: they calibrated another prompt)."""
    found: dict[str, Calibration] = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob("*.json")):
        record = _read(path)
        if record is None or record.prompt_version != PROMPT_VERSION:
            continue
        known = found.get(record.config_digest)
        if known is None or record.created_at > known.created_at:
            found[record.config_digest] = record
    return found


def judges_relied_on(results: Iterable[CaseResult]) -> dict[str, set[str]]:
    """The judges a run's verdicts came from: name -> configuration digests."""
    used: dict[str, set[str]] = {}
    for result in results:
        for trial in result.trials:
            for check in trial.checks:
                for vote in check.evidence.get("votes") or ():
                    if isinstance(vote, Mapping) and vote.get("config_digest"):
                        used.setdefault(str(vote.get("judge")), set()).add(
                            str(vote["config_digest"]))
    return used


def load_examples(path: Path | None) -> list[dict[str, Any]]:
    """The labelled examples file's entries (none without a file)."""
    return loader.load_examples(path) if path is not None else []
