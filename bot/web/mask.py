"""What a viewer may see: personal data masked, people pseudonymised.

Uses triage's redactor (cards by Luhn, IBANs, emails, phones, addresses, ops patterns) when
it is importable, and a small local masker otherwise; both run, the local one last, so an
email or long digit run never reaches a viewer even if triage's rules change.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from typing import Any

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_DIGITS = re.compile(r"\+?\d(?:[\s().-]?\d){6,}")  # phones, cards, account numbers: 7+ digits
_HANDLE = re.compile(r"@\w{2,}")


def local_mask(text: str) -> str:
    text = _EMAIL.sub("[email]", text)
    text = _DIGITS.sub("[number]", text)
    return _HANDLE.sub("@[user]", text)


def _triage_redactor() -> Callable[[str, Sequence[Any]], tuple[str, tuple[str, ...]]] | None:
    try:
        from triage.pii import redact
    except ImportError:  # pragma: no cover - triage is part of the distribution
        return None
    return redact


_REDACT = _triage_redactor()


def mask_text(text: str, patterns: Sequence[Any] = ()) -> str:
    if _REDACT is not None:
        text = _REDACT(text, patterns)[0]
    return local_mask(text)


def pseudonym(kind: str, value: str | None) -> str:
    """A stable, non-reversible label for a person (same input, same label)."""
    if not value:
        return kind
    return f"{kind}-{hashlib.sha256(value.encode()).hexdigest()[:6]}"
