"""Sensitive questions (billing, payments, account access, personal data, legal, health).

They are never answered publicly from the knowledge base and never routed to peers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from triage.config import SensitiveCategory
from triage.textmatch import find_phrases


@lru_cache(maxsize=64)
def _compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.IGNORECASE) for p in patterns)


def detect_sensitive(text: str, categories: Sequence[SensitiveCategory]) -> tuple[str, str] | None:
    """Return (category, reason) for the first category that matches, in config order."""
    for category in categories:
        words = find_phrases(text, category.keywords)
        if words:
            return category.name, f"sensitive: {category.name} keyword '{words[0]}'"
        for pattern in _compiled(category.patterns):
            match = pattern.search(text)
            if match:
                return category.name, f"sensitive: {category.name} pattern '{match.group(0).strip()}'"
    return None
