"""Redaction: personal and secret data out of case results before they are stored or shown.

A data-exposure incident leaked data once; the harness must not spread it again through its run
records, its failure text or the reports rendered from them. :func:`redact_result` returns a copy
of a case result in which every finding of the exposure detectors
(:data:`harness.detectors.DETECTORS`) is replaced by ``[redacted:<detector>]`` (for
example ``[redacted:email]``) and every canary of the case by ``[redacted:canary]``.

Redacted: the case ``input``; each trial's ``error`` and its response's ``output``, tool-call
``args`` and ``result``, source ``title`` and ``url``, approval ``step``, ``approver`` and
``role``, and ``metadata``; each check outcome's ``reason``, ``expected``, ``obtained`` and
``evidence``. Values are walked through mappings (string keys included), lists and tuples. A
string under a mapping key is scanned as ``key: value``, as ``no_pii`` scans tool arguments, so
``{"phone": "5551234567"}`` is found. Numbers are scanned as their decimal text and replaced by
the marker string only when a detector finds them (a card number stored as an int, or a phone
number under a key such as ``phone``); booleans and ``None`` are kept. Other objects are
scanned as their ``str()``, which is what a run record stores.

Canaries: plaintext values (``no_leak`` ``values``) and digests (``no_leak`` ``digests``) are
found as ``no_leak`` finds them (:class:`harness.canaries.Canaries`): in any case, URL- or
HTML-encoded, NFKC-normalised, with zero-width characters, a number in any grouping; the whole
stretch of text they stand in (the encoded form included) is redacted. A run redacts the
canaries of every case of its suites from every case's result (:func:`run_canaries`): a value
one case guards must not show in plaintext where another case's output carries it.

Not redacted: what the detectors miss (see :mod:`harness.detectors`): names and postal
addresses in particular are not detected, so cases about them need ``no_leak`` values or
digests; ids, verdicts, scores, lines, durations, tool names, source ids and dates, approval
``status`` and ``at``, and the case's path, title, workflow and owner, which come from the case
file. Findings that overlap are replaced together by one marker named after the earliest (then
longest) of them, so no part of either survives. Markers already in a text are kept as they are,
so redacting twice gives the same result. Two mapping keys that redact to the same text are
kept apart as ``[redacted:email]``, ``[redacted:email]#2``, ...

Speed: a detector runs only on text that passes its trigger (:data:`TRIGGERS`), a cheap test
every text holding one of its findings passes; texts up to :data:`REMEMBERED_LENGTH` characters
are remembered with their findings, and a redactor remembers the short texts that held nothing
(with the key they sat under), since keys, reasons and short values repeat from result to
result. Digests are the slow part: every stretch of a digest's length of each view of a text
is hashed, once per salt and length.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from harness.canaries import MARKER, Canaries, canary_digest, plain_ascii, redaction_marker, views
from harness.detectors import DETECTORS, find_sensitive
from harness.model import Case, CaseResult, CheckOutcome, TargetResponse, Trial

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

CANARY = "canary"
"""The marker label of a canary value: ``[redacted:canary]``."""

_MARKER = MARKER

_KEY_MARKS = re.compile(
    r"api|token|secret|[sr]k[-_]|a[ks]ia|gh[pousr]_|github_pat_|xox[baprs]-|aiza")
"""In lower-case text: a word of a key assignment, or the start of a known key prefix."""
_FOLD = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s"})
"""The letters that regular expressions ignoring case match with i and s but that
``str.lower`` does not turn into them (dotted capital I, dotless i, long s); the Kelvin sign
lowers to k."""


def _may_hold_key(text: str) -> bool:
    """A key prefix (sk-, sk_live_, AKIA, ghp_, ...), or api, token or secret, in any case."""
    folded = text.lower() if text.isascii() else text.translate(_FOLD).lower()
    return _KEY_MARKS.search(folded) is not None


def _holds(fragment: str) -> Callable[[str], bool]:
    return lambda text: fragment in text


def _matches(pattern: str, *, digits: int = 0, fragment: str = "") -> Callable[[str], bool]:
    """A pattern's search, skipped where it cannot match: an ASCII text with fewer than
    ``digits`` digits (a non-ASCII one may hold other digits ``\\d`` matches), or a text
    without ``fragment``."""
    search = re.compile(pattern).search

    def test(text: str) -> bool:
        if fragment not in text or (digits and text.isascii() and _digits(text) < digits):
            return False
        return search(text) is not None

    return test


_NOT_DIGITS = bytes(sorted(set(range(256)) - set(b"0123456789")))


def _digits(text: str) -> int:
    """How many digits an ASCII text holds."""
    return len(text.encode("ascii").translate(None, _NOT_DIGITS))


_six_digits = _matches(r"\d(?:[().\- \u00a0]*\d){5}", digits=6)
TRIGGERS: dict[str, Callable[[str], bool]] = {
    "email": _holds("@"),
    "phone": _six_digits,
    "payment_card": _six_digits,
    "iban": _matches(r"[A-Za-z]{2}\d\d(?:[ \-]?[A-Za-z0-9]){11}", digits=2),
    "national_id": _six_digits,
    "api_key": _may_hold_key,
    "private_key": _holds("-----BEGIN "),
    "jwt": _matches(r"\.[A-Za-z0-9_\-]{8,}\.", fragment="."),
}
"""Detector name -> a test every text holding one of its findings passes (a necessary
condition, not a sufficient one), so the detector is not run on other texts: six digits with
at most phone separators between them (phones have 8 or more digits, cards 13 or more, SSNs
and NI numbers 6 or more), two letters, two digits and 11 letters or digits (IBANs), ``@``
(emails), a key prefix or api, token or secret (API keys), ``-----BEGIN `` (private keys)
and a dotted middle segment (JWTs). A detector without a test runs on every text."""


Span = tuple[int, int, str]
"""Start and end offsets of a text to replace, and the marker label to put there."""


def marker(label: str) -> str:
    """The text that stands in for a redacted value: ``[redacted:<label>]``."""
    return redaction_marker(label)


@functools.cache
def _plan(detectors: tuple[str, ...]) -> tuple[tuple[Callable[[str], bool] | None,
                                                     tuple[str, ...]], ...]:
    """The detectors grouped by their trigger (None: no trigger), each trigger once."""
    groups: dict[Callable[[str], bool] | None, list[str]] = {}
    for name in detectors:
        groups.setdefault(TRIGGERS.get(name), []).append(name)
    return tuple((trigger, tuple(names)) for trigger, names in groups.items())


def _triggered(scanned: str, detectors: tuple[str, ...]) -> list[str]:
    """The detectors whose trigger the text passes (each trigger tested once)."""
    names: list[str] = []
    for trigger, group in _plan(detectors):
        if trigger is None or trigger(scanned):
            names += group
    return names


def _findings(scanned: str, detectors: tuple[str, ...]) -> tuple[tuple[str, int, int], ...]:
    """(detector, start, end) of every finding, in the text as written and in its decoded and
    normalised views (:func:`harness.canaries.views`), running on each only the detectors
    whose trigger it passes."""
    names = _triggered(scanned, detectors)
    found = {(name, start, end) for name, start, end, _ in
             (find_sensitive(scanned, names) if names else ())}
    if not plain_ascii(scanned):
        for view in views(scanned, fold=False, plus=False)[1:]:
            names = _triggered(view.text, detectors)
            found.update((name, *view.span(start, end)) for name, start, end, _ in
                         (find_sensitive(view.text, names) if names else ()))
    return tuple(sorted(found, key=lambda f: (f[1], f[2], f[0])))


REMEMBERED_LENGTH = 256
"""Texts up to this long are remembered with their findings, since keys, reasons and short
values repeat across thousands of results; longer texts are scanned each time."""
_remembered = functools.lru_cache(maxsize=4096)(_findings)

CLEAN_TEXTS = 16384
"""How many short texts (with the key they sat under) a redactor remembers as holding nothing
to redact, so that the keys, reasons and values repeated from result to result are scanned
once; it forgets them all when it has remembered this many."""


def _outside_markers(start: int, end: int, markers: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of ``[start, end)`` that no marker covers."""
    pieces = []
    for marker_start, marker_end in markers:
        if marker_end <= start or marker_start >= end:
            continue
        if marker_start > start:
            pieces.append((start, marker_start))
        start = max(start, marker_end)
    if start < end:
        pieces.append((start, end))
    return pieces


def _merged(spans: list[tuple[int, int, int, str]]) -> list[Span]:
    """Overlapping spans joined into one, named by the earliest, then longest, then by rank."""
    merged: list[Span] = []
    for start, end, _, label in sorted(spans, key=lambda s: (s[0], -s[1], s[2])):
        if merged and start < merged[-1][1]:
            last_start, last_end, last_label = merged[-1]
            merged[-1] = (last_start, max(last_end, end), last_label)
        else:
            merged.append((start, end, label))
    return merged


def _replaced(text: str, spans: list[Span], salt: str | None = None) -> str:
    parts, at = [], 0
    for start, end, label in spans:
        digest = None
        if salt is not None:
            with contextlib.suppress(ValueError):  # nothing left once normalised: no digest
                digest = canary_digest(text[start:end], salt)
        parts += [text[at:start], redaction_marker(label, digest)]
        at = end
    parts.append(text[at:])
    return "".join(parts)


class Redactor:
    """Redacts texts, JSON-like values and case results with a fixed set of detectors (names
    from :data:`DETECTORS`, default all), canary values and canary digests."""

    def __init__(self, *, detectors: Sequence[str] | None = None, canaries: Sequence[str] = (),
                 digests: Sequence[str] = (), salt: str | None = None,
                 known: Sequence[tuple[str, str]] = ()) -> None:
        # ``known``: (label, value) pairs redacted wherever they stand, marked with their label
        # (a value a detector found once, with context, found again without it)
        self._labels = {f"values[{len(canaries) + i}]": label
                        for i, (label, _) in enumerate(known)}
        canaries = [*canaries, *(value for _, value in known)]
        self.salt = salt
        """With a salt, each marker keeps the salted digest of what it replaced
        (``[redacted:email:sha256:<salt>:...]``), so checks find the value on replay."""
        if detectors is None:
            names = list(DETECTORS)
        elif isinstance(detectors, str):
            names = [detectors]
        else:
            names = list(detectors)
        unknown = [name for name in names if name not in DETECTORS]
        if unknown:
            message = (f"unknown detector {unknown[0]!r}; expected one or more of "
                       f"{', '.join(DETECTORS)}")
            raise ValueError(message)
        self.detectors = tuple(name for name in DETECTORS if name in names)
        self._rank = {name: rank for rank, name in enumerate(self.detectors)}
        self._canaries = Canaries(canaries, digests)
        self._clean: set[tuple[str | None, str]] = set()

    # --- texts ----------------------------------------------------------------------------

    def text(self, text: str, *, key: str | None = None) -> str:
        """``text`` with every finding and canary replaced by its marker; ``text`` itself when
        it holds none. ``key`` is the mapping key the text sits under, read as context."""
        seen = (key, text)
        if seen in self._clean:
            return text
        spans = self._spans(text, key)
        if not spans:
            if len(text) <= REMEMBERED_LENGTH:
                if len(self._clean) >= CLEAN_TEXTS:
                    self._clean.clear()
                self._clean.add(seen)
            return text
        while spans:
            text = _replaced(text, spans, self.salt)
            spans = self._spans(text, key)
        return text

    def _spans(self, text: str, key: str | None) -> list[Span]:
        found = self._detector_spans(text, key)
        last = len(self._rank)
        found += [(hit.start, hit.end, last, self._labels.get(hit.canary, CANARY))
                  for hit in self._canaries.find(text)]
        if not found:
            return []
        markers = [m.span() for m in _MARKER.finditer(text)]
        pieces = [(piece_start, piece_end, rank, label)
                  for start, end, rank, label in found
                  for piece_start, piece_end in _outside_markers(start, end, markers)]
        return _merged(pieces)

    def _detector_spans(self, text: str, key: str | None) -> list[tuple[int, int, int, str]]:
        prefix = f"{key}: " if key else ""
        scanned = prefix + text
        find = _remembered if len(scanned) <= REMEMBERED_LENGTH else _findings
        shift = len(prefix)
        return [(max(start - shift, 0), end - shift, self._rank[name], name)
                for name, start, end in find(scanned, self.detectors) if end > shift]

    # --- values ---------------------------------------------------------------------------

    def value(self, value: Any, *, key: str | None = None) -> Any:
        """``value`` with every string in it redacted, through mappings (keys too), lists and
        tuples; parts without findings are returned as they are (the same objects)."""
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, str):
            return self.text(value, key=key)
        if isinstance(value, Mapping):
            return self._mapping(value)
        if isinstance(value, list | tuple):
            items = [self.value(item, key=key) for item in value]
            if all(new is old for new, old in zip(items, value, strict=True)):
                return value
            return tuple(items) if isinstance(value, tuple) else items
        shown = str(value)
        redacted = self.text(shown, key=key)
        return value if redacted == shown else redacted

    def _mapping(self, value: Mapping[Any, Any]) -> Mapping[Any, Any]:
        out: dict[Any, Any] = {}
        changed = False
        for name, item in value.items():
            label, context = name, None
            if isinstance(name, str):
                label = self.text(name)
                if label == name and not _MARKER.search(name):
                    context = name
            if label in out:
                label = next(f"{label}#{n}" for n in range(2, len(out) + 3)
                             if f"{label}#{n}" not in out)
            out[label] = self.value(item, key=context)
            changed = changed or label is not name or out[label] is not item
        return out if changed else value

    def _optional(self, text: str | None) -> str | None:
        return None if text is None else self.text(text)

    # --- results --------------------------------------------------------------------------

    def result(self, result: CaseResult) -> CaseResult:
        """``result`` with its input, responses, errors and check outcomes redacted; ids,
        verdicts, scores, lines and durations are kept. Unchanged parts are the same objects,
        and a result without findings is returned as it is."""
        return _updated(
            result,
            input=self.value(result.input),
            trials=_items(result.trials, [self._trial(trial) for trial in result.trials]),
        )

    def _trial(self, trial: Trial) -> Trial:
        checks = [self._outcome(outcome) for outcome in trial.checks]
        turns = [_updated(turn, user=self.text(turn.user), error=self._optional(turn.error),
                          response=None if turn.response is None
                          else self._response(turn.response))
                 for turn in trial.turns]
        return _updated(
            trial,
            error=self._optional(trial.error),
            response=None if trial.response is None else self._response(trial.response),
            checks=_items(trial.checks, checks),
            turns=_items(trial.turns, turns),
        )

    def _response(self, response: TargetResponse) -> TargetResponse:
        calls = [_updated(call, args=self.value(call.args), result=self.value(call.result))
                 for call in response.tool_calls]
        sources = [_updated(source, title=self._optional(source.title),
                            url=self._optional(source.url))
                   for source in response.sources]
        approvals = [_updated(approval, step=self.text(approval.step),
                              approver=self._optional(approval.approver),
                              role=self._optional(approval.role))
                     for approval in response.approvals]
        return _updated(
            response,
            output=self.text(response.output),
            tool_calls=_items(response.tool_calls, calls),
            sources=_items(response.sources, sources),
            approvals=_items(response.approvals, approvals),
            metadata=self.value(response.metadata),
        )

    def _outcome(self, outcome: CheckOutcome) -> CheckOutcome:
        return _updated(
            outcome,
            reason=self.text(outcome.reason),
            expected=self.value(outcome.expected),
            obtained=self.value(outcome.obtained),
            evidence=self.value(outcome.evidence),
        )


_Item = TypeVar("_Item", bound="DataclassInstance")


def _updated(item: _Item, **fields: Any) -> _Item:
    """``item`` itself when every field is the same object as before, else a copy with them."""
    changed = {name: new for name, new in fields.items() if new is not getattr(item, name)}
    return replace(item, **changed) if changed else item


def _items(old: tuple[_Item, ...], new: list[_Item]) -> tuple[_Item, ...]:
    return old if all(a is b for a, b in zip(new, old, strict=True)) else tuple(new)


_DEFAULT = Redactor()


def redact_text(text: str, *, detectors: Sequence[str] | None = None) -> str:
    """``text`` with every finding of the named detectors (default all) replaced by
    ``[redacted:<detector>]``; ``text`` itself when it holds none."""
    redactor = _DEFAULT if detectors is None else Redactor(detectors=detectors)
    return redactor.text(text)


def redact_value(value: Any, *, detectors: Sequence[str] | None = None) -> Any:
    """``value`` with every finding redacted in its strings, mapping keys and numbers (see the
    module docstring); unchanged parts are returned as they are."""
    redactor = _DEFAULT if detectors is None else Redactor(detectors=detectors)
    return redactor.value(value)


def redact_result(result: CaseResult, *, canaries: Sequence[str] = (),
                  digests: Sequence[str] = ()) -> CaseResult:
    """``result`` with every detector finding, every ``canaries`` value and every value whose
    ``sha256:<salt>:<hex>`` is in ``digests`` redacted (see the module docstring): a copy, or
    ``result`` itself when nothing was found.

    Pass ``canaries_of(case)`` and ``canary_digests_of(case)`` for the case's ``no_leak``
    canaries. A malformed digest raises ``ValueError``.
    """
    if not canaries and not digests:
        return _DEFAULT.result(result)
    return Redactor(canaries=canaries, digests=digests).result(result)


# --- a case's canaries ------------------------------------------------------------------------


def _no_leak_param(case: Case, name: str, *, shorthand: bool) -> tuple[str, ...]:
    found: list[str] = []
    for expectation in case.expectations:
        if expectation.kind != "no_leak":
            continue
        params = expectation.params
        raw = params.get(name) if isinstance(params, Mapping) else params if shorthand else None
        items = [raw] if isinstance(raw, str) else raw if isinstance(raw, list | tuple) else []
        found += [item for item in items if isinstance(item, str) and item.strip()]
    return tuple(dict.fromkeys(found))


def run_redactor(cases: Iterable[Case]) -> Redactor:
    """One redactor for a whole run: every detector, and the canaries of every case."""
    values: dict[str, None] = {}
    digests: dict[str, None] = {}
    for case in cases:
        values.update(dict.fromkeys(canaries_of(case)))
        digests.update(dict.fromkeys(canary_digests_of(case)))
    if not values and not digests:
        return _DEFAULT
    return Redactor(canaries=list(values), digests=list(digests))


def canaries_of(case: Case) -> tuple[str, ...]:
    """The plaintext ``values`` of every ``no_leak`` check of ``case``, in order, once each
    (the shorthand ``- no_leak: [..]`` included)."""
    return _no_leak_param(case, "values", shorthand=True)


def canary_digests_of(case: Case) -> tuple[str, ...]:
    """The ``digests`` of every ``no_leak`` check of ``case``, in order, once each."""
    return _no_leak_param(case, "digests", shorthand=False)
