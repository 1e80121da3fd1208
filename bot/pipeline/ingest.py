"""Running connectors' inbound side: the push listener and the pull poll.

Both hand batches to :meth:`Ingestor.store`, which stores the messages and the cursor in
one transaction; the cursor never moves before the messages it covers are committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.errors import AuthError, ConflictError, ConnectorError, RateLimited
from bot.models import HealthState, InboundMessage
from bot.storage.ingest import load_cursor, store_batch
from connectors.base import AnyConnector, PullConnector, PushConnector

log = logging.getLogger("unsource.ingest")


@dataclass
class IngestStats:
    stored: int = 0
    duplicates: int = 0
    batches: int = 0
    errors: int = 0
    per_connector: dict[str, int] = field(default_factory=dict)


class Ingestor:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], on_stored: Callable[[], None] | None = None
    ) -> None:
        self.sessions = sessions
        self.stats = IngestStats()
        self.on_stored = on_stored

    async def store(self, connector_id: str, messages: Sequence[InboundMessage], cursor: str | None) -> int:
        if not messages and cursor is None:
            return 0
        async with self.sessions() as s, s.begin():
            ids = await store_batch(s, connector_id, messages, cursor)
        self.stats.batches += 1
        self.stats.stored += len(ids)
        self.stats.duplicates += len(messages) - len(ids)
        self.stats.per_connector[connector_id] = self.stats.per_connector.get(connector_id, 0) + len(ids)
        if ids and self.on_stored is not None:
            self.on_stored()
        return len(ids)

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


def is_push(connector: AnyConnector) -> bool:
    return isinstance(connector, PushConnector)
