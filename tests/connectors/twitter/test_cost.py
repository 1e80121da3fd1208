"""Pay-per-use: reads and writes counted and priced, adaptive polling, the monthly budget."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.errors import RateLimited
from bot.models import HealthState
from connectors.base import ConnectorContext
from connectors.twitter import TwitterConnector
from connectors.twitter.budget import Budget
from sandbox.x import FakeX
from tests.connectors.twitter.conftest import Clock, MakeConnector, fetch_all, reply
from tests.contract.harness_twitter import settings_for


async def test_reads_writes_and_cost_are_counted_and_reported(
    fake: FakeX, connector: TwitterConnector
) -> None:
    for i in range(3):
        fake.mention("ann", f"q{i}")
    got, cursor = await fetch_all(connector, None)
    await connector.send(reply(got[0], "an answer", "k"))
    await fetch_all(connector, cursor)  # an empty poll reads nothing
    metrics = (await connector.health()).metrics
    assert metrics["reads"] == 3.0 and metrics["writes"] == 1.0
    assert metrics["est_cost_usd"] == pytest.approx(3 * 0.005 + 1 * 0.01)
    assert metrics["requests_mentions"] == fake.request_count("mentions") == 2
    assert metrics["requests_create_tweet"] == 1.0
    assert metrics["mentions_read"] == 3.0
    assert metrics["budget_used"] == pytest.approx(metrics["est_cost_usd"] / 50.0, abs=1e-4)


async def test_usage_survives_a_restart(fake: FakeX, make_connector: MakeConnector) -> None:
    c = make_connector()
    await c.start()
    fake.mention("ann", "q")
    await fetch_all(c, None)
    await c.stop()
    c2 = make_connector()
    await c2.start()
    try:
        assert (await c2.health()).metrics["reads"] == 1.0
    finally:
        await c2.stop()


async def test_polling_is_fast_while_active_and_slows_down_when_idle(fake: FakeX, tmp_path: Path) -> None:
    clock = Clock(datetime.now(UTC).timestamp())
    settings = settings_for(
        fake,
        dms_enabled=False,
        poll_interval_active=10,
        poll_interval_idle=100,
        poll_backoff_factor=2,
        active_window=60,
    )
    c = TwitterConnector("x-pace", settings, ConnectorContext(data_dir=tmp_path), clock=clock)
    await c.start()
    try:
        fake.mention("ann", "hello")
        res = await c.fetch(None)
        cursor = res.cursor
        intervals = [res.next_poll_after]
        clock.now += 30  # still within the active window
        intervals.append((await c.fetch(cursor)).next_poll_after)
        clock.now += 60  # idle now: every empty poll waits longer, up to the idle interval
        for _ in range(5):
            intervals.append((await c.fetch(cursor)).next_poll_after)
            clock.now += 1
        fake.mention("ann", "back again")
        res = await c.fetch(cursor)
        intervals.append(res.next_poll_after)
    finally:
        await c.stop()
    assert intervals == [10, 10, 20, 40, 80, 100, 100, 10]


def test_budget_pressure_stretches_the_interval() -> None:
    s = settings_for(FakeX(), monthly_budget_usd=10.0, read_price_usd=0.01, write_reserve=0.2)
    start = datetime(2026, 11, 1, tzinfo=UTC).timestamp()
    clock = Clock(start + 3 * 86400)  # 10 % of November gone
    budget = Budget(s, clock)
    budget.count_reads(80)  # $0.80 = 10 % of the $8 read allowance: on plan
    assert budget.pressure() == pytest.approx(1.0)
    budget.count_reads(80)  # 20 %: twice as fast as planned
    assert budget.pressure() == pytest.approx(2.0)
    clock.now = start + 30 * 86400 - 1  # end of month: well within plan
    assert budget.pressure() == 1.0
    clock.now = datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC).timestamp()  # a new month starts at zero
    assert budget.cost == pytest.approx(1.6)
    budget.roll()
    assert budget.cost == 0.0


async def test_a_spent_read_budget_stops_polling_but_not_answers(
    fake: FakeX, make_connector: MakeConnector
) -> None:
    # $0.05 budget, 20 % kept for writes: reads may spend $0.04 = 8 posts
    c = make_connector(
        monthly_budget_usd=0.05, read_price_usd=0.005, write_price_usd=0.005, dms_enabled=False
    )
    await c.start()
    try:
        for i in range(8):
            fake.mention("ann", f"q{i}")
        got, cursor = await fetch_all(c, None)
        assert len(got) == 8
        fake.mention("ann", "one too many")
        before = fake.request_count("mentions")
        res = await c.fetch(cursor)
        assert res.messages == () and res.cursor is None
        assert res.next_poll_after is not None and res.next_poll_after > 60
        assert fake.request_count("mentions") == before  # no read was made
        health = await c.health()
        assert health.state is HealthState.DEGRADED and "budget" in health.detail
        receipt = await c.send(reply(got[0], "answers still go out", "k1"))  # the reserve pays for it
        assert receipt.external_ids
        await c.send(reply(got[1], "and this one", "k2"))
        with pytest.raises(RateLimited) as spent:  # now the whole budget is used
            await c.send(reply(got[2], "but not this one", "k3"))
        assert spent.value.scope == "budget"
    finally:
        await c.stop()
    assert fake.bot_texts() == ["@ann answers still go out", "@ann and this one"]
