"""The outbox: every outbound message, unique by idempotency key, sent by the dispatcher.

States: pending -> claimed -> sending -> sent | retry -> ... | failed. ``claimed`` means a
dispatcher holds it (waiting for its pacing slot); ``sending`` is set immediately before the
platform call. A restart never sends twice and never drops an unsent reply: enqueueing is
``ON CONFLICT DO NOTHING`` on the key; an item left ``claimed`` by a crash was never attempted
and is simply re-queued; an item left ``sending`` is re-sent only when its connector can
de-duplicate (``idempotent_send``), and otherwise failed with a clear reason rather than risk
a double reply.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import OutboundMessage, SendReceipt, utcnow
from bot.storage.dialect import dialect_of, insert
from bot.storage.tables import OutboxRow

_OUTBOX: Table = OutboxRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    message: OutboundMessage
    attempts: int
    thread_id: int | None = None


async def enqueue(
    session: AsyncSession,
    messages: Sequence[OutboundMessage],
    *,
    thread_id: int | None = None,
    message_id: int | None = None,
    not_before: datetime | None = None,
) -> int:
    """Add messages to the outbox; keys already present are left alone. Returns how many were new."""
    return await enqueue_many(session, [(m, thread_id, message_id) for m in messages], not_before=not_before)


async def enqueue_many(
    session: AsyncSession,
    items: Sequence[tuple[OutboundMessage, int | None, int | None]],
    *,
    not_before: datetime | None = None,
) -> int:
    """Like :func:`enqueue` for ``(message, thread_id, cause_message_id)`` triples, in one statement."""
    if not items:
        return 0
    now = utcnow()
    rows: list[dict[str, Any]] = [
        {
            "idempotency_key": m.idempotency_key,
            "connector_id": m.connector_id,
            "conversation_id": f"dm:{m.private_to}" if m.private_to else m.conversation_id,
            "thread_id": thread_id,
            "message_id": message_id,
            "purpose": m.purpose,
            "payload": m.model_dump(mode="json"),
            "state": "pending",
            "attempts": 0,
            "next_try_at": not_before or now,
            "created_at": now,
        }
        for m, thread_id, message_id in items
    ]
    dialect = dialect_of(session)
    stmt = (
        insert(dialect, _OUTBOX)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(_OUTBOX.c.id)
    )
    return len((await session.execute(stmt, rows)).all())


async def claim_due(
    session: AsyncSession, worker: str, limit: int, connectors: Sequence[str]
) -> list[OutboxItem]:
    """Claim due items for the given connectors (those this process can send through)."""
    now = utcnow()
    pick = (
        select(_OUTBOX.c.id)
        .where(
            _OUTBOX.c.state.in_(("pending", "retry")),
            _OUTBOX.c.next_try_at <= now,
            _OUTBOX.c.connector_id.in_(list(connectors)),
        )
        .order_by(_OUTBOX.c.next_try_at, _OUTBOX.c.id)
        .limit(limit)
    )
    if dialect_of(session) == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    stmt = (
        update(_OUTBOX)
        .where(_OUTBOX.c.id.in_(pick.scalar_subquery()))
        .values(state="claimed", claimed_by=worker, claimed_at=now, attempts=_OUTBOX.c.attempts + 1)
        .returning(_OUTBOX.c.id, _OUTBOX.c.payload, _OUTBOX.c.attempts, _OUTBOX.c.thread_id)
    )
    rows = (await session.execute(stmt)).all()
    items = [
        OutboxItem(r.id, OutboundMessage.model_validate(r.payload), r.attempts, r.thread_id) for r in rows
    ]
    return sorted(items, key=lambda i: i.id)


async def mark_sending(session: AsyncSession, item_id: int) -> None:
    """Right before the platform call: from here on a crash makes the outcome ambiguous."""
    await session.execute(update(_OUTBOX).where(_OUTBOX.c.id == item_id).values(state="sending"))


async def mark_sending_many(session: AsyncSession, item_ids: Sequence[int]) -> None:
    """``mark_sending`` for several items in one statement (the dispatcher's group commit)."""
    if item_ids:
        await session.execute(
            update(_OUTBOX).where(_OUTBOX.c.id.in_(sorted(set(item_ids)))).values(state="sending")
        )


async def mark_sent(session: AsyncSession, item_id: int, receipt: SendReceipt) -> None:
    await session.execute(
        update(_OUTBOX)
        .where(_OUTBOX.c.id == item_id)
        .values(
            state="sent", sent_at=receipt.sent_at, receipt=receipt.model_dump(mode="json"), last_error=None
        )
    )


async def mark_sent_many(session: AsyncSession, done: Sequence[tuple[int, SendReceipt]]) -> None:
    if not done:
        return
    from sqlalchemy import bindparam

    await session.execute(
        update(_OUTBOX)
        .where(_OUTBOX.c.id == bindparam("oid"))
        .values(state="sent", sent_at=bindparam("at"), receipt=bindparam("rc"), last_error=None),
        [{"oid": i, "at": r.sent_at, "rc": r.model_dump(mode="json")} for i, r in done],
    )


async def mark_retry(
    session: AsyncSession, item_id: int, at: datetime, error: str, *, count_attempt: bool = True
) -> None:
    values: dict[str, Any] = {"state": "retry", "next_try_at": at, "last_error": error[:2000]}
    if not count_attempt:
        values["attempts"] = _OUTBOX.c.attempts - 1
    await session.execute(update(_OUTBOX).where(_OUTBOX.c.id == item_id).values(**values))


async def mark_failed(session: AsyncSession, item_id: int, error: str) -> None:
    await session.execute(
        update(_OUTBOX).where(_OUTBOX.c.id == item_id).values(state="failed", last_error=error[:2000])
    )


async def recover_interrupted(
    session: AsyncSession,
    connector_ids_resendable: Sequence[str],
    connector_ids_other: Sequence[str],
    older_than: timedelta,
) -> tuple[int, int]:
    """Items left in ``sending`` by a crashed process: re-queue where the connector dedupes,
    fail the rest (the platform may or may not have received them: never risk a double reply)."""
    cutoff = utcnow() - older_than
    old = or_(_OUTBOX.c.claimed_at.is_(None), _OUTBOX.c.claimed_at < cutoff)
    # claimed but never attempted (waiting for a pacing slot): safe to send, whatever the connector
    await session.execute(
        update(_OUTBOX)
        .where(_OUTBOX.c.state == "claimed", old)
        .values(state="retry", next_try_at=utcnow(), attempts=_OUTBOX.c.attempts - 1, last_error=None)
    )
    stale = and_(_OUTBOX.c.state == "sending", old)
    requeued = await session.execute(
        update(_OUTBOX)
        .where(stale, _OUTBOX.c.connector_id.in_(list(connector_ids_resendable)))
        .values(
            state="retry",
            next_try_at=utcnow(),
            last_error="interrupted mid-send; re-sent (connector dedupes)",
        )
    )
    failed = await session.execute(
        update(_OUTBOX)
        .where(stale, _OUTBOX.c.connector_id.in_(list(connector_ids_other)))
        .values(
            state="failed",
            last_error=(
                "interrupted mid-send by a crash; not re-sent to avoid a duplicate reply (check the platform)"
            ),
        )
    )
    return int(requeued.rowcount), int(failed.rowcount)  # type: ignore[attr-defined]


async def counts(session: AsyncSession) -> dict[str, int]:
    rows = (await session.execute(select(_OUTBOX.c.state, func.count()).group_by(_OUTBOX.c.state))).all()
    return {str(r[0]): int(r[1]) for r in rows}
