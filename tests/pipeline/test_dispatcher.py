"""The dispatcher: retries chosen by error class, pacing, and crash recovery, on real storage."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import ClassVar

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.errors import AuthError, PermanentSendError, RateLimited, TransientError
from bot.models import Capabilities, HealthState, OutboundMessage, RateLimit, SendReceipt
from bot.pipeline.dispatcher import Dispatcher, RetryPolicy
from bot.pipeline.pacing import Pacer
from bot.storage import outbox
from bot.storage.engine import create_engine, session_factory
from bot.storage.tables import OutboxRow
from connectors.jsonl import JsonlConnector, JsonlSettings

OUT = OutboxRow.__table__  # type: ignore[attr-defined]


class ScriptedJsonl(JsonlConnector):
    """A jsonl connector whose sends fail as scripted first (the edge a platform would fail at)."""

    capabilities: ClassVar[Capabilities] = Capabilities(
        mode="pull",
        max_text_length=4000,
        rate_limits=(RateLimit(scope="conversation", limit=2, per_seconds=1.0),),
    )
    idempotent_send: ClassVar[bool] = True
    script: ClassVar[list[Exception]] = []
    calls: ClassVar[list[tuple[float, str]]] = []

    async def send(self, message: OutboundMessage) -> SendReceipt:
        type(self).calls.append((asyncio.get_running_loop().time(), message.idempotency_key))
        if type(self).script:
            raise type(self).script.pop(0)
        return await super().send(message)


@pytest.fixture
async def env(
    tmp_path: Path, migrated: str
) -> AsyncIterator[tuple[async_sessionmaker[AsyncSession], ScriptedJsonl]]:
    engine = create_engine(migrated)
    conn = ScriptedJsonl("c1", JsonlSettings(inbound=tmp_path / "in.jsonl", outbound=tmp_path / "out.jsonl"))
    await conn.start()
    ScriptedJsonl.script, ScriptedJsonl.calls = [], []
    yield session_factory(engine), conn
    await engine.dispose()


def msg(key: str, conversation: str = "chat-1") -> OutboundMessage:
    return OutboundMessage(
        idempotency_key=key, connector_id="c1", conversation_id=conversation, text=f"reply {key}"
    )


async def put(sessions: async_sessionmaker[AsyncSession], *messages: OutboundMessage) -> None:
    async with sessions() as s, s.begin():
        await outbox.enqueue(s, list(messages))


async def rows(sessions: async_sessionmaker[AsyncSession]) -> dict[str, object]:
    async with sessions() as s:
        return {r.idempotency_key: r for r in (await s.execute(select(OUT))).all()}


def dispatcher(sessions: async_sessionmaker[AsyncSession], conn: ScriptedJsonl, **kw: object) -> Dispatcher:
    policy = RetryPolicy(max_attempts=3, base=timedelta(milliseconds=100), cap=timedelta(milliseconds=400))
    return Dispatcher("d", sessions, {"c1": conn}, policy=policy, **kw)  # type: ignore[arg-type]


async def drain(
    d: Dispatcher, sessions: async_sessionmaker[AsyncSession], keys: int, timeout: float = 10.0
) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        await d.run_once()
        states = [r.state for r in (await rows(sessions)).values()]  # type: ignore[attr-defined]
        if len(states) == keys and all(s in ("sent", "failed") for s in states):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("outbox did not settle")


async def test_rate_limited_waits_exactly_retry_after_without_using_an_attempt(env) -> None:  # type: ignore[no-untyped-def]
    sessions, conn = env
    ScriptedJsonl.script = [RateLimited(0.6)]
    await put(sessions, msg("a"))
    d = dispatcher(sessions, conn)
    await drain(d, sessions, 1)
    (t1, _), (t2, _) = ScriptedJsonl.calls
    assert 0.55 <= t2 - t1 < 1.5
    row = (await rows(sessions))["a"]
    assert row.state == "sent" and row.attempts == 1  # type: ignore[attr-defined]


async def test_transient_errors_back_off_then_fail_after_max_attempts(env) -> None:  # type: ignore[no-untyped-def]
    sessions, conn = env
    ScriptedJsonl.script = [TransientError("502"), TransientError("timeout"), TransientError("502 again")]
    await put(sessions, msg("b"))
    d = dispatcher(sessions, conn)
    await drain(d, sessions, 1)
    row = (await rows(sessions))["b"]
    assert row.state == "failed" and row.attempts == 3  # type: ignore[attr-defined]
    assert "gave up after 3 attempts" in row.last_error  # type: ignore[attr-defined]
    gaps = [b - a for (a, _), (b, _) in zip(ScriptedJsonl.calls, ScriptedJsonl.calls[1:], strict=False)]
    assert all(g >= 0.05 for g in gaps), "never retried in a tight loop"


async def test_permanent_error_fails_with_its_reason_and_others_still_go(env) -> None:  # type: ignore[no-untyped-def]
    sessions, conn = env
    ScriptedJsonl.script = [PermanentSendError("chat not found")]
    await put(sessions, msg("c", "gone"), msg("d", "chat-2"))
    await drain(dispatcher(sessions, conn), sessions, 2)
    r = await rows(sessions)
    assert r["c"].state == "failed" and "chat not found" in r["c"].last_error  # type: ignore[attr-defined]
    assert r["d"].state == "sent"  # type: ignore[attr-defined]


async def test_auth_error_stops_the_connector_and_marks_it_down(env) -> None:  # type: ignore[no-untyped-def]
    sessions, conn = env
    ScriptedJsonl.script = [AuthError("401 Unauthorized")]
    await put(sessions, msg("e"), msg("f", "chat-2"))
    d = dispatcher(sessions, conn)
    for _ in range(5):
        await d.run_once()
    assert "c1" in d.stopped
    assert (await conn.health()).state is HealthState.DOWN
    assert len(ScriptedJsonl.calls) == 1, "no more sends through a connector whose credentials failed"
    r = await rows(sessions)
    assert {r["e"].state, r["f"].state} <= {"retry", "pending"}  # type: ignore[attr-defined]


async def test_conversation_pace_is_respected(env) -> None:  # type: ignore[no-untyped-def]
    sessions, conn = env
    await put(sessions, *(msg(f"p{i}") for i in range(6)))
    await drain(dispatcher(sessions, conn, pacer=Pacer()), sessions, 6)
    times = [t for t, _ in ScriptedJsonl.calls]
    # at most 2 per rolling second in one conversation
    for i in range(2, len(times)):
        assert times[i] - times[i - 2] >= 0.95
    # and in order
    assert [k for _, k in ScriptedJsonl.calls] == [f"p{i}" for i in range(6)]


async def test_interrupted_send_is_recovered_by_connector_kind(env) -> None:  # type: ignore[no-untyped-def]
    sessions, conn = env
    ScriptedJsonl.idempotent_send = False  # like Telegram or X: the platform cannot de-duplicate
    try:
        # 1. claimed, still waiting for its pacing slot when the process died: never attempted
        await put(sessions, msg("g"))
        async with sessions() as s, s.begin():
            [item] = await outbox.claim_due(s, "dead", 10, ["c1"])
        await dispatcher(sessions, conn).recover(older_than=timedelta(0))
        g = (await rows(sessions))["g"]
        assert g.state == "retry" and g.attempts == 0, "an unsent reply is re-queued, not lost"  # type: ignore[attr-defined]
        # 2. the process died during the platform call: it may or may not have gone out
        await put(sessions, msg("h", "chat-2"))
        async with sessions() as s, s.begin():
            claimed = await outbox.claim_due(s, "dead", 10, ["c1"])
            for it in claimed:
                if it.message.idempotency_key == "h":
                    await outbox.mark_sending(s, it.id)
        await dispatcher(sessions, conn).recover(older_than=timedelta(0))
        r = await rows(sessions)
        assert r["h"].state == "failed" and "not re-sent" in r["h"].last_error  # type: ignore[attr-defined]
    finally:
        ScriptedJsonl.idempotent_send = True
    # 3. the same mid-send crash through a connector that de-duplicates: re-sent, delivered once
    await put(sessions, msg("i", "chat-3"))
    async with sessions() as s, s.begin():
        for it in await outbox.claim_due(s, "dead", 10, ["c1"]):
            await outbox.mark_sending(s, it.id)
    d = dispatcher(sessions, conn)
    await d.recover(older_than=timedelta(0))
    for _ in range(50):
        await d.run_once()
        r = await rows(sessions)
        if r["i"].state == "sent" and r["g"].state == "sent":  # type: ignore[attr-defined]
            break
    assert r["i"].state == "sent" and r["g"].state == "sent"  # type: ignore[attr-defined]
    assert item.message.idempotency_key == "g"


class SlowFirst(ScriptedJsonl):
    """Sends to "slow" take a while; everything else goes at once."""

    gate: ClassVar[asyncio.Event | None] = None

    async def send(self, message: OutboundMessage) -> SendReceipt:
        if message.conversation_id == "slow" and type(self).gate is not None:
            await type(self).gate.wait()
        return await super().send(message)


async def test_run_dispatches_continuously_in_order_per_destination(tmp_path: Path, migrated: str) -> None:
    """run(): an answer that becomes due while another destination's send hangs goes out at
    once (no round to wait for); one destination's messages keep their order; a stop hands
    back what was not sent, and nothing is sent twice."""
    engine = create_engine(migrated)
    sessions = session_factory(engine)
    conn = SlowFirst("c1", JsonlSettings(inbound=tmp_path / "in.jsonl", outbound=tmp_path / "out.jsonl"))
    await conn.start()
    SlowFirst.script, SlowFirst.calls, SlowFirst.gate = [], [], asyncio.Event()
    d = dispatcher(sessions, conn, idle=0.02)
    task = asyncio.create_task(d.run())
    try:
        await put(sessions, msg("s1", "slow"), msg("s2", "slow"))
        d.wake()
        await asyncio.sleep(0.3)  # s1 hangs in its send
        await put(sessions, msg("a1", "fast-a"), msg("a2", "fast-a"), msg("b1", "fast-b"))
        d.wake()
        for _ in range(100):
            if {"a1", "a2", "b1"} <= {k for _, k in SlowFirst.calls}:
                break
            await asyncio.sleep(0.05)
        sent = [k for _, k in SlowFirst.calls]
        assert {"a1", "a2", "b1"} <= set(sent), sent  # not held back by the hanging send
        assert sent.index("a1") < sent.index("a2")
        assert "s2" not in sent  # queued behind s1: a destination stays in order
        await put(sessions, msg("s3", "slow"))
        d.wake()
        await asyncio.sleep(0.2)
        d.request_stop()
        SlowFirst.gate.set()  # s1 completes; s2 and s3 are handed back unsent
        await asyncio.wait_for(task, 10)
    finally:
        SlowFirst.gate = None
        if not task.done():
            task.cancel()
    got = await rows(sessions)
    states = {k: r.state for k, r in got.items()}  # type: ignore[attr-defined]
    assert {k: states[k] for k in ("s1", "a1", "a2", "b1")} == dict.fromkeys(("s1", "a1", "a2", "b1"), "sent")
    assert states["s2"] in ("pending", "retry") and states["s3"] in ("pending", "retry"), states
    sent = [k for _, k in SlowFirst.calls]
    assert len(sent) == len(set(sent))  # nothing twice
    await engine.dispose()


class ConnectorPaced(ScriptedJsonl):
    """A connector-wide limit (like Telegram's ~30 messages/s overall), here 5 per second."""

    capabilities: ClassVar[Capabilities] = Capabilities(
        mode="pull",
        max_text_length=4000,
        rate_limits=(RateLimit(scope="connector", limit=5, per_seconds=1.0),),
    )


async def test_connector_wide_pace_waits_in_memory_in_order(tmp_path: Path, migrated: str) -> None:
    """Near a connector-wide limit, answers to many destinations wait for their slots in the
    order they were claimed: none is put back in the outbox (where later answers would
    overtake it), and the limit holds in every rolling second."""
    engine = create_engine(migrated)
    sessions = session_factory(engine)
    conn = ConnectorPaced("c1", JsonlSettings(inbound=tmp_path / "in.jsonl", outbound=tmp_path / "out.jsonl"))
    await conn.start()
    ConnectorPaced.script, ConnectorPaced.calls = [], []
    await put(sessions, *(msg(f"q{i:02d}", f"dm-{i}") for i in range(12)))
    d = dispatcher(sessions, conn, idle=0.02, concurrency=1, pacer=Pacer())
    task = asyncio.create_task(d.run())
    try:
        for _ in range(200):
            if len(ConnectorPaced.calls) == 12:
                break
            await asyncio.sleep(0.05)
    finally:
        d.request_stop()
        await asyncio.wait_for(task, 10)
    times = [t for t, _ in ConnectorPaced.calls]
    sent = [k for _, k in ConnectorPaced.calls]
    assert sorted(sent) == [f"q{i:02d}" for i in range(12)], "each sent once"
    # answers that got slots in different seconds go out in that order (answers sharing a slot
    # time may swap); one put back in the outbox would be overtaken by later ones
    pos = {k: n for n, k in enumerate(sent)}
    for i in range(12):
        for j in range(i + 5, 12):
            assert pos[f"q{i:02d}"] < pos[f"q{j:02d}"], sent
    for i in range(5, len(times)):
        assert times[i] - times[i - 5] >= 0.95, "more than 5 sends in a second"
    assert times[-1] - times[0] < 3.5, "waited for slots, not for a requeue and a new claim"
    got = await rows(sessions)
    assert {r.state for r in got.values()} == {"sent"}  # type: ignore[attr-defined]
    claimed_at = [r.claimed_at for r in got.values()]  # type: ignore[attr-defined]
    # claimed as soon as there was room (two claims of 8 and 4), never put back and claimed again
    assert max(claimed_at) - min(claimed_at) < timedelta(seconds=0.5)
    await engine.dispose()
