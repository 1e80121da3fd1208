"""Who is who: helpers and staff from config, by connector identity."""

from __future__ import annotations

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
        """Helpers for a question by the routing rules (triage/route.py) on the config profiles
        alone: expertise, language, hours, never the asker. The worker routes with the database's
        view too (load, fairness, quality, away, self-service profiles: bot/community)."""
        from bot.community.profiles import from_config
        from bot.models import utcnow
        from triage.route import Pool, Question, RouteSettings, route

        pool = Pool((from_config(h) for h in self.helpers), {}, RouteSettings(default_n=n))
        q = Question(connector_id=connector_id, asker_id=asker_id, topic=topic, language=language)
        del seed  # routing is deterministic; fairness comes from the database's last-tagged times
        return tuple(
            Mention(user_id=p.user_id, handle=p.handle, display_name=p.display)
            for p in route(pool, q, utcnow(), RouteSettings(default_n=n), n=n).picks
        )
