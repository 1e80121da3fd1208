"""The knowledge base: rows in the database (the source of truth) and the matcher's index.

The index (BM25 + dense vectors) is persisted under ``<data_dir>/kb-index`` with a small
``sync.json`` recording what database state it reflects. On start the index is loaded if it
matches the database, else rebuilt from the rows (with a progress bar when run from the CLI).
While running, :meth:`KnowledgeService.refresh` applies rows changed since the last look
(added, edited, retired, feedback) incrementally, so entries written by another process
show up without a rebuild.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.models import utcnow
from bot.storage.dialect import dialect_of, insert
from bot.storage.knowledge_tables import KnowledgeRow
from triage import KnowledgeEntry, KnowledgeIndex, index_exists
from triage.embedder import Encoder, shared_encoder

log = logging.getLogger("unsource.knowledge")

_KB: Table = KnowledgeRow.__table__  # type: ignore[attr-defined]

ProgressFn = Callable[[int, int], None]


def entry_from_row(row: Any) -> KnowledgeEntry:
    return KnowledgeEntry(
        id=row.id,
        title=row.title,
        body=row.body,
        answer=row.answer,
        answer_id=row.answer_id,
        credit=row.credit,
        link=row.link,
        topic=row.topic,
        language=row.language,
        votes=row.votes,
        served=row.served,
        accepted=row.accepted,
        rejected=row.rejected,
    )


def row_values(entry: KnowledgeEntry, *, source: str, thread_id: int | None = None) -> dict[str, Any]:
    now = utcnow()
    return {
        **entry.model_dump(),
        "source": source,
        "thread_id": thread_id,
        "retired": False,
        "created_at": now,
        "updated_at": now,
    }


class KnowledgeService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        directory: Path,
        encoder_factory: Callable[[], Encoder] = shared_encoder,
    ) -> None:
        self.sessions = sessions
        self.directory = directory
        self.encoder_factory = encoder_factory
        self.index: KnowledgeIndex | None = None
        self._seen: datetime | None = None  # newest updated_at applied to the index
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------ state

    async def _db_state(self) -> tuple[int, datetime | None]:
        async with self.sessions() as s:
            row = (
                await s.execute(select(func.count(), func.max(_KB.c.updated_at)).where(~_KB.c.retired))
            ).one()
        return int(row[0]), row[1]

    def _sync_path(self) -> Path:
        return self.directory / "sync.json"

    def _write_sync(self, count: int, seen: datetime | None) -> None:
        self._sync_path().write_text(
            json.dumps({"count": count, "seen": seen.isoformat() if seen else None}), encoding="utf-8"
        )

    def _read_sync(self) -> tuple[int, str | None] | None:
        try:
            data = json.loads(self._sync_path().read_text(encoding="utf-8"))
            return int(data["count"]), data.get("seen")
        except (OSError, ValueError, KeyError):
            return None

    # ------------------------------------------------------------------ open / rebuild

    async def open(self, progress: ProgressFn | None = None) -> KnowledgeIndex | None:
        """Load the persisted index if it reflects the database, else rebuild it. Returns
        ``None`` while the knowledge base is empty (nothing to match: no model is loaded)."""
        async with self._lock:
            count, newest = await self._db_state()
            if count == 0:
                self.index, self._seen = None, None
                return None
            sync = self._read_sync()
            if sync == (count, newest.isoformat() if newest else None) and index_exists(self.directory):
                try:
                    self.index = await asyncio.to_thread(
                        KnowledgeIndex.load, self.directory, self.encoder_factory()
                    )
                    self._seen = newest
                    log.info("knowledge index loaded", extra={"entries": count})
                    return self.index
                except (OSError, ValueError) as exc:
                    log.warning("knowledge index unusable (%s); rebuilding from the database", exc)
            await self._rebuild(progress)
            return self.index

    async def _rebuild(self, progress: ProgressFn | None) -> None:
        async with self.sessions() as s:
            rows = (await s.execute(select(_KB).where(~_KB.c.retired).order_by(_KB.c.id))).all()
        entries = [entry_from_row(r) for r in rows]
        newest = max((r.updated_at for r in rows), default=None)
        index = KnowledgeIndex(self.encoder_factory())
        total = len(entries)

        def build() -> None:
            done = 0

            def step(n: int) -> None:
                nonlocal done
                done += n
                if progress is not None:
                    progress(done, total)

            index.add_many(entries, progress=step)
            index.save(self.directory)
            self._write_sync(total, newest)

        await asyncio.to_thread(build)
        self.index, self._seen = index, newest
        log.info("knowledge index rebuilt from the database", extra={"entries": total})

    # ------------------------------------------------------------------ incremental

    async def refresh(self, progress: ProgressFn | None = None) -> int:
        """Apply rows changed since the last look; return how many changed."""
        async with self._lock:
            q = select(_KB).order_by(_KB.c.updated_at)
            if self._seen is not None:
                q = q.where(_KB.c.updated_at > self._seen)
            async with self.sessions() as s:
                rows = (await s.execute(q)).all()
            if not rows:
                return 0
            if self.index is None:
                self.index = KnowledgeIndex(self.encoder_factory())
            index = self.index
            live = [entry_from_row(r) for r in rows if not r.retired]
            gone = [r.id for r in rows if r.retired]

            def apply() -> None:
                for entry_id in gone:
                    index.retire(entry_id)
                done = 0

                def step(n: int) -> None:
                    nonlocal done
                    done += n
                    if progress is not None:
                        progress(done, len(live))

                if live:
                    index.add_many(live, progress=step)
                index.save(self.directory)

            await asyncio.to_thread(apply)
            self._seen = max(r.updated_at for r in rows)
            count, newest = await self._db_state()
            await asyncio.to_thread(self._write_sync, count, newest)
            return len(rows)

    # ------------------------------------------------------------------ writes

    async def retire(self, entry_id: str) -> bool:
        """Take an entry out of matching (kept in the database for the record)."""
        from sqlalchemy import update

        async with self.sessions() as s, s.begin():
            res = await s.execute(
                update(_KB)
                .where(_KB.c.id == entry_id, ~_KB.c.retired)
                .values(retired=True, updated_at=utcnow())
            )
        return bool(res.rowcount)  # type: ignore[attr-defined]

    async def stats(self) -> dict[str, int]:
        async with self.sessions() as s:
            rows = (
                await s.execute(
                    select(_KB.c.source, _KB.c.retired, func.count()).group_by(_KB.c.source, _KB.c.retired)
                )
            ).all()
        out: dict[str, int] = {}
        for source, retired, n in rows:
            key = "retired" if retired else source
            out[key] = out.get(key, 0) + int(n)
        return out

    async def upsert(
        self, entries: Sequence[KnowledgeEntry], *, source: str, thread_id: int | None = None
    ) -> int:
        """Insert or replace entries in the database (the index follows on :meth:`refresh`)."""
        if not entries:
            return 0
        rows = [row_values(e, source=source, thread_id=thread_id) for e in entries]
        async with self.sessions() as s, s.begin():
            stmt = insert(dialect_of(s), _KB)
            update_cols = {
                c: stmt.excluded[c]
                for c in (
                    "title",
                    "body",
                    "answer",
                    "answer_id",
                    "credit",
                    "link",
                    "topic",
                    "language",
                    "updated_at",
                    "retired",
                )
            }
            await s.execute(stmt.on_conflict_do_update(index_elements=["id"], set_=update_cols), rows)
        return len(rows)
