"""Priority: complaint or anger, urgency, repeated asks in the thread, VIP authors."""

from __future__ import annotations

import re

from bot.models import Priority
from triage.config import PrioritySettings
from triage.textmatch import find_phrases

_SHOUT_WORD = re.compile(r"\b[A-Z]{3,}\b")
_WORD = re.compile(r"\b[^\W\d_]{3,}\b")
_ANGRY_PUNCT = re.compile(r"[!?]{3,}|!{2,}")
_ANGRY_EMOJI = ("😡", "🤬", "😠", "👎", "💢")


def anger_score(text: str, complaint_words: tuple[str, ...]) -> tuple[float, list[str]]:
    """A small lexicon-based sentiment signal in 0..1: complaint words, shouting, !!!, angry emoji."""
    hits = find_phrases(text, complaint_words)
    signs: list[str] = [f"complaint word '{w}'" for w in hits[:2]]
    score = min(1.0, 0.5 * len(hits))
    words = _WORD.findall(text)
    shouted = _SHOUT_WORD.findall(text)
    if len(words) >= 3 and len(shouted) / len(words) >= 0.5:
        score += 0.5
        signs.append("shouting")
    if _ANGRY_PUNCT.search(text):
        score += 0.3
        signs.append("exclamations")
    if any(e in text for e in _ANGRY_EMOJI):
        score += 0.3
        signs.append("angry emoji")
    return min(score, 1.0), signs


def assess_priority(
    text: str,
    settings: PrioritySettings,
    *,
    author_ids: tuple[str, ...],
    ask_count: int = 1,
) -> tuple[Priority, tuple[str, ...]]:
    """Return the priority and why. Reasons are empty for a plain normal priority."""
    reasons: list[str] = []
    level = 0  # 0 normal, 1 high, 2 urgent
    urgent = find_phrases(text, settings.urgent_words)
    if urgent:
        level = max(level, 1)
        reasons.append(f"priority: urgency word '{urgent[0]}'")
    anger, signs = anger_score(text, settings.complaint_words)
    if anger >= 0.5:
        level = max(level, 1)
        reasons.append(f"priority: complaint/anger {anger:.1f} ({', '.join(signs)})")
    if ask_count >= settings.repeat_urgent:
        level = 2
        reasons.append(f"priority: asked {ask_count} times")
    elif ask_count >= settings.repeat_high:
        level = max(level, 1)
        reasons.append(f"priority: asked {ask_count} times")
    vip = set(settings.vip_authors) & {a for a in author_ids if a}
    if vip:
        level = max(level, 1)
        reasons.append(f"priority: VIP author {sorted(vip)[0]}")
    if urgent and (anger >= 0.5 or vip or ask_count >= settings.repeat_high):
        level = 2
    return (Priority.NORMAL, Priority.HIGH, Priority.URGENT)[level], tuple(reasons)
