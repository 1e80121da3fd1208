"""The ingestor's group commit: batches handed over together share a transaction, each caller
still gets its own outcome, and one bad batch never costs the others theirs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.models import Author, InboundMessage, MessageKind
from bot.pipeline.ingest import Ingestor
from bot.storage.engine import create_engine, session_factory
from bot.storage.ingest import load_cursor
from bot.storage.tables import MessageRow, WorkItemRow

MESSAGE = MessageRow.__table__  # type: ignore[attr-defined]
WORK = WorkItemRow.__table__  # type: ignore[attr-defined]


def m(connector: str, ext: str, text: str = "how do I reset my PIN?") -> InboundMessage:
    return InboundMessage(
        connector_id=connector,
        platform="telegram" if connector == "tg" else "discord",
        external_id=ext,
        conversation_id=f"dm:{ext}",
        kind=MessageKind.DM,
        author=Author(id=f"u{ext}"),
        text=text,
        sent_at=datetime(2026, 12, 1, 12, 0, tzinfo=UTC),
        is_private=True,
    )


@pytest.fixture
async def sessions(migrated: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(migrated)
    yield session_factory(engine)
    await engine.dispose()


async def count(sessions: async_sessionmaker[AsyncSession], table: object) -> int:
    async with sessions() as s:
        return int((await s.execute(select(func.count()).select_from(table))).scalar_one())  # type: ignore[arg-type]


async def test_concurrent_batches_share_transactions_and_keep_their_own_counts(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    woken: list[int] = []
    ing = Ingestor(sessions, on_stored=lambda: woken.append(1))
    assert await ing.store("tg", [m("tg", "0")], "1") == 1  # stored before: a duplicate below
    calls = [
        ing.store("tg", [m("tg", "0"), m("tg", "1")], "2"),  # one new, one already stored
        ing.store("dc", [m("dc", "a"), m("dc", "a"), m("dc", "b")], '{"w":"b"}'),  # a twice in one batch
        ing.store("tg", [m("tg", "2"), m("tg", "3")], "4"),
        ing.store("dc", [m("dc", "b")], '{"w":"c"}'),  # b again, from an earlier batch of the same write
        ing.store("tg", [], "5"),  # only the cursor moves
        *(ing.store("dc", [m("dc", f"x{i}")], f'{{"w":"x{i}"}}') for i in range(20)),
    ]
    got = await asyncio.gather(*calls)
    assert got == [1, 2, 2, 0, 0, *([1] * 20)]
    assert ing.stats.transactions < 1 + len(calls), "handed over together, written together"
    assert ing.stats.stored == 1 + 1 + 2 + 2 + 20 and ing.stats.duplicates == 1 + 1 + 1
    assert await count(sessions, MESSAGE) == 26 and await count(sessions, WORK) == 26  # one work item each
    async with sessions() as s:
        assert await load_cursor(s, "tg") == "5"  # the last cursor handed over wins
        assert await load_cursor(s, "dc") == '{"w":"x19"}'
    assert woken


async def test_a_bad_batch_fails_alone(sessions: async_sessionmaker[AsyncSession]) -> None:
    ing = Ingestor(sessions)
    good = ing.store("tg", [m("tg", "10")], "11")
    bad = ing.store("tg", [m("dc", "oops")], "99")  # a message from another connector: refused
    also_good = ing.store("dc", [m("dc", "z")], '{"w":"z"}')
    results = await asyncio.gather(good, bad, also_good, return_exceptions=True)
    assert results[0] == 1 and results[2] == 1
    assert isinstance(results[1], ValueError) and "handed to the 'tg' sink" in str(results[1])
    async with sessions() as s:
        assert await load_cursor(s, "tg") == "11", "the failed batch's cursor is not stored"
        stored = {r.external_id for r in (await s.execute(select(MESSAGE.c.external_id))).all()}
    assert stored == {"10", "z"}


async def test_a_cancelled_caller_does_not_lose_the_others_batches(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    ing = Ingestor(sessions)
    first = asyncio.create_task(ing.store("tg", [m("tg", "20")], "21"))
    second = asyncio.create_task(ing.store("tg", [m("tg", "21")], "22"))
    await asyncio.sleep(0)
    first.cancel()  # its listener went away mid-write: the write itself goes on
    assert await second == 1
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await count(sessions, MESSAGE) == 2
