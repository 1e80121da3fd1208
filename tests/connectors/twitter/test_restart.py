"""Restarts: what arrived while down is read once, nothing is posted twice, gaps are reported."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.errors import TransientError
from bot.models import HealthState
from connectors.base import ConnectorContext
from connectors.twitter import TwitterConnector
from sandbox.x import FakeX
from tests.connectors.twitter.conftest import Clock, MakeConnector, fetch_all, reply
from tests.contract.harness_twitter import settings_for


async def test_mentions_posted_while_down_are_fetched_once(
    fake: FakeX, make_connector: MakeConnector
) -> None:
    first = make_connector()
    await first.start()
    fake.mention("ann", "before the restart")
    got, cursor = await fetch_all(first, None)
    assert [m.text for m in got] == ["before the restart"]
    receipt = await first.send(reply(got[0], "On it!", "thread-1:ack"))
    await first.stop()

    # down: three mentions, one a reply in the first conversation, and a DM
    fake.mention("bo_helps", "while down 1")
    fake.reply("ann", receipt.external_ids[0], "while down 2")
    fake.mention("ann", "while down 3")
    fake.dm("ann", "while down (private)")

    second = make_connector()
    await second.start()
    try:
        later, cursor2 = await fetch_all(second, cursor)
        again, _ = await fetch_all(second, cursor2)
        # the core retries the reply it had not marked as sent: the journal answers, X is not asked
        posts_before = fake.request_count("create_tweet")
        again_receipt = await second.send(reply(got[0], "On it!", "thread-1:ack"))
    finally:
        await second.stop()
    assert sorted(m.text for m in later) == sorted(
        ["while down 1", "while down 2", "while down 3", "while down (private)"]
    )
    assert again == []
    assert again_receipt.external_ids == receipt.external_ids
    assert fake.request_count("create_tweet") == posts_before
    assert fake.bot_texts() == ["@ann On it!"]
    assert fake.request_count("me") == 1  # the account is remembered across restarts


async def test_an_interrupted_chain_resumes_without_reposting(
    fake: FakeX, make_connector: MakeConnector
) -> None:
    first = make_connector()
    await first.start()
    fake.mention("ann", "tell me everything")
    (question,), _ = await fetch_all(first, None)
    answer = " ".join(
        f"Point {i}: this is a sentence that explains one more detail of the answer." for i in range(12)
    )
    fake.inject("server_error", "create_tweet", after=1)  # part 1 goes out, part 2 fails
    with pytest.raises(TransientError):
        await first.send(reply(question, answer, "t:long"))
    await first.stop()
    assert len(fake.bot_posts()) == 1

    second = make_connector()  # a restart: the journal on disk knows part 1 is out
    await second.start()
    try:
        receipt = await second.send(reply(question, answer, "t:long"))
    finally:
        await second.stop()
    posts = fake.bot_posts()
    n = len(posts)
    assert n >= 3 and receipt.external_ids == tuple(p["id"] for p in posts)
    assert [t[-len(f"({i}/{n})") :] for i, t in enumerate(fake.bot_texts(), 1)] == [
        f"({i}/{n})" for i in range(1, n + 1)
    ]
    assert len(set(fake.bot_texts())) == n and fake.rejected == []


@pytest.fixture
async def small_window_fake() -> AsyncIterator[FakeX]:
    x = FakeX(mention_window=10)
    x.add_user("ann")
    await x.start()
    try:
        yield x
    finally:
        await x.stop()


async def test_a_gap_beyond_the_mention_window_is_reported(small_window_fake: FakeX, tmp_path: Path) -> None:
    fake = small_window_fake
    settings = settings_for(fake, mention_window=10, page_size=5, dms_enabled=False)

    def connector() -> TwitterConnector:
        return TwitterConnector("x-gap", settings, ConnectorContext(data_dir=tmp_path))

    c = connector()
    await c.start()
    fake.mention("ann", "seen")
    _, cursor = await fetch_all(c, None)
    await c.stop()
    posted = [fake.mention("ann", f"down {i}")["id"] for i in range(15)]  # more than X keeps

    c = connector()
    await c.start()
    try:
        healthy = await c.health()
        got, _ = await fetch_all(c, cursor)
        health = await c.health()
    finally:
        await c.stop()
    assert healthy.state is HealthState.OK
    assert [m.external_id for m in got] == posted[-10:]  # what X still had
    assert health.state is HealthState.DEGRADED
    assert "may have been missed" in health.detail
    assert health.metrics["gap_suspected"] == 1.0


async def test_no_gap_is_reported_for_a_normal_catch_up(fake: FakeX, make_connector: MakeConnector) -> None:
    c = make_connector(page_size=5)
    await c.start()
    try:
        _, cursor = await fetch_all(c, None)
        for i in range(7):
            fake.mention("ann", f"q{i}")
        got, _ = await fetch_all(c, cursor)
        health = await c.health()
    finally:
        await c.stop()
    assert len(got) == 7
    assert health.state is HealthState.OK and health.metrics["gap_suspected"] == 0.0


async def test_first_start_reads_only_the_backfill(fake: FakeX, make_connector: MakeConnector) -> None:
    ids = [fake.mention("ann", f"old {i}")["id"] for i in range(30)]
    dms = [fake.dm("ann", f"old dm {i}")["id"] for i in range(12)]
    clock = Clock()
    c = make_connector(clock=clock, initial_backfill=8, page_size=5)
    await c.start()
    try:
        got, cursor = await fetch_all(c, None)
        fake.mention("ann", "new")
        fake.dm("ann", "new dm")
        clock.now += 65  # DMs: X allows 15 reads per 15 minutes, so the connector waits ~64 s
        later, _ = await fetch_all(c, cursor)
    finally:
        await c.stop()
    assert [m.external_id for m in got if not m.is_private] == ids[-8:]
    assert [m.external_id for m in got if m.is_private] == [f"dm:{i}" for i in dms[-8:]]
    assert sorted(m.text for m in later) == ["new", "new dm"]
