"""Turning an answer into posts that fit X's 280 weighted characters.

* Mentions (helpers to notify) come first, as ``@handle``.
* If the whole thing fits, it is one post.
* Otherwise, per ``long_answer``:

  - ``link``: one short reply with the whole sentences that fit and the answer's link
    (``More: <link>``); with no sentence short enough, a fixed lead (``The full answer is
    here: <link>``). Used when the message has a link (``card.link``).
  - ``thread``: a numbered reply chain (``… (1/3)``), at most ``max_thread_parts`` posts, cut
    at the best boundary that keeps a post at least half full: a paragraph, a line, a sentence
    end (also ``。！？``), a space, a CJK comma; only an unbreakable run is cut inside.

  Each falls back to the other; if neither is possible the send is refused with
  :class:`PermanentSendError`. A sentence is never silently cut short.

DMs may be 10,000 characters; longer ones are split the same way, unnumbered.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from typing import Literal

from bot.errors import PermanentSendError
from connectors.textsplit import split_text
from connectors.twitter.weighted import MAX_WEIGHTED_LENGTH, URL_WEIGHT, cumulative_weights, weighted_length

DM_MAX_CHARS = 10_000
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")
# boundaries by preference; a cut goes *after* the match
_BOUNDARIES = (
    re.compile(r"\n\s*\n"),
    re.compile(r"\n"),
    re.compile(r"(?<=[.!?])\s+|(?<=[。！？])"),
    re.compile(r"\s+"),
    re.compile(r"(?<=[、，；,;])"),
)


def split_weighted(text: str, room: int, max_parts: int | None = None) -> list[str]:
    """Split ``text`` into parts of at most ``room`` weighted characters, at good boundaries.

    Stops early (returning more than ``max_parts`` parts) once the limit is known to be exceeded.
    """
    text = text.strip()
    cumulative = cumulative_weights(text)  # weight of text[:i]; a part's weight is a difference
    parts: list[str] = []
    start = 0
    while start < len(text):
        while start < len(text) and text[start].isspace():
            start += 1
        base = cumulative[start]
        if cumulative[-1] - base <= room:
            if start < len(text):
                parts.append(text[start:].rstrip())
            break
        if max_parts is not None and len(parts) > max_parts:
            return parts
        fit = bisect.bisect_right(cumulative, base + room) - 1  # longest fitting end
        half = bisect.bisect_right(cumulative, base + room // 2) - 1  # cutting earlier wastes a post
        cut = 0
        for boundary in _BOUNDARIES:
            lowest = max(half, start + 1)
            ends = [m.end() for m in boundary.finditer(text, start, fit + 1) if m.end() >= lowest]
            if ends:
                cut = ends[-1]
                break
        if cut <= start:
            cut = max(fit, start + 1)
        head = text[start:cut].rstrip()
        if head:
            parts.append(head)
        start = cut
    return parts


def with_mentions(text: str, handles: Sequence[str]) -> str:
    prefix = " ".join(f"@{h}" for h in handles)
    return f"{prefix} {text}" if prefix else text


def link_reply(text: str, handles: Sequence[str], link: str, lead: str) -> str | None:
    """A short reply: as many whole leading sentences as fit, then the link."""
    room = MAX_WEIGHTED_LENGTH - weighted_length(with_mentions("", handles)) - 1 - URL_WEIGHT
    sentences = [s for s in _SENTENCE_END.split(text.strip()) if s]
    taken: list[str] = []
    for sentence in sentences:
        candidate = " ".join([*taken, sentence]) + " More:"
        if weighted_length(candidate) > room:
            break
        taken.append(sentence)
    body = " ".join(taken) + " More:" if taken else lead
    post = with_mentions(f"{body} {link}", handles)
    return post if weighted_length(post) <= MAX_WEIGHTED_LENGTH else None


def numbered_thread(text: str, handles: Sequence[str], max_parts: int) -> list[str] | None:
    """A reply chain of at most ``max_parts`` posts, each ending with ``(i/n)``."""
    marker_room = weighted_length(f" ({max_parts}/{max_parts})")
    room = MAX_WEIGHTED_LENGTH - marker_room - weighted_length(with_mentions("", handles))
    if room < 40:
        return None
    parts = split_weighted(text, room, max_parts)
    if len(parts) > max_parts:
        return None
    n = len(parts)
    posts = [f"{part} ({i}/{n})" for i, part in enumerate(parts, start=1)]
    posts[0] = with_mentions(posts[0], handles)
    if any(weighted_length(p) > MAX_WEIGHTED_LENGTH for p in posts):
        return None
    return posts


def plan_public(
    text: str,
    handles: Sequence[str],
    *,
    link: str | None,
    mode: Literal["link", "thread"],
    max_parts: int,
    lead: str,
) -> list[str]:
    """The post(s) to publish for one answer, first to last."""
    whole = with_mentions(text.strip(), handles)
    if not text.strip():
        raise PermanentSendError("refusing to post an empty answer")
    if weighted_length(whole) <= MAX_WEIGHTED_LENGTH:
        return [whole]
    as_link = link_reply(text, handles, link, lead) if link else None
    as_thread = numbered_thread(text, handles, max_parts)
    choices = [as_link and [as_link], as_thread] if mode == "link" else [as_thread, as_link and [as_link]]
    for choice in choices:
        if choice:
            return choice
    raise PermanentSendError(
        f"answer of {weighted_length(whole)} weighted characters needs more than {max_parts} posts "
        "and has no link to point to; refusing to truncate it"
    )


def plan_dm(text: str, handles: Sequence[str]) -> list[str]:
    body = with_mentions(text.strip(), handles)
    if not body:
        raise PermanentSendError("refusing to send an empty direct message")
    return split_text(body, DM_MAX_CHARS)
