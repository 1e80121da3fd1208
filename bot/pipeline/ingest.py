"""Running connectors' inbound side: the push listener and the pull poll.

Both hand batches to :meth:`Ingestor.store`, which stores the messages and the cursor in
one transaction; the cursor never moves before the messages it covers are committed.
Batches that arrive while a transaction is open are committed together in the next one
(group commit): each caller still returns only once its own batch is stored, but a busy
process makes a few larger writes instead of one per platform event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import groupby

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.errors import AuthError, ConflictError, ConnectorError, RateLimited
from bot.models import HealthState, InboundMessage
from bot.storage.ingest import load_cursor, store_batches
from connectors.base import AnyConnector, PullConnector, PushConnector

log = logging.getLogger("unsource.ingest")


@dataclass
class IngestStats:
    stored: int = 0
    duplicates: int = 0
    batches: int = 0
    transactions: int = 0
    errors: int = 0
    per_connector: dict[str, int] = field(default_factory=dict)


@dataclass
class _Pending:
    connector_id: str
    messages: Sequence[InboundMessage]
    cursor: str | None
    done: asyncio.Future[list[int]]


class Ingestor:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], on_stored: Callable[[], None] | None = None
    ) -> None:
        self.sessions = sessions
        self.stats = IngestStats()
        self.on_stored = on_stored
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None

    async def store(self, connector_id: str, messages: Sequence[InboundMessage], cursor: str | None) -> int:
        """Store one batch and its cursor; return how many messages were new. Returns only once
        the batch is committed; raises what storing it raised."""
        if not messages and cursor is None:
            return 0
        done: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        done.add_done_callback(_retrieved)  # a caller cancelled meanwhile: no "never retrieved" noise
        self._pending.append(_Pending(connector_id, messages, cursor, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="ingest-commit")
        ids = await asyncio.shield(done)  # a cancelled caller does not cancel the others' write
        self.stats.batches += 1
        self.stats.stored += len(ids)
        self.stats.duplicates += len(messages) - len(ids)
        self.stats.per_connector[connector_id] = self.stats.per_connector.get(connector_id, 0) + len(ids)
        if ids and self.on_stored is not None:
            self.on_stored()
        return len(ids)

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # batches handed over in the same loop iteration join this write
        while self._pending:
            group, self._pending = self._pending, []
            try:
                results = await self._write(group)
            except Exception as exc:
                if len(group) == 1:
                    _settle(group[0].done, exc)
                    continue
                # one bad batch must not fail the others: each on its own, each its own outcome
                for p in group:
                    try:
                        _settle(p.done, (await self._write([p]))[0])
                    except Exception as one:
                        _settle(p.done, one)
                continue
            except BaseException as exc:  # cancelled at shutdown: nobody is left waiting forever
                for p in group + self._pending:
                    _settle(p.done, RuntimeError(f"ingest stopped before storing: {exc!r}"))
                raise
            for p, ids in zip(group, results, strict=True):
                _settle(p.done, ids)

    async def _write(self, group: list[_Pending]) -> list[list[int]]:
        """One transaction; consecutive batches of one connector share their statements."""
        out: list[list[int]] = []
        async with self.sessions() as s, s.begin():
            for cid, run in groupby(group, key=lambda p: p.connector_id):
                batches = [(p.messages, p.cursor) for p in run]
                out.extend(await store_batches(s, cid, batches))
        self.stats.transactions += 1
        return out

    async def cursor(self, connector_id: str) -> str | None:
        async with self.sessions() as s:
            return await load_cursor(s, connector_id)

    # ------------------------------------------------------------------ push

    async def listen(self, connector: PushConnector[object]) -> None:  # type: ignore[type-var]
        """Run a push connector until cancelled, restarting it with backoff after errors."""
        delay = 1.0
        while True:
            cursor = await self.cursor(connector.id)

            async def sink(batch: Sequence[InboundMessage], new_cursor: str | None) -> None:
                await self.store(connector.id, batch, new_cursor)

            try:
                await connector.listen(cursor, sink)
                delay = 1.0
                log.warning("connector %s: listen() returned; restarting", connector.id)
            except asyncio.CancelledError:
                raise
            except AuthError as exc:
                connector.set_health(HealthState.DOWN, f"authentication failed: {exc}")
                log.error(
                    "connector %s: authentication failed, not retrying until reload: %s", connector.id, exc
                )
                return
            except ConflictError as exc:
                connector.set_health(HealthState.DEGRADED, f"another consumer holds the session: {exc}")
                log.error("connector %s: %s; retrying in %.0fs", connector.id, exc, max(delay, 30.0))
                delay = max(delay, 30.0)
            except RateLimited as exc:
                delay = max(delay, exc.retry_after)
            except Exception as exc:
                self.stats.errors += 1
                log.exception(
                    "connector %s: listener failed (%s); retrying in %.0fs", connector.id, exc, delay
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 300.0)

    # ------------------------------------------------------------------ pull

    async def poll_once(self, connector: PullConnector[object], *, max_rounds: int = 50) -> float:  # type: ignore[type-var]
        """Fetch until the connector has nothing more ready; return seconds until the next poll."""
        cursor = await self.cursor(connector.id)
        next_after = type(connector).default_poll_interval
        try:
            for _ in range(max_rounds):
                res = await connector.fetch(cursor)
                await self.store(connector.id, res.messages, res.cursor)
                if res.cursor is not None:
                    cursor = res.cursor
                if res.next_poll_after is not None:
                    next_after = res.next_poll_after
                if not res.more:
                    break
            else:
                next_after = 0.0
        except RateLimited as exc:
            log.warning("connector %s: rate limited; next poll in %.1fs", connector.id, exc.retry_after)
            return exc.retry_after
        except AuthError as exc:
            connector.set_health(HealthState.DOWN, f"authentication failed: {exc}")
            log.error("connector %s: authentication failed: %s", connector.id, exc)
            return 300.0
        except ConnectorError as exc:
            self.stats.errors += 1
            log.warning("connector %s: fetch failed: %s", connector.id, exc)
            return max(next_after, 5.0)
        return next_after


def _retrieved(done: asyncio.Future[list[int]]) -> None:
    if not done.cancelled():
        done.exception()


def _settle(done: asyncio.Future[list[int]], outcome: list[int] | Exception) -> None:
    if done.done():
        return
    if isinstance(outcome, Exception):
        done.set_exception(outcome)
    else:
        done.set_result(outcome)


def is_push(connector: AnyConnector) -> bool:
    return isinstance(connector, PushConnector)
