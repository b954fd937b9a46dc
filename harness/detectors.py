"""Detectors of personal and secret data: ``text -> [(start, end, value)]``, and masking.

A bottom-layer module: the data-exposure checks, the redaction of run records and reports, and
the drafting of cases from traces all find sensitive data the same way. :data:`DETECTORS` maps
each name to its function; :func:`find_sensitive` runs them; :func:`mask` renders a found value
for display without revealing it.

Detectors favour precision over recall: numbers must pass their checksum (Luhn for cards,
ISO 13616 mod-97 for IBANs) or a shape and context test (phones), so order ids, prices and
dates are not reported. What they miss: phone numbers written as a bare digit run with no
leading ``+`` or ``0`` and no word like "phone" or "call" nearby, SSNs written without
separators, lower-case UK NI numbers, names and postal addresses (use ``no_leak`` with the
values from the incident for those), and secrets in shapes not listed in ``api_key``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
import string
from collections.abc import Callable

Finding = tuple[int, int, str]
"""One detector hit: start and end offsets in the scanned text, and the text found there."""


_EMAIL = re.compile(
    r"(?<![A-Za-z0-9_%+.\-])"
    r"[A-Za-z0-9_%+\-]+(?:\.[A-Za-z0-9_%+\-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
    r"(?![A-Za-z0-9\-])"
)


def detect_email(text: str) -> list[Finding]:
    """Email addresses (ASCII, with a dotted domain)."""
    return [(m.start(), m.end(), m.group()) for m in _EMAIL.finditer(text)]


def _luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


_IBAN_BEFORE = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?:[ \-][A-Za-z0-9]{4})*[ \-]$")
"""The start of an IBAN (valid or not), whose digits would otherwise read as a phone or card."""
_CARD = re.compile(r"(?<![\w+\-])(?<!\d\.)\d(?:[ \-]?\d){12,18}(?!\w|\.\d)")


def detect_payment_card(text: str) -> list[Finding]:
    """Card numbers: 13-19 digits, optionally grouped by spaces or dashes, Luhn-valid.

    Groups must look like a card's (4, then 4-6 digits each); numbers starting with 0, of one
    repeated digit, or inside an IBAN (valid or not) are not cards.
    """
    ibans = detect_iban(text)
    found = []
    for m in _CARD.finditer(text):
        value = m.group()
        digits = re.sub(r"\D", "", value)
        groups = re.split(r"[ \-]", value)
        if len(groups) > 1 and (
            len(groups[0]) != 4
            or any(not 4 <= len(g) <= 6 for g in groups[1:-1])
            or len(groups[-1]) > 6
        ):
            continue
        if digits[0] == "0" or len(set(digits)) == 1 or not _luhn_ok(digits):
            continue
        if _overlaps(m.start(), m.end(), ibans) or _IBAN_BEFORE.search(
            text[max(0, m.start() - 40):m.start()]
        ):
            continue
        found.append((m.start(), m.end(), value))
    return found


IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21,
    "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31,
    "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24, "TR": 26,
    "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}
"""IBAN length per country (ISO 13616 registry); other countries may use 15-34 characters."""

_LETTER_DIGITS = {ord(char): str(value) for value, char in enumerate(string.ascii_uppercase, 10)}
_IBAN_RUN = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?:[ \-]?[A-Za-z0-9]){11,30}")


def _iban_ok(compact: str) -> bool:
    country = compact[:2]
    expected = IBAN_LENGTHS.get(country)
    if expected is not None and len(compact) != expected:
        return False
    if not 15 <= len(compact) <= 34 or not 2 <= int(compact[2:4]) <= 98:
        return False
    rearranged = compact[4:] + compact[:4]
    return int(rearranged.translate(_LETTER_DIGITS)) % 97 == 1


def detect_iban(text: str) -> list[Finding]:
    """IBANs: country code, check digits and account, grouped or not, mod-97 valid."""
    return list(_ibans(text))


@functools.lru_cache(maxsize=16)  # the card and phone detectors ask again for the same text
def _ibans(text: str) -> tuple[Finding, ...]:
    found = []
    at = 0
    while (m := _IBAN_RUN.search(text, at)) is not None:
        start, at = m.start(), m.start() + 1
        known = IBAN_LENGTHS.get(m.group()[:2].upper())
        # The run may take in following words: try each end at a word boundary whose length
        # fits the country, longest first.
        ends, size = [], 0
        for end in range(start + 1, m.end() + 1):
            size += text[end - 1].isalnum()
            fits = size == known if known else 15 <= size <= 34
            if fits and text[end - 1].isalnum() and not text[end:end + 1].isalnum():
                ends.append(end)
        for end in reversed(ends):
            if _iban_ok(re.sub(r"[ \-]", "", text[start:end]).upper()):
                found.append((start, end, text[start:end]))
                at = end
                break
    return tuple(found)


_SSN = re.compile(
    r"(?<![\w\-])(?!000|666|9)\d{3}([\- ])(?!00)\d{2}\1(?!0000)\d{4}(?![\w\-])"
)
_UK_NI = re.compile(
    r"(?<![A-Za-z0-9])(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
    r"( ?)\d{2}\1\d{2}\1\d{2}\1[A-D](?![A-Za-z0-9])"
)


def detect_national_id(text: str) -> list[Finding]:
    """US Social Security numbers (123-45-6789, valid ranges only) and UK National Insurance
    numbers (AB 12 34 56 C or AB123456C, upper case, allocated prefixes only)."""
    found = [(m.start(), m.end(), m.group()) for m in _SSN.finditer(text)]
    found += [(m.start(), m.end(), m.group()) for m in _UK_NI.finditer(text)]
    return sorted(found)


_PHONE_RUN = re.compile(r"(?<![\w#+\-./@])[+(]?\d(?:[\d().\- \u00a0]*\d)?")
_PHONE_WORD = re.compile(
    r"(?i)(?<![a-z])(?:phone|tel|telephone|mobile|cell|cellphone|call|sms|text|whatsapp|fax)"
    r"(?![a-z])[\w\s.:#=\-]{0,14}$"
)
_ID_WORD = re.compile(
    r"(?i)(?<![a-z])(?:order|invoice|inv|ref|reference|ticket|case|tracking|account|acct|sku|"
    r"id|po)(?![a-z])[\s_]*(?:number|no|nr|id)?[\s.:#=_\-]{0,4}$"
)
_CURRENCY_BEFORE = re.compile(r"(?i)(?:[$€£¥₹]|\b(?:usd|eur|gbp|chf|jpy|cad|aud|inr))\s*$")
_CURRENCY_AFTER = re.compile(
    r"(?i)^\s*(?:[$€£¥₹]|(?:usd|eur|gbp|chf|jpy|cad|aud|inr|dollars?|euros?|pounds?)\b)"
)
_NOT_PHONE_SHAPES = (
    re.compile(r"^\d{4}[\-.]\d{1,2}[\-.]\d{1,2}(?!\d)"),  # ISO date
    re.compile(r"^\d{1,2}[\-.]\d{1,2}[\-.]\d{4}(?!\d)"),  # day-month-year
    re.compile(r"^\d{3}[\- ]\d{2}[\- ]\d{4}$"),  # SSN shape
    re.compile(r"^\d{5}-\d{4}$"),  # US ZIP+4
    re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$"),  # IPv4 address
    re.compile(r"^\d+\.\d+$"),  # decimal number
    re.compile(r"^\d{1,3}(?:\.\d{3})+$"),  # thousands grouped with dots
    re.compile(r"^(?:19|20)\d\d(?:[ .\-](?:19|20)\d\d)+$"),  # a list of years
)


def _phone_ok(value: str, before: str, after: str) -> bool:
    digits = re.sub(r"\D", "", value)
    international = value.startswith("+")
    if international:
        low, high = 8, 15
    elif value.startswith("00"):
        low, high = 11, 17  # 00 + country code and number
    else:
        low, high = 9, 15
    if not low <= len(digits) <= high or len(set(digits)) == 1:
        return False
    if value.count("(") != value.count(")") or value.count("(") > 1:
        return False
    if "(" in value and not re.search(r"\(\d{1,5}\)", value):
        return False
    separators = re.findall(r"\D+", value.lstrip("+"))
    if any(len(sep.replace("(", "").replace(")", "")) > 1 for sep in separators):
        return False
    groups = re.findall(r"\d+", value)
    if sum(len(group) == 1 for group in groups) > 2:
        return False
    if _CURRENCY_BEFORE.search(before[-8:]) or _CURRENCY_AFTER.search(after):
        return False
    if international:
        return True
    if any(shape.search(value) for shape in _NOT_PHONE_SHAPES):
        return False
    if _ID_WORD.search(before[-30:]) or _IBAN_BEFORE.search(before):
        return False
    if len(groups) == 1:  # a bare run of digits: a trunk prefix or a word like "phone" nearby
        return (digits.startswith("0") and 10 <= len(digits) <= 11) or bool(
            _PHONE_WORD.search(before[-40:])
        )
    return True


def detect_phone(text: str) -> list[Finding]:
    """Phone numbers: international (+ or 00) and national formats with 9-15 digits (8 with +).

    Not phones: order ids (A-1001, #123456789, "order 123-456-789"), prices (next to a currency),
    dates, ZIP+4 codes, IP addresses, decimals, SSNs, card numbers and IBANs.
    """
    taken = detect_payment_card(text) + detect_iban(text) + detect_national_id(text)
    found = []
    for m in _PHONE_RUN.finditer(text):
        value, start = m.group(), m.start()
        if value.startswith("(") and ")" not in value:
            value, start = value[1:], start + 1
        end = start + len(value)
        after = text[end:end + 12]
        if after[:1].isalnum() or after[:1] in ("_", "@"):
            continue
        before = text[max(0, start - 40):start]
        if _phone_ok(value, before, after) and not _overlaps(start, end, taken):
            found.append((start, end, value))
    return found


_API_KEYS = (  # prefixes in any case: an upper-cased key is still a leaked key
    re.compile(r"(?<![A-Za-z0-9_\-])(?i:sk-(?:proj-|ant-)?)[A-Za-z0-9_\-]{20,}"),
    re.compile(r"(?<![A-Za-z0-9_])(?i:(?:sk|rk)_(?:live|test)_)[A-Za-z0-9]{16,}"),
    re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![0-9A-Za-z])"),
    re.compile(r"(?<![A-Za-z0-9_])(?i:gh[pousr]_)[A-Za-z0-9]{36,}"),
    re.compile(r"(?<![A-Za-z0-9_])(?i:github_pat_)[A-Za-z0-9_]{22,}"),
    re.compile(r"(?<![A-Za-z0-9_\-])(?i:xox[baprs]-)[A-Za-z0-9\-]{10,}"),
    re.compile(r"(?<![A-Za-z0-9_\-])(?i:AIza)[0-9A-Za-z_\-]{35}"),
)
_SECRET_ASSIGNMENT = re.compile(
    r"(?i)(?:api[_\-]?key|token|secret)s?[\"']?\s*[:=]\s*[\"']?([^\s\"'`,;]{16,})"
)
_KEY_PREFIX = re.compile(
    r"(?i)^(?:sk-(?:proj-|ant-)?|(?:sk|rk)_(?:live|test)_|AKIA|ASIA|gh[pousr]_|github_pat_|"
    r"xox[baprs]-|AIza)"
)


def detect_api_key(text: str) -> list[Finding]:
    """API keys and tokens: sk-..., sk_live_..., AKIA..., ghp_..., github_pat_..., xoxb-...,
    AIza..., and any value of 16+ characters assigned to api_key, token or secret."""
    found = [(m.start(), m.end(), m.group()) for p in _API_KEYS for m in p.finditer(text)]
    found += [(m.start(1), m.end(1), m.group(1)) for m in _SECRET_ASSIGNMENT.finditer(text)]
    return _outermost(found)


_PRIVATE_KEY = re.compile(
    r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY((?: BLOCK)?)-----"
    r"(?:[\s\S]*?-----END \1PRIVATE KEY\2-----|[A-Za-z0-9+/=:\-,\s]*[A-Za-z0-9+/=])?"
)


def detect_private_key(text: str) -> list[Finding]:
    """PEM and PGP private keys: -----BEGIN ... PRIVATE KEY----- up to the END line, or
    through the base64 body when the END line is missing (a truncated key)."""
    return [(m.start(), m.end(), m.group()) for m in _PRIVATE_KEY.finditer(text)]


_JWT = re.compile(
    r"(?<![A-Za-z0-9_\-.])[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*"
    r"(?![A-Za-z0-9_\-])"
)


def _b64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def detect_jwt(text: str) -> list[Finding]:
    """JSON Web Tokens: three base64url segments whose first decodes to JSON with ``alg``."""
    found = []
    for m in _JWT.finditer(text):
        header, payload, _ = m.group().split(".")
        try:
            decoded = json.loads(_b64url(header))
            _b64url(payload)
        except (binascii.Error, ValueError):
            continue
        if isinstance(decoded, dict) and "alg" in decoded:
            found.append((m.start(), m.end(), m.group()))
    return found


DETECTORS: dict[str, Callable[[str], list[Finding]]] = {
    "email": detect_email,
    "phone": detect_phone,
    "payment_card": detect_payment_card,
    "iban": detect_iban,
    "national_id": detect_national_id,
    "api_key": detect_api_key,
    "private_key": detect_private_key,
    "jwt": detect_jwt,
}
"""Detector name -> function(text) -> [(start, end, value)], in reporting order."""

NUMERIC = frozenset({"phone", "payment_card", "iban", "national_id"})


def _overlaps(start: int, end: int, spans: list[Finding]) -> bool:
    return any(start < other_end and other_start < end for other_start, other_end, _ in spans)


def _outermost(found: list[Finding]) -> list[Finding]:
    """Drop hits that lie inside another hit, and repeats."""
    kept: list[Finding] = []
    for start, end, value in sorted(set(found), key=lambda f: (f[0], -f[1])):
        if kept and start >= kept[-1][0] and end <= kept[-1][1]:
            continue
        kept.append((start, end, value))
    return kept


def _mask_chars(value: str, *, keep_first: int = 0, keep_last: int = 0,
                which: Callable[[str], bool] = str.isalnum) -> str:
    """Stars for the characters ``which`` selects, except the first and last few of them."""
    positions = [i for i, char in enumerate(value) if which(char)]
    shown = set(positions[:keep_first]) | set(positions[len(positions) - keep_last:])
    if len(shown) * 2 >= len(positions):  # never show half or more of the value
        shown = set()
    hidden = set(positions) - shown
    return "".join("*" if i in hidden else char for i, char in enumerate(value))


def mask(detector: str, value: str) -> str:
    """A found value as it may be shown: enough to recognise it, never the value itself.

    ``j***@example.com``, ``**** **** **** 4242``, ``+*-***-**42``, ``GB** **** ... **54 32``,
    ``***-**-6789``, ``sk_live_****``, ``-----BEGIN RSA PRIVATE KEY----- ****``, ``eyJh****``.
    """
    if detector == "email":
        local, _, domain = value.rpartition("@")
        return f"{local[:1] if len(local) > 2 else ''}***@{domain}"
    if detector == "payment_card":
        return _mask_chars(value, keep_last=4, which=str.isdigit)
    if detector == "phone":
        return _mask_chars(value, keep_last=2, which=str.isdigit)
    if detector == "iban":
        return _mask_chars(value, keep_first=2, keep_last=4)
    if detector == "national_id":
        if _SSN.fullmatch(value):
            return _mask_chars(value, keep_last=4)
        return _mask_chars(value, keep_first=2)
    if detector == "api_key":
        prefix = _KEY_PREFIX.match(value)
        return (prefix.group() if prefix else value[:2]) + f"**** ({len(value)} chars)"
    if detector == "private_key":
        return f"-----{value.split('-----', 2)[1]}----- ****"
    if detector == "jwt":
        return value[:4] + "****"
    return "****"


def find_sensitive(text: str, detectors: tuple[str, ...] | list[str] | None = None,
                   ) -> list[tuple[str, int, int, str]]:
    """Every hit of the named detectors (default all) as (detector, start, end, value)."""
    names = DETECTORS if detectors is None else detectors
    return [(name, *hit) for name in names for hit in DETECTORS[name](text)]
