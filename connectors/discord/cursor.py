"""The Discord connector's cursor: the last stored message id per channel.

Serialized as JSON ``{"v": 1, "ch": {"<channel or thread id>": "<last message id>"}, "w": "<id>"}``.
``w`` (the watermark) is the highest message id ever stored, or, before any message, a snowflake
of the time the connector first connected: a channel or thread missing from ``ch`` (one created
while the bot was away) is backfilled from ``w``. Snowflakes grow with time, so "after ``w``"
covers everything that happened since. The cursor is only ever advanced by handing it to the
sink with the messages it covers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from bot.errors import MalformedPayload

DISCORD_EPOCH_MS = 1420070400000
#: channels kept in the cursor; the least recently active beyond this are dropped (they fall back to ``w``)
MAX_CHANNELS = 2000


def snowflake_at(when: datetime) -> int:
    """The smallest snowflake of an (aware) instant."""
    return (int(when.timestamp() * 1000) - DISCORD_EPOCH_MS) << 22


@dataclass
class Cursor:
    channels: dict[str, int] = field(default_factory=dict)
    watermark: int | None = None

    @classmethod
    def parse(cls, raw: str | None) -> Cursor:
        if not raw:
            return cls()
        try:
            data = json.loads(raw)
            chans = {str(k): int(v) for k, v in dict(data.get("ch", {})).items()}
            w = data.get("w")
            return cls(chans, int(w) if w is not None else None)
        except (ValueError, TypeError, AttributeError) as exc:
            raise MalformedPayload(f"not a Discord connector cursor: {raw[:80]!r}") from exc

    def dump(self) -> str:
        return json.dumps(
            {"v": 1, "ch": {k: str(v) for k, v in self.channels.items()}, "w": _opt(self.watermark)},
            separators=(",", ":"),
        )

    def copy(self) -> Cursor:
        return Cursor(dict(self.channels), self.watermark)

    @property
    def empty(self) -> bool:
        return not self.channels and self.watermark is None

    def after_for(self, channel_id: str) -> int | None:
        """Backfill start for a channel: its last stored id, else the watermark."""
        return self.channels.get(channel_id, self.watermark)

    def advanced(self, seen: dict[str, int]) -> Cursor:
        """A new cursor that also covers ``seen`` ({channel: highest message id})."""
        out = self.copy()
        for ch, mid in seen.items():
            if mid > out.channels.get(ch, 0):
                out.channels[ch] = mid
            if out.watermark is None or mid > out.watermark:
                out.watermark = mid
        if len(out.channels) > MAX_CHANNELS:
            keep = sorted(out.channels.items(), key=lambda kv: kv[1], reverse=True)[:MAX_CHANNELS]
            out.channels = dict(keep)
        return out


def _opt(value: int | None) -> str | None:
    return None if value is None else str(value)
