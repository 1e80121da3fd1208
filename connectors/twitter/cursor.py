"""The connector cursor: where the mention timeline and the DM list were read up to.

Stored by the core with the messages it came with, as a small JSON object::

    {"v": 1, "mentions": "1861234567890123456", "dms": "1861234567890999999"}

``mentions`` is the ``since_id`` of the next mentions poll (the newest mention stored);
``dms`` is the newest DM event id stored (``GET /2/dm_events`` has no ``since_id``: the
connector pages until it reaches it). A bare number is read as a mentions ``since_id``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from bot.errors import MalformedPayload


@dataclass(frozen=True)
class XCursor:
    mentions: str | None = None
    dms: str | None = None

    def dumps(self) -> str:
        return json.dumps({"v": 1, "mentions": self.mentions, "dms": self.dms}, separators=(",", ":"))

    @classmethod
    def loads(cls, raw: str | None) -> XCursor:
        if raw is None or not raw.strip():
            return cls()
        raw = raw.strip()
        if raw.isdigit():
            return cls(mentions=raw)
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise MalformedPayload(f"unreadable X cursor {raw[:80]!r}") from exc
        if not isinstance(data, dict):
            raise MalformedPayload(f"unreadable X cursor {raw[:80]!r}")
        return cls(mentions=_id_or_none(data.get("mentions")), dms=_id_or_none(data.get("dms")))


def _id_or_none(value: object) -> str | None:
    if value is None:
        return None
    text = str(value)
    if not text.isdigit():
        raise MalformedPayload(f"X cursor id {text[:40]!r} is not a number")
    return text


def newer(a: str | None, b: str | None) -> str | None:
    """The larger of two snowflake ids (None counts as the oldest)."""
    if a is None:
        return b
    if b is None:
        return a
    return a if int(a) >= int(b) else b
