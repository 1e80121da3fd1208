"""Fixtures: the sandbox fake of X on 127.0.0.1 and connectors (real tweepy) pointed at it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.models import FetchResult, InboundMessage, OutboundMessage
from connectors.base import ConnectorContext
from connectors.twitter import TwitterConnector
from sandbox.x import FakeX
from tests.contract.harness_twitter import settings_for

MakeConnector = Callable[..., TwitterConnector]


@pytest.fixture
async def fake() -> AsyncIterator[FakeX]:
    x = FakeX()
    x.add_user("ann")
    x.add_user("bo_helps")
    await x.start()
    try:
        yield x
    finally:
        await x.stop()


@pytest.fixture
def make_connector(fake: FakeX, tmp_path: Path) -> MakeConnector:
    def make(clock: Callable[[], float] = time.time, **overrides: object) -> TwitterConnector:
        # short DM intervals; the DM rate-limit pace (15 reads / 15 min) still applies
        values: dict[str, object] = {
            "dm_poll_interval_active": 0.001,
            "dm_poll_interval_idle": 0.001,
            **overrides,
        }
        settings = settings_for(fake, **values)
        return TwitterConnector("x-main", settings, ConnectorContext(data_dir=tmp_path), clock=clock)

    return make


@pytest.fixture
async def connector(make_connector: MakeConnector) -> AsyncIterator[TwitterConnector]:
    c = make_connector()
    await c.start()
    try:
        yield c
    finally:
        await c.stop()


async def fetch_all(c: TwitterConnector, cursor: str | None) -> tuple[list[InboundMessage], str | None]:
    """One fetch, returning its messages and the cursor the core would store."""
    res: FetchResult = await c.fetch(cursor)
    return list(res.messages), res.cursor if res.cursor is not None else cursor


def reply(message: InboundMessage, text: str, key: str, **extra: object) -> OutboundMessage:
    return OutboundMessage.model_validate(
        {
            "idempotency_key": key,
            "connector_id": message.connector_id,
            "conversation_id": message.conversation_id,
            "thread_ref": message.thread_ref,
            "reply_to_id": message.external_id,
            "text": text,
            **extra,
        }
    )


class Clock:
    """A clock the test moves (starting now, so X's epoch reset headers still make sense)."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now
