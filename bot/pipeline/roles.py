"""Who is who: helpers and staff from config, by connector identity."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.models import InboundMessage, Mention, ThreadView
from bot.settings import HelperEntry
from responders import AuthorRole


@dataclass(frozen=True)
class Directory:
    helpers: tuple[HelperEntry, ...]

    def role_of(self, message: InboundMessage, thread: ThreadView | None) -> AuthorRole:
        if message.author.is_bot:
            return "bot"
        for h in self.helpers:
            if h.identities.get(message.connector_id) == message.author.id:
                return "staff" if h.role == "staff" else "helper"
        if thread is not None and thread.asker_id == message.author.id:
            return "asker"
        return "asker" if thread is None else "other"

    def pick(
        self,
        connector_id: str,
        asker_id: str,
        topic: str | None,
        language: str | None,
        *,
        seed: int,
        n: int = 2,
    ) -> tuple[Mention, ...]:
        """First rule (the routing issue replaces it): helpers on this connector, not the asker,
        preferring the topic and language, rotated by ``seed`` so load spreads."""
        pool: list[tuple[int, HelperEntry]] = []
        for h in self.helpers:
            uid = h.identities.get(connector_id)
            if h.role != "helper" or uid is None or uid == asker_id or h.max_open == 0:
                continue
            score = (2 if topic and topic in h.topics else 0) + (
                1 if language and language in h.languages else 0
            )
            pool.append((score, h))
        if not pool:
            return ()
        pool.sort(key=lambda p: -p[0])
        best = max(p[0] for p in pool)
        top = [h for s, h in pool if s == best]
        rest = [h for s, h in pool if s != best]
        k = seed % len(top)
        ordered: Sequence[HelperEntry] = top[k:] + top[:k] + rest
        return tuple(
            Mention(
                user_id=h.identities[connector_id], handle=h.handles.get(connector_id), display_name=h.name
            )
            for h in ordered[:n]
        )
