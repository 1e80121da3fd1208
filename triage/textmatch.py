"""Whole-word phrase matching shared by the keyword-based signals."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache


@lru_cache(maxsize=256)
def phrase_regex(phrases: tuple[str, ...]) -> re.Pattern[str] | None:
    """One case-insensitive regex matching any phrase as whole words (flexible whitespace)."""
    parts = []
    for phrase in sorted({p.strip() for p in phrases if p.strip()}, key=len, reverse=True):
        body = r"\s+".join(re.escape(w) for w in phrase.split())
        body = body.replace("'", "['’]")
        parts.append(rf"(?<![\w]){body}(?![\w])")
    if not parts:
        return None
    return re.compile("|".join(parts), re.IGNORECASE)


def find_phrases(text: str, phrases: Iterable[str]) -> list[str]:
    """The phrases that occur in ``text`` (lower-cased, in order of appearance)."""
    pattern = phrase_regex(tuple(phrases))
    if pattern is None:
        return []
    return [m.group(0).lower() for m in pattern.finditer(text)]
