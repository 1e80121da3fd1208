"""PII redaction: what may be shown in public, to helpers and in logs.

Masks payment card numbers (only when the Luhn check passes), IBANs (mod-97 checked),
email addresses, phone numbers in common international and national formats, street
addresses where a number + street word makes them detectable, and ops-configured
patterns (order ids). Each is replaced by a tag such as ``[card]``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from triage.config import PiiPattern

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b")
_PHONE = re.compile(
    r"(?<![\w+])"
    r"(?:\+\d{1,3}[\s.-]?|00\d{1,3}[\s.-]?)?"  # country code
    r"(?:\(\d{1,4}\)[\s.-]?)?"  # area code in brackets
    r"\d{1,4}(?:[\s.-]?\d{1,4}){1,6}"
    r"(?![\w])"
)
_STREET = re.compile(
    r"\b\d{1,5}[A-Za-z]?\s+(?:[A-Z][\w'-]*\s+){1,4}"
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Square|Sq|"
    r"Terrace|Close|Crescent|Highway|Hwy|Parkway)\b\.?",
)


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    iban = candidate.replace(" ", "")
    if not 15 <= len(iban) <= 34:
        return False
    moved = iban[4:] + iban[:4]
    try:
        number = int("".join(str(int(ch, 36)) for ch in moved))
    except ValueError:
        return False
    return number % 97 == 1


def _phone_like(match: str) -> bool:
    digits = re.sub(r"\D", "", match)
    if not 7 <= len(digits) <= 15:
        return False
    if match.startswith(("+", "00", "(")):
        return True
    # National numbers: need separators in a phone-like grouping or a leading 0 trunk prefix,
    # so that plain amounts, years and ids are not taken for phones.
    groups = re.split(r"[\s.-]+", match.strip())
    return (len(groups) >= 2 and len(digits) >= 9) or (digits.startswith("0") and len(digits) >= 10)


@lru_cache(maxsize=32)
def _custom(patterns: tuple[PiiPattern, ...]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple((p.name, re.compile(p.pattern)) for p in patterns)


def redact(text: str, patterns: Sequence[PiiPattern] = ()) -> tuple[str, tuple[str, ...]]:
    """Return (masked text, kinds masked: in detection order, without repeats)."""
    found: list[str] = []

    def note(kind: str) -> str:
        if kind not in found:
            found.append(kind)
        return f"[{kind}]"

    out = _EMAIL.sub(lambda m: note("email"), text)
    for name, pattern in _custom(tuple(patterns)):
        out = pattern.sub(lambda m, n=name: note(n), out)  # type: ignore[misc]
    out = _IBAN.sub(lambda m: note("iban") if iban_valid(m.group(0)) else m.group(0), out)

    def card(m: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", m.group(0))
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            return note("card")
        return m.group(0)

    out = _CARD.sub(card, out)
    out = _PHONE.sub(lambda m: note("phone") if _phone_like(m.group(0)) else m.group(0), out)
    out = _STREET.sub(lambda m: note("address"), out)
    return out, tuple(found)
