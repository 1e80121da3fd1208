"""The worker's hook: thread events -> (re)computed deadlines, written with the worker's batch.

``classify`` is pure (what happened to the thread, in SLA terms); ``apply`` writes a whole
batch of events with a handful of statements, in the worker's transaction:

- opened: start first response (unless an accepted-by-default auto-answer) and resolution;
- a helper/staff reply: stop the response clocks (resolution keeps running);
- the asker writes again after an answer (or presses "not yet"): start next response, unless
  it is already running (the wait counts from the first unanswered message);
- solved / closed: stop everything; reopened: restart first response and resolution;
- priority raised: re-plan the running clocks under the policy that now matches.

A restarted clock has a new ``cycle`` (the id of the message that started it), so its stages
are new rows and never collide with stages that already fired.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import DecisionKind, MessageKind, ThreadState, ThreadView
from bot.sla.policy import (
    FIRST_RESPONSE,
    NEXT_RESPONSE,
    RESOLUTION,
    RESPONSE_CLOCKS,
    PlannedStage,
    Planner,
    ThreadFacts,
    priority_rank,
)
from bot.storage.dialect import dialect_of, insert
from bot.storage.sla_tables import SlaStageRow, SlaThreadRow

_STAGE: Table = SlaStageRow.__table__  # type: ignore[attr-defined]
_SLA_THREAD: Table = SlaThreadRow.__table__  # type: ignore[attr-defined]

EventKind = Literal["opened", "responded", "asker_reply", "solved", "reopened", "priority"]
_TEXT_KINDS = {MessageKind.MENTION, MessageKind.DM, MessageKind.CHANNEL_POST, MessageKind.REPLY}
_ANSWERED = {ThreadState.ANSWERED, ThreadState.AUTO_ANSWERED}


@dataclass(frozen=True, slots=True)
class SlaEvent:
    kind: EventKind
    thread: ThreadView
    message_id: int
    at: datetime
    auto_answered: bool = False
    priority: str | None = None  # for "priority": the new one


def classify(
    thread: ThreadView,
    *,
    opened: bool,
    role: str,
    decision_kind: DecisionKind,
    decision_priority: str,
    message_kind: MessageKind,
    button_data: str | None,
    new_state: ThreadState | None,
    message_id: int,
    at: datetime,
) -> list[SlaEvent]:
    """What a processed message means for the thread's SLA clocks (``thread`` is the view
    before this message changed it)."""
    if opened:
        return [
            SlaEvent("opened", thread, message_id, at, auto_answered=new_state is ThreadState.AUTO_ANSWERED)
        ]
    if new_state in (ThreadState.SOLVED, ThreadState.CLOSED):
        return [SlaEvent("solved", thread, message_id, at)]
    if new_state is ThreadState.REOPENED:
        return [SlaEvent("reopened", thread, message_id, at)]
    out: list[SlaEvent] = []
    if decision_kind is not DecisionKind.FOLLOW_UP:
        return out
    if role in ("helper", "staff") and message_kind in _TEXT_KINDS:
        out.append(SlaEvent("responded", thread, message_id, at))
    elif role == "asker":
        notyet = message_kind is MessageKind.BUTTON and (button_data or "").startswith("notyet:")
        if priority_rank(decision_priority) > priority_rank(thread.priority):
            out.append(SlaEvent("priority", thread, message_id, at, priority=decision_priority))
        if notyet or (message_kind in _TEXT_KINDS and thread.state in _ANSWERED):
            out.append(SlaEvent("asker_reply", thread, message_id, at))
    return out


@dataclass
class _Plan:
    cancel_all: dict[int, str] = field(default_factory=dict)  # thread -> why
    cancel_response: set[int] = field(default_factory=set)
    starts: dict[int, list[tuple[str, int, datetime]]] = field(default_factory=dict)
    facts: dict[int, ThreadFacts] = field(default_factory=dict)
    auto: dict[int, bool] = field(default_factory=dict)
    priority: dict[int, str] = field(default_factory=dict)
    replan: set[int] = field(default_factory=set)
    # asker replies that start next response only if no response clock is running already
    # (the customer has waited since their FIRST unanswered message)
    unless_running: set[int] = field(default_factory=set)


def _fold(events: Sequence[SlaEvent]) -> _Plan:
    p = _Plan()
    for e in events:
        t = e.thread
        tid = t.id
        p.facts.setdefault(tid, ThreadFacts(t.connector_id, t.conversation_id, t.topic, t.priority))
        starts = p.starts.setdefault(tid, [])
        if e.kind == "opened":
            p.auto[tid] = e.auto_answered
            starts[:] = [(FIRST_RESPONSE, e.message_id, e.at), (RESOLUTION, e.message_id, e.at)]
        elif e.kind == "responded":
            p.cancel_response.add(tid)
            starts[:] = [s for s in starts if s[0] not in RESPONSE_CLOCKS]
        elif e.kind == "asker_reply":
            if not any(s[0] in RESPONSE_CLOCKS for s in starts):
                starts.append((NEXT_RESPONSE, e.message_id, e.at))
                if tid not in p.cancel_response:
                    p.unless_running.add(tid)
        elif e.kind == "solved":
            p.cancel_all[tid] = "solved"
            starts.clear()
            p.replan.discard(tid)
        elif e.kind == "reopened":
            p.cancel_all[tid] = "reopened"
            starts[:] = [(FIRST_RESPONSE, e.message_id, e.at), (RESOLUTION, e.message_id, e.at)]
        elif e.kind == "priority" and e.priority is not None:
            p.priority[tid] = e.priority
            p.replan.add(tid)
    return p


async def apply(session: AsyncSession, events: Sequence[SlaEvent], planner: Planner) -> int:
    """Write the deadline changes for a batch of events; returns how many stages were planned."""
    if not events:
        return 0
    p = _fold(events)
    dialect = dialect_of(session)
    if p.replan:
        # the clocks running now, re-planned below under the policy that matches the new priority
        rows = (
            await session.execute(
                select(_STAGE.c.thread_id, _STAGE.c.clock, _STAGE.c.cycle, _STAGE.c.started_at)
                .where(_STAGE.c.thread_id.in_(sorted(p.replan)), _STAGE.c.state == "pending")
                .distinct()
            )
        ).all()
        for r in rows:
            if r.thread_id in p.cancel_all:
                continue
            if r.clock in RESPONSE_CLOCKS and r.thread_id in p.cancel_response:
                continue
            lst = p.starts.setdefault(r.thread_id, [])
            if not any(s[0] == r.clock and s[1] == r.cycle for s in lst):
                lst.append((r.clock, r.cycle, r.started_at))
        for tid in p.replan:
            p.cancel_all.setdefault(tid, "re-planned")
    check = sorted(p.unless_running - set(p.cancel_all))
    if check:
        running = await session.execute(
            select(_STAGE.c.thread_id)
            .where(
                _STAGE.c.thread_id.in_(check),
                _STAGE.c.state == "pending",
                _STAGE.c.clock.in_(RESPONSE_CLOCKS),
            )
            .distinct()
        )
        for (tid,) in running.all():
            p.starts[tid] = [s for s in p.starts.get(tid, []) if s[0] != NEXT_RESPONSE]
    restarted = [tid for tid, s in p.starts.items() if s and tid not in p.auto and tid not in p.priority]
    if restarted:  # a priority raised earlier still holds when a clock restarts
        raised = await session.execute(
            select(_SLA_THREAD.c.thread_id, _SLA_THREAD.c.priority).where(
                _SLA_THREAD.c.thread_id.in_(restarted), _SLA_THREAD.c.priority.is_not(None)
            )
        )
        for tid, prio in raised.all():
            p.priority[tid] = prio

    for why in sorted(set(p.cancel_all.values())):
        tids = sorted(t for t, w in p.cancel_all.items() if w == why)
        await session.execute(
            update(_STAGE)
            .where(_STAGE.c.thread_id.in_(tids), _STAGE.c.state == "pending")
            .values(state="cancelled", note=why)
        )
    response_only = sorted(p.cancel_response - set(p.cancel_all))
    if response_only:
        await session.execute(
            update(_STAGE)
            .where(
                _STAGE.c.thread_id.in_(response_only),
                _STAGE.c.state == "pending",
                _STAGE.c.clock.in_(RESPONSE_CLOCKS),
            )
            .values(state="cancelled", note="answered")
        )

    planned: list[PlannedStage] = []
    plan_thread: list[int] = []
    for tid, starts in p.starts.items():
        if not starts:
            continue
        f = p.facts[tid]
        if tid in p.priority:
            f = ThreadFacts(f.connector_id, f.conversation_id, f.topic, p.priority[tid])
        policy = planner.match(f)
        if policy is None:
            continue
        for clock, cycle, started in starts:
            if clock == FIRST_RESPONSE and p.auto.get(tid) and policy.auto_answer_counts:
                continue
            for st in planner.plan(policy, clock, cycle, started):
                planned.append(st)
                plan_thread.append(tid)
    if planned:
        written = max(e.at for e in events)
        now_rows: list[dict[str, Any]] = [
            {
                "thread_id": tid,
                "policy": st.policy,
                "clock": st.clock,
                "cycle": st.cycle,
                "stage": st.stage,
                "action": st.action,
                "at": st.at,
                "started_at": st.started_at,
                "due_at": st.due_at,
                "state": "pending",
                "created_at": written,
            }
            for tid, st in zip(plan_thread, planned, strict=True)
        ]
        ins = insert(dialect, _STAGE)
        await session.execute(
            ins.on_conflict_do_update(
                index_elements=["thread_id", "clock", "cycle", "policy", "stage"],
                set_={"due_at": ins.excluded.due_at, "state": "pending", "note": None},
                where=_STAGE.c.state == "cancelled",
            ),
            now_rows,
        )
    if p.priority and any(tid in p.replan for tid in p.priority):
        ins = insert(dialect, _SLA_THREAD)
        now = max(e.at for e in events)
        await session.execute(
            ins.on_conflict_do_update(
                index_elements=["thread_id"],
                set_={"priority": ins.excluded.priority, "updated_at": ins.excluded.updated_at},
            ),
            [{"thread_id": t, "priority": pr, "updated_at": now} for t, pr in p.priority.items()],
        )
    return len(planned)
