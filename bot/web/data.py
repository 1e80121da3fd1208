"""Reads and writes behind the dashboard pages (SQLAlchemy Core).

Tables of other parts (``sla_stage``, ``sla_thread``, ``knowledge_entry``, a kudos table) are
addressed by name with lightweight ``table()`` constructs after checking they exist, so the
dashboard works before, and keeps working without, those features.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Table, and_, case, column, func, or_, select, table, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.analytics.queries import (
    DECISION,
    MESSAGE,
    OPEN_STATES,
    OUTBOX,
    THREAD,
    has_table,
    policy_targets,
    table_columns,
)
from bot.analytics.stats import AUTO_DONE_STATES, ThreadFact, policy_for
from bot.models import OutboundMessage, ThreadState, utcnow
from bot.settings import HelperEntry, Settings
from bot.storage import outbox
from bot.storage.dialect import dialect_of
from bot.storage.web_tables import WebActionRow

ACTION: Table = WebActionRow.__table__  # type: ignore[attr-defined]
PRIORITY_RANK = {"urgent": 0, "high": 1, "normal": 2, "low": 3}

SLA_STAGE = table(
    "sla_stage",
    column("thread_id"),
    column("due_at"),
    column("state"),
    column("action"),
    column("at"),
    column("clock"),
    column("fired_at"),
)
SLA_THREAD = table(
    "sla_thread", column("thread_id"), column("assignee"), column("snoozed_until"), column("updated_at")
)
KNOWLEDGE = table(
    "knowledge_entry",
    column("id"),
    column("title"),
    column("answer"),
    column("topic"),
    column("credit"),
    column("served"),
    column("accepted"),
    column("rejected"),
    column("retired"),
    column("updated_at"),
)


@dataclass(frozen=True, slots=True)
class QueueFilter:
    platform: str | None = None
    state: str | None = None
    topic: str | None = None
    priority: str | None = None
    show_snoozed: bool = False
    limit: int = 200


@dataclass(frozen=True, slots=True)
class QueueRow:
    id: int
    platform: str
    connector_id: str
    conversation_id: str
    state: str
    topic: str | None
    priority: str
    opened_at: datetime
    asker: str | None
    asker_id: str
    is_private: bool
    sensitive: str | None
    message_count: int
    text: str
    redacted: str
    tagged: tuple[str, ...] = ()
    sla_due: datetime | None = None
    sla_source: str = ""
    assignee: str | None = None
    snoozed_until: datetime | None = None


@dataclass
class Queue:
    rows: list[QueueRow]
    total: int
    platforms: list[str] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)


def _latest_per_thread(rows: Sequence[Any]) -> dict[int, Any]:
    out: dict[int, Any] = {}
    for r in rows:
        out[int(r.thread_id)] = r
    return out


async def queue(session: AsyncSession, settings: Settings, f: QueueFilter, now: datetime) -> Queue:
    conds: list[ColumnElement[bool]] = [
        THREAD.c.state.in_([f.state] if f.state in OPEN_STATES else OPEN_STATES)
    ]
    if f.platform:
        conds.append(THREAD.c.platform == f.platform)
    if f.topic:
        conds.append(THREAD.c.topic == f.topic)
    if f.priority:
        conds.append(THREAD.c.priority == f.priority)
    sla_thread = await has_table(session, "sla_thread")
    if sla_thread and not f.show_snoozed:
        snoozed = select(SLA_THREAD.c.thread_id).where(SLA_THREAD.c.snoozed_until > now)
        conds.append(THREAD.c.id.not_in(snoozed))
    rank = case(PRIORITY_RANK, value=THREAD.c.priority, else_=2)
    total = int((await session.execute(select(func.count()).select_from(THREAD).where(*conds))).scalar_one())
    # pick the page of ids from the thread table alone (index only), then join the texts for it
    picked = (
        select(THREAD.c.id)
        .where(*conds)
        .order_by(rank, THREAD.c.opened_at, THREAD.c.id)
        .limit(f.limit)
        .subquery()
    )
    stmt = (
        select(THREAD, MESSAGE.c.text, DECISION.c.payload)
        .select_from(
            THREAD.join(picked, picked.c.id == THREAD.c.id)
            .outerjoin(MESSAGE, MESSAGE.c.id == THREAD.c.root_message_id)
            .outerjoin(DECISION, DECISION.c.message_id == THREAD.c.root_message_id)
        )
        .order_by(rank, THREAD.c.opened_at, THREAD.c.id)
    )
    rows = (await session.execute(stmt)).all()
    ids = [int(r.id) for r in rows]
    tagged: dict[int, list[str]] = {}
    due: dict[int, datetime] = {}
    extra: dict[int, Any] = {}
    if ids:
        tags = (
            await session.execute(
                select(OUTBOX.c.thread_id, OUTBOX.c.payload)
                .where(
                    OUTBOX.c.thread_id.in_(ids),
                    OUTBOX.c.purpose.in_(("tag_helpers", "reassign", "sla_assign")),
                )
                .order_by(OUTBOX.c.id)
            )
        ).all()
        for t in tags:
            names = [
                m.get("display_name") or m.get("handle") or m["user_id"]
                for m in t.payload.get("mentions", [])
            ]
            tagged[int(t.thread_id)] = [str(n) for n in names]
        if await has_table(session, "sla_stage"):
            for d in (
                await session.execute(
                    select(SLA_STAGE.c.thread_id, func.min(SLA_STAGE.c.due_at))
                    .where(SLA_STAGE.c.thread_id.in_(ids), SLA_STAGE.c.state == "pending")
                    .group_by(SLA_STAGE.c.thread_id)
                )
            ).all():
                due[int(d[0])] = _aware(d[1])
        if sla_thread:
            extra = _latest_per_thread(
                (
                    await session.execute(
                        select(
                            SLA_THREAD.c.thread_id, SLA_THREAD.c.assignee, SLA_THREAD.c.snoozed_until
                        ).where(SLA_THREAD.c.thread_id.in_(ids))
                    )
                ).all()
            )
    targets = policy_targets(settings)
    out: list[QueueRow] = []
    for r in rows:
        tid = int(r.id)
        opened = _aware(r.opened_at)
        sla_due, source = due.get(tid), "sla"
        if sla_due is None and r.first_response_at is None and r.state not in AUTO_DONE_STATES:
            fact = ThreadFact(
                r.platform, r.connector_id, r.conversation_id, "", None, r.state, r.priority, r.topic, None, 0
            )
            p = policy_for(fact, targets)
            if p is not None:
                sla_due, source = opened + timedelta(seconds=p.first_response_s), f"policy {p.name}"
        x = extra.get(tid)
        payload = r.payload or {}
        out.append(
            QueueRow(
                id=tid,
                platform=r.platform,
                connector_id=r.connector_id,
                conversation_id=r.conversation_id,
                state=r.state,
                topic=r.topic,
                priority=r.priority,
                opened_at=opened,
                asker=r.asker_handle,
                asker_id=r.asker_id,
                is_private=bool(r.is_private),
                sensitive=r.sensitive,
                message_count=int(r.message_count),
                text=r.text or "",
                redacted=str(payload.get("redacted_text") or ""),
                tagged=tuple(tagged.get(tid, ())),
                sla_due=sla_due,
                sla_source=source if sla_due is not None else "",
                assignee=x.assignee if x is not None else None,
                snoozed_until=_aware(x.snoozed_until) if x is not None and x.snoozed_until else None,
            )
        )
    return Queue(out, total)


async def filter_options(session: AsyncSession) -> tuple[list[str], list[str]]:
    """Platforms and topics seen in threads (for the queue's filters; the app caches them)."""
    platforms = sorted(
        str(p) for p in (await session.execute(select(THREAD.c.platform).distinct())).scalars()
    )
    topics = sorted(str(t) for t in (await session.execute(select(THREAD.c.topic).distinct())).scalars() if t)
    return platforms, topics


def _aware(value: Any) -> Any:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        from datetime import UTC

        return value.replace(tzinfo=UTC)
    return value


@dataclass
class ThreadDetail:
    thread: Any
    messages: list[Any]
    decisions: list[Any]
    outbox: list[Any]
    actions: list[Any]
    sla_stages: list[Any]
    sla_thread: Any | None


async def thread_detail(session: AsyncSession, thread_id: int) -> ThreadDetail | None:
    t = (await session.execute(select(THREAD).where(THREAD.c.id == thread_id))).first()
    if t is None:
        return None
    messages = (
        await session.execute(
            select(MESSAGE).where(MESSAGE.c.thread_id == thread_id).order_by(MESSAGE.c.sent_at, MESSAGE.c.id)
        )
    ).all()
    decisions = (
        await session.execute(
            select(DECISION).where(DECISION.c.thread_id == thread_id).order_by(DECISION.c.id)
        )
    ).all()
    sent = (
        await session.execute(select(OUTBOX).where(OUTBOX.c.thread_id == thread_id).order_by(OUTBOX.c.id))
    ).all()
    actions = (
        await session.execute(select(ACTION).where(ACTION.c.thread_id == thread_id).order_by(ACTION.c.id))
    ).all()
    stages: list[Any] = []
    if await has_table(session, "sla_stage"):
        stages = list(
            (
                await session.execute(
                    select(SLA_STAGE).where(SLA_STAGE.c.thread_id == thread_id).order_by(SLA_STAGE.c.due_at)
                )
            ).all()
        )
    st = None
    if await has_table(session, "sla_thread"):
        st = (await session.execute(select(SLA_THREAD).where(SLA_THREAD.c.thread_id == thread_id))).first()
    return ThreadDetail(t, list(messages), list(decisions), list(sent), list(actions), stages, st)


# ------------------------------------------------------------------ staff actions


async def record(
    session: AsyncSession, thread_id: int | None, actor: str, action: str, **detail: Any
) -> None:
    await session.execute(
        ACTION.insert().values(
            thread_id=thread_id, actor=actor, action=action, detail=detail, created_at=utcnow()
        )
    )


async def set_state(session: AsyncSession, thread_id: int, state: ThreadState, actor: str) -> bool:
    now = utcnow()
    values: dict[str, Any] = {"state": state.value, "updated_at": now}
    if state is ThreadState.SOLVED:
        values["solved_at"] = now
    elif state is ThreadState.REOPENED:
        values["solved_at"] = None
    res = await session.execute(update(THREAD).where(THREAD.c.id == thread_id).values(**values))
    if not res.rowcount:  # type: ignore[attr-defined]
        return False
    await record(session, thread_id, actor, state.value)
    return True


async def _sla_thread_upsert(session: AsyncSession, thread_id: int, **values: Any) -> bool:
    if not await has_table(session, "sla_thread"):
        return False
    cols = set(await table_columns(session, "sla_thread"))
    values = {k: v for k, v in values.items() if k in cols}
    values["updated_at"] = utcnow()
    ins = postgresql.insert if dialect_of(session) == "postgresql" else sqlite.insert
    stmt = ins(SLA_THREAD).values(thread_id=thread_id, **values)
    await session.execute(stmt.on_conflict_do_update(index_elements=["thread_id"], set_=values))
    return True


def _sla_commands() -> Any:
    """The SLA engine's staff commands when that part is installed (snooze shifts its pending
    deadlines, assign notifies privately for private threads); None otherwise."""
    try:
        from bot.sla import commands
    except ImportError:  # pragma: no cover - the SLA part ships with the bot
        return None
    return commands


async def snooze(session: AsyncSession, thread_id: int, until: datetime, actor: str) -> bool:
    sla = _sla_commands()
    if sla is not None and await has_table(session, "sla_stage"):
        now = utcnow()
        try:
            await sla.snooze(session, thread_id, until - now, actor, now)
        except sla.SlaCommandError:
            return False
    elif not await _sla_thread_upsert(session, thread_id, snoozed_until=until):
        return False
    await record(session, thread_id, actor, "snooze", until=until.isoformat())
    return True


async def reassign(
    session: AsyncSession, thread_id: int, helper: HelperEntry, actor: str, nonce: str
) -> str | None:
    """Hand the thread to ``helper`` and notify them through the bot (an outbox row): in the
    thread, or privately when the thread is private or sensitive. Returns the outbox key, or
    None when the helper has no identity on the thread's connector."""
    t = (await session.execute(select(THREAD).where(THREAD.c.id == thread_id))).first()
    if t is None or t.connector_id not in helper.identities:
        return None
    sla = _sla_commands()
    if sla is not None and await has_table(session, "sla_thread"):
        from bot.pipeline.roles import Directory

        msg = await sla.assign(
            session, thread_id, helper.name, directory=Directory((helper,)), by=actor, now=utcnow()
        )
        await record(session, thread_id, actor, "reassign", helper=helper.name, key=msg.idempotency_key)
        return str(msg.idempotency_key)
    from bot.models import Mention

    uid = helper.identities[t.connector_id]
    private = bool(t.is_private or t.sensitive)
    key = f"t{thread_id}:web:reassign:{nonce}"
    msg = OutboundMessage(
        idempotency_key=key,
        connector_id=t.connector_id,
        conversation_id=uid if private else t.conversation_id,
        thread_ref=None if private else t.thread_ref,
        reply_to_id=None if private else t.root_external_id,
        text=f"You have been assigned thread #{thread_id} by {actor}."
        if private
        else "Could you take a look at this one?",
        mentions=()
        if private
        else (Mention(user_id=uid, handle=helper.handles.get(t.connector_id), display_name=helper.name),),
        private_to=uid if private else None,
        purpose="reassign",
    )
    await outbox.enqueue(session, [msg], thread_id=thread_id)
    await _sla_thread_upsert(session, thread_id, assignee=helper.name)
    await record(session, thread_id, actor, "reassign", helper=helper.name, key=key)
    return key


async def reply(session: AsyncSession, thread_id: int, text: str, actor: str, nonce: str) -> str | None:
    """Queue a reply through the bot; the same form submitted twice (same nonce) sends once."""
    t = (await session.execute(select(THREAD).where(THREAD.c.id == thread_id))).first()
    if t is None:
        return None
    key = f"t{thread_id}:web:reply:{nonce}"
    msg = OutboundMessage(
        idempotency_key=key,
        connector_id=t.connector_id,
        conversation_id=t.conversation_id,
        thread_ref=t.thread_ref,
        reply_to_id=t.root_external_id,
        text=text,
        private_to=t.asker_id if t.is_private else None,
        purpose="staff_reply",
    )
    if await outbox.enqueue(session, [msg], thread_id=thread_id):
        await record(session, thread_id, actor, "reply", key=key)
    return key


def new_nonce() -> str:
    return uuid.uuid4().hex


# ------------------------------------------------------------------ helpers


@dataclass(frozen=True, slots=True)
class HelperStat:
    name: str
    role: str
    topics: tuple[str, ...]
    languages: tuple[str, ...]
    hours: str
    available_now: bool
    replies: int
    threads: int
    solved: int
    open_load: int
    max_open: int
    points: float | None
    flags: tuple[str, ...]


def available(h: HelperEntry, now: datetime) -> bool:
    if h.hours is None:
        return True
    local = now.astimezone(ZoneInfo(h.timezone))
    start, end = h.hours.split("-")
    hm = local.strftime("%H:%M")
    return start <= hm < end if start <= end else (hm >= start or hm < end)


async def helpers(
    session: AsyncSession, settings: Settings, since: datetime, now: datetime
) -> list[HelperStat]:
    """Leaderboard rows: two grouped queries for everyone (covering index ``ix_message_author``),
    plus points/acceptance from the community table when it exists."""
    from bot.analytics.queries import authored_by

    owner = {(c, a): h.name for h in settings.helpers for c, a in h.identities.items()}
    replies: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    solved: Counter[str] = Counter()
    load: Counter[str] = Counter()
    if owner:
        who = authored_by(sorted(owner))
        recent = MESSAGE.c.sent_at >= since
        for cid, aid, n, t in (
            await session.execute(
                select(
                    MESSAGE.c.connector_id,
                    MESSAGE.c.author_id,
                    func.count(),
                    func.count(MESSAGE.c.thread_id.distinct()),
                )
                .where(who, recent)
                .group_by(MESSAGE.c.connector_id, MESSAGE.c.author_id)
            )
        ).all():
            replies[owner[(cid, aid)]] += int(n)
            threads[owner[(cid, aid)]] += int(t)
        # threads they wrote in during the period: now open (their load) or solved in it
        touched = (
            select(MESSAGE.c.connector_id, MESSAGE.c.author_id, MESSAGE.c.thread_id)
            .where(who, recent, MESSAGE.c.thread_id.is_not(None))
            .distinct()
            .subquery()
        )
        is_open = THREAD.c.state.in_(OPEN_STATES)
        for cid, aid, open_, n in (
            await session.execute(
                select(touched.c.connector_id, touched.c.author_id, is_open, func.count())
                .select_from(touched.join(THREAD, THREAD.c.id == touched.c.thread_id))
                .where(
                    or_(is_open, and_(THREAD.c.state.in_(("solved", "closed")), THREAD.c.solved_at >= since))
                )
                .group_by(touched.c.connector_id, touched.c.author_id, is_open)
            )
        ).all():
            (load if open_ else solved)[owner[(cid, aid)]] += int(n)
    community = await _community(session)
    out: list[HelperStat] = []
    for h in settings.helpers:
        c = community.get(h.name, {})
        flags: list[str] = []
        if h.role == "helper" and replies[h.name] == 0:
            flags.append("no replies in this period")
        if load[h.name] > h.max_open:
            flags.append(f"over capacity ({load[h.name]} open > {h.max_open})")
        if threads[h.name] >= 5 and solved[h.name] / threads[h.name] < 0.3:
            flags.append("few threads solved")
        accepted, rejected = int(c.get("accepted") or 0), int(c.get("rejected") or 0)
        if rejected >= 3 and rejected > accepted:
            flags.append(f"answers rejected more than accepted ({rejected}/{accepted})")
        if c.get("away"):
            flags.append("away")
        out.append(
            HelperStat(
                name=h.name,
                role=h.role,
                topics=tuple(h.topics),
                languages=tuple(h.languages),
                hours=f"{h.hours} {h.timezone}" if h.hours else "any time",
                available_now=available(h, now) and not c.get("away"),
                replies=replies[h.name],
                threads=threads[h.name],
                solved=solved[h.name],
                open_load=load[h.name],
                max_open=h.max_open,
                points=float(c["points"]) if c.get("points") is not None else None,
                flags=tuple(flags),
            )
        )
    return sorted(out, key=lambda s: (-(s.points or 0), -s.solved, -s.replies, s.name))


async def _community(session: AsyncSession) -> dict[str, dict[str, Any]]:
    """Points, acceptance and away state per helper name from the community table, if present."""
    cols = await table_columns(session, "community_helper")
    if "name" not in cols:
        return {}
    wanted = [c for c in ("points", "accepted", "rejected", "away") if c in cols]
    t = table("community_helper", column("name"), *(column(c) for c in wanted))
    rows = (await session.execute(select(t))).mappings().all()
    return {str(r["name"]): dict(r) for r in rows}


# ------------------------------------------------------------------ knowledge


async def knowledge(session: AsyncSession, limit: int = 300) -> list[Any] | None:
    if not await has_table(session, "knowledge_entry"):
        return None
    k = KNOWLEDGE
    return list(
        (await session.execute(select(k).order_by(k.c.retired, k.c.served.desc(), k.c.id).limit(limit))).all()
    )


async def knowledge_retire(session: AsyncSession, entry_id: str, actor: str, retired: bool = True) -> bool:
    res = await session.execute(
        update(KNOWLEDGE).where(KNOWLEDGE.c.id == entry_id).values(retired=retired, updated_at=utcnow())
    )
    if res.rowcount:  # type: ignore[attr-defined]
        await record(session, None, actor, "kb_retire" if retired else "kb_restore", entry=entry_id)
        return True
    return False


async def knowledge_edit(session: AsyncSession, entry_id: str, title: str, answer: str, actor: str) -> bool:
    res = await session.execute(
        update(KNOWLEDGE)
        .where(KNOWLEDGE.c.id == entry_id)
        .values(title=title, answer=answer, updated_at=utcnow())
    )
    if res.rowcount:  # type: ignore[attr-defined]
        await record(session, None, actor, "kb_edit", entry=entry_id)
        return True
    return False


async def knowledge_merge(session: AsyncSession, keep: str, drop: str, actor: str) -> bool:
    """Fold ``drop`` into ``keep``: its counters are added to ``keep`` and it is retired."""
    k = KNOWLEDGE
    rows = {r.id: r for r in (await session.execute(select(k).where(k.c.id.in_((keep, drop))))).all()}
    if keep == drop or keep not in rows or drop not in rows:
        return False
    d = rows[drop]
    await session.execute(
        update(k)
        .where(k.c.id == keep)
        .values(
            served=k.c.served + d.served,
            accepted=k.c.accepted + d.accepted,
            rejected=k.c.rejected + d.rejected,
            updated_at=utcnow(),
        )
    )
    await session.execute(update(k).where(k.c.id == drop).values(retired=True, updated_at=utcnow()))
    await record(session, None, actor, "kb_merge", keep=keep, drop=drop)
    return True


# ------------------------------------------------------------------ metrics


@dataclass
class MetricsData:
    messages_in: dict[str, int]
    messages_out: dict[str, int]
    decisions: dict[str, int]
    outbox_depth: dict[str, int]
    sla_breaches: int | None
    open_threads: int


async def metrics_data(session: AsyncSession) -> MetricsData:
    ins = (
        await session.execute(
            # every stored inbound event (index-only count; includes the bot's own posts when a
            # platform echoes them: filtering on author_is_bot would scan the whole table)
            select(MESSAGE.c.connector_id, func.count()).group_by(MESSAGE.c.connector_id)
        )
    ).all()
    outs = (
        await session.execute(
            select(OUTBOX.c.connector_id, func.count())
            .where(OUTBOX.c.state == "sent")
            .group_by(OUTBOX.c.connector_id)
        )
    ).all()
    decisions = (await session.execute(select(DECISION.c.kind, func.count()).group_by(DECISION.c.kind))).all()
    depth = (await session.execute(select(OUTBOX.c.state, func.count()).group_by(OUTBOX.c.state))).all()
    breaches: int | None = None
    if await has_table(session, "sla_stage"):
        fired = (
            await session.execute(
                select(SLA_STAGE.c.at, func.count())
                .where(SLA_STAGE.c.state == "fired")
                .group_by(SLA_STAGE.c.at)
            )
        ).all()
        breaches = sum(int(n) for at, n in fired if _is_breach(str(at)))
    open_threads = int(
        (await session.execute(select(func.count()).where(THREAD.c.state.in_(OPEN_STATES)))).scalar_one()
    )
    return MetricsData(
        messages_in={str(c): int(n) for c, n in ins},
        messages_out={str(c): int(n) for c, n in outs},
        decisions={str(k): int(n) for k, n in decisions},
        outbox_depth={str(s): int(n) for s, n in depth},
        sla_breaches=breaches,
        open_threads=open_threads,
    )


def _is_breach(at: str) -> bool:
    """A fired stage at or past 100% of its target is a breach; duration stages are not counted."""
    at = at.strip()
    if at.endswith("%"):
        try:
            return float(at[:-1]) >= 100.0
        except ValueError:
            return False
    return False


def count_by(values: Sequence[str]) -> dict[str, int]:
    return dict(Counter(values))
