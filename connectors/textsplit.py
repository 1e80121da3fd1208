"""Splitting long text for platforms with a length limit (shared by connectors)."""

from __future__ import annotations

from collections.abc import Callable


def split_text(text: str, limit: int, *, length: Callable[[str], int] = len) -> list[str]:
    """Split ``text`` into parts of at most ``limit`` (as measured by ``length``).

    Cuts at the last paragraph break that fits, else the last line break, else the last
    space; only a single word longer than the limit is cut inside. Nothing is dropped but
    the whitespace at the cuts.
    """
    if limit <= 0:
        raise ValueError("limit must be positive")
    if length(text) <= limit:
        return [text]
    parts: list[str] = []
    rest = text
    while rest and length(rest) > limit:
        # longest prefix (in characters) that fits the measure
        fit = _longest_fitting_prefix(rest, limit, length)
        cut = -1
        for sep in ("\n\n", "\n", " "):
            cut = rest.rfind(sep, 0, fit + 1)
            if cut > 0:
                break
        if cut <= 0:
            cut = fit
        head = rest[:cut].rstrip()
        if head:
            parts.append(head)
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return parts


def _longest_fitting_prefix(text: str, limit: int, length: Callable[[str], int]) -> int:
    if length is len:
        return min(limit, len(text))
    lo, hi = 1, len(text)
    while lo < hi:  # binary search: measures like X's weighted length are monotonic
        mid = (lo + hi + 1) // 2
        if length(text[:mid]) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return lo
