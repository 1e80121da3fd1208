"""The HTTP edge: every request discord.py makes passes through these aiohttp trace hooks.

``on_request_start`` is awaited by aiohttp right before a request goes out, for every attempt
(discord.py's own retries after a 429 or a 5xx included), so pacing here cannot be bypassed:
message-creating requests wait for their channel's slot, every request for the token's slot.
``on_request_end`` sees every status and counts invalid requests (401/403/429).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import aiohttp

from connectors.discord.pacing import InvalidRequestMonitor, KeyedLimiters, SlidingWindowLimiter, Slot
from connectors.discord.settings import DiscordSettings


def posting_channel(path: str) -> str | None:
    """The channel a request creates a message in (``.../channels/<id>/messages`` or a forum post)."""
    parts = path.rstrip("/").split("/")
    if len(parts) >= 3 and parts[-3] == "channels" and parts[-1] in ("messages", "threads"):
        return parts[-2]
    return None


class HttpEdge:
    def __init__(
        self, settings: DiscordSettings, log: logging.Logger, on_invalid: Callable[[], None]
    ) -> None:
        s = settings
        self.channel_pace = KeyedLimiters(
            s.channel_messages, s.channel_window_seconds, margin=s.pace_margin_seconds
        )
        self.token_pace = SlidingWindowLimiter(s.requests_per_second, 1.0, margin=s.pace_margin_seconds)
        self.invalid = InvalidRequestMonitor(s.invalid_requests_alert, s.invalid_requests_brake)
        self.pace_wait_seconds = 0.0
        self._alerted = False
        self._log = log
        self._on_invalid = on_invalid

    def trace_config(self) -> aiohttp.TraceConfig:
        trace = aiohttp.TraceConfig()
        trace.on_request_start.append(self._on_request_start)
        trace.on_request_end.append(self._on_request_end)
        trace.on_request_exception.append(self._on_request_exception)
        return trace

    async def _on_request_start(
        self, session: aiohttp.ClientSession, ctx: Any, params: aiohttp.TraceRequestStartParams
    ) -> None:
        path = params.url.path
        slots: list[Slot] = []
        ctx.pace_slots = slots  # ended in on_request_end / on_request_exception
        if "/interactions/" in path:
            return  # not bound by the global limit, and due within 3 s: never queued behind others
        if params.method == "POST":
            channel = posting_channel(path)
            if channel is not None:
                slot, waited = await self.channel_pace.acquire(channel)
                slots.append(slot)
                self.pace_wait_seconds += waited
        slot, waited = await self.token_pace.acquire()
        slots.append(slot)
        self.pace_wait_seconds += waited

    @staticmethod
    def _end_slots(ctx: Any) -> None:
        for slot in getattr(ctx, "pace_slots", ()):
            slot.end()

    async def _on_request_exception(
        self, session: aiohttp.ClientSession, ctx: Any, params: aiohttp.TraceRequestExceptionParams
    ) -> None:
        self._end_slots(ctx)

    async def _on_request_end(
        self, session: aiohttp.ClientSession, ctx: Any, params: aiohttp.TraceRequestEndParams
    ) -> None:
        self._end_slots(ctx)
        resp = params.response
        if not self.invalid.record(
            resp.status, shared_scope=resp.headers.get("X-RateLimit-Scope") == "shared"
        ):
            return
        n = self.invalid.count()
        if n >= self.invalid.alert_at and not self._alerted:
            self._alerted = True
            self._log.error(
                "discord: %d invalid requests (401/403/429) in the last 10 minutes; Discord bans the IP "
                "at 10,000. Check the token, the bot's permissions and pacing.",
                n,
            )
        self._on_invalid()

    def invalid_problem(self) -> str | None:
        """A health message while the invalid-request count is at or over the alert level."""
        n = self.invalid.count()
        if n < self.invalid.alert_at:
            self._alerted = False
            return None
        alert = self.invalid.alert_at
        return f"{n} invalid requests (401/403/429) in 10 min: alert at {alert}, Discord bans at 10,000"
