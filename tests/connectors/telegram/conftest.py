"""Fixtures: the sandbox Telegram fake on 127.0.0.1 and a real-PTB connector pointed at it."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest
from pydantic import SecretStr

from bot.models import InboundMessage
from connectors.telegram import TelegramConnector, TelegramSettings
from sandbox.telegram import FakeTelegram

GROUP = -1001000000001
FORUM = -1001000000002
BASIC = -5001
ALICE, BO, CY = 42, 43, 44


class Store:
    """What the pipeline's sink does, in memory: messages keyed by external id, plus the cursor."""

    def __init__(self) -> None:
        self.messages: dict[str, InboundMessage] = {}
        self.order: list[str] = []
        self.deliveries: Counter[str] = Counter()
        self.cursor: str | None = None
        self.batches = 0
        self._changed = asyncio.Event()

    async def sink(self, batch: Sequence[InboundMessage], cursor: str | None) -> None:
        self.batches += 1
        for m in batch:
            self.deliveries[m.external_id] += 1
            if m.external_id not in self.messages:
                self.order.append(m.external_id)
            self.messages[m.external_id] = m
        if cursor is not None:
            self.cursor = cursor
        self._changed.set()

    def texts(self) -> list[str]:
        return [self.messages[k].text for k in self.order]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    async def wait_count(self, n: int, timeout: float = 10.0) -> list[InboundMessage]:
        await self.wait_for(lambda: len(self.messages) >= n, timeout)
        return [self.messages[k] for k in self.order]


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until ``predicate()`` holds (for state outside the store, e.g. the fake's)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def listening(connector: TelegramConnector, store: Store) -> AsyncIterator[asyncio.Task[None]]:
    """A started connector listening into ``store`` (from its cursor) until the block ends."""
    await connector.start()
    task = asyncio.create_task(connector.listen(store.cursor, store.sink))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await connector.stop()


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    f = FakeTelegram()
    f.add_user(ALICE, "Alice", "alice")
    f.add_user(BO, "Bo", "bo_helps")
    f.add_user(CY, "Cy")
    f.add_group(GROUP, "Support", username="acme_support")
    f.add_group(FORUM, "Support Forum", forum=True)
    f.add_group(BASIC, "Old group", supergroup=False)
    await f.start()
    try:
        yield f
    finally:
        await f.stop()


def settings_for(fake: FakeTelegram, **overrides: Any) -> TelegramSettings:
    base: dict[str, Any] = {
        "token": SecretStr(fake.token),
        "api_base_url": fake.url,
        "poll_timeout": 2,
        "request_timeout": 5.0,
    }
    return TelegramSettings.model_validate({**base, **overrides})


@pytest.fixture
def make_connector(fake: FakeTelegram) -> Callable[..., TelegramConnector]:
    def make(**overrides: Any) -> TelegramConnector:
        return TelegramConnector("tg-test", settings_for(fake, **overrides))

    return make
