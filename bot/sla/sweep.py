"""The sweep: claim due stages atomically, plan their messages, write them to the outbox.

One round is one transaction: a conditional ``UPDATE sla_stage SET state='fired' WHERE id IN
(due ids, oldest first, LIMIT n [FOR UPDATE SKIP LOCKED]) AND state='pending' RETURNING ...``,
then the thread context is loaded with a few ``IN`` queries, ``responders.escalate`` plans the
messages, and they are enqueued with their idempotency keys in the same transaction. So a
stage is fired by exactly one process (SQLite has one writer; PostgreSQL skips rows another
sweeper has locked), and a crash before commit leaves it pending for the next sweep, while a
crash after commit has the messages safely in the outbox. Nothing depends on APScheduler's
job store or misfire grace time: a stage that fell due while the bot was down is simply due.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.models import OPEN_THREAD_STATES, Mention, OutboundMessage, ThreadState, ThreadView, utcnow
from bot.pipeline.roles import Directory
from bot.settings import Config, SlaSettings, SlaStage
from bot.sla.policy import Planner
from bot.storage import outbox
from bot.storage.dialect import dialect_of, insert
from bot.storage.sla_tables import SlaDeliveryRow, SlaStageRow, SlaThreadRow
from bot.storage.tables import DecisionRow, MessageRow, OutboxRow, ThreadRow
from responders.escalate import Destination, External, StageFacts, human, plan_stage

log = logging.getLogger("unsource.sla")

_STAGE: Table = SlaStageRow.__table__  # type: ignore[attr-defined]
_SLA_THREAD: Table = SlaThreadRow.__table__  # type: ignore[attr-defined]
_DELIVERY: Table = SlaDeliveryRow.__table__  # type: ignore[attr-defined]
_THREAD: Table = ThreadRow.__table__  # type: ignore[attr-defined]
_MESSAGE: Table = MessageRow.__table__  # type: ignore[attr-defined]
_DECISION: Table = DecisionRow.__table__  # type: ignore[attr-defined]
_OUTBOX: Table = OutboxRow.__table__  # type: ignore[attr-defined]
_OPEN = [s.value for s in OPEN_THREAD_STATES]

DEFAULT_AUDIENCE = {
    "warn": ("tagged",),
    "remind": ("tagged",),
    "widen": ("more_helpers", "topic_channel"),
    "escalate": ("staff",),
}
_ACTION_PAST = {"warn": "warned", "remind": "reminded", "widen": "widened", "escalate": "escalated"}


@dataclass(frozen=True)
class SlaRuntime:
    """What the sweep reads from one configuration (rebuilt on reload)."""

    planner: Planner
    directory: Directory
    staff_connector: str | None = None
    staff_conversation: str | None = None

    @property
    def settings(self) -> SlaSettings:
        return self.planner.settings

    @classmethod
    def from_config(cls, config: Config) -> SlaRuntime:
        s = config.settings
        return cls(Planner(s.sla), Directory(tuple(s.helpers)), s.staff.connector, s.staff.conversation)


@dataclass
class SweepResult:
    fired: int = 0
    cancelled: int = 0
    messages: int = 0
    external: int = 0
    rounds: int = 0
    lateness: list[float] = field(default_factory=list)  # seconds after due, per fired stage
    next_due: datetime | None = None


@dataclass
class _Ctx:
    """The thread context of one round, loaded with a few IN queries."""

    threads: dict[int, Any]
    root_text: dict[int, tuple[str, str | None]]  # root message id -> (text, permalink)
    redacted: dict[int, tuple[str, str | None, str]]  # root id -> (redacted, sensitive, kind)
    tagged: dict[int, list[Mention]]
    history: dict[int, list[Any]]
    assignee: dict[int, str]


async def sweep(
    sessions: async_sessionmaker[AsyncSession],
    rt: SlaRuntime,
    worker: str,
    *,
    clock: Callable[[], datetime] = utcnow,
    max_rounds: int = 20,
) -> SweepResult:
    """Fire every due stage (in bounded rounds of ``sla.sweep_batch``) and report the next due time."""
    result = SweepResult()
    batch = rt.settings.sweep_batch
    async with sessions() as s:  # one cheap index probe when nothing is due (the common case)
        result.next_due = await next_due(s)
    if result.next_due is None or result.next_due > clock():
        return result
    for _ in range(max_rounds):
        async with sessions() as s, s.begin():
            n = await sweep_round(s, rt, worker, now=clock(), limit=batch, result=result)
        result.rounds += 1
        if n < batch:
            break
    async with sessions() as s:
        result.next_due = await next_due(s)
    return result


async def next_due(session: AsyncSession) -> datetime | None:
    q = select(func.min(_STAGE.c.due_at)).where(_STAGE.c.state == "pending")
    value: Any = (await session.execute(q)).scalar()
    if isinstance(value, str):  # SQLite returns min() of a datetime column as text
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


async def claim_due(session: AsyncSession, worker: str, now: datetime, limit: int) -> list[Any]:
    """Atomically mark up to ``limit`` due stages fired by ``worker``; return them."""
    pick = (
        select(_STAGE.c.id)
        .where(_STAGE.c.state == "pending", _STAGE.c.due_at <= now)
        .order_by(_STAGE.c.due_at)
        .limit(limit)
    )
    where: list[ColumnElement[bool]] = [_STAGE.c.id.in_(pick.scalar_subquery())]
    if dialect_of(session) == "postgresql":
        # rows locked by another sweeper are skipped; the re-check is belt and braces
        pick = pick.with_for_update(skip_locked=True)
        where = [_STAGE.c.id.in_(pick.scalar_subquery()), _STAGE.c.state == "pending"]
    # (on SQLite the transaction holds the only write lock, and an extra ``state = 'pending'``
    # here would make the planner scan every pending row through the state index)
    stmt = (
        update(_STAGE).where(*where).values(state="fired", fired_at=now, fired_by=worker).returning(*_STAGE.c)
    )
    return list((await session.execute(stmt)).all())


async def sweep_round(
    s: AsyncSession, rt: SlaRuntime, worker: str, *, now: datetime, limit: int, result: SweepResult
) -> int:
    rows = await claim_due(s, worker, now, limit)
    if not rows:
        return 0
    ctx = await _load(s, rows)
    messages: list[tuple[OutboundMessage, int | None, int | None]] = []
    deliveries: list[dict[str, Any]] = []
    escalated: set[int] = set()
    gone: list[int] = []
    for r in rows:
        t = ctx.threads.get(r.thread_id)
        if t is None or t.state not in _OPEN:
            gone.append(r.id)
            continue
        facts = _facts(rt, ctx, r, t, now)
        dests = destinations(rt, r, facts, t)
        p = plan_stage(facts, dests)
        messages.extend((m, r.thread_id, None) for m in p.messages)
        deliveries.extend(_delivery_row(x, r.thread_id, now) for x in p.external)
        if p.state is not None:
            escalated.add(r.thread_id)
        result.lateness.append(max(0.0, (now - r.due_at).total_seconds()))
    if gone:
        await s.execute(
            update(_STAGE).where(_STAGE.c.id.in_(gone)).values(state="cancelled", note="thread closed")
        )
    if messages:
        await outbox.enqueue_many(s, messages)
    if deliveries:
        await s.execute(
            insert(dialect_of(s), _DELIVERY).on_conflict_do_nothing(index_elements=["idempotency_key"]),
            deliveries,
        )
    if escalated:
        await s.execute(
            update(_THREAD)
            .where(_THREAD.c.id.in_(sorted(escalated)), _THREAD.c.state.in_(_OPEN))
            .values(state="escalated", updated_at=now)
        )
    result.fired += len(rows) - len(gone)
    result.cancelled += len(gone)
    result.messages += len(messages)
    result.external += len(deliveries)
    return len(rows)


async def _load(s: AsyncSession, rows: Sequence[Any]) -> _Ctx:
    tids = sorted({r.thread_id for r in rows})
    threads = {t.id: t for t in (await s.execute(select(_THREAD).where(_THREAD.c.id.in_(tids)))).all()}
    roots = sorted({t.root_message_id for t in threads.values()})
    root_text = {
        m.id: (m.text, m.permalink)
        for m in (
            await s.execute(
                select(_MESSAGE.c.id, _MESSAGE.c.text, _MESSAGE.c.permalink).where(_MESSAGE.c.id.in_(roots))
            )
        ).all()
    }
    redacted: dict[int, tuple[str, str | None, str]] = {}
    for d in (
        await s.execute(
            select(_DECISION.c.message_id, _DECISION.c.kind, _DECISION.c.payload).where(
                _DECISION.c.message_id.in_(roots)
            )
        )
    ).all():
        payload = d.payload or {}
        redacted[d.message_id] = (str(payload.get("redacted_text") or ""), payload.get("sensitive"), d.kind)
    tagged: dict[int, list[Mention]] = {}
    for o in (
        await s.execute(
            select(_OUTBOX.c.thread_id, _OUTBOX.c.payload)
            .where(_OUTBOX.c.thread_id.in_(tids), _OUTBOX.c.purpose.in_(("tag_helpers", "sla_widen")))
            .order_by(_OUTBOX.c.id)
        )
    ).all():
        seen = tagged.setdefault(o.thread_id, [])
        for m in (o.payload or {}).get("mentions") or ():
            mention = Mention.model_construct(**m)  # written by the bot itself, already validated
            if all(x.user_id != mention.user_id for x in seen):
                seen.append(mention)
    claimed = {r.id for r in rows}
    history: dict[int, list[Any]] = {}
    for h in (
        await s.execute(
            select(
                _STAGE.c.id,
                _STAGE.c.thread_id,
                _STAGE.c.action,
                _STAGE.c.at,
                _STAGE.c.clock,
                _STAGE.c.fired_at,
            )
            .where(_STAGE.c.thread_id.in_(tids), _STAGE.c.state == "fired")
            .order_by(_STAGE.c.fired_at, _STAGE.c.id)
        )
    ).all():
        if h.id not in claimed:
            history.setdefault(h.thread_id, []).append(h)
    assignee = {
        a.thread_id: a.assignee
        for a in (
            await s.execute(
                select(_SLA_THREAD.c.thread_id, _SLA_THREAD.c.assignee).where(
                    _SLA_THREAD.c.thread_id.in_(tids), _SLA_THREAD.c.assignee.is_not(None)
                )
            )
        ).all()
    }
    return _Ctx(threads, root_text, redacted, tagged, history, assignee)


def _stage_cfg(rt: SlaRuntime, r: Any) -> SlaStage | None:
    policy = rt.planner.by_name.get(r.policy)
    if policy is None or r.stage >= len(policy.stages):
        return None
    st = policy.stages[r.stage]
    return st if st.action == r.action else None


def _facts(rt: SlaRuntime, ctx: _Ctx, r: Any, t: Any, now: datetime) -> StageFacts:
    view = ThreadView.model_construct(  # a trusted row: skip validation (it dominates a big sweep)
        id=t.id,
        state=ThreadState(t.state),
        connector_id=t.connector_id,
        platform=t.platform,
        conversation_id=t.conversation_id,
        thread_ref=t.thread_ref,
        root_external_id=t.root_external_id,
        asker_id=t.asker_id,
        asker_handle=t.asker_handle,
        is_private=t.is_private,
        topic=t.topic,
        priority=t.priority,
        opened_at=t.opened_at,
        message_count=t.message_count,
    )
    policy = rt.planner.by_name.get(r.policy)
    target = rt.planner.target(policy, r.clock) if policy is not None else None
    breach = rt.planner.calendar(policy).add(r.started_at, target) if policy and target else None
    text, permalink = ctx.root_text.get(t.root_message_id, ("", None))
    red, sensitive, kind = ctx.redacted.get(t.root_message_id, ("", t.sensitive, ""))
    tagged = tuple(ctx.tagged.get(t.id, ()))
    tried: list[str] = []
    if kind == "auto_answer":
        tried.append("auto-answered from the knowledge base")
    elif kind in ("route_private", "needs_human"):
        tried.append("sent to the staff channel when it was asked")
    if tagged:
        tried.append(f"tagged {len(tagged)} helper(s)")
    for h in ctx.history.get(t.id, ()):
        when = f" at {h.fired_at:%H:%M} UTC" if h.fired_at else ""
        tried.append(f"{_ACTION_PAST.get(h.action, h.action)} at {h.at} of {h.clock.replace('_', ' ')}{when}")
    link = permalink or (rt.settings.link.format(thread=t.id) if rt.settings.link else None)
    return StageFacts(
        thread=view,
        policy=r.policy,
        clock=r.clock,
        cycle=r.cycle,
        stage=r.stage,
        action=r.action,
        at=r.at,
        target=target,
        started_at=r.started_at,
        due_at=r.due_at,
        breach_at=breach,
        fired_at=now,
        offline_after=rt.settings.offline_after,
        question=text or red,
        question_redacted=red or "(text withheld)",
        tagged=tagged,
        tried=tuple(tried),
        link=link,
        assignee=ctx.assignee.get(t.id),
        sensitive=bool(sensitive or t.sensitive),
    )


def _mention_of(rt: SlaRuntime, name: str, connector_id: str) -> Mention | None:
    for h in rt.directory.helpers:
        if h.name == name and connector_id in h.identities:
            return Mention(
                user_id=h.identities[connector_id], handle=h.handles.get(connector_id), display_name=h.name
            )
    return None


def destinations(rt: SlaRuntime, r: Any, f: StageFacts, t: Any) -> list[Destination]:
    """Resolve a stage's audience into concrete destinations for this thread."""
    st = _stage_cfg(rt, r)
    names = tuple(st.audience) if st is not None and st.audience else DEFAULT_AUDIENCE.get(r.action, ())
    out: list[Destination] = []
    sla = rt.settings
    for name in names:
        if name == "tagged":
            mentions = list(f.tagged)
            if f.assignee:
                m = _mention_of(rt, f.assignee, t.connector_id)
                if m is not None and all(x.user_id != m.user_id for x in mentions):
                    mentions.append(m)
            out.append(Destination("tagged", "thread", peer=True, mentions=tuple(mentions)))
        elif name == "more_helpers":
            already = {m.user_id for m in f.tagged}
            pool = rt.directory.pick(
                t.connector_id, t.asker_id, t.topic, t.language, seed=t.id, n=len(already) + sla.widen_by
            )
            more = tuple(m for m in pool if m.user_id not in already)[: sla.widen_by]
            out.append(Destination("more_helpers", "thread", peer=True, mentions=more))
        elif name == "topic_channel":
            ch = sla.topic_channels.get(t.topic or "")
            if ch is not None:
                out.append(Destination(name, "channel", ch.connector, ch.conversation, peer=True))
        elif name == "staff":
            if rt.staff_connector and rt.staff_conversation:
                out.append(
                    Destination(name, "channel", rt.staff_connector, rt.staff_conversation, private=True)
                )
        elif name in sla.targets:
            tg = sla.targets[name]
            out.append(
                Destination(
                    name, tg.type, tg.connector, tg.conversation, tg.user, private=tg.private, peer=False
                )
            )
    return out


def _delivery_row(x: External, thread_id: int, now: datetime) -> dict[str, Any]:
    return {
        "idempotency_key": x.idempotency_key,
        "thread_id": thread_id,
        "target": x.target,
        "kind": x.kind,
        "payload": {"subject": x.subject, "text": x.text, "data": x.data},
        "state": "pending",
        "attempts": 0,
        "next_try_at": now,
        "created_at": now,
    }


def describe(result: SweepResult) -> str:
    late = sorted(result.lateness)
    worst = human(timedelta(seconds=late[-1])) if late else "-"
    return f"fired {result.fired}, cancelled {result.cancelled}, messages {result.messages}, latest {worst}"


__all__ = [
    "DEFAULT_AUDIENCE",
    "SlaRuntime",
    "SweepResult",
    "claim_due",
    "describe",
    "destinations",
    "next_due",
    "sweep",
]
