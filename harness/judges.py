"""The run's judges and embedders: the calls behind model-graded checks.

A :class:`Judges` service is made current (:func:`harness.judging.using`) while a suite's checks
are evaluated. It calls the suite's ``judges:`` and ``embedders:`` targets with the retries,
rate limits and concurrency caps of any target, and keeps to what each entry allows:

- **What leaves the machine.** Everything sent is redacted by the run's redaction (every
  detector, every canary of the run) unless the entry says ``receives: raw``.
- **Caps.** ``max_calls`` and ``max_cost`` bound each judge per run (under pytest-xdist, each
  worker gets its share). A call past a cap is not made: the check is an ``error``.
- **Cache.** Verdicts and embeddings are kept on disk, keyed by the digest of the judge's
  configuration, the rubric and prompt version, what was sent, and the vote's index; a re-run
  with nothing changed makes no call. An entry holds the verdict, the model and digests, never
  the judged text (nor the judge's reason, which may quote it). The cache lives outside the project
  (``$HARNESS_CACHE_DIR``, else ``$XDG_CACHE_HOME/incident-harness``, else
  ``~/.cache/incident-harness``), so a verdict cannot be planted by committing a file.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import targets
from harness.checks.usage import call_cost
from harness.digest import sha256_json, sha256_text
from harness.files import CACHE_ENV as CACHE_ENV  # where the cache is, named here before
from harness.files import cache_home
from harness.judging import PROMPT_VERSION, JudgeError, VerdictError, Vote, parse_verdict
from harness.model import Case, JudgeSpec, Suite, TargetResponse
from harness.redact import Redactor
from harness.runner import Binding
from harness.targets.python import PythonTarget, resolve

CACHED_REASON = ("verdict from the cache (the run that asked the judge recorded its reason; "
                 "the cache keeps no text)")
CACHE_FORMAT = 1


class Cache:
    """Verdicts and embeddings by key, one small JSON file each. A file that does not read as
    a valid entry is a miss; a cache that cannot be written is skipped, never an error."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _file(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            data = json.loads(self._file(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT \
                or data.get("key") != key:
            return None
        return data

    def put(self, key: str, entry: Mapping[str, Any]) -> None:
        file = self._file(key)
        with contextlib.suppress(OSError):
            file.parent.mkdir(parents=True, exist_ok=True)
            handle, name = tempfile.mkstemp(dir=file.parent, prefix=".tmp-", suffix=".json")
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump({"format": CACHE_FORMAT, "key": key, **entry}, out)
            os.replace(name, file)


@dataclass(slots=True)
class Tally:
    """One judge's or embedder's spending in this run."""

    calls: int = 0
    cached: int = 0
    cost: float = 0.0
    tokens: int = 0


def _embedding(value: Any) -> dict[str, Any]:
    """A Python embedder's return value (a list of numbers) as a target response."""
    return {"metadata": {"embedding": value}}


def _vector(value: Any) -> list[float]:
    if (not isinstance(value, list) or not value
            or not all(isinstance(x, int | float) and not isinstance(x, bool)
                       and math.isfinite(x) for x in value)):
        raise JudgeError("the embedder did not answer with a list of numbers")
    return [float(x) for x in value]


class Judges:
    """The :class:`~harness.judging.JudgeService` of one suite's run."""

    def __init__(self, suite: Suite, *, cache: Cache | None = None,
                 redactor: Callable[[], Redactor | None] | None = None,
                 share: int = 1) -> None:
        self.suite = suite
        self.cache = cache
        self._redactor = redactor or (lambda: None)
        self.share = max(1, share)
        """How many processes share the caps (pytest-xdist workers): each gets its part."""
        self.tally: dict[tuple[str, str], Tally] = {}
        self._bindings: dict[tuple[str, str], Binding] = {}
        self._lock = threading.Lock()

    # --- what checks ask -------------------------------------------------------------------

    def has_judge(self, name: str) -> bool:
        return name in self.suite.judges

    def price(self, model: str) -> Mapping[str, float] | None:
        return self.suite.prices.get(model)

    def vote(self, judge: str, messages: Sequence[Mapping[str, str]], *, rubric: str,
             index: int) -> Vote:
        spec = self._spec("judges", judge)
        sent = [{**message, "content": self._outgoing(spec, message["content"])}
                for message in messages]
        key = sha256_json({"kind": "vote", "config": spec.digest, "rubric": rubric,
                           "prompt_version": PROMPT_VERSION, "sent": sha256_json(sent),
                           "index": index})
        hit = self.cache.get(key) if self.cache is not None else None
        if hit is not None and hit.get("verdict") in ("pass", "fail"):
            self._count("judges", judge).cached += 1
            return Vote(verdict=hit["verdict"], reason=CACHED_REASON, judge=judge,
                        model=hit.get("model"), config_digest=spec.digest, cached=True)
        response = self._call("judges", judge, spec, {"messages": sent})
        try:
            verdict, reason = parse_verdict(response.output)
        except VerdictError as exc:
            raise JudgeError(str(exc), {"config_digest": spec.digest}) from None
        reason = self._stored(reason)
        model = response.metadata.get("model")
        model = model if isinstance(model, str) else None
        if self.cache is not None:  # the reason may quote the judged text: only its digest
            self.cache.put(key, {"verdict": verdict, "reason_digest": sha256_text(reason),
                                 "model": model,
                                 "config_digest": spec.digest, "rubric": rubric,
                                 "prompt_version": PROMPT_VERSION,
                                 "sent_digest": sha256_json(sent), "index": index})
        return Vote(verdict=verdict, reason=reason, judge=judge, model=model,
                    config_digest=spec.digest)

    def embed(self, embedder: str, text: str) -> list[float]:
        spec = self._spec("embedders", embedder)
        sent = self._outgoing(spec, text)
        key = sha256_json({"kind": "embedding", "config": spec.digest,
                           "sent": sha256_text(sent)})
        hit = self.cache.get(key) if self.cache is not None else None
        if hit is not None:
            with contextlib.suppress(JudgeError):
                vector = _vector(hit.get("embedding"))
                self._count("embedders", embedder).cached += 1
                return vector
        response = self._call("embedders", embedder, spec, sent)
        vector = _vector(response.metadata.get("embedding"))
        if self.cache is not None:
            self.cache.put(key, {"embedding": vector, "config_digest": spec.digest,
                                 "sent_digest": sha256_text(sent)})
        return vector

    # --- how calls are made ----------------------------------------------------------------

    def _spec(self, section: str, name: str) -> JudgeSpec:
        known: Mapping[str, JudgeSpec] = getattr(self.suite, section)
        if name not in known:
            listed = ", ".join(known) or "none"
            raise JudgeError(f"no {section[:-1]} named {name!r} in suite {self.suite.name}; "
                             f"{section}: {listed}")
        return known[name]

    def _outgoing(self, spec: JudgeSpec, text: str) -> str:
        if spec.receives == "raw":
            return text
        return (self._redactor() or Redactor()).text(text)

    def _stored(self, text: str) -> str:
        """What is kept of a judge's own words: redacted, whatever the run's settings, since
        a judge that received raw content may quote it."""
        redactor = self._redactor() or Redactor()
        return redactor.text(text)

    def _count(self, section: str, name: str) -> Tally:
        with self._lock:
            return self.tally.setdefault((section, name), Tally())

    def _binding(self, section: str, name: str, spec: JudgeSpec) -> Binding:
        with self._lock:
            binding = self._bindings.get((section, name))
            if binding is None:
                target = spec.target
                built: targets.Target
                if section == "embedders" and target.kind == "python":
                    function = resolve(target.main, self.suite.root, spec=target)
                    built = PythonTarget(lambda text, **params: _embedding(
                        function(text, **params)), dict(target.options.get("params", {})))
                else:
                    built = targets.build(target, self.suite.root)
                binding = self._bindings[(section, name)] = Binding.of(target, built)
            return binding

    def _admit(self, section: str, name: str, spec: JudgeSpec) -> Tally:
        """Count a call about to be made; a cap already reached raises instead."""
        tally = self._count(section, name)
        with self._lock:
            if spec.max_calls is not None and tally.calls >= spec.max_calls / self.share:
                raise JudgeError(f"{section[:-1]} {name} reached its cap of {spec.max_calls} "
                                 f"call(s) this run (max_calls)", {"cap": "max_calls"})
            if spec.max_cost is not None and tally.cost >= spec.max_cost / self.share:
                raise JudgeError(f"{section[:-1]} {name} reached its cost cap of "
                                 f"{spec.max_cost:g} this run (max_cost; spent "
                                 f"{tally.cost:.6f})", {"cap": "max_cost"})
            tally.calls += 1
        return tally

    def _call(self, section: str, name: str, spec: JudgeSpec, sent: Any) -> TargetResponse:
        tally = self._admit(section, name, spec)
        case = Case(id=f"{section[:-1]}:{name}", path=self.suite.path,
                    line=spec.target.line or 1, workflow=section[:-1], title=None, input=sent,
                    expect=(), timeout_s=spec.timeout_s)
        outcome = self._binding(section, name, spec).call(case)
        if outcome.response is None:
            raise JudgeError(f"the call failed: {outcome.error}",
                             {"config_digest": spec.digest, "attempts": outcome.attempts})
        self._spend(tally, spec, section, name, outcome.response)
        return outcome.response

    def _spend(self, tally: Tally, spec: JudgeSpec, section: str, name: str,
               response: TargetResponse) -> None:
        usage = response.metadata.get("usage")
        model = response.metadata.get("model")
        if not isinstance(usage, Mapping):
            if spec.max_cost is not None:
                raise JudgeError(f"{section[:-1]} {name} has a max_cost but reported no usage "
                                 "to price")
            return
        price = self.price(model) if isinstance(model, str) else None
        if price is None and spec.max_cost is not None:
            raise JudgeError(f"{section[:-1]} {name} has a max_cost but model {model!r} has no "
                             "price in the suite's prices:")
        with self._lock:
            tally.tokens += int(usage.get("total_tokens") or 0)
            if price is not None:
                tally.cost += call_cost(usage, price)

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per judge and embedder: calls made, verdicts from the cache, tokens and cost."""
        return {f"{section}.{name}": {"calls": t.calls, "cached": t.cached,
                                      "tokens": t.tokens, "cost": round(t.cost, 6)}
                for (section, name), t in sorted(self.tally.items())}


def for_suite(suite: Suite, *, no_cache: bool = False,
              redactor: Callable[[], Redactor | None] | None = None,
              share: int = 1) -> Judges | None:
    """The suite's judge service (None when it has no judges, embedders or prices)."""
    if not (suite.judges or suite.embedders or suite.prices):
        return None
    cache = None if no_cache else Cache(cache_home() / "judges")
    return Judges(suite, cache=cache, redactor=redactor, share=share)

