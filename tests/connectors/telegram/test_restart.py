"""Restart without loss or duplicates: the update offset is the cursor, moved only once stored."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

import pytest

from bot.models import Button, InboundMessage, MessageKind, OutboundMessage
from connectors.telegram import TelegramConnector
from sandbox.telegram import FakeTelegram
from tests.connectors.telegram.conftest import ALICE, BO, CY, FORUM, GROUP, Store, listening


async def test_updates_posted_while_down_arrive_once_after_restart(
    fake: FakeTelegram, make_connector: Callable[..., TelegramConnector]
) -> None:
    topic = fake.create_topic(FORUM, "Billing")
    store = Store()
    c1 = make_connector()
    async with listening(c1, store):
        q = fake.post(GROUP, ALICE, "question 1")
        fake.post(FORUM, ALICE, "question 2", thread_id=topic)
        first = await store.wait_count(2)
        receipt = await c1.send(
            OutboundMessage(
                idempotency_key="t1:auto",
                connector_id=c1.id,
                conversation_id=first[0].conversation_id,
                reply_to_id=first[0].external_id,
                text="Did this solve it?",
                buttons=(Button(label="Solved", data="solved:1"),),
            )
        )
    cursor_at_stop = store.cursor
    assert cursor_at_stop is not None

    # the bot is down; the community goes on
    fake.post(GROUP, BO, "answer to 1", reply_to=q["message_id"])
    fake.post(FORUM, CY, "question 3", thread_id=topic)
    fake.dm(CY, "private question")
    fake.edit(GROUP, q["message_id"], "question 1 (edited)")
    cb = fake.press(GROUP, int(receipt.external_ids[0].split(":")[1]), ALICE, "solved:1")

    c2 = make_connector()
    async with listening(c2, store):
        msgs = await store.wait_count(7)
    later = msgs[2:]
    assert [m.kind for m in later] == [
        MessageKind.REPLY,
        MessageKind.CHANNEL_POST,
        MessageKind.DM,
        MessageKind.EDIT,
        MessageKind.BUTTON,
    ]
    assert later[-1].external_id == f"cb:{cb}"
    assert set(store.deliveries.values()) == {1}  # nothing delivered twice
    polls = [p for m, p in fake.calls if m == "getUpdates"]
    restarted = [p for p in polls if p.get("offset") == int(cursor_at_stop)]
    assert restarted, "the restarted connector resumed from the stored cursor"


async def test_a_failed_store_acknowledges_nothing(
    fake: FakeTelegram, make_connector: Callable[..., TelegramConnector]
) -> None:
    async def broken_sink(batch: Sequence[InboundMessage], cursor: str | None) -> None:
        raise RuntimeError("disk full")

    c1 = make_connector()
    await c1.start()
    try:
        fake.post(GROUP, ALICE, "must not be lost")
        with pytest.raises(RuntimeError, match="disk full"):
            await asyncio.wait_for(c1.listen(None, broken_sink), 10)
    finally:
        await c1.stop()
    assert len(fake.pending_updates()) == 1  # Telegram still holds it

    store = Store()
    async with listening(make_connector(), store):
        [msg] = await store.wait_count(1)
    assert msg.text == "must not be lost"


async def test_crash_after_store_before_next_poll_redelivers_same_ids(
    fake: FakeTelegram, make_connector: Callable[..., TelegramConnector]
) -> None:
    """A crash between the commit and the next getUpdates: Telegram re-sends, ids repeat, nothing doubles."""
    store = Store()
    c1 = make_connector()
    await c1.start()
    stored = asyncio.Event()

    async def sink_then_crash(batch: Sequence[InboundMessage], cursor: str | None) -> None:
        await store.sink(batch, None)  # stored, but the cursor write is "lost" with the crash
        stored.set()
        await asyncio.Event().wait()

    fake.post(GROUP, ALICE, "one")
    task = asyncio.create_task(c1.listen(None, sink_then_crash))
    await asyncio.wait_for(stored.wait(), 10)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await c1.stop()
    async with listening(make_connector(), store):
        fake.post(GROUP, ALICE, "two")
        await store.wait_count(2)
    assert store.texts() == ["one", "two"]
    assert store.deliveries[store.order[0]] == 2  # re-delivered under the same external id
    assert len(store.messages) == 2
