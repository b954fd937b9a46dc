"""Canaries: values a case says must never appear, found however they are written.

A leak is a leak in any case and any encoding. A text is searched in three views, each mapped
back to the text as written (so a finding can be redacted where it stands):

- as written, casefolded;
- normalised: zero-width characters and soft hyphens removed, each cluster of a character and
  its combining marks NFKC-normalised (full-width letters, ligatures, composed accents),
  casefolded, runs of white space read as one space;
- decoded, then normalised: URL-decoded (``%XX`` in UTF-8, and ``+`` within a URL or form
  body, up to three times, for values encoded twice) and HTML-entity-decoded (``&amp;``,
  ``&#39;``, ``&#x27;``) first.

A plaintext canary is normalised the same way and searched in every view (inside words too);
words may be
separated by any white space, and a number-like canary (six or more digits, only digits and
``+ ( ) . - , /`` or spaces) matches its digits in any grouping. A digest canary
``sha256:<salt>:<length>:<hex>`` holds the SHA-256 of salt + the normalised value and that
value's length: every window of that length of every view that starts and ends where a value
can (not inside a run of letters or digits, :func:`edges`) is hashed and compared, so a value
with punctuation or spaces (``$148,500``) is found wherever it stands, in a sentence, a URL or a
query string; so is a number's digest (``148500``) wherever the number is written with
separators (:func:`digits_view`). A digest canary glued to letters or digits on either side
(``xVelvet``) is not found; a plaintext one is. ``sha256-exact:...`` digests keep case (for
``no_leak`` with ``ignore_case: false``).
The first form, ``sha256:<salt>:<hex>``, still matches as it did: against tokens, runs of up to
four words, detector hits and whole texts (:func:`candidates`).

Out of scope: a canary split across two fields (or tool-call arguments), and encodings other
than the above (Base64, hex, ROT13, a value spelled out letter by letter).
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import re
import secrets
import string
import unicodedata
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from harness.detectors import NUMERIC, find_sensitive

INVISIBLE = frozenset("\u200b\u200c\u200d\u2060\ufeff\u00ad")
"""Zero-width characters and the soft hyphen: dropped before matching."""
URL_ROUNDS = 3
"""A value URL-encoded this many times over is still decoded."""
NUMBER = re.compile(r"[\d\s().+\-,/]+")
MIN_DIGITS = 6

_PERCENT = re.compile(r"(?:%[0-9A-Fa-f]{2})+")
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});?")
_SPACE = re.compile(r"\s+")
_LEGACY = re.compile(r"^sha256:([^:\s]+):([0-9a-fA-F]{64})$")
_CURRENT = re.compile(r"^(sha256|sha256-exact):([^:\s]+):([1-9][0-9]{0,5}):([0-9a-fA-F]{64})$")
DIGEST_FORMS = ("sha256:<salt>:<length>:<hex>", "sha256-exact:<salt>:<length>:<hex>",
                "sha256:<salt>:<hex> (the first form)")


# --- views of a text, mapped back to it ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class View:
    """A transformed text and, for each of its characters, the span of the original text it
    came from (``starts[i]`` to ``ends[i]``)."""

    text: str
    starts: Sequence[int]
    ends: Sequence[int]

    @classmethod
    def of(cls, text: str) -> View:
        """The text itself (or a transform of it that keeps every character in place)."""
        return cls(text, range(len(text)), range(1, len(text) + 1))

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original text's span behind this view's ``[start, end)`` (end > start)."""
        return self.starts[start], self.ends[end - 1]


def _rebuilt(view: View, pieces: Iterable[tuple[str, int, int]]) -> View:
    """A view from (text, first, last) pieces, each ``text`` standing for the view's
    characters ``first`` to ``last`` (exclusive); the map back follows."""
    chars: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for text, first, last in pieces:
        for char in text:
            chars.append(char)
            starts.append(view.starts[first])
            ends.append(view.ends[last - 1])
    return View("".join(chars), tuple(starts), tuple(ends))


def _clusters(text: str) -> Iterable[tuple[int, int]]:
    """Each character with the combining marks that follow it."""
    start = 0
    for index in range(1, len(text) + 1):
        if index == len(text) or not unicodedata.combining(text[index]):
            yield start, index
            start = index


def _folded(view: View, *, fold: bool) -> View:
    """The view casefolded (when ``fold``); where no character grows, the map stays as it is."""
    if not fold:
        return view
    folded = view.text.casefold()
    if len(folded) == len(view.text):  # casefolding never shrinks a character: each stayed one
        return View(folded, view.starts, view.ends)
    return _rebuilt(view, ((c.casefold(), i, i + 1) for i, c in enumerate(view.text)))


_UNEVEN_SPACE = re.compile(r"\s{2,}|[^\S ]")


def _normalised(view: View, *, fold: bool) -> View:
    text = view.text
    if not any(c in INVISIBLE for c in text) and unicodedata.is_normalized("NFKC", text):
        normal = _folded(view, fold=fold)  # the common case: nothing to drop or recompose
    else:
        normal = _rebuilt(view, _cluster_pieces(text, fold=fold))
    if not _UNEVEN_SPACE.search(normal.text):
        return normal
    return _rebuilt(normal, _spaces_collapsed(normal.text))


def _cluster_pieces(text: str, *, fold: bool) -> list[tuple[str, int, int]]:
    pieces = []
    for first, last in _clusters(text):
        cluster = "".join(c for c in text[first:last] if c not in INVISIBLE)
        cluster = unicodedata.normalize("NFKC", cluster)
        pieces.append((cluster.casefold() if fold else cluster, first, last))
    return pieces


def _spaces_collapsed(text: str) -> Iterable[tuple[str, int, int]]:
    """Each run of white space as one space; every other character as it is."""
    return _split(text, [(m.start(), m.end(), " ") for m in _SPACE.finditer(text)])


def _split(text: str, pieces: Iterable[tuple[int, int, str]]) -> list[tuple[str, int, int]]:
    """The text cut at ``pieces`` (start, end, replacement), kept as it is between them."""
    out, at = [], 0
    for start, end, replacement in pieces:
        out += [(c, i, i + 1) for i, c in enumerate(text[at:start], at)]
        out.append((replacement, start, end))
        at = end
    out += [(c, i, i + 1) for i, c in enumerate(text[at:], at)]
    return out


_URLISH = re.compile(r"\S*(?:[=?]|%[0-9A-Fa-f]{2}|://)\S*")
"""A token that is part of a URL or a form body: where ``+`` stands for a space."""


def _url_decoded(view: View, *, plus: bool) -> View:
    """``%XX`` decoded; ``+`` read as a space everywhere (``plus``), or only within a URL or
    form body (where a ``+`` in ``+1 555 0100`` is not a space)."""
    text = view.text
    if "%" not in text and "+" not in text:
        return view
    pieces = [(m.start(), m.end(), urllib.parse.unquote(m.group(), errors="replace"))
              for m in _PERCENT.finditer(text)]
    spans = [(0, len(text))] if plus else [m.span() for m in _URLISH.finditer(text)]
    pieces += [(i, i + 1, " ") for first, last in spans for i in range(first, last)
               if text[i] == "+"]
    return _rebuilt(view, _split(text, sorted(pieces)))


def _html_decoded(view: View) -> View:
    if "&" not in view.text:
        return view
    pieces = [(m.start(), m.end(), html.unescape(m.group()))
              for m in _ENTITY.finditer(view.text)]
    return _rebuilt(view, _split(view.text, pieces))


_DIGIT_RUN = re.compile(r"\d(?:[\s,.\-()+/]{0,2}\d)*")


def digits_view(view: View) -> View | None:
    """Each number of the view reduced to its digits (``$148,500`` -> ``148500``), numbers
    apart by a space: where a digest of a number written one way finds it written another.
    None when the view holds no number."""
    pieces: list[tuple[str, int, int]] = []
    for match in _DIGIT_RUN.finditer(view.text):
        if pieces:
            pieces.append((" ", match.start(), match.start() + 1))
        pieces += [(c, i, i + 1) for i, c in enumerate(match.group(), match.start())
                   if c.isdigit()]
    return _rebuilt(view, pieces) if pieces else None


def edges(text: str) -> tuple[list[int], set[int]]:
    """Where a value can start and end: not inside a run of letters or digits (a value stands
    apart from the letters and digits around it, however it is punctuated), and not on white
    space. Hashing only these windows, rather than every one, is what keeps digests cheap."""
    starts = [i for i, char in enumerate(text)
              if not char.isspace() and (i == 0 or not (char.isalnum() and text[i - 1].isalnum()))]
    ends = {i for i in range(1, len(text) + 1)
            if not text[i - 1].isspace()
            and (i == len(text) or not (text[i - 1].isalnum() and text[i].isalnum()))}
    return starts, ends


def plain_ascii(text: str) -> bool:
    """A text every view of which reads the same (folding aside): nothing to decode or
    normalise, so the text as written is all there is to search."""
    return text.isascii() and _ENCODED_OR_SPACED.search(text) is None


_ENCODED_OR_SPACED = re.compile(r"[%+&\t\n\r\x0b\x0c]|  ")
"""What makes an ASCII text read differently in another view: an escape or an entity, a
``+`` that may stand for a space, or white space other than single spaces."""


def views(text: str, *, fold: bool = True, plus: bool = True) -> list[View]:
    """The views a canary is searched in (see the module docstring). ``plus`` reads every
    ``+`` as an encoded space; without it only those within a URL or form body."""
    written = View.of(text)
    if plain_ascii(text):  # folding ASCII keeps every character in place
        return [View.of(text.lower()) if fold else written]
    shown = _folded(written, fold=fold)
    decoded = written
    for _ in range(URL_ROUNDS):
        again = _url_decoded(decoded, plus=plus)
        if again.text == decoded.text:
            break
        decoded = again
    decoded = _html_decoded(decoded)
    found = [shown]
    for view in (_normalised(written, fold=fold),
                 _normalised(decoded, fold=fold) if decoded.text != text else None):
        if view is not None and all(view.text != other.text for other in found):
            found.append(view)
    return found


def normalise(value: str, *, fold: bool = True) -> str:
    """A canary value as it is matched: zero-width characters dropped, NFKC, casefolded
    (unless ``fold`` is false), white space runs read as one space, stripped."""
    return _normalised(View.of(value), fold=fold).text.strip()


def sensitive(text: str, detectors: Sequence[str] | None = None
              ) -> list[tuple[str, int, int, str]]:
    """Every finding of the named detectors (default all) in ``text`` as written and in its
    decoded and normalised views (a URL-encoded address, a card number with zero-width
    spaces), as (detector, start, end, value): the span in ``text`` as written, the value as
    decoded (what a mask may show part of)."""
    names = list(detectors) if detectors is not None else None
    found = {(name, start, end): value for name, start, end, value
             in find_sensitive(text, names)}
    if not plain_ascii(text):
        for view in views(text, fold=False, plus=False)[1:]:
            for name, start, end, value in find_sensitive(view.text, names):
                start, end = view.span(start, end)
                if not any(other == name and a < end and start < b
                           for other, a, b in found):  # a finding already made as written
                    found[(name, start, end)] = value
    return [(name, start, end, value) for (name, start, end), value in found.items()]


# --- digests ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Digest:
    """A canary as a salted digest: ``hex`` = sha256(salt + value), ``length`` the length of
    the normalised value (None for the first form, which is matched by :func:`candidates`)."""

    salt: str
    hex: str
    length: int | None = None
    exact: bool = False

    @property
    def legacy(self) -> bool:
        return self.length is None

    def shown(self) -> str:
        """Enough of the digest to tell which one a reason means."""
        return f"sha256:{self.salt}:{self.hex[:12]}..."


def parse_digest(text: str) -> Digest:
    """A digest in any of its forms; ValueError names the forms otherwise."""
    text = text.strip()
    current = _CURRENT.fullmatch(text)
    if current is not None:
        kind, salt, length, hexdigest = current.groups()
        return Digest(salt, hexdigest.lower(), int(length), exact=kind == "sha256-exact")
    legacy = _LEGACY.fullmatch(text)
    if legacy is not None:
        return Digest(legacy.group(1), legacy.group(2).lower())
    shown = text if len(text) <= 24 else text[:24] + "..."
    problem = f"expected {' or '.join(DIGEST_FORMS)}, found {shown!r}"
    raise ValueError(problem)


def sha256(salt: str, value: str) -> str:
    return hashlib.sha256((salt + value).encode("utf-8")).hexdigest()


def canary_digest(value: str, salt: str | None = None, *, casefold: bool = True) -> str:
    """The digest form of a canary: ``sha256:<salt>:<length>:<hex>`` of the normalised value
    (``sha256-exact:...`` keeping case when ``casefold`` is false); of a number-like value
    (:func:`number_like`), of its digits, so it is found in any grouping.

    A random 16-hex-digit salt is drawn when none is given. The case file then holds neither
    the value nor a way to recover it without guessing the value itself.
    """
    if salt is None:
        salt = secrets.token_hex(8)
    if not salt or ":" in salt or any(char.isspace() for char in salt):
        raise ValueError("salt must be non-empty, without ':' or white space")
    normal = re.sub(r"\D", "", value) if number_like(value) else normalise(value, fold=casefold)
    if not normal:
        raise ValueError("the canary value is empty once normalised")
    kind = "sha256" if casefold else "sha256-exact"
    return f"{kind}:{salt}:{len(normal)}:{sha256(salt, normal)}"


# --- redaction markers -----------------------------------------------------------------------

MARKER = re.compile(
    r"\[redacted:([a-z_]+)(?::((?:sha256|sha256-exact):[^:\s\]]+:[1-9][0-9]{0,5}:[0-9a-f]{64}))?\]")
"""A redacted value as the harness writes it: ``[redacted:<detector>]``, or with the value's
salted digest, ``[redacted:<detector>:sha256:<salt>:<length>:<hex>]``."""


@dataclass(frozen=True, slots=True)
class Marker:
    """A redaction marker found in a text: the detector that found the value it replaces, and
    the value's digest when the marker keeps one."""

    start: int
    end: int
    detector: str
    digest: Digest | None = None


def redaction_marker(detector: str, digest: str | None = None) -> str:
    """The marker that stands in for a redacted value (see :data:`MARKER`)."""
    return f"[redacted:{detector}:{digest}]" if digest else f"[redacted:{detector}]"


def markers(text: str) -> list[Marker]:
    """Every redaction marker in ``text``. Replayed evidence holds markers where the incident
    held personal data: a check finds the data they stand for, as it would find the value."""
    if "[redacted:" not in text:
        return []
    return [Marker(m.start(), m.end(), m.group(1),
                   parse_digest(m.group(2)) if m.group(2) else None)
            for m in MARKER.finditer(text)]


QUOTES = "\u201c\u201d\u2018\u2019\u00ab\u00bb"  # typographic quotes and guillemets
PUNCTUATION = string.punctuation + QUOTES + "\u2026"
_CUT = re.compile(r"[,;:!?()\[\]{}<>\"'|/\\=" + QUOTES + "]+")
MAX_WORDS = 4
"""Runs of up to this many consecutive words are candidates, so names and addresses match."""


def candidates(text: str) -> set[str]:
    """The substrings of ``text`` a first-form digest is compared with.

    Each white-space token stripped of surrounding punctuation, and its parts split at common
    punctuation; runs of 2 to :data:`MAX_WORDS` consecutive tokens joined by one space; every
    detector hit, raw and (for numbers) digits-only or without separators; and the whole text.
    """
    found = {text, text.strip()}
    chunks = text.split()
    found.update(chunk.strip(PUNCTUATION) for chunk in chunks)
    for chunk in chunks:
        found.update(part.strip(PUNCTUATION) for part in _CUT.split(chunk))
    for size in range(2, MAX_WORDS + 1):
        for start in range(len(chunks) - size + 1):
            found.add(" ".join(chunks[start:start + size]).strip(PUNCTUATION))
    for detector, _, _, value in find_sensitive(text):
        found.add(value)
        if detector in NUMERIC:
            found.add(re.sub(r"[\s\-.()]", "", value).upper())
            found.add(re.sub(r"\D", "", value))
    found.discard("")
    return found


# --- finding canaries ------------------------------------------------------------------------


def number_like(value: str) -> bool:
    """A canary to match in any grouping of its digits (a card, a phone, an account)."""
    return bool(NUMBER.fullmatch(value)) and len(re.sub(r"\D", "", value)) >= MIN_DIGITS


def _value_pattern(value: str, *, fold: bool) -> list[re.Pattern[str]]:
    normal = normalise(value, fold=fold)
    if not normal:
        return []
    patterns = [re.compile(r"\s+".join(map(re.escape, normal.split(" "))) if " " in normal
                           else re.escape(normal))]
    if number_like(value):
        digits = re.sub(r"\D", "", value)
        patterns.append(re.compile(r"(?<!\d)" + r"[\s().+\-,/]*".join(digits) + r"(?!\d)"))
    return patterns


@dataclass(frozen=True, slots=True)
class Hit:
    """Where a canary stands in a text (as written), and which canary it is."""

    start: int
    end: int
    canary: str
    """``values[i]`` or ``digests[i]``: the canary's place in its list."""


class Canaries:
    """A set of canaries (plaintext values and digests) and how to find them in a text.

    ``fold`` (default true) matches plaintext values in any case; digests say for themselves
    (``sha256-exact`` keeps case).
    """

    def __init__(self, values: Sequence[str] = (), digests: Sequence[str | Digest] = (), *,
                 fold: bool = True) -> None:
        self.fold = fold
        self.plain = [(f"values[{i}]", value) for i, value in enumerate(values)]
        self.values = [(f"values[{i}]", pattern) for i, value in enumerate(values)
                       for pattern in _value_pattern(value, fold=fold)]
        self.digests = [(f"digests[{i}]", d if isinstance(d, Digest) else parse_digest(d))
                        for i, d in enumerate(digests)]
        self._windows: dict[tuple[str, int, bool], dict[str, list[str]]] = {}
        self._legacy: dict[str, dict[str, list[str]]] = {}
        for label, digest in self.digests:
            if digest.legacy:
                self._legacy.setdefault(digest.salt, {}).setdefault(digest.hex, []).append(label)
            else:
                assert digest.length is not None
                key = (digest.salt, digest.length, digest.exact)
                self._windows.setdefault(key, {}).setdefault(digest.hex, []).append(label)

    def __bool__(self) -> bool:
        return bool(self.values or self.digests)

    def find(self, text: str) -> list[Hit]:
        """Every canary in ``text``, as spans of the text as written."""
        if not text or not self:
            return []
        hits: dict[tuple[int, int, str], None] = {}
        wanted_folds = {self.fold} | {not exact for (_, _, exact) in self._windows}
        for fold in wanted_folds:
            for view in views(text, fold=fold):
                if fold == self.fold:
                    for label, pattern in self.values:
                        for match in pattern.finditer(view.text):
                            if match.end() > match.start():
                                hits[(*view.span(match.start(), match.end()), label)] = None
                if not self._windows:
                    continue
                digits = digits_view(view)
                for scanned in (view, digits) if digits is not None else (view,):
                    self._window_hits(scanned, fold, hits)
        for start, end, label in self._legacy_hits(text):
            hits[(start, end, label)] = None
        for start, end, label in self._marker_hits(text):
            hits[(start, end, label)] = None
        return [Hit(start, end, label) for start, end, label in sorted(hits)]

    def _marker_hits(self, text: str) -> list[tuple[int, int, str]]:
        """Redaction markers that keep the digest of a canary: the digest itself, or a
        plaintext canary whose digest under the marker's salt is the marker's."""
        found = []
        for marker in markers(text):
            digest = marker.digest
            if digest is None or digest.length is None:
                continue
            found += [(marker.start, marker.end, label) for label, wanted in self.digests
                      if (wanted.salt, wanted.hex, wanted.length, wanted.exact)
                      == (digest.salt, digest.hex, digest.length, digest.exact)]
            for label, value in self.plain:
                with contextlib.suppress(ValueError):
                    if canary_digest(value, digest.salt, casefold=not digest.exact) == (
                            f"{'sha256-exact' if digest.exact else 'sha256'}:{digest.salt}:"
                            f"{digest.length}:{digest.hex}"):
                        found.append((marker.start, marker.end, label))
        return found

    def _window_hits(self, view: View, fold: bool,
                     hits: dict[tuple[int, int, str], None]) -> None:
        """Every window of each digest's length, starting and ending where a value can (see
        :func:`edges`), whose salted hash is the digest's."""
        text = view.text
        starts, ends = edges(text)
        for (salt, length, exact), wanted in self._windows.items():
            if exact == fold or length > len(text):
                continue
            for start in starts:
                end = start + length
                if end > len(text):
                    break
                if end not in ends:
                    continue
                for label in wanted.get(sha256(salt, text[start:end]), ()):
                    hits[(*view.span(start, end), label)] = None

    def _legacy_hits(self, text: str) -> list[tuple[int, int, str]]:
        if not self._legacy:
            return []
        found = []
        for candidate in candidates(text):
            labels = [label for form in {candidate, candidate.casefold()}
                      for salt, wanted in self._legacy.items()
                      for label in wanted.get(sha256(salt, form), ())]
            if not labels:
                continue
            pattern = r"\s+".join(map(re.escape, candidate.split()))
            found += [(m.start(), m.end(), label)
                      for m in re.finditer(pattern, text, re.IGNORECASE) for label in labels]
        return found
