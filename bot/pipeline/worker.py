"""The triage worker: claim stored messages, decide, plan, and write the decisions, thread
changes and outbox rows in ONE transaction with marking the work done.

A batch is written with a handful of multi-row statements (not one per message): on SQLite
every statement is a thread hop, so this is what makes >1,000 messages/s possible. If the
batch fails as a whole, it is redone one item at a time with savepoints, so one poison
message cannot block the rest, and is retried (then failed, for staff) on its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.community.stage import CommunityEnv
from bot.models import (
    Decision,
    DecisionKind,
    InboundMessage,
    Mention,
    OutboundMessage,
    ThreadState,
    ThreadView,
    utcnow,
)
from bot.pipeline.convert import inbound_from_row, thread_view
from bot.pipeline.loop import run_rounds
from bot.pipeline.roles import Directory
from bot.pipeline.threads import Resolution, resolve
from bot.pipeline.triage_stage import Triager, decide_safely
from bot.sla.hooks import SlaEvent
from bot.sla.hooks import apply as sla_apply
from bot.sla.hooks import classify as sla_classify
from bot.sla.policy import Planner
from bot.storage import outbox, work
from bot.storage.tables import DecisionRow, MessageRow, ThreadRow, WorkItemRow
from responders import ResponderContext, plan

log = logging.getLogger("unsource.worker")

_MESSAGE: Table = MessageRow.__table__  # type: ignore[attr-defined]
_THREAD: Table = ThreadRow.__table__  # type: ignore[attr-defined]
_DECISION: Table = DecisionRow.__table__  # type: ignore[attr-defined]
_WORK: Table = WorkItemRow.__table__  # type: ignore[attr-defined]

OPENING = {
    DecisionKind.AUTO_ANSWER,
    DecisionKind.TAG_HELPERS,
    DecisionKind.ROUTE_PRIVATE,
    DecisionKind.NEEDS_HUMAN,
}
MAX_ATTEMPTS = 5


@dataclass
class WorkerEnv:
    """Everything a worker reads; the app swaps it atomically on config reload."""

    triager: Triager
    directory: Directory
    staff_connector: str | None = None
    staff_conversation: str | None = None
    bot_ids: frozenset[str] = frozenset()
    sla: Planner | None = None  # SLA deadlines (bot/sla); None: no SLA clocks
    community: CommunityEnv | None = None  # helpers: routing, commands, points (bot/community)


@dataclass
class WorkerStats:
    processed: int = 0
    deferred: int = 0
    errors: int = 0
    lost_claims: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


class ClaimLost(Exception):
    """Another worker took over an item whose lease expired under us."""


@dataclass
class _Batch:
    """What one batch has decided so far, before it is written."""

    now: datetime
    threads: dict[int, ThreadView] = field(default_factory=dict)  # current view of touched threads
    by_external: dict[str, int] = field(default_factory=dict)  # message external id -> thread id
    by_ref: dict[tuple[str, str | None, bool], int] = field(default_factory=dict)  # opened here
    decisions: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)  # message id -> thread id
    thread_updates: dict[int, dict[str, Any]] = field(default_factory=dict)
    new_threads: list[dict[str, Any]] = field(default_factory=list)
    outbound: list[tuple[OutboundMessage, int, int]] = field(default_factory=list)  # (message, thread, cause)
    done: list[int] = field(default_factory=list)
    deferred: list[tuple[int, str]] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    sla: list[SlaEvent] = field(default_factory=list)  # SLA clock events (bot/sla/hooks.py)
    sla_planner: Planner | None = None
    community: Any = None  # bot.community.stage.CommunityBatch, loaded on first use
    early: dict[int, Decision] = field(default_factory=dict)  # message id -> decided as new (_prime)


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
        self._stop = asyncio.Event()
        #: called after a batch wrote outbox rows (wakes the dispatcher in this process)
        self.on_planned: Callable[[], None] | None = None

    def wake(self) -> None:
        self._wake.set()

    def request_stop(self) -> None:
        """Finish the batch in hand, then return from :meth:`run` (a clean shutdown)."""
        self._stop.set()
        self._wake.set()

    async def run(self) -> None:
        await run_rounds(
            self.run_once, wake=self._wake, stop=self._stop, idle=self.idle, after_work=self._planned
        )

    def _planned(self) -> None:
        if self.on_planned is not None:
            self.on_planned()

    async def run_once(self) -> int:
        """Claim and process one batch; return how many items were claimed."""
        env = self.env()
        rows: dict[int, Any] = {}
        async with self.sessions() as s, s.begin():
            claimed = await work.claim(s, self.name, self.batch, self.lease)
            if claimed and env.triager.blocking:  # read with the claim: no second wait for the database
                ids = [c.message_id for c in claimed]
                rows = {
                    r.id: r for r in (await s.execute(select(_MESSAGE).where(_MESSAGE.c.id.in_(ids)))).all()
                }
        if not claimed:
            return 0
        early = await self._prime(env, rows)
        try:
            async with self.sessions() as s, s.begin():
                rows = await self._load(s, claimed)
                b = _Batch(now=utcnow(), early=early)
                for item in claimed:
                    await self._process(s, env, b, item, rows[item.message_id])
                await self._write(s, b)
            self._count(b)
        except Exception as exc:
            if len(claimed) > 1:
                log.warning("batch of %d failed (%s); redoing item by item", len(claimed), exc)
            await self._one_by_one(env, claimed)
        return len(claimed)

    async def _prime(self, env: WorkerEnv, rows: dict[int, Any]) -> dict[int, Decision]:
        """Triage the batch as new questions *before* the write transaction (on SQLite that
        transaction holds the database, and ingest and dispatch wait for it). Inside it, a
        message that turns out to open a thread uses its decision here; a message in an
        existing thread is decided again with its thread. ``decide`` is pure, so this changes
        when the work happens, not what is decided."""
        if not rows:
            return {}
        try:
            messages = {mid: inbound_from_row(r) for mid, r in rows.items()}
        except Exception as exc:  # only an optimisation: the transaction decides anyway
            log.warning("could not pre-triage a batch (%s: %s)", type(exc).__name__, exc)
            return {}

        def decide_all() -> dict[int, Decision]:
            return {mid: decide_safely(env.triager, m, None, env.bot_ids) for mid, m in messages.items()}

        return await asyncio.to_thread(decide_all)

    async def _load(self, s: AsyncSession, claimed: Sequence[work.Claimed]) -> dict[int, Any]:
        ids = [c.message_id for c in claimed]
        rows = {r.id: r for r in (await s.execute(select(_MESSAGE).where(_MESSAGE.c.id.in_(ids)))).all()}
        missing = set(ids) - set(rows)
        if missing:
            raise LookupError(f"message rows missing: {sorted(missing)[:5]}")
        return rows

    async def _one_by_one(self, env: WorkerEnv, claimed: Sequence[work.Claimed]) -> None:
        for item in claimed:
            try:
                async with self.sessions() as s, s.begin():
                    row = (await s.execute(select(_MESSAGE).where(_MESSAGE.c.id == item.message_id))).first()
                    if row is None:
                        await work.fail(s, item.work_id, self.name, "message row missing", retry_at=None)
                        continue
                    b = _Batch(now=utcnow())
                    await self._process(s, env, b, item, row)
                    await self._write(s, b)
                self._count(b)
            except (IntegrityError, ClaimLost):
                self.stats.lost_claims += 1  # another worker completed it: exactly once holds
            except Exception as exc:
                self.stats.errors += 1
                log.exception("work item %s failed (attempt %d)", item.work_id, item.attempts)
                retry = (
                    None if item.attempts >= MAX_ATTEMPTS else utcnow() + timedelta(seconds=2**item.attempts)
                )
                async with self.sessions() as s, s.begin():
                    await work.fail(
                        s, item.work_id, self.name, f"{type(exc).__name__}: {exc}", retry_at=retry
                    )

    def _count(self, b: _Batch) -> None:
        self.stats.processed += len(b.done)
        self.stats.deferred += len(b.deferred)
        for k in b.kinds:
            self.stats.by_kind[k] = self.stats.by_kind.get(k, 0) + 1

    async def _resolve(
        self, s: AsyncSession, b: _Batch, row: Any
    ) -> tuple[ThreadView | None, Resolution | None]:
        """Threads touched earlier in this batch first (not written yet), then the database."""
        for ref in (row.target_id, row.reply_to_id):
            if ref and ref in b.by_external:
                return b.threads[b.by_external[ref]], None
        if row.thread_ref or row.is_private:
            tid = b.by_ref.get((row.conversation_id, row.thread_ref, bool(row.is_private)))
            if tid is not None:
                return b.threads[tid], None
        res = await resolve(s, row)
        if res.thread is None:
            return None, res
        view = b.threads.get(res.thread.id) or thread_view(res.thread)
        b.threads[view.id] = view
        return view, res

    async def _process(
        self, s: AsyncSession, env: WorkerEnv, b: _Batch, item: work.Claimed, row: Any
    ) -> None:
        message = inbound_from_row(row)
        thread, res = await self._resolve(s, b, row)
        if res is not None and res.wait_for_parent and item.attempts < MAX_ATTEMPTS:
            b.deferred.append((item.work_id, res.how))
            return
        existing = thread is not None
        cm = await env.community.for_batch(s, b, b.now) if env.community is not None else None
        command = cm.command(message) if cm is not None else None
        if command is not None:  # an in-channel command (bot/community/commands.py): not triaged
            decision = Decision(
                kind=DecisionKind.IGNORE, is_question=False, reasons=(f"command /{command.name}",)
            )
        else:
            early = b.early.get(row.id)
            decision = (
                early if thread is None and early is not None else await self._decide(env, message, thread)
            )
            if thread is not None and _may_be_a_new_dm_question(row, thread):
                # a DM has no threads of its own: after an answer, a new question is a new thread
                fresh = early if early is not None else await self._decide(env, message, None)
                if fresh.kind in OPENING and fresh.is_question:
                    thread, existing, decision = None, False, fresh
        if thread is None and decision.kind in OPENING:
            thread = self._open_thread(b, message, decision, row.id)
            b.threads[thread.id] = thread
            b.by_ref[(message.conversation_id, message.thread_ref, message.is_private)] = thread.id
        role = cm.role_of(message, thread) if cm is not None else env.directory.role_of(message, thread)
        prepared = await cm.prepare(s, message, thread, decision, role) if cm is not None else None
        helpers: tuple[Mention, ...] = prepared.helpers if prepared is not None else ()
        if (
            prepared is None
            and thread is not None
            and (
                decision.kind is not DecisionKind.FOLLOW_UP
                or (message.button_data or "").startswith("notyet:")
            )
        ):
            helpers = env.directory.pick(
                thread.connector_id, thread.asker_id, decision.topic, decision.language, seed=thread.id
            )
        ctx = ResponderContext(
            author_role=role,
            helpers=helpers,
            staff_connector=env.staff_connector,
            staff_conversation=env.staff_conversation,
            **(prepared.context() if prepared is not None else {}),
        )
        p = plan(decision, thread, message, ctx)
        if cm is not None:
            p = await cm.after(
                s,
                message,
                thread,
                role=role,
                decision=decision,
                plan=p,
                command=command,
                message_id=row.id,
                prepared=prepared,
            )
        b.decisions.append(
            {
                "message_id": row.id,
                "thread_id": thread.id if thread else None,
                "kind": decision.kind.value,
                "payload": {**decision.model_dump(mode="json"), "plan": list(p.notes)},
                "decided_by": self.name,
                "created_at": b.now,
            }
        )
        b.kinds.append(decision.kind.value)
        b.done.append(item.work_id)
        if thread is None:
            return
        b.by_external[message.external_id] = thread.id
        b.links.append({"mid": row.id, "tid": thread.id})
        upd = b.thread_updates.setdefault(
            thread.id, {"tid": thread.id, "state": None, "inc": 0, "first": None, "solved": None}
        )
        if existing:
            upd["inc"] += 1
        if p.state is not None:
            upd["state"] = p.state.value
            if p.state is ThreadState.SOLVED:
                upd["solved"] = b.now
            b.threads[thread.id] = thread.model_copy(update={"state": p.state})
        if existing and role in ("helper", "staff") and decision.kind is DecisionKind.FOLLOW_UP:
            upd["first"] = upd["first"] or b.now
        b.outbound.extend((m, thread.id, row.id) for m in p.messages)
        if env.sla is not None:  # SLA: (re)compute deadlines in this batch's transaction
            b.sla_planner = env.sla
            b.sla += sla_classify(
                thread,
                opened=not existing,
                role=role,
                decision_kind=decision.kind,
                decision_priority=decision.priority.value,
                message_kind=message.kind,
                button_data=message.button_data,
                new_state=p.state,
                message_id=row.id,
                at=b.now,
            )

    async def _decide(self, env: WorkerEnv, message: InboundMessage, thread: ThreadView | None) -> Decision:
        if env.triager.blocking:  # model inference: keep the event loop (ingest, dispatch) responsive
            return await asyncio.to_thread(decide_safely, env.triager, message, thread, env.bot_ids)
        return decide_safely(env.triager, message, thread, env.bot_ids)

    def _open_thread(self, b: _Batch, m: InboundMessage, d: Decision, message_id: int) -> ThreadView:
        """A new thread, written with the batch. Its id is its root message's id: unique, and
        known before the insert, so a whole batch of new threads is one statement."""
        values = {
            "id": message_id,
            "connector_id": m.connector_id,
            "platform": m.platform,
            "conversation_id": m.conversation_id,
            "thread_ref": m.thread_ref,
            "root_message_id": message_id,
            "root_external_id": m.external_id,
            "asker_id": m.author.id,
            "asker_handle": m.author.handle,
            "is_private": m.is_private,
            "state": ThreadState.TRIAGED.value,
            "topic": d.topic,
            "language": d.language,
            "priority": d.priority.value,
            "sensitive": d.sensitive,
            "message_count": 1,
            "opened_at": b.now,
            "updated_at": b.now,
        }
        b.new_threads.append(values)
        return ThreadView(
            id=message_id,
            state=ThreadState.TRIAGED,
            connector_id=m.connector_id,
            platform=m.platform,
            conversation_id=m.conversation_id,
            thread_ref=m.thread_ref,
            root_external_id=m.external_id,
            asker_id=m.author.id,
            asker_handle=m.author.handle,
            is_private=m.is_private,
            topic=d.topic,
            priority=d.priority.value,
            opened_at=b.now,
        )

    async def _write(self, s: AsyncSession, b: _Batch) -> None:
        if b.new_threads:
            await s.execute(insert(_THREAD), b.new_threads)
        if b.decisions:
            await s.execute(insert(_DECISION), b.decisions)
        if b.links:
            await s.execute(
                update(_MESSAGE).where(_MESSAGE.c.id == bindparam("mid")).values(thread_id=bindparam("tid")),
                b.links,
            )
        if b.thread_updates:
            await s.execute(
                update(_THREAD)
                .where(_THREAD.c.id == bindparam("tid"))
                .values(
                    state=func.coalesce(bindparam("state", type_=_THREAD.c.state.type), _THREAD.c.state),
                    updated_at=b.now,
                    message_count=_THREAD.c.message_count + bindparam("inc"),
                    first_response_at=func.coalesce(
                        _THREAD.c.first_response_at,
                        bindparam("first", type_=_THREAD.c.first_response_at.type),
                    ),
                    solved_at=func.coalesce(
                        bindparam("solved", type_=_THREAD.c.solved_at.type), _THREAD.c.solved_at
                    ),
                ),
                list(b.thread_updates.values()),
            )
        if b.community is not None:
            await b.community.write(s)
        if b.outbound:
            await outbox.enqueue_many(s, b.outbound)
        if b.sla and b.sla_planner is not None:
            await sla_apply(s, b.sla, b.sla_planner)
        if b.done:
            res = await s.execute(
                update(_WORK)
                .where(_WORK.c.id.in_(b.done), _WORK.c.state == "claimed", _WORK.c.claimed_by == self.name)
                .values(state="done", done_at=b.now, last_error=None)
            )
            if res.rowcount != len(b.done):  # type: ignore[attr-defined]
                raise ClaimLost(f"{len(b.done) - res.rowcount} claim(s) taken over")  # type: ignore[attr-defined]
        for work_id, why in b.deferred:
            await work.defer(s, work_id, self.name, b.now + timedelta(milliseconds=300), why)


_ANSWERED = frozenset({ThreadState.AUTO_ANSWERED, ThreadState.ANSWERED})


def _may_be_a_new_dm_question(row: Any, thread: ThreadView) -> bool:
    """A DM joined its chat's open thread only because DMs have no threads of their own (no
    reply reference, no platform thread): once that thread has been answered, the message may
    be a new question rather than a follow-up."""
    return (
        bool(row.is_private)
        and not row.reply_to_id
        and not row.target_id
        and not row.thread_ref
        and thread.state in _ANSWERED
    )
