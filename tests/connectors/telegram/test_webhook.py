"""Webhook mode: setWebhook on start, updates over the bot's own server, the secret header."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp
import pytest

from bot.models import InboundMessage, MessageKind
from connectors.telegram import TelegramConnector
from sandbox.telegram import FakeTelegram
from tests.connectors.telegram.conftest import ALICE, CY, FORUM, GROUP, Store, eventually, listening

SECRET = "s3cret-Token_1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def webhook_connector(make: Callable[..., TelegramConnector], port: int) -> TelegramConnector:
    return make(
        mode="webhook",
        webhook={
            "listen_host": "127.0.0.1",
            "listen_port": port,
            "path": "/tg-hook",
            "public_url": f"http://127.0.0.1:{port}/tg-hook",
            "secret_token": SECRET,
        },
    )


def forged_update(update_id: int, text: str) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": 9000 + update_id,
            "date": 1_700_000_000,
            "chat": {"id": GROUP, "type": "supergroup", "title": "Support"},
            "from": {"id": 666, "is_bot": False, "first_name": "Mallory"},
            "text": text,
        },
    }


async def test_webhook_receives_and_refuses_wrong_secret(
    fake: FakeTelegram, make_connector: Callable[..., TelegramConnector]
) -> None:
    port = free_port()
    store = Store()
    topic = fake.create_topic(FORUM, "Billing")
    c = webhook_connector(make_connector, port)
    async with listening(c, store):
        await eventually(lambda: fake.webhook is not None)
        [params] = [p for m, p in fake.calls if m == "setWebhook"]
        assert params["url"] == f"http://127.0.0.1:{port}/tg-hook"
        assert params["secret_token"] == SECRET
        assert params["allowed_updates"] == ["message", "edited_message", "callback_query"]
        fake.post(GROUP, ALICE, "group question via webhook")
        fake.post(FORUM, ALICE, "topic question via webhook", thread_id=topic)
        fake.dm(CY, "private question via webhook")
        group_q, topic_q, dm = await store.wait_count(3)

        url = f"http://127.0.0.1:{c.webhook_port}/tg-hook"
        async with aiohttp.ClientSession() as http:
            body = json.dumps(forged_update(1, "forged, no secret"))
            async with http.post(url, data=body, headers={"Content-Type": "application/json"}) as r1:
                assert r1.status == 403
            body = json.dumps(forged_update(2, "forged, wrong secret"))
            headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": "wrong"}
            async with http.post(url, data=body, headers=headers) as r2:
                assert r2.status == 403
            headers["X-Telegram-Bot-Api-Secret-Token"] = SECRET
            async with http.post(url, data=b"{not json", headers=headers) as r3:
                assert r3.status == 400
        health = await c.health()
    assert group_q.kind is MessageKind.CHANNEL_POST and group_q.conversation_id == str(GROUP)
    assert topic_q.thread_ref == f"{FORUM}:{topic}"
    assert dm.kind is MessageKind.DM and dm.is_private
    assert all("forged" not in m.text for m in store.messages.values())
    assert len(store.messages) == 3
    assert health.metrics["webhook_refused"] == 2
    assert store.cursor == str(fake.updates[-1]["update_id"] + 1)


async def test_webhook_answers_200_only_after_the_store(
    fake: FakeTelegram, make_connector: Callable[..., TelegramConnector]
) -> None:
    port = free_port()
    store = Store()
    failures = 2

    async def flaky_sink(batch: Sequence[InboundMessage], cursor: str | None) -> None:
        nonlocal failures
        if failures:
            failures -= 1
            raise RuntimeError("database is locked")
        await store.sink(batch, cursor)

    c = webhook_connector(make_connector, port)
    await c.start()
    import asyncio
    import contextlib

    task = asyncio.create_task(c.listen(None, flaky_sink))
    try:
        await eventually(lambda: fake.webhook is not None)
        fake.post(GROUP, ALICE, "stored at the third try")
        [msg] = await store.wait_count(1)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await c.stop()
    assert msg.text == "stored at the third try"
    assert fake.stats.webhook_refusals == 2 and fake.stats.webhook_deliveries == 1
    assert store.deliveries[msg.external_id] == 1


async def test_webhook_restart_delivers_what_came_while_down(
    fake: FakeTelegram, make_connector: Callable[..., TelegramConnector]
) -> None:
    port = free_port()
    store = Store()
    async with listening(webhook_connector(make_connector, port), store):
        await eventually(lambda: fake.webhook is not None)
        fake.post(GROUP, ALICE, "before")
        await store.wait_count(1)
    # the bot is down: Telegram keeps the updates and retries
    fake.post(GROUP, ALICE, "while down 1")
    fake.post(GROUP, CY, "while down 2")
    await eventually(lambda: fake.stats.webhook_refusals >= 1)
    async with listening(webhook_connector(make_connector, port), store):
        await store.wait_count(3)
    assert store.texts() == ["before", "while down 1", "while down 2"]
    # webhooks are at-least-once: an update whose 200 was lost in the shutdown may come again,
    # always under the same external id, so the store keeps it once
    assert len(store.messages) == 3 and sum(store.deliveries.values()) <= 4


async def test_a_refused_webhook_url_is_reported_not_retried(
    fake: FakeTelegram, make_connector: Callable[..., TelegramConnector]
) -> None:
    from bot.errors import PermanentSendError
    from bot.models import HealthState

    c = make_connector(
        mode="webhook",
        webhook={
            "listen_host": "127.0.0.1",
            "listen_port": 0,
            "public_url": "https://bot.example.com/telegram/webhook",  # the sandbox calls 127.0.0.1 only
            "secret_token": SECRET,
        },
    )
    await c.start()
    try:
        import asyncio

        with pytest.raises(PermanentSendError, match=r"(?i)bad webhook"):
            await asyncio.wait_for(c.listen(None, Store().sink), 10)
        health = await c.health()
    finally:
        await c.stop()
    assert health.state is HealthState.DOWN and "setWebhook refused" in health.detail
    assert fake.stats.requests["setWebhook"] == 1
