"""The triage worker: claim stored messages, decide, plan, and write the decision, the
thread change and the outbox rows in ONE transaction with marking the work done."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Table, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.models import Decision, DecisionKind, InboundMessage, Mention, ThreadState, ThreadView, utcnow
from bot.pipeline.convert import inbound_from_row, thread_view
from bot.pipeline.roles import Directory
from bot.pipeline.threads import resolve
from bot.pipeline.triage_stage import Triager, decide_safely
from bot.storage import outbox, work
from bot.storage.tables import DecisionRow, MessageRow, ThreadRow
from responders import ResponderContext, plan

log = logging.getLogger("unsource.worker")

_MESSAGE: Table = MessageRow.__table__  # type: ignore[attr-defined]
_THREAD: Table = ThreadRow.__table__  # type: ignore[attr-defined]
_DECISION: Table = DecisionRow.__table__  # type: ignore[attr-defined]

OPENING = {DecisionKind.AUTO_ANSWER, DecisionKind.TAG_HELPERS, DecisionKind.ROUTE_PRIVATE, DecisionKind.NEEDS_HUMAN}
MAX_ATTEMPTS = 5


@dataclass
class WorkerEnv:
    """Everything a worker reads; ``current`` is swapped atomically on config reload."""

    triager: Triager
    directory: Directory
    staff_connector: str | None = None
    staff_conversation: str | None = None
    bot_ids: frozenset[str] = frozenset()


@dataclass
class WorkerStats:
    processed: int = 0
    deferred: int = 0
    errors: int = 0
    lost_claims: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


class Worker:
    def __init__(
        self,
        name: str,
        sessions: async_sessionmaker[AsyncSession],
        env: Callable[[], WorkerEnv],
        *,
        batch: int = 200,
        lease: timedelta = timedelta(seconds=60),
        idle: float = 0.2,
    ) -> None:
        self.name = name
        self.sessions = sessions
        self.env = env
        self.batch = batch
        self.lease = lease
        self.idle = idle
        self.stats = WorkerStats()
        self._wake = asyncio.Event()
        #: called after a batch wrote outbox rows (wakes the dispatcher in this process)
        self.on_planned: Callable[[], None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            n = await self.run_once()
            if n == 0:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self.idle)
                except TimeoutError:
                    pass
            elif self.on_planned is not None:
                self.on_planned()

    async def run_once(self) -> int:
        """Claim and process one batch; return how many items were claimed."""
        async with self.sessions() as s, s.begin():
            claimed = await work.claim(s, self.name, self.batch, self.lease)
        if not claimed:
            return 0
        env = self.env()
        async with self.sessions() as s, s.begin():
            rows = {
                r.id: r
                for r in (
                    await s.execute(select(_MESSAGE).where(_MESSAGE.c.id.in_([c.message_id for c in claimed])))
                ).all()
            }
            for item in claimed:
                row = rows.get(item.message_id)
                try:
                    async with s.begin_nested():
                        if row is None:
                            await work.fail(s, item.work_id, self.name, "message row missing", retry_at=None)
                            continue
                        await self._process(s, env, item, row)
                except IntegrityError:
                    # someone else completed it (its decision exists): exactly once holds
                    self.stats.lost_claims += 1
                    async with s.begin_nested():
                        await work.complete(s, item.work_id, self.name)
                except Exception as exc:
                    self.stats.errors += 1
                    log.exception("work item %s failed (attempt %d)", item.work_id, item.attempts)
                    retry = None if item.attempts >= MAX_ATTEMPTS else utcnow() + timedelta(seconds=2**item.attempts)
                    async with s.begin_nested():
                        await work.fail(s, item.work_id, self.name, f"{type(exc).__name__}: {exc}", retry_at=retry)
        return len(claimed)

    async def _process(self, s: AsyncSession, env: WorkerEnv, item: work.Claimed, row: Any) -> None:
        message = inbound_from_row(row)
        res = await resolve(s, row)
        if res.wait_for_parent and item.attempts < MAX_ATTEMPTS:
            self.stats.deferred += 1
            await work.defer(s, item.work_id, self.name, utcnow() + timedelta(milliseconds=300), res.how)
            return
        thread = thread_view(res.thread) if res.thread is not None else None
        decision = decide_safely(env.triager, message, thread, env.bot_ids)
        now = utcnow()
        if thread is None and decision.kind in OPENING:
            thread = await self._open_thread(s, message, decision, row.id)
        role = env.directory.role_of(message, thread)
        helpers: tuple[Mention, ...] = ()
        wants_helpers = decision.kind is not DecisionKind.FOLLOW_UP or (message.button_data or "").startswith(
            "notyet:"
        )
        if thread is not None and wants_helpers:
            helpers = env.directory.pick(
                thread.connector_id, thread.asker_id, decision.topic, decision.language, seed=thread.id
            )
        ctx = ResponderContext(
            author_role=role,
            helpers=helpers,
            staff_connector=env.staff_connector,
            staff_conversation=env.staff_conversation,
        )
        p = plan(decision, thread, message, ctx)
        await s.execute(
            insert(_DECISION).values(
                message_id=row.id,
                thread_id=thread.id if thread else None,
                kind=decision.kind.value,
                payload={**decision.model_dump(mode="json"), "plan": list(p.notes)},
                decided_by=self.name,
                created_at=now,
            )
        )
        if thread is not None:
            await s.execute(update(_MESSAGE).where(_MESSAGE.c.id == row.id).values(thread_id=thread.id))
            values: dict[str, Any] = {"updated_at": now}
            if res.thread is not None:  # joined an existing thread
                values["message_count"] = _THREAD.c.message_count + 1
            if p.state is not None:
                values["state"] = p.state.value
                if p.state is ThreadState.SOLVED:
                    values["solved_at"] = now
            if role in ("helper", "staff") and decision.kind is DecisionKind.FOLLOW_UP and res.thread is not None:
                if res.thread.first_response_at is None:
                    values["first_response_at"] = now
            await s.execute(update(_THREAD).where(_THREAD.c.id == thread.id).values(**values))
            await outbox.enqueue(s, p.messages, thread_id=thread.id, message_id=row.id)
        if not await work.complete(s, item.work_id, self.name):
            self.stats.lost_claims += 1
            raise IntegrityError("claim lost", None, Exception("claim taken over by another worker"))
        self.stats.processed += 1
        self.stats.by_kind[decision.kind.value] = self.stats.by_kind.get(decision.kind.value, 0) + 1

    async def _open_thread(self, s: AsyncSession, m: InboundMessage, d: Decision, message_id: int) -> ThreadView:
        now = utcnow()
        tid = (
            await s.execute(
                insert(_THREAD)
                .values(
                    connector_id=m.connector_id,
                    platform=m.platform,
                    conversation_id=m.conversation_id,
                    thread_ref=m.thread_ref,
                    root_message_id=message_id,
                    root_external_id=m.external_id,
                    asker_id=m.author.id,
                    asker_handle=m.author.handle,
                    is_private=m.is_private,
                    state=ThreadState.TRIAGED.value,
                    topic=d.topic,
                    language=d.language,
                    priority=d.priority.value,
                    sensitive=d.sensitive,
                    message_count=1,
                    opened_at=now,
                    updated_at=now,
                )
                .returning(_THREAD.c.id)
            )
        ).scalar_one()
        row = (await s.execute(select(_THREAD).where(_THREAD.c.id == tid))).one()
        return thread_view(row)

