"""The sweep on real storage with an injected clock: each stage fires once, with the right words."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.models import OutboundMessage
from bot.sla import commands
from bot.sla.sweep import SlaRuntime, sweep
from bot.storage.engine import create_engine, session_factory
from bot.storage.tables import OutboxRow
from tests.sla.helpers import seed, sla_config

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def env(
    tmp_path: Path, migrated: str
) -> AsyncIterator[tuple[async_sessionmaker[AsyncSession], SlaRuntime]]:
    engine = create_engine(migrated)
    rt = SlaRuntime.from_config(sla_config(tmp_path, migrated))
    try:
        yield session_factory(engine), rt
    finally:
        await engine.dispose()


async def sla_messages(sessions: async_sessionmaker[AsyncSession]) -> list[OutboundMessage]:
    t = OutboxRow.__table__  # type: ignore[attr-defined]
    async with sessions() as s:
        rows = (
            await s.execute(select(t.c.payload).where(t.c.idempotency_key.like("%:sla:%")).order_by(t.c.id))
        ).all()
    return [OutboundMessage.model_validate(r.payload) for r in rows]


async def q(sessions: async_sessionmaker[AsyncSession], sql: str) -> Any:
    async with sessions() as s:
        return (await s.execute(text(sql))).scalar()


async def test_stages_fire_once_in_order_with_self_contained_escalation(env: Any) -> None:
    sessions, rt = env
    await seed(sessions, rt.planner, [101], T0)
    clock = Clock(T0 + timedelta(minutes=4))

    r = await sweep(sessions, rt, "p1", clock=clock)
    assert (r.fired, r.next_due) == (0, T0 + timedelta(minutes=5))

    clock.now = T0 + timedelta(minutes=5, seconds=1)
    r = await sweep(sessions, rt, "p1", clock=clock)
    assert r.fired == 1 and r.lateness == [1.0]
    (remind,) = await sla_messages(sessions)
    assert remind.idempotency_key == "t101:sla:default:first_response.101.0:tagged"
    assert [m.user_id for m in remind.mentions] == ["ann"]
    assert remind.reply_to_id == "q101" and remind.conversation_id == "general"
    assert "Friendly reminder" in remind.text and "first response due in 5 min" in remind.text
    assert (await sweep(sessions, rt, "p1", clock=clock)).fired == 0  # never twice

    # the bot was down for hours: widen and escalate both fire at start, marked overdue
    clock.now = T0 + timedelta(hours=3)
    r = await sweep(sessions, rt, "p2", clock=clock)
    assert r.fired == 2
    msgs = {m.idempotency_key.rsplit(":", 1)[1]: m for m in (await sla_messages(sessions))[1:]}
    assert set(msgs) == {"more_helpers", "topic_channel", "staff"}
    assert [m.user_id for m in msgs["more_helpers"].mentions] == ["bo", "cy"]  # Ann was tagged already
    helpers_channel = msgs["topic_channel"]
    assert helpers_channel.conversation_id == "helpers-login"
    assert "4111" not in helpers_channel.text and "[card]" in helpers_channel.text  # peers see it redacted
    staff = msgs["staff"]
    assert staff.conversation_id == "staff" and staff.purpose == "escalation"
    for part in (
        "SLA escalation (150%): thread #101",
        "policy default",
        "first response target 10 min",
        "Waiting 3 h since 2026-11-23 10:00 UTC",
        "breached 2 h 50 min ago",
        "Overdue by 2 h 45 min, bot was offline",
        "From @cust101",
        "4111 1111 1111 1111",  # the private staff channel sees the question as asked
        "Tagged: @ann",
        "tagged 1 helper(s)",
        "reminded at 50% of first response at 10:05 UTC",
        "Link: https://ops.example/t/101",
        "unsource sla snooze 101 30m",
    ):
        assert part in staff.text, part
    assert await q(sessions, "select state from thread where id = 101") == "escalated"
    assert await q(sessions, "select count(*) from sla_stage where state = 'fired'") == 3
    assert (await sweep(sessions, rt, "p3", clock=clock)).fired == 0


async def test_solved_thread_stages_are_cancelled_not_fired(env: Any) -> None:
    sessions, rt = env
    await seed(sessions, rt.planner, [201], T0)
    async with sessions() as s, s.begin():
        await s.execute(text("update thread set state = 'solved' where id = 201"))
    r = await sweep(sessions, rt, "p1", clock=Clock(T0 + timedelta(days=2)))
    assert (r.fired, r.cancelled) == (0, 4)
    assert await sla_messages(sessions) == []


async def test_sensitive_threads_never_reach_peers(env: Any) -> None:
    sessions, rt = env
    await seed(sessions, rt.planner, [301], T0, sensitive="billing")
    await sweep(sessions, rt, "p1", clock=Clock(T0 + timedelta(minutes=20)))
    keys = [m.idempotency_key.rsplit(":", 1)[1] for m in await sla_messages(sessions)]
    assert keys == ["staff"]


async def test_concurrent_sweepers_fire_each_stage_exactly_once(tmp_path: Path, migrated: str) -> None:
    engines = [create_engine(migrated) for _ in range(4)]
    try:
        rt = SlaRuntime.from_config(sla_config(tmp_path, migrated))
        rt = SlaRuntime(
            rt.planner.__class__(rt.settings.model_copy(update={"sweep_batch": 40})),
            rt.directory,
            "local",
            "staff",
        )
        sessions = [session_factory(e) for e in engines]
        await seed(sessions[0], rt.planner, range(1000, 1300), T0)
        clock = Clock(T0 + timedelta(minutes=5, seconds=30))  # every thread's first stage is due
        results = await asyncio.gather(*(sweep(s, rt, f"p{i}", clock=clock) for i, s in enumerate(sessions)))
        assert sum(r.fired for r in results) == 300
        assert await q(sessions[0], "select count(*) from sla_stage where state = 'fired'") == 300
        assert (
            await q(
                sessions[0], "select count(distinct idempotency_key) from outbox where purpose = 'sla_remind'"
            )
            == 300
        )
        assert await q(sessions[0], "select count(*) from outbox where purpose = 'sla_remind'") == 300
    finally:
        for e in engines:
            await e.dispose()


async def test_snooze_close_and_assign(env: Any) -> None:
    sessions, rt = env
    await seed(sessions, rt.planner, [401, 402], T0)
    now = T0 + timedelta(minutes=2)
    async with sessions() as s, s.begin():
        moved = await commands.snooze(s, 401, timedelta(minutes=30), "sam", now)
        closed = await commands.close(s, 402, "sam", now)
        msg = await commands.assign(s, 401, "cy", directory=rt.directory, by="sam", now=now)
    assert (moved, closed) == (4, 4)  # 3 response stages + resolution
    assert msg.mentions[0].user_id == "cy" and msg.reply_to_id == "q401"
    async with sessions() as s:
        st = await commands.status(s, 401)
    due = sorted(x.due_at for x in st if x.state == "pending")
    assert due[0] == now + timedelta(minutes=30)
    assert due[1] - due[0] == timedelta(minutes=5)  # the ladder keeps its gaps
    # nothing fires during the snooze, nothing ever for the closed escalation
    assert (await sweep(sessions, rt, "p", clock=Clock(now + timedelta(minutes=29)))).fired == 0
    r = await sweep(sessions, rt, "p", clock=Clock(now + timedelta(minutes=31)))
    assert r.fired == 1
    (remind,) = [m for m in await sla_messages(sessions) if m.purpose == "sla_remind"]
    assert {m.user_id for m in remind.mentions} == {"ann", "cy"}  # the assignee is reminded too
    async with sessions() as s:
        with pytest.raises(commands.SlaCommandError, match="no thread"):
            await commands.close(s, 999, "sam", now)
        with pytest.raises(commands.SlaCommandError, match="no helper"):
            await commands.assign(s, 401, "nobody", directory=rt.directory, by="sam", now=now)
