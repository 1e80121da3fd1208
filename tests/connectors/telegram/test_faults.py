"""Under fault injection (429, 5xx, slow and malformed answers, 409, 401) nothing is lost,
nothing doubles and no chat receives more than Telegram's limits (the fake counts)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable

import pytest

from bot.errors import AuthError, RateLimited, TransientError
from bot.models import HealthState, OutboundMessage, SendReceipt
from connectors.telegram import TelegramConnector
from sandbox.telegram import FakeTelegram
from tests.connectors.telegram.conftest import ALICE, BO, CY, FORUM, GROUP, Store, eventually, listening


async def test_polling_survives_faults_without_loss_or_duplicates(
    fake: FakeTelegram, make_connector: Callable[..., TelegramConnector]
) -> None:
    store = Store()
    c = make_connector(max_backoff=0.2, poll_timeout=1)
    async with listening(c, store):
        fake.post(GROUP, ALICE, "m0")
        await store.wait_count(1)
        fake.inject("server_error", "getUpdates", times=2)
        fake.inject("malformed", "getUpdates")
        fake.inject("slow", "getUpdates", delay=0.3)
        fake.inject("rate_limit", "getUpdates", retry_after=1)
        fake.inject("server_error", "getUpdates", status=500)
        for i in range(1, 7):
            fake.post(GROUP if i % 2 else FORUM, ALICE if i % 3 else BO, f"m{i}")
            await asyncio.sleep(0.05)
        await store.wait_count(7, timeout=15)
        await eventually(lambda: fake.pending_updates() == [])
        await eventually(lambda: c._health.state is HealthState.OK)  # recovered by itself
        health = await c.health()
    assert sorted(store.texts()) == [f"m{i}" for i in range(7)]
    assert set(store.deliveries.values()) == {1}
    assert sum(fake.stats.faults_served.values()) == 6
    assert health.state is HealthState.OK and health.metrics["poll_errors"] >= 5


async def test_an_unreadable_update_is_skipped_not_a_crash_loop(
    fake: FakeTelegram, make_connector: Callable[..., TelegramConnector]
) -> None:
    store = Store()
    c = make_connector(poll_timeout=1)
    fake.post(GROUP, ALICE, "before")
    fake.push_raw({"message": {"text": "no message_id, no date, no chat"}})
    fake.push_raw({"message": {"message_id": 5, "date": 1_700_000_000, "text": "no chat"}})
    fake.post(GROUP, ALICE, "after")
    async with listening(c, store) as task:
        await store.wait_count(2)
        await eventually(lambda: fake.pending_updates() == [])
        assert not task.done()
        health = await c.health()
    assert store.texts() == ["before", "after"]
    assert health.metrics["unreadable"] == 1 and health.metrics["skipped"] == 2
    assert store.cursor == str(fake.updates[-1]["update_id"] + 1)


async def deliver(c: TelegramConnector, msg: OutboundMessage, log: Counter[str]) -> SendReceipt:
    """What the pipeline's dispatcher does: retry by error class."""
    for _ in range(20):
        try:
            return await c.send(msg)
        except RateLimited as exc:
            log["rate_limited"] += 1
            await asyncio.sleep(exc.retry_after)
        except TransientError:
            log["transient"] += 1
            await asyncio.sleep(0.1)
    raise AssertionError(f"{msg.idempotency_key} never went out")


async def test_sending_under_faults_loses_nothing_and_keeps_the_limits(
    fake: FakeTelegram, make_connector: Callable[..., TelegramConnector]
) -> None:
    topic = fake.create_topic(FORUM, "Billing")
    fake.dm(CY, "hello bot")
    c = make_connector(request_timeout=3.0)
    targets = [
        {"conversation_id": str(GROUP)},
        {"conversation_id": str(FORUM), "thread_ref": f"{FORUM}:{topic}"},
        {"conversation_id": str(CY)},
    ]
    messages = [
        OutboundMessage(
            idempotency_key=f"{t['conversation_id']}:{i}", connector_id=c.id, text=f"reply {i}", **t
        )
        for t in targets
        for i in range(3)
    ]
    fake.inject("rate_limit", "sendMessage", retry_after=1)
    fake.inject("server_error", "sendMessage", times=2)
    fake.inject("slow", "sendMessage", delay=0.4, times=2)
    fake.inject("malformed", "sendMessage")
    fake.inject("server_error", "sendMessage", status=503)
    log: Counter[str] = Counter()
    await c.start()
    try:
        receipts = await asyncio.gather(*(deliver(c, m, log) for m in messages))
    finally:
        await c.stop()
    assert sum(fake.stats.faults_served.values()) == 7 and log["rate_limited"] == 1 and log["transient"] == 4
    for t in targets:
        chat = int(t["conversation_id"])
        got = sorted(s.text for s in fake.sent(chat))
        assert got == [f"reply {i}" for i in range(3)], (chat, got)  # each exactly once
    assert all(s.thread_id == topic for s in fake.sent(FORUM))
    assert len({r.external_ids for r in receipts}) == 9
    v = fake.rate.violations
    assert (v.chat, v.group, v.overall) == (0, 0, 0)


async def test_many_chats_at_once_stay_under_the_overall_limit(
    make_connector: Callable[..., TelegramConnector], fake: FakeTelegram
) -> None:
    # 40 groups, one message each, at the same moment: ~30/s overall means two waves
    chats = [-1002000000000 - i for i in range(40)]
    for chat in chats:
        fake.add_group(chat, f"group {chat}")
    c = make_connector()
    await c.start()
    try:
        await asyncio.gather(
            *(
                c.send(
                    OutboundMessage(
                        idempotency_key=str(ch), connector_id=c.id, conversation_id=str(ch), text="hi"
                    )
                )
                for ch in chats
            )
        )
    finally:
        await c.stop()
    assert len(fake.sent()) == 40
    assert fake.rate.violations.overall == 0


async def test_conflict_is_a_health_state_not_a_crash(
    fake: FakeTelegram, make_connector: Callable[..., TelegramConnector]
) -> None:
    store = Store()
    c = make_connector(max_backoff=0.3, poll_timeout=1)
    fake.inject("conflict", "getUpdates", times=3)
    states: list[str] = []
    async with listening(c, store) as task:

        async def watch() -> None:
            while True:
                h = await c.health()
                states.append(f"{h.state}:{h.detail}")
                await asyncio.sleep(0.02)

        watcher = asyncio.create_task(watch())
        await eventually(lambda: any(s.startswith("down:409") for s in states))
        fake.post(GROUP, ALICE, "after the other poller left")
        [msg] = await store.wait_count(1)
        assert not task.done()
        await eventually(lambda: states[-1].startswith("ok"))
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    assert msg.text == "after the other poller left"
    assert (await c.health()).metrics["conflicts"] == 3


async def test_a_second_real_poller_gets_409(
    fake: FakeTelegram, make_connector: Callable[..., TelegramConnector]
) -> None:
    store_a, store_b = Store(), Store()
    a, b = make_connector(poll_timeout=2), make_connector(poll_timeout=2)
    async with listening(a, store_a):
        await eventually(lambda: fake.stats.requests["getUpdates"] >= 1)
        async with listening(b, store_b):
            await eventually(
                lambda: a._health.state is HealthState.DOWN or b._health.state is HealthState.DOWN
            )
            detail = (a._health if a._health.state is HealthState.DOWN else b._health).detail
    assert "409" in detail and "another poller" in detail


async def test_revoked_token_stops_the_listener_once(
    fake: FakeTelegram, make_connector: Callable[..., TelegramConnector]
) -> None:
    c = make_connector(poll_timeout=1)
    await c.start()
    try:
        fake.inject("unauthorized", "getUpdates")
        with pytest.raises(AuthError):
            await asyncio.wait_for(c.listen(None, Store().sink), 10)
        health = await c.health()
    finally:
        await c.stop()
    assert health.state is HealthState.DOWN and "401" in health.detail
    assert fake.stats.requests["getUpdates"] == 1  # no crash loop hammering the API
