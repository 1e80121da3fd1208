"""Fixtures: the sandbox fake on a free port, the real connector pointed at it, and a tiny store.

The store is the sink: it keeps messages by external id (counting every delivery, so a
duplicate shows) and the last cursor, as the pipeline's storage would.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest

from bot.models import InboundMessage, MessageKind
from connectors.discord import DiscordConnector, DiscordSettings
from sandbox.discord import FakeDiscord, Limits


class Store:
    def __init__(self) -> None:
        self.messages: dict[str, InboundMessage] = {}
        self.deliveries: list[str] = []
        self.cursor: str | None = None
        self.batches = 0
        self._changed = asyncio.Event()

    async def sink(self, batch: Sequence[InboundMessage], cursor: str | None) -> None:
        self.batches += 1
        for m in batch:
            self.deliveries.append(m.external_id)
            self.messages.setdefault(m.external_id, m)
        if cursor is not None:
            self.cursor = cursor
        self._changed.set()

    def of_kind(self, kind: MessageKind) -> list[InboundMessage]:
        return [m for m in self.messages.values() if m.kind == kind]

    def texts(self) -> list[str]:
        return [
            m.text for m in self.messages.values() if m.kind not in (MessageKind.REACTION, MessageKind.BUTTON)
        ]

    def duplicates(self) -> list[str]:
        return sorted({i for i in self.deliveries if self.deliveries.count(i) > 1})

    async def wait_for(self, pred: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"timed out; store has {[(m.kind, m.text) for m in self.messages.values()]}"
                )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.2))


def settings_for(fake: FakeDiscord, **overrides: Any) -> DiscordSettings:
    base: dict[str, Any] = {
        "token": fake.token,
        "api_base_url": fake.api_base,
        "gateway_url": fake.gateway_url,
        "guild_ids": [fake.guild_id],
        "channel_ids": [fake.text_channel_id, fake.forum_channel_id],
        "helper_role_id": fake.helper_role_id,
        "guild_ready_timeout": 0.05,
        "identify_delay": 0.0,
        "start_timeout": 10.0,
        "backfill_retry_seconds": 0.1,
        "channel_window_seconds": 1.0,  # the fake fixture paces channels at 5 per 1 s (time scaled down)
    }
    base.update(overrides)
    return DiscordSettings(**base)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    f = FakeDiscord(resume_window=30.0, limits=Limits(channel_limit=5, channel_per=1.0))
    await f.start()
    try:
        yield f
    finally:
        await f.stop()


@contextlib.asynccontextmanager
async def running(
    connector: DiscordConnector, store: Store, cursor: str | None = None
) -> AsyncIterator[asyncio.Task[None]]:
    """Start the connector and listen into ``store`` until the block ends."""
    await connector.start()
    task = asyncio.create_task(connector.listen(cursor, store.sink))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await connector.stop()
