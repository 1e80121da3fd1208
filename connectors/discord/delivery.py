"""What travels from discord.py's event parsing to ``listen``: queue items, and the memory of
what was already handed to the sink (so a backfill overlapping live events delivers once)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from bot.errors import ConnectorError
from bot.models import InboundMessage

RECENT_IDS = 20_000
RECENT_TEXTS = 2_000


@dataclass(frozen=True)
class Live:
    """One normalized event; new messages also carry where they move the cursor."""

    message: InboundMessage
    channel_id: str | None = None
    message_id: int | None = None


@dataclass(frozen=True)
class SessionStart:
    """A fresh gateway session (READY, not RESUMED): what happened in between needs a backfill."""

    number: int


@dataclass(frozen=True)
class Fatal:
    error: ConnectorError


@dataclass(frozen=True)
class Stopped:
    """``stop()`` was called: a running ``listen`` goes idle (it does not reconnect)."""


Item = Live | SessionStart | Fatal | Stopped


class Delivered:
    """Bounded memory of delivered external ids, and of recent message texts (thread names)."""

    def __init__(self) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._texts: OrderedDict[str, str] = OrderedDict()

    def __contains__(self, external_id: object) -> bool:
        return external_id in self._ids

    def add(self, m: InboundMessage) -> None:
        self._ids[m.external_id] = None
        if len(self._ids) > RECENT_IDS:
            self._ids.popitem(last=False)
        if m.text and m.target_id is None:
            self._texts[m.external_id] = m.text[:200]
            if len(self._texts) > RECENT_TEXTS:
                self._texts.popitem(last=False)

    def text_of(self, external_id: str) -> str | None:
        return self._texts.get(external_id)
