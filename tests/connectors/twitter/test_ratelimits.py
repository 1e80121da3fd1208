"""Rate limits and faults: pauses per endpoint, no tight retry loop, nothing lost (counted at the fake)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.errors import AuthError, RateLimited, TransientError
from bot.models import HealthState, InboundMessage
from connectors.base import ConnectorContext
from connectors.twitter import TwitterConnector
from sandbox.x import FakeX
from tests.connectors.twitter.conftest import MakeConnector, fetch_all, reply
from tests.contract.harness_twitter import settings_for


async def impatient_poll(
    c: TwitterConnector, cursor: str | None, want: int, deadline: float = 10.0
) -> tuple[list[InboundMessage], str | None, list[float]]:
    """Poll like a scheduler would, but also hammer fetch() while paused (which must stay local)."""
    got: list[InboundMessage] = []
    waits: list[float] = []
    end = time.monotonic() + deadline
    while len(got) < want and time.monotonic() < end:
        try:
            res = await c.fetch(cursor)
        except RateLimited as exc:
            waits.append(exc.retry_after)
            for _ in range(20):  # an over-eager caller: refused locally, no request leaves
                with pytest.raises(RateLimited):
                    await c.fetch(cursor)
            await asyncio.sleep(exc.retry_after)
            continue
        got.extend(res.messages)
        cursor = res.cursor or cursor
    return got, cursor, waits


async def test_a_429_storm_pauses_polling_until_the_reset_and_loses_nothing(
    fake: FakeX, make_connector: MakeConnector
) -> None:
    c = make_connector(dms_enabled=False)
    await c.start()
    try:
        _, cursor = await fetch_all(c, None)
        posted = [fake.mention("ann", f"during the storm {i}")["id"] for i in range(3)]
        fake.inject("rate_limit", "mentions", times=2, reset_in=0.6)
        before = fake.request_count("mentions")
        started = time.time()
        got, _, waits = await impatient_poll(c, cursor, want=3)
        elapsed = time.time() - started
        health = await c.health()
    finally:
        await c.stop()
    assert [m.external_id for m in got] == posted
    assert len(waits) == 2 and all(0 < w <= 2.1 for w in waits)
    assert fake.request_count("mentions") - before == 3  # two 429s, one success: 40 fetch calls stayed local
    assert fake.violations["mentions"] == 0  # never asked again before the reset
    assert elapsed >= 0.6
    assert health.metrics["throttled"] == 2.0


async def test_a_429_without_headers_backs_off_exponentially(
    fake: FakeX, make_connector: MakeConnector
) -> None:
    c = make_connector(dms_enabled=False, backoff_base=0.1)
    await c.start()
    try:
        _, cursor = await fetch_all(c, None)
        fake.mention("ann", "still there?")
        fake.inject("rate_limit_no_headers", "mentions", times=3)
        before = fake.request_count("mentions")
        got, _, waits = await impatient_poll(c, cursor, want=1)
    finally:
        await c.stop()
    assert [m.text for m in got] == ["still there?"]
    assert waits == pytest.approx([0.1, 0.2, 0.4], abs=0.05)
    assert fake.request_count("mentions") - before == 4


async def test_a_paused_send_endpoint_does_not_block_polling(
    fake: FakeX, make_connector: MakeConnector
) -> None:
    c = make_connector(dms_enabled=False)
    await c.start()
    try:
        fake.mention("ann", "question")
        (question,), cursor = await fetch_all(c, None)
        fake.inject("rate_limit", "create_tweet", reset_in=2)
        with pytest.raises(RateLimited) as first:
            await c.send(reply(question, "answer", "k1"))
        assert first.value.scope == "create_tweet" and 1 <= first.value.retry_after <= 3.1
        with pytest.raises(RateLimited):  # still paused: refused without asking X
            await c.send(reply(question, "answer", "k1"))
        assert fake.request_count("create_tweet") == 1
        fake.mention("ann", "more")
        got, _ = await fetch_all(c, cursor)  # reading goes on
        assert [m.text for m in got] == ["more"]
        health = await c.health()
        assert health.state is HealthState.DEGRADED and "create_tweet" in health.detail
    finally:
        await c.stop()
    assert fake.violations["create_tweet"] == 0


@pytest.fixture
async def tight_fake() -> AsyncIterator[FakeX]:
    x = FakeX(limits={"mentions": (3, 1.0)})  # 3 requests per 1-second window
    x.add_user("ann")
    await x.start()
    try:
        yield x
    finally:
        await x.stop()


async def test_a_spent_window_pauses_before_any_429(tight_fake: FakeX, tmp_path: Path) -> None:
    fake = tight_fake
    c = TwitterConnector(
        "x-tight",
        settings_for(fake, dms_enabled=False, rate_limit_margin=0.05),
        ConnectorContext(data_dir=tmp_path),
    )
    await c.start()
    try:
        cursor = None
        for _ in range(3):
            res = await c.fetch(cursor)
            cursor = res.cursor or cursor
        assert res.next_poll_after is not None and res.next_poll_after > 0  # the window is spent: wait
        with pytest.raises(RateLimited) as paused:
            await c.fetch(cursor)  # remaining was 0: refused locally
        assert fake.request_count("mentions") == 3
        fake.mention("ann", "after the window")
        await asyncio.sleep(paused.value.retry_after)
        got, _ = await fetch_all(c, cursor)
    finally:
        await c.stop()
    assert [m.text for m in got] == ["after the window"]
    assert fake.throttled["mentions"] == 0 and fake.violations["mentions"] == 0


async def test_503_with_retry_after_pauses_that_endpoint(fake: FakeX, connector: TwitterConnector) -> None:
    fake.inject("unavailable", "mentions", reset_in=1)
    fake.dm("ann", "a DM still arrives")
    res = await connector.fetch(None)  # mentions fail, DMs are read
    assert [m.text for m in res.messages] == ["a DM still arrives"]
    assert 0.5 < connector.limiter.wait_time("mentions") <= 2.1
    assert "mentions" in (await connector.health()).detail


@pytest.mark.parametrize("kind", ["server_error", "html_error"])
async def test_server_errors_are_transient(fake: FakeX, make_connector: MakeConnector, kind: str) -> None:
    c = make_connector(dms_enabled=False)
    await c.start()
    try:
        fake.inject(kind, "mentions")  # type: ignore[arg-type]
        with pytest.raises(TransientError):
            await c.fetch(None)
        fake.mention("ann", "after the outage")
        got, _ = await fetch_all(c, None)
    finally:
        await c.stop()
    assert [m.text for m in got] == ["after the outage"]


async def test_a_slow_answer_times_out_as_transient(fake: FakeX, make_connector: MakeConnector) -> None:
    c = make_connector(dms_enabled=False, request_timeout=0.1)
    await c.start()
    try:
        fake.inject("slow", "mentions", delay=0.4)
        with pytest.raises(TransientError):
            await c.fetch(None)
    finally:
        await c.stop()


async def test_revoked_credentials_are_an_auth_error(fake: FakeX, make_connector: MakeConnector) -> None:
    c = make_connector()
    await c.start()
    try:
        fake.inject("auth", "mentions")
        with pytest.raises(AuthError):
            await c.fetch(None)
        assert (await c.health()).state is HealthState.DOWN
    finally:
        await c.stop()


async def test_wrong_credentials_fail_at_start(fake: FakeX, tmp_path: Path) -> None:
    from pydantic import SecretStr

    settings = settings_for(fake, consumer_key=SecretStr("wrong"))
    c = TwitterConnector("x-bad", settings, ConnectorContext(data_dir=tmp_path))
    with pytest.raises(AuthError):
        await c.start()
    assert (await c.health()).state is HealthState.DOWN


async def test_a_catch_up_paused_mid_way_resumes_at_the_same_page(
    fake: FakeX, make_connector: MakeConnector
) -> None:
    c = make_connector(dms_enabled=False, page_size=5)
    await c.start()
    try:
        _, cursor = await fetch_all(c, None)
        posted = [fake.mention("ann", f"m{i}")["id"] for i in range(12)]
        fake.inject("rate_limit", "mentions", after=1, reset_in=0.5)  # page 1 arrives, page 2 is refused
        reads_before = c.budget.usage.reads
        got, _, waits = await impatient_poll(c, cursor, want=12)
        reads = c.budget.usage.reads - reads_before
    finally:
        await c.stop()
    assert [m.external_id for m in got] == posted and len(waits) == 1
    assert reads == 12  # page 1 was kept, not read again
    pages = [r for r in fake.requests if r.endpoint == "mentions"][-4:]
    assert [r.status for r in pages] == [200, 429, 200, 200]
    assert pages[1].query["pagination_token"] == pages[2].query["pagination_token"]
    assert fake.violations["mentions"] == 0


async def test_a_slow_poll_does_not_hold_up_a_send(fake: FakeX, connector: TwitterConnector) -> None:
    fake.mention("ann", "question")
    (question,), cursor = await fetch_all(connector, None)
    fake.inject("slow", "mentions", delay=0.5)
    poll = asyncio.create_task(connector.fetch(cursor))
    await asyncio.sleep(0.05)  # the poll is now waiting on X
    receipt = await connector.send(reply(question, "sent while polling", "k"))
    assert not poll.done() and receipt.external_ids
    await poll
