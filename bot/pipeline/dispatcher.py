"""The dispatcher: the only place that sends. Outbox -> pacing -> connector.send -> receipt.

Retries are chosen by error class: ``RateLimited`` waits exactly ``retry_after`` (and holds
that destination), ``TransientError`` backs off exponentially with jitter up to a cap,
``AuthError`` stops sending through that connector and marks it unhealthy, and
``PermanentSendError`` fails the item with its reason. Messages to one destination go out in
order; different destinations go out concurrently.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.errors import AuthError, ConnectorError, PermanentSendError, RateLimited, TransientError
from bot.models import HealthState, MessageKind, RateLimit, SendReceipt, utcnow
from bot.pipeline.loop import run_rounds
from bot.pipeline.pacing import Pacer
from bot.storage import outbox
from bot.storage.dialect import dialect_of, insert
from bot.storage.tables import MessageRow
from connectors.base import AnyConnector

log = logging.getLogger("unsource.dispatcher")

_MESSAGE: Table = MessageRow.__table__  # type: ignore[attr-defined]

#: a paced wait up to this is waited in memory, in the order slots were reserved, without
#: holding a send slot (other destinations keep sending meanwhile); a longer wait (a group's
#: per-minute limit, a 429) puts the item back in the outbox, due at its slot. Waiting in
#: memory matters near a connector-wide limit (Telegram's ~30 messages/s): putting items back
#: and claiming them again let later answers overtake them and cost two writes each.
HOLD_LIMIT_S = 2.0


@dataclass
class DispatchStats:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    rate_limited: int = 0
    by_connector: dict[str, int] = field(default_factory=lambda: defaultdict(int))


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base: timedelta = timedelta(seconds=2)
    cap: timedelta = timedelta(minutes=10)

    def backoff(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """Full jitter: uniform in [base/2, min(cap, base * 2**(attempt-1))]."""
        ceiling = min(self.cap.total_seconds(), self.base.total_seconds() * 2 ** max(0, attempt - 1))
        low = self.base.total_seconds() / 2
        return float(low + (max(ceiling, low) - low) * rng())


class Dispatcher:
    def __init__(
        self,
        name: str,
        sessions: async_sessionmaker[AsyncSession],
        connectors: Mapping[str, AnyConnector],
        *,
        policy: RetryPolicy | None = None,
        concurrency: int = 8,
        idle: float = 0.2,
        pacer: Pacer | None = None,
    ) -> None:
        self.name = name
        self.sessions = sessions
        self.connectors = dict(connectors)
        self.policy = policy or RetryPolicy()
        self.concurrency = concurrency
        self.idle = idle
        self.pacer = pacer or Pacer()
        self.stats = DispatchStats()
        self.stopped: dict[str, str] = {}  # connector id -> why (auth failure)
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._round: list[tuple[outbox.OutboxItem, SendReceipt]] = []
        self._marker = _SendingMarker(sessions)
        self._sem = asyncio.Semaphore(concurrency)
        self._queues: dict[tuple[str, str], list[outbox.OutboxItem]] = {}
        self._drains: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._in_hand = 0  # claimed by run() and not sent or requeued yet
        self._flusher: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def recover(self, older_than: timedelta = timedelta(seconds=0)) -> None:
        """At start: re-queue items a crashed process claimed but never sent; settle the ones it
        left mid-send ('sending') by whether the connector can de-duplicate."""
        resendable = [cid for cid, c in self.connectors.items() if getattr(c, "idempotent_send", False)]
        others = [cid for cid in self.connectors if cid not in resendable]
        async with self.sessions() as s, s.begin():
            requeued, failed = await outbox.recover_interrupted(s, resendable, others, older_than)
        if requeued or failed:
            log.warning(
                "outbox recovery: %d re-queued (connector dedupes), %d failed as ambiguous", requeued, failed
            )

    def request_stop(self) -> None:
        """Finish the batch in hand, then return from :meth:`run` (a clean shutdown)."""
        self._stop.set()
        self._wake.set()

    async def run(self) -> None:
        """Dispatch continuously: claim whatever is due as soon as there is room, append it to
        its destination's queue (one sender per destination keeps each conversation in order),
        and let every destination go at its own pace. Unlike :meth:`run_once`, a new item never
        waits for the slowest send of an earlier batch."""
        try:
            await run_rounds(self._claim_more, wake=self._wake, stop=self._stop, idle=self.idle)
        finally:
            while self._drains:  # shutting down: senders requeue what they have not sent
                await asyncio.gather(*self._drains.values(), return_exceptions=True)
            if self._flusher is not None:  # a flush in progress holds receipts: let it finish
                await asyncio.gather(self._flusher, return_exceptions=True)
            await self._flush_sent()

    def _capacity(self) -> int:
        return self.concurrency * 8

    async def _claim_more(self) -> int:
        active = [cid for cid in self.connectors if cid not in self.stopped]
        room = self._capacity() - self._in_hand
        if not active or room <= 0:
            return 0
        async with self.sessions() as s, s.begin():
            items = await outbox.claim_due(s, self.name, room, active)
        for item in items:
            m = item.message
            key = (m.connector_id, f"dm:{m.private_to}" if m.private_to else m.conversation_id)
            self._queues.setdefault(key, []).append(item)
            self._in_hand += 1
            if key not in self._drains:
                self._drains[key] = asyncio.create_task(self._drain(key), name=f"dispatch:{key[0]}")
        return len(items)

    async def _drain(self, key: tuple[str, str]) -> None:
        queue = self._queues[key]
        held, why = 0.0, "dispatcher error"
        try:
            while queue:
                if self._stop.is_set():  # shutting down: the rest goes back, in order
                    why = "dispatcher stopped before sending"
                    break
                item = queue.pop(0)
                self._in_hand -= 1
                held = await self._send_one(item)
                if held:  # destination paused: the rest goes back, in order
                    why = "destination paced"
                    break
        except Exception:
            log.exception("dispatching to %s failed", key)
        finally:
            while queue:  # what this sender will not send (more may arrive while requeueing)
                rest = queue[:]
                queue.clear()
                self._in_hand -= len(rest)
                try:
                    await self._requeue(rest, held, why)
                except Exception:
                    log.exception("could not requeue %d outbox items (their claim will expire)", len(rest))
            del self._queues[key]
            del self._drains[key]
            self._flush_soon()
            self._wake.set()  # room again: claim more

    def _flush_soon(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_loop())

    async def _flush_loop(self) -> None:
        await asyncio.sleep(0)  # senders finishing in the same loop iteration share the flush
        while self._round:
            try:
                await self._flush_sent()
            except Exception:
                log.exception("recording sent outbox items failed (they stay 'sending')")
                return

    async def run_once(self) -> int:
        active = [cid for cid in self.connectors if cid not in self.stopped]
        if not active:
            return 0
        async with self.sessions() as s, s.begin():
            items = await outbox.claim_due(s, self.name, self.concurrency * 8, active)
        if not items:
            return 0
        groups: dict[tuple[str, str], list[outbox.OutboxItem]] = defaultdict(list)
        for item in items:
            m = item.message
            groups[(m.connector_id, f"dm:{m.private_to}" if m.private_to else m.conversation_id)].append(item)
        sem = asyncio.Semaphore(self.concurrency)

        async def run_group(group: list[outbox.OutboxItem]) -> None:
            async with sem:
                for i, item in enumerate(group):
                    if self._stop.is_set():  # shutting down: what is not sent yet goes back, in order
                        await self._requeue(group[i:], 0.0, "dispatcher stopped before sending")
                        return
                    held = await self._send_one(item)
                    if held:  # destination paused: put the rest of the group back, in order
                        await self._requeue(group[i + 1 :], held, "destination paced")
                        return

        try:
            await asyncio.gather(*(run_group(g) for g in groups.values()))
        finally:
            await self._flush_sent()
        return len(items)

    async def _requeue(self, items: list[outbox.OutboxItem], delay: float, why: str) -> None:
        if not items:
            return
        at = utcnow() + timedelta(seconds=delay)
        async with self.sessions() as s, s.begin():
            for item in items:
                await outbox.mark_retry(s, item.id, at, why, count_attempt=False)

    async def _send_one(self, item: outbox.OutboxItem) -> float:
        """Send one item; return a positive delay if its destination must wait (rest requeued)."""
        m = item.message
        connector = self.connectors[m.connector_id]
        keys = Pacer.keys_for(m, type(connector).capabilities.rate_limits)
        wait = self.pacer.delay(keys)
        if wait > HOLD_LIMIT_S:
            await self._requeue([item], wait, f"paced: next slot in {wait:.1f}s")
            return wait
        pause = self.pacer.reserve(keys)
        if pause > 0:
            await asyncio.sleep(pause)
            if self._stop.is_set():  # the sender's loop sees the stop next and puts the rest back
                await self._requeue([item], 0.0, "dispatcher stopped before sending")
                return 0.0
        async with self._sem:  # only the send itself takes one of the ``concurrency`` slots
            return await self._send_reserved(item, connector, keys)

    async def _send_reserved(
        self,
        item: outbox.OutboxItem,
        connector: AnyConnector,
        keys: list[tuple[tuple[str, ...], RateLimit]],
    ) -> float:
        m = item.message
        await self._marker.mark(item.id)
        # checked last, with no await before the send: another destination may have hit an
        # auth error while this one waited
        if m.connector_id in self.stopped:
            await self._requeue([item], 60.0, f"connector stopped: {self.stopped[m.connector_id]}")
            return 60.0
        try:
            receipt = await connector.send(m)
        except RateLimited as exc:
            self.stats.rate_limited += 1
            scope = (
                (m.connector_id,)
                if exc.scope == "connector"
                else keys[0][0][:-1]
                if keys
                else (m.connector_id,)
            )
            self.pacer.block(scope, exc.retry_after)
            await self._requeue([item], exc.retry_after, str(exc))
            return max(exc.retry_after, 0.001)
        except AuthError as exc:
            self.stopped[m.connector_id] = str(exc)
            connector.set_health(HealthState.DOWN, f"authentication failed: {exc}")
            log.error("connector %s: authentication failed, sending stopped: %s", m.connector_id, exc)
            await self._requeue([item], 300.0, f"auth error: {exc}")
            return 300.0
        except PermanentSendError as exc:
            await self._fail(item, f"refused by the platform: {exc}")
            return 0.0
        except (TransientError, ConnectorError, OSError, TimeoutError) as exc:
            await self._transient(item, f"{type(exc).__name__}: {exc}")
            return 0.0
        except Exception as exc:  # an SDK error leaked past the connector: treat as transient, loudly
            log.exception("connector %s leaked %s from send()", m.connector_id, type(exc).__name__)
            await self._transient(item, f"unexpected {type(exc).__name__}: {exc}")
            return 0.0
        await self._sent(item, receipt)
        return 0.0

    async def _transient(self, item: outbox.OutboxItem, error: str) -> None:
        if item.attempts >= self.policy.max_attempts:
            await self._fail(item, f"gave up after {item.attempts} attempts: {error}")
            return
        self.stats.retried += 1
        at = utcnow() + timedelta(seconds=self.policy.backoff(item.attempts))
        async with self.sessions() as s, s.begin():
            await outbox.mark_retry(s, item.id, at, error)

    async def _fail(self, item: outbox.OutboxItem, error: str) -> None:
        self.stats.failed += 1
        log.warning("outbox item %s (%s) failed: %s", item.id, item.message.idempotency_key, error)
        async with self.sessions() as s, s.begin():
            await outbox.mark_failed(s, item.id, error)

    async def _sent(self, item: outbox.OutboxItem, receipt: SendReceipt) -> None:
        self._round.append((item, receipt))
        self.stats.sent += 1
        self.stats.by_connector[item.message.connector_id] += 1

    async def _flush_sent(self) -> None:
        """Record a round's receipts in one transaction (items stay 'sending' until then, so a
        crash in between is settled by :meth:`recover`)."""
        done, self._round = self._round, []
        if not done:
            return
        async with self.sessions() as s, s.begin():
            await outbox.mark_sent_many(s, [(item.id, receipt) for item, receipt in done])
            rows = [
                row
                for item, receipt in done
                for row in _own_message_rows(
                    type(self.connectors[item.message.connector_id]).platform, item, receipt
                )
            ]
            if rows:
                stmt = insert(dialect_of(s), _MESSAGE)
                await s.execute(
                    stmt.on_conflict_do_nothing(index_elements=["connector_id", "external_id"]), rows
                )


class _SendingMarker:
    """Group commit of the 'sending' marks: each send still waits until its own item is marked
    (a crash after that is settled by :meth:`Dispatcher.recover`), but sends that are due at
    the same moment share one transaction instead of queueing for the database one by one."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self._waiting: list[tuple[int, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.transactions = 0

    async def mark(self, item_id: int) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((item_id, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await asyncio.shield(done)

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # sends released in the same loop iteration join this batch
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                async with self.sessions() as s, s.begin():
                    await outbox.mark_sending_many(s, [item_id for item_id, _ in batch])
                self.transactions += 1
            except BaseException as exc:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc if isinstance(exc, Exception) else RuntimeError(str(exc)))
                if not isinstance(exc, Exception):
                    raise
                continue
            for _, fut in batch:
                if not fut.done():
                    fut.set_result(None)


def _own_message_rows(
    platform: str, item: outbox.OutboxItem, receipt: SendReceipt
) -> list[dict[str, object]]:
    """The bot's own messages, stored so that replies to them find their thread."""
    m = item.message
    return [
        {
            "connector_id": m.connector_id,
            "external_id": ext,
            "platform": platform,
            "conversation_id": f"dm:{m.private_to}" if m.private_to else m.conversation_id,
            "thread_ref": m.thread_ref,
            "kind": MessageKind.DM.value if m.private_to else MessageKind.REPLY.value,
            "author_id": "bot",
            "author_is_bot": True,
            "text": m.text,
            "sent_at": receipt.sent_at,
            "received_at": receipt.sent_at,
            "reply_to_id": m.reply_to_id,
            "is_private": m.private_to is not None,
            "raw": {"outbox_id": item.id, "idempotency_key": m.idempotency_key},
            "thread_id": item.thread_id,
        }
        for ext in receipt.external_ids
    ]
