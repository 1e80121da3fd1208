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
#: the cursor may grow this far past MAX_CHANNELS before it is cut back to MAX_CHANNELS: cutting
#: sorts every channel, and doing that for each message from a new DM channel costs more than
#: the message itself
TRIM_SLACK = MAX_CHANNELS // 8


def snowflake_at(when: datetime) -> int:
    """The smallest snowflake of an (aware) instant."""
    return (int(when.timestamp() * 1000) - DISCORD_EPOCH_MS) << 22


@dataclass
class Cursor:
    channels: dict[str, int] = field(default_factory=dict)
    watermark: int | None = None
    #: each channel's piece of the JSON, kept up to date as the cursor advances: a live message
    #: re-serializes the cursor, and with thousands of DM channels a full ``json.dumps`` per
    #: message was a measurable share of the bot's event loop (bench/e2e.py)
    _pieces: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

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
        pieces = self._pieces
        if len(pieces) != len(self.channels):  # built directly, not advanced: serialize it all
            pieces.clear()
            pieces.update((k, _piece(k, v)) for k, v in self.channels.items())
        w = json.dumps(_opt(self.watermark))
        return '{"v":1,"ch":{' + ",".join(pieces.values()) + '},"w":' + w + "}"

    def copy(self) -> Cursor:
        out = Cursor(dict(self.channels), self.watermark)
        if len(self._pieces) == len(self.channels):
            out._pieces = dict(self._pieces)
        return out

    @property
    def empty(self) -> bool:
        return not self.channels and self.watermark is None

    def after_for(self, channel_id: str) -> int | None:
        """Backfill start for a channel: its last stored id, else the watermark."""
        return self.channels.get(channel_id, self.watermark)

    def advanced(self, seen: dict[str, int]) -> Cursor:
        """A new cursor that also covers ``seen`` ({channel: highest message id})."""
        out = self.copy()
        tracked = len(out._pieces) == len(out.channels)
        for ch, mid in seen.items():
            if mid > out.channels.get(ch, 0):
                out.channels[ch] = mid
                if tracked:
                    out._pieces[ch] = _piece(ch, mid)
            if out.watermark is None or mid > out.watermark:
                out.watermark = mid
        if len(out.channels) > MAX_CHANNELS + TRIM_SLACK:
            keep = sorted(out.channels.items(), key=lambda kv: kv[1], reverse=True)[:MAX_CHANNELS]
            out.channels = dict(keep)
            out._pieces = {k: out._pieces[k] for k in out.channels} if tracked else {}
        return out


def _piece(channel: str, message_id: int) -> str:
    return f"{json.dumps(channel)}:{json.dumps(str(message_id))}"


def _opt(value: int | None) -> str | None:
    return None if value is None else str(value)
