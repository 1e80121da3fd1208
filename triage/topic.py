"""Topic: the best ops-defined topic for a message by keywords and example questions."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from triage.config import TopicSettings
from triage.lexical import tokenize
from triage.textmatch import find_phrases


@lru_cache(maxsize=64)
def _example_tokens(examples: tuple[str, ...]) -> tuple[frozenset[str], ...]:
    return tuple(frozenset(tokenize(e)) for e in examples)


def topic_scores(text: str, topics: Sequence[TopicSettings]) -> list[tuple[str, float, str]]:
    """(topic, score 0..1, why) for every topic with a positive score, best first.

    A keyword hit scores 0.6 (+0.1 per further distinct keyword); an example question scores
    the share of its content words (stemmed) that the message contains, times 0.9.
    """
    words = frozenset(tokenize(text))
    results: list[tuple[str, float, str]] = []
    for topic in topics:
        best, why = 0.0, ""
        hits = sorted(set(find_phrases(text, topic.keywords)))
        if hits:
            best = min(1.0, 0.6 + 0.1 * (len(hits) - 1))
            why = f"keyword '{hits[0]}'"
        for example, tokens in zip(topic.examples, _example_tokens(topic.examples), strict=True):
            if not tokens:
                continue
            overlap = 0.9 * len(words & tokens) / len(tokens)
            if overlap > best:
                best, why = overlap, f"like example '{example[:40]}'"
        if best > 0:
            results.append((topic.name, round(best, 3), why))
    results.sort(key=lambda r: -r[1])
    return results


def classify_topic(
    text: str, topics: Sequence[TopicSettings], min_score: float
) -> tuple[str | None, float, str]:
    """Best topic at or above ``min_score``, else (None, best score, reason)."""
    scored = topic_scores(text, topics)
    if not scored:
        return None, 0.0, "topic: none"
    name, score, why = scored[0]
    if score < min_score:
        return None, score, f"topic: none ({name} only {score:.2f})"
    return name, score, f"topic: {name} {score:.2f} ({why})"
