"""Pacing and faults: nothing lost, nothing doubled, no channel over its pace, invalid requests watched."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.errors import AuthError, RateLimited, TransientError
from bot.models import Button, HealthState, OutboundMessage
from connectors.discord import DiscordConnector
from connectors.discord.pacing import InvalidRequestMonitor, SlidingWindowLimiter
from sandbox.discord import FakeDiscord, Limits
from tests.connectors.discord.conftest import settings_for


def out(channel_id: str, key: str, text: str) -> OutboundMessage:
    return OutboundMessage(idempotency_key=key, connector_id="dc", conversation_id=channel_id, text=text)


async def dispatch(c: DiscordConnector, msg: OutboundMessage) -> list[str]:
    """What the core's dispatcher does: retry transient failures with the same idempotency key."""
    for _ in range(10):
        try:
            return list((await c.send(msg)).external_ids)
        except (TransientError, RateLimited) as exc:
            await asyncio.sleep(min(getattr(exc, "retry_after", 0.05), 0.3))
    raise AssertionError(f"{msg.idempotency_key} never went through")


async def test_burst_under_faults_keeps_pace_and_loses_nothing(fake: FakeDiscord) -> None:
    c = DiscordConnector("dc", settings_for(fake))
    await c.start()
    try:
        fake.fail_next(429, retry_after=0.3)  # honoured by waiting, inside the send
        fake.fail_next(503, times=2)
        fake.fail_next(503, after_effect=True)  # created, answer lost: the retry must not double it
        fake.fail_next(502, method="POST", path_contains=f"/channels/{fake.other_channel_id}/")
        texts = {
            fake.text_channel_id: [f"support {i}" for i in range(12)],
            fake.other_channel_id: [f"other {i}" for i in range(6)],
        }
        jobs = [dispatch(c, out(ch, f"{ch}:{i}", t)) for ch, ts in texts.items() for i, t in enumerate(ts)]
        started = time.monotonic()
        results = await asyncio.gather(*jobs)
        elapsed = time.monotonic() - started
    finally:
        await c.stop()
    for ch, ts in texts.items():
        assert sorted(fake.sent_texts(ch)) == sorted(ts)  # every one, exactly once
    assert len({i for ids in results for i in ids}) == 18
    counters = fake.limits.counters
    assert dict(counters.pace_violations) == {}
    assert counters.global_violations == 0
    assert counters.injected_faults == 5
    assert elapsed >= 2.0  # 12 messages at 5 per (1 s + margin) in one channel cannot be faster


async def test_token_pace_stays_under_the_global_limit() -> None:
    fake = FakeDiscord(limits=Limits(global_limit=8, channel_limit=50, channel_per=1.0))
    await fake.start()
    try:
        c = DiscordConnector("dc", settings_for(fake, requests_per_second=6, channel_messages=50))
        await c.start()
        try:
            channels = [fake.text_channel_id, fake.other_channel_id, fake.existing_thread_id]
            await asyncio.gather(*(dispatch(c, out(channels[i % 3], f"g{i}", f"msg {i}")) for i in range(14)))
        finally:
            await c.stop()
        assert len(fake.bot_messages()) == 14
        assert fake.limits.counters.global_violations == 0
    finally:
        await fake.stop()


async def test_invalid_requests_raise_an_alert_then_a_brake(fake: FakeDiscord) -> None:
    c = DiscordConnector("dc", settings_for(fake, invalid_requests_alert=3, invalid_requests_brake=5))
    await c.start()
    try:
        assert (await c.health()).state == HealthState.OK
        fake.fail_next(403, times=3)
        for i in range(3):
            with pytest.raises(Exception, match="403"):
                await c.send(out(fake.text_channel_id, f"x{i}", "hi"))
        health = await c.health()
        assert health.state == HealthState.DEGRADED and "invalid requests" in health.detail
        assert health.metrics["invalid_requests_10m"] == 3
        fake.fail_next(401, times=2)
        for i in range(2):
            with pytest.raises(AuthError):
                await c.send(out(fake.text_channel_id, f"y{i}", "hi"))
        before = len(fake.rest_log)
        with pytest.raises(RateLimited) as caught:
            await c.send(out(fake.text_channel_id, "z", "hi"))
        assert caught.value.scope == "invalid-requests" and caught.value.retry_after > 500
        assert len(fake.rest_log) == before  # the brake stops it before Discord sees it
    finally:
        await c.stop()


async def test_sliding_window_limiter_never_exceeds_its_rate() -> None:
    lim = SlidingWindowLimiter(3, 0.2)
    stamps: list[float] = []

    async def one() -> None:
        slot, _ = await lim.acquire()
        stamps.append(time.monotonic())
        slot.end()

    await asyncio.gather(*(one() for _ in range(9)))
    for i in range(len(stamps) - 3):
        assert stamps[i + 3] - stamps[i] >= 0.2 - 1e-3
    assert stamps[-1] - stamps[0] >= 0.4 - 1e-3


async def test_sliding_window_counts_a_request_from_its_end() -> None:
    """A slow request arrives at Discord any time before its answer: the window counts it from
    the answer, so the next requests wait for it (while in flight it counts as now)."""
    lim = SlidingWindowLimiter(2, 0.2)
    first, _ = await lim.acquire()
    second, _ = await lim.acquire()
    waiter = asyncio.ensure_future(lim.acquire())
    await asyncio.sleep(0.3)  # both still in flight: the window stays full
    assert not waiter.done()
    second.end()
    ended = time.monotonic()
    slot, waited = await waiter  # `first` is still in flight: only `second` can leave
    assert time.monotonic() - ended >= 0.2 - 0.02  # a full window after `second` ended
    assert waited >= 0.5 - 0.05
    first.end()
    slot.end()


def test_invalid_request_monitor_counts_only_invalid_statuses() -> None:
    mon = InvalidRequestMonitor(alert_at=2, brake_at=3)
    for status in (200, 204, 400, 404, 500):
        assert not mon.record(status)
    assert not mon.record(429, shared_scope=True)  # shared-scope 429s do not count on Discord
    assert mon.record(401) and mon.record(403)
    assert mon.alerting and mon.brake_seconds() == 0.0
    assert mon.record(429)
    assert mon.brake_seconds() > 599


async def test_button_acks_skip_the_request_queue(fake: FakeDiscord) -> None:
    """Interaction answers are not bound by the global limit and are due in 3 s: they never wait
    behind a queue of paced requests."""
    c = DiscordConnector(
        "dc", settings_for(fake, requests_per_second=2, channel_messages=50, pace_margin_seconds=0.0)
    )
    await c.start()
    try:
        first = await c.send(
            OutboundMessage(
                idempotency_key="q",
                connector_id="dc",
                conversation_id=fake.text_channel_id,
                text="did that help?",
                buttons=(Button(label="Solved", data="solved"),),
            )
        )
        # many channels, so discord.py's per-route locks do not serialize them: a real queue forms
        starters = [await fake.post(fake.text_channel_id, f"q{i}") for i in range(8)]
        channels = [(await fake.start_thread(m["id"], f"t{m['id']}"))["id"] for m in starters]
        backlog = [asyncio.create_task(c.send(out(ch, f"b{ch}", "backlog"))) for ch in channels]
        await asyncio.sleep(0.1)
        it = await fake.click(first.external_ids[0], "solved")
        for _ in range(300):
            if it.acked_at is not None:
                break
            await asyncio.sleep(0.01)
        assert it.acked_at is not None and it.acked_at - it.created < 1.0
        assert not all(t.done() for t in backlog)  # the backlog was still queued meanwhile
        for t in backlog:
            t.cancel()
        await asyncio.gather(*backlog, return_exceptions=True)
    finally:
        await c.stop()
