"""Never lose a message: RESUME replays short gaps; longer gaps and restarts are backfilled."""

from __future__ import annotations

import asyncio

from bot.models import HealthState, MessageKind
from connectors.discord import DiscordConnector
from sandbox.discord import FakeDiscord, Limits
from tests.connectors.discord.conftest import Store, running, settings_for


def history_calls(fake: FakeDiscord) -> list[str]:
    return [path for method, path, _ in fake.rest_log if method == "GET" and path.endswith("/messages")]


async def test_short_drop_is_resumed_with_replay(fake: FakeDiscord) -> None:
    store = Store()
    c = DiscordConnector("dc", settings_for(fake))
    async with running(c, store):
        first = await fake.post(fake.text_channel_id, "before the drop")
        await store.wait_for(lambda: first["id"] in store.messages)
        fake.hold_gateway()
        await fake.drop_connection(abrupt=True)
        missed = [await fake.post(fake.text_channel_id, f"while away {i}") for i in range(3)]
        fake.release_gateway()
        await store.wait_for(lambda: all(m["id"] in store.messages for m in missed))
        assert fake.limits.counters.resumes == 1 and fake.limits.counters.identifies == 1
        assert history_calls(fake) == []  # the gateway replayed them: no backfill needed
        assert {1, 2, 6} <= set(fake.client_ops)  # heartbeat, IDENTIFY, RESUME
        assert (await c.health()).metrics["resumes"] == 1
    assert not store.duplicates()


async def test_gap_longer_than_resume_window_is_backfilled(fake: FakeDiscord) -> None:
    store = Store()
    c = DiscordConnector("dc", settings_for(fake))
    async with running(c, store):
        before = await fake.post(fake.text_channel_id, "before the gap")
        dm0 = await fake.dm("hello bot", author="carol")
        await store.wait_for(lambda: {before["id"], dm0["id"]} <= store.messages.keys())

        fake.hold_gateway()
        await fake.drop_connection(abrupt=True)
        missed = [await fake.post(fake.text_channel_id, f"gap message {i}") for i in range(150)]
        missed.append(await fake.post(fake.existing_thread_id, "in the old thread", author="dave"))
        thread, starter = await fake.forum_post("Created while away", "is anyone there?", tags=["billing"])
        missed += [starter, await fake.post(thread["id"], "bump", author="carol")]
        missed.append(await fake.dm("are you there?", author="carol"))
        fake.expire_sessions()  # longer than the resume window: RESUME will be refused
        fake.release_gateway()

        await store.wait_for(lambda: all(m["id"] in store.messages for m in missed), timeout=20)
        after = await fake.post(fake.text_channel_id, "after the gap")
        await store.wait_for(lambda: after["id"] in store.messages)

        counters = fake.limits.counters
        assert counters.resumes_refused == 1 and counters.identifies == 2
        assert store.messages[starter["id"]].title == "Created while away"
        assert store.messages[starter["id"]].raw["forum_tags"] == ["billing"]
        assert store.messages[missed[-1]["id"]].kind == MessageKind.DM
        # in order within the channel, and the live message after the backfilled ones
        order = [i for i in store.deliveries if i in {m["id"] for m in missed[:150]} | {after["id"]}]
        assert order == [m["id"] for m in missed[:150]] + [after["id"]]
        assert (await c.health()).metrics["backfilled"] >= len(missed)
    assert not store.duplicates()


async def test_restart_backfills_from_the_stored_cursor(fake: FakeDiscord) -> None:
    store = Store()
    first = DiscordConnector("dc", settings_for(fake))
    async with running(first, store):
        a = await fake.post(fake.text_channel_id, "question A")
        d = await fake.dm("private A", author="dave")
        await store.wait_for(lambda: {a["id"], d["id"]} <= store.messages.keys())
    cursor = store.cursor
    assert cursor is not None

    # while the bot is down
    b = await fake.post(fake.text_channel_id, "question B")
    _thread, post = await fake.forum_post("Forum post while down", "details", author="erin")
    d2 = await fake.dm("private B", author="dave")
    ignored = await fake.post(fake.other_channel_id, "not watched")
    fake.fail_next(503, method="GET", path_contains="/messages", times=2)  # backfill must retry through these
    fake.fail_next(429, method="GET", path_contains="/messages", retry_after=0.2)

    second = DiscordConnector("dc", settings_for(fake))
    async with running(second, store, cursor=store.cursor):
        await store.wait_for(lambda: {b["id"], post["id"], d2["id"]} <= store.messages.keys(), timeout=20)
        c2 = await fake.post(fake.text_channel_id, "question C, live")
        await store.wait_for(lambda: c2["id"] in store.messages)
    assert ignored["id"] not in store.messages
    assert store.deliveries.count(a["id"]) == 1 and store.deliveries.count(d["id"]) == 1
    assert not store.duplicates()
    assert fake.limits.counters.injected_faults == 3


async def test_cursor_only_moves_with_stored_messages(fake: FakeDiscord) -> None:
    """A sink that fails leaves the cursor where it was: the next listen backfills the batch."""
    store = Store()
    calls = 0

    async def flaky(batch, cursor):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if any(m.text == "boom" for m in batch):
            raise RuntimeError("database is locked")
        await store.sink(batch, cursor)

    c = DiscordConnector("dc", settings_for(fake))
    await c.start()
    try:
        task = asyncio.create_task(c.listen(None, flaky))
        ok = await fake.post(fake.text_channel_id, "fine")
        await store.wait_for(lambda: ok["id"] in store.messages)
        boom = await fake.post(fake.text_channel_id, "boom")
        done, _ = await asyncio.wait({task}, timeout=5)
        assert task in done and isinstance(task.exception(), RuntimeError)
        saved = store.cursor
        assert saved is not None and boom["id"] not in saved

        task = asyncio.create_task(c.listen(saved, store.sink))
        await store.wait_for(lambda: boom["id"] in store.messages)
        task.cancel()
    finally:
        await c.stop()


async def test_reconnect_request_and_invalid_session(fake: FakeDiscord) -> None:
    store = Store()
    c = DiscordConnector("dc", settings_for(fake))
    async with running(c, store):
        await fake.send_reconnect()  # op 7: reconnect and RESUME
        m1 = await fake.post(fake.text_channel_id, "after op 7")
        await store.wait_for(lambda: m1["id"] in store.messages)

        fake.hold_gateway()
        await fake.send_invalid_session(resumable=False)  # op 9: IDENTIFY again
        m2 = await fake.post(fake.text_channel_id, "during the new handshake")
        for _ in range(200):
            if (await c.health()).state != HealthState.OK:
                break
            await asyncio.sleep(0.01)
        health = await c.health()
        assert health.state == HealthState.DEGRADED and "disconnected" in health.detail
        fake.release_gateway()
        await store.wait_for(lambda: m2["id"] in store.messages)
        assert (await c.health()).state == HealthState.OK
    counters = fake.limits.counters
    assert counters.resumes == 1 and counters.identifies == 2
    assert not store.duplicates()


async def test_whole_guild_watch_includes_new_channels_threads(fake: FakeDiscord) -> None:
    store = Store()
    c = DiscordConnector("dc", settings_for(fake, channel_ids=[]))  # every channel of the guild
    async with running(c, store):
        a = await fake.post(fake.other_channel_id, "off-topic counts now")
        thread = await fake.start_thread(a["id"], "side discussion", author="dave")
        b = await fake.post(thread["id"], "inside the user's thread", author="dave")
        await store.wait_for(lambda: b["id"] in store.messages)
    got = store.messages[b["id"]]
    assert (got.thread_ref, got.conversation_id, got.reply_to_id) == (a["id"], fake.other_channel_id, a["id"])


async def test_stop_idles_listen_without_reconnecting(fake: FakeDiscord) -> None:
    store = Store()
    c = DiscordConnector("dc", settings_for(fake))
    await c.start()
    task = asyncio.create_task(c.listen(None, store.sink))
    await store.wait_for(lambda: store.cursor is not None)  # the first run stores a starting watermark
    await c.stop()
    again = asyncio.create_task(c.listen(store.cursor, store.sink))  # a supervisor restarting it
    await asyncio.sleep(0.2)
    assert not task.done() and not again.done()  # idle until cancelled, as the contract says
    assert fake.limits.counters.identifies == 1 and not fake.connected
    assert (await c.health()).state == HealthState.STOPPED
    for t in (task, again):
        t.cancel()
    await asyncio.gather(task, again, return_exceptions=True)


async def test_resume_window_runs_out_on_its_own() -> None:
    fake = FakeDiscord(resume_window=0.2, limits=Limits(channel_per=1.0))
    await fake.start()
    try:
        store = Store()
        c = DiscordConnector("dc", settings_for(fake))
        async with running(c, store):
            a = await fake.post(fake.text_channel_id, "before")
            await store.wait_for(lambda: a["id"] in store.messages)
            fake.hold_gateway()
            await fake.drop_connection(abrupt=False, code=4000)
            b = await fake.post(fake.text_channel_id, "during a long outage")
            await asyncio.sleep(0.4)  # longer than the resume window
            fake.release_gateway()
            await store.wait_for(lambda: b["id"] in store.messages)
        assert fake.limits.counters.resumes_refused == 1
        assert not store.duplicates()
    finally:
        await fake.stop()
